"""Switches and fabrics: each phase's compute, storage/in-band and out-of-band fabrics, sized and named. Pure.

Sizing is fabric.py's (rail-optimised leaves, non-blocking trees); here the planner lays out each
pool's compute fabric and each hall's storage/in-band and out-of-band fabrics over the racks live
in the phase, names their switches, and gives each a loopback at an index fixed by never-reused
unit and rack indexes. A fabric is cached by the racks it serves, so a phase that leaves it alone
reuses it. Also here: the port facts of the switch models in use (the Plan's `switch_ports`).
"""

from __future__ import annotations

from math import ceil

from kasbah.config.models import SwitchModel
from kasbah.planning import fabric as fab
from kasbah.planning.model import Fabric, Rack, Switch, SwitchPorts
from kasbah.planning.state import PlanState, PoolState


def lay_out_fabrics(st: PlanState) -> tuple[tuple[Fabric, ...], tuple[Switch, ...]]:
    """Every fabric of the phase and its switches: each pool's compute fabric, then each hall's two."""
    fabrics: list[Fabric] = []
    switches: list[Switch] = []
    for name, p in st.pools.items():
        if p.fabric_index is None or p.switch is None or not p.units:
            continue
        units = tuple(p.units)
        key: tuple[object, ...] = ("compute", name, tuple(st.units[u].racks for u in units))
        got = st.fabric_cache.get(key)
        if got is None:
            got = _compute_fabric(st, p, units)
            st.fabric_cache[key] = got
        fabrics.append(got[0])
        switches.extend(got[1])
    for hall in st.halls:
        racks = tuple(r.name for r in st.racks.values() if r.hall == hall)
        hall_key = ("hall", hall, racks)
        cached = st.hall_cache.get(hall_key)
        if cached is None:
            try:
                cached = _hall_fabrics(st, hall)
            except fab.FabricError as exc:
                st.fabric_issue(("phase",), f"hall `{hall}`", exc)
                cached = []
            st.hall_cache[hall_key] = cached
        for f, sw in cached:
            fabrics.append(f)
            switches.extend(sw)
    return tuple(fabrics), tuple(switches)


def _power(model: SwitchModel, count: int) -> float | None:
    return None if model.power_w is None else model.power_w * count / 1000


def _switches(
    st: PlanState, fabric: str, index: int, tier: str, model: str, named: list[tuple[str, int]]
) -> list[Switch]:
    """Switches with loopbacks at fixed indexes (from never-reused unit and rack indexes)."""
    room = st.ipam.loopback_room(tier)
    top = max((i for _, i in named), default=-1)
    if top >= room:
        raise fab.FabricError(
            f"fabric {fabric} needs {tier} loopback #{top + 1} but a fabric has {room} for {tier} switches; fix: raise site.addressing.reserve.switches_per_fabric (before phase 1)"
        )
    return [Switch(n, fabric, tier, model, st.ipam.loopback(index, tier, i)) for n, i in named]


def _tree_switches(
    st: PlanState,
    fabric: str,
    index: int,
    leaves: list[tuple[str, int]],
    leaf_model: str,
    upper_model: str,
    tree: fab.TreeSize,
    prefix: str,
    width: int,
    spine_word: str = "spine",
) -> list[Switch]:
    """A fabric's leaves at their fixed indexes, then its spines and cores numbered in order."""
    spines = [(f"{prefix}-{spine_word}{i + 1:0{width}d}", i) for i in range(tree.spines)]
    cores = [(f"{prefix}-core{i + 1:0{width}d}", i) for i in range(tree.cores)]
    return (
        _switches(st, fabric, index, "leaf", leaf_model, leaves)
        + _switches(st, fabric, index, "spine", upper_model, spines)
        + _switches(st, fabric, index, "core", upper_model, cores)
    )  # fmt: skip


def _compute_fabric(st: PlanState, p: PoolState, units: tuple[str, ...]) -> tuple[Fabric, tuple[Switch, ...]]:
    assert p.switch is not None and p.fabric_index is not None
    prof = p.profile
    radix = p.switch.radix(prof.compute_nic_gbps)
    rails = prof.compute_nics_per_node
    fname = f"{p.spec.name}-compute"
    try:
        layer, tree = fab.compute_fabric(
            len(units), prof.scalable_unit_racks, prof.nodes, rails, radix, p.spec.fabric_design
        )
        lpr = layer.leaves_per_rail
        leaves = [
            (
                f"{u}-r{rail + 1}-leaf{i + 1}",
                (st.units[u].pool_index * rails + rail) * lpr + i,
            )
            for u in units
            for rail in range(rails)
            for i in range(lpr)
        ]
        sw = _tree_switches(st, fname, p.fabric_index, leaves, p.switch.name, p.switch.name, tree, p.spec.name, 3)
    except fab.FabricError as exc:
        st.fabric_issue(st.pool_paths.get(p.spec.name, ("phase",)), f"pool `{p.spec.name}`", exc)
        layer, tree, sw = fab.LeafLayer(0, 0, 0), fab.TreeSize(0, 0, 0, 0, 0, 0), []
    nodes = sum(st.racks[r].nodes for u in units for r in st.units[u].racks)
    f = Fabric(
        name=fname,
        kind="compute",
        scope=p.spec.name,
        switch_model=p.switch.name,
        radix=radix,
        design=p.spec.fabric_design.value,
        tiers=tree.tiers,
        endpoint_ports=nodes * rails,
        rails=rails,
        leaves=tree.leaves,
        spines=tree.spines,
        cores=tree.cores,
        node_leaf_cables=nodes * rails,
        leaf_spine_cables=tree.leaf_spine_cables,
        spine_core_cables=tree.spine_core_cables,
        power_kw=_power(p.switch, len(sw)),
        loopback_block=st.ipam.loopback_block(p.fabric_index),
    )
    return f, tuple(sw)


def _hall_fabrics(st: PlanState, hall: str) -> list[tuple[Fabric, tuple[Switch, ...]]]:
    """Storage/in-band and out-of-band fabrics of one hall."""
    site = st.campus.site
    storage_idx, oob_idx = st.hall_fabrics[hall]
    racks = [r for r in st.racks.values() if r.hall == hall and r.nodes]
    out = []
    # storage and in-band: rack-aligned leaves per scalable unit, one non-blocking tree per hall
    sm = st.switch_models[site.fabrics.storage_switch]
    units: dict[str, list[Rack]] = {}
    for r in racks:
        assert r.scalable_unit is not None
        units.setdefault(r.scalable_unit, []).append(r)
    leaves: list[tuple[str, int]] = []
    uplinks = 0
    ports = 0
    radix = 0
    for unit, members in units.items():
        prof = st.racks_by_name[members[0].profile]
        if not prof.storage_nics_per_node:
            continue
        radix = sm.radix(prof.storage_nic_gbps)
        per_rack = prof.nodes * prof.storage_nics_per_node
        ports += per_rack * len(members)
        layer = fab.leaf_layer(len(members), per_rack, radix)
        uplinks = max(uplinks, layer.uplinks)
        base = st.units[unit].index * st.reserve.racks_per_scalable_unit
        leaves += [(f"{unit}-storage-leaf{i + 1}", base + i) for i in range(layer.leaves_per_rail)]
    tree = fab.fat_tree(len(leaves), uplinks, radix or sm.ports) if leaves else fab.TreeSize(0, 0, 0, 0, 0, 0)
    fname = f"{hall}-storage"
    sw = _tree_switches(st, fname, storage_idx, leaves, sm.name, sm.name, tree, f"{hall}-storage", 2)
    out.append(
        (
            _hall_fabric(
                st,
                fname,
                "storage",
                hall,
                sm.name,
                radix or sm.ports,
                tree,
                ports,
                _power(sm, len(sw)),
                storage_idx,
            ),
            tuple(sw),
        )
    )
    # out of band: one or more 1G management switches a rack, two aggregation switches or more
    om = st.switch_models[site.fabrics.oob_switch]
    oname = f"{hall}-oob"
    up = om.uplink_ports or om.ports // 2
    down = om.ports if om.uplink_ports else om.ports - up
    # a fixed stride from the site's reservation, so catalog changes never move a loopback
    stride = ceil(site.addressing.oob.per_rack / down)
    named: list[tuple[str, int]] = []
    oob_ports = 0
    for r in racks:
        prof = st.racks_by_name[r.profile]
        oob_ports += prof.oob_ports
        named += [(f"{r.name}-oob{i + 1}", r.index * stride + i) for i in range(ceil(prof.oob_ports / down))]
    agg_radix = sm.radix(fab.OOB_UPLINK_GBPS)
    otree = fab.fat_tree(len(named), up, agg_radix, min_spines=2) if named else fab.TreeSize(0, 0, 0, 0, 0, 0)
    osw = _tree_switches(st, oname, oob_idx, named, om.name, sm.name, otree, f"{hall}-oob", 2, spine_word="agg")
    power = (
        None
        if om.power_w is None or sm.power_w is None
        else (om.power_w * len(named) + sm.power_w * (otree.spines + otree.cores)) / 1000
    )
    out.append((_hall_fabric(st, oname, "oob", hall, om.name, om.ports, otree, oob_ports, power, oob_idx), tuple(osw)))
    return out


def _hall_fabric(
    st: PlanState,
    name: str,
    kind: str,
    hall: str,
    model: str,
    radix: int,
    tree: fab.TreeSize,
    ports: int,
    power: float | None,
    index: int,
) -> Fabric:
    return Fabric(
        name=name, kind=kind, scope=hall, switch_model=model, radix=radix, design="fat-tree", tiers=tree.tiers,
        endpoint_ports=ports, rails=1, leaves=tree.leaves, spines=tree.spines, cores=tree.cores,
        node_leaf_cables=ports, leaf_spine_cables=tree.leaf_spine_cables, spine_core_cables=tree.spine_core_cables,
        power_kw=power, loopback_block=st.ipam.loopback_block(index),
    )  # fmt: skip


def switch_ports(st: PlanState, fabrics: tuple[Fabric, ...], switches: tuple[Switch, ...]) -> tuple[SwitchPorts, ...]:
    used = {s.model for s in switches} | {f.switch_model for f in fabrics}
    return tuple(
        SwitchPorts(m.name, m.ports, m.port_gbps, m.max_breakout, m.uplink_ports)
        for m in st.campus.catalog.switch_models
        if m.name in used
    )
