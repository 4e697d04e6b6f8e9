"""Racks and scalable units: a pool's placements laid out in its halls, rack by rack, node by node. Pure.

A placement becomes whole scalable units at the hall's next free positions and unit indexes (both
handed out once, never reused), each rack with its address blocks and each node with its addresses,
role and cluster; a rack is checked against the hall profile (power, weight, feeds, cooling) before
it is laid out. Also here: dropping a rack (decommissions) and the port facts of the rack profiles
in use (the Plan's `rack_ports`).
"""

from __future__ import annotations

from dataclasses import replace

from kasbah.config.issues import Loc
from kasbah.config.models import NvlinkDomain, Placement, PoolPurpose, RackProfile
from kasbah.planning.model import Node, Rack, RackPorts, ScalableUnit
from kasbah.planning.state import HallState, PlanState, PoolState

_ROLE = {
    PoolPurpose.TRAINING: "worker",
    PoolPurpose.INFERENCE: "worker",
    PoolPurpose.HPC: "worker",
    PoolPurpose.STORAGE: "storage",
    PoolPurpose.MANAGEMENT: "management",
}


def place_pool(st: PlanState, pool: PoolState, placements: list[Placement], path: Loc, phase: str) -> None:
    """A pool's placements as scalable units in their halls; a pool with a placement refused is marked failed."""
    before = len(st.issues)
    _place_units(st, pool, placements, path, phase)
    if len(st.issues) > before:
        st.failed.add(("pool", pool.spec.name))


def _place_units(st: PlanState, pool: PoolState, placements: list[Placement], path: Loc, phase: str) -> None:
    profile = pool.profile
    su = profile.scalable_unit_racks
    for j, pl in enumerate(placements):
        ppath = (*path, "placements", j)
        hall = st.halls.get(pl.hall)
        if hall is None and ("hall", pl.hall) in st.failed:
            st.failed.add(("pool", pool.spec.name))  # incomplete: no knock-on errors
            continue
        if hall is None and (gone := st.gone("hall", pl.hall)):
            st.issue((*ppath, "hall"), gone, f"use a live hall: {', '.join(st.halls) or '(none)'}")
            continue
        if hall is None:
            st.issue(
                (*ppath, "hall"),
                f"unknown hall `{pl.hall}`",
                f"use one of: {', '.join(st.halls) or '(none yet)'}; halls must be commissioned in this phase or earlier",
            )
            continue
        if pl.racks % su:
            lower, upper = pl.racks // su * su, (pl.racks // su + 1) * su
            st.issue(
                (*ppath, "racks"),
                f"{pl.racks} racks is not a whole number of {su}-rack scalable units of `{profile.name}`",
                f"use {lower or upper} or {upper}" if lower else f"use {upper}",
            )
            continue
        if not fits_hall(st, hall, profile, ppath):
            continue
        free = hall.profile.positions - hall.next_position
        if pl.racks > free:
            st.issue(
                (*ppath, "racks"),
                f"hall `{hall.spec.name}` has {free} free positions; {pl.racks} racks do not fit",
                "place the rest in another hall (another placement), or commission a new hall",
            )
            continue
        units = pl.racks // su
        if hall.next_unit + units > st.reserve.scalable_units_per_hall:
            st.issue(
                (*ppath, "racks"),
                f"hall `{hall.spec.name}` would hold {hall.next_unit + units} scalable units; site.addressing.reserve.scalable_units_per_hall is {st.reserve.scalable_units_per_hall}",
                "place the units in another hall, or raise the reservation (before phase 1)",
            )
            continue
        if pool.spec.purpose.kubernetes_workers and pool.cluster is not None:
            c = st.clusters[pool.cluster]
            total = st.workers(pool.cluster) + c.spec.control_plane.replicas + pl.racks * profile.nodes
            if total > c.spec.node_limit:
                st.issue(
                    (*ppath, "racks"),
                    f"cluster `{pool.cluster}` would reach {total} nodes, above its node_limit of {c.spec.node_limit}",
                    "put these racks in a new pool on another cluster, or raise node_limit (upstream tests up to 5,000)",
                )
                continue
        st.hall_paths[hall.spec.name] = ppath
        for _ in range(units):
            _add_unit(st, pool, hall, phase)


def fits_hall(st: PlanState, hall: HallState, profile: RackProfile, path: Loc, key: str = "hall") -> bool:
    hp = hall.profile
    problems = []
    if profile.power_kw > hp.max_rack_kw:
        problems.append(
            (
                f"a `{profile.name}` rack draws {profile.power_kw:g} kW; hall profile `{hp.name}` delivers {hp.max_rack_kw:g} kW a position",
                "use a hall profile with higher-rated positions",
            )
        )
    if profile.weight_kg > hp.max_rack_weight_kg:
        problems.append(
            (
                f"a `{profile.name}` rack weighs {profile.weight_kg:g} kg; hall profile `{hp.name}` takes {hp.max_rack_weight_kg:g} kg a position",
                "use a hall rated for the weight",
            )
        )
    if profile.feeds > hp.feeds:
        problems.append(
            (
                f"a `{profile.name}` rack needs {profile.feeds} power feeds (A/B); hall profile `{hp.name}` has {hp.feeds}",
                "use a hall with A/B feeds",
            )
        )
    if profile.cooling.liquid and hp.liquid_cooling is None:
        problems.append(
            (
                f"a `{profile.name}` rack is cooled by {profile.cooling.value}; hall profile `{hp.name}` has no liquid cooling",
                "use a hall with coolant distribution units",
            )
        )
    for message, fix in problems:
        st.issue((*path, key), message, fix)
    return not problems


def _add_unit(st: PlanState, pool: PoolState, hall: HallState, phase: str) -> None:
    unit_index = hall.next_unit
    hall.next_unit += 1
    name = f"{hall.spec.name}-su{unit_index + 1:02d}"
    racks = tuple(
        add_rack(st, hall, pool.profile, pool, name, unit_index, r, phase)
        for r in range(pool.profile.scalable_unit_racks)
    )
    st.units[name] = ScalableUnit(
        name,
        hall.spec.name,
        unit_index,
        pool.spec.name,
        pool.next_unit,
        pool.profile.name,
        racks,
        phase,
    )
    pool.next_unit += 1
    pool.units.append(name)


def add_rack(
    st: PlanState,
    hall: HallState,
    profile: RackProfile,
    pool: PoolState | None,
    unit: str | None,
    unit_index: int,
    rack_index: int,
    phase: str,
) -> str:
    """A rack at the hall's next position, with its address blocks and (in a pool) its nodes; returns its name."""
    pos = hall.next_position
    hall.next_position += 1
    per_row = hall.profile.positions_per_row
    row, col = pos // per_row + 1, pos % per_row + 1
    hname = hall.spec.name
    name = f"{hname}-r{row:02d}p{col:02d}"
    st.ever_racks.add(name)
    ip, h = st.ipam, hall.index
    has_nodes = profile.nodes > 0 and unit is not None
    rails = profile.compute_nics_per_node
    st.racks[name] = Rack(
        name=name,
        hall=hname,
        row=row,
        position=col,
        index=pos,
        scalable_unit=unit,
        pool=pool.spec.name if pool else None,
        profile=profile.name,
        kind=profile.kind.value,
        power_kw=profile.power_kw,
        cooling=profile.cooling.value,
        weight_kg=profile.weight_kg,
        feeds=("A", "B")[: profile.feeds],
        nodes=profile.nodes if has_nodes else 0,
        gpus=profile.gpus if has_nodes else 0,
        oob_cidr=ip.rack_cidr(ip.oob, h, unit_index, rack_index) if has_nodes else None,
        inband_cidr=ip.rack_cidr(ip.inband, h, unit_index, rack_index) if has_nodes else None,
        storage_cidr=ip.rack_cidr(ip.storage, h, unit_index, rack_index) if has_nodes else None,
        rail_cidrs=tuple(ip.rack_cidr(ip.compute, h, unit_index, rack_index, r) for r in range(rails))
        if has_nodes
        else (),
        phase=phase,
    )
    if has_nodes and pool is not None and unit is not None:
        purpose = pool.spec.purpose
        role = _ROLE[purpose]
        cluster = pool.cluster if purpose.kubernetes_workers else None
        domain = profile.nvlink.domain
        for slot in range(profile.nodes):
            node = f"{name}-n{slot + 1:02d}"
            st.nodes[node] = Node(
                name=node,
                rack=name,
                hall=hname,
                scalable_unit=unit,
                slot=slot + 1,
                pool=pool.spec.name,
                role=role,
                cluster=cluster,
                tenant=pool.spec.tenant,
                gpus=profile.gpus_per_node,
                nvlink_domain=name if domain is NvlinkDomain.RACK else node if domain is NvlinkDomain.NODE else None,
                oob_ip=ip.host(ip.oob, h, unit_index, rack_index, slot),
                inband_ip=ip.host(ip.inband, h, unit_index, rack_index, slot),
                storage_ip=ip.host(ip.storage, h, unit_index, rack_index, slot),
                rail_ips=tuple(ip.host(ip.compute, h, unit_index, rack_index, slot, r) for r in range(rails)),
                phase=phase,
            )
    return name


def drop_rack(st: PlanState, rack: Rack) -> None:
    """A decommissioned rack's nodes and rack gone, and its scalable unit with it once empty."""
    pool = st.pools[rack.pool] if rack.pool else None
    for n in st.rack_nodes(rack):
        del st.nodes[n]
    del st.racks[rack.name]
    if rack.scalable_unit is not None:
        unit = st.units[rack.scalable_unit]
        left = tuple(r for r in unit.racks if r != rack.name)
        if left:
            st.units[unit.name] = replace(unit, racks=left)
        else:
            del st.units[unit.name]
            if pool is not None:
                pool.units.remove(unit.name)


def rack_ports(st: PlanState, racks: tuple[Rack, ...]) -> tuple[RackPorts, ...]:
    """The port facts of the rack profiles in use, in catalog order: what cabling lays out."""
    used = {r.profile for r in racks}
    return tuple(
        RackPorts(
            p.name,
            p.nodes,
            p.compute_nics_per_node,
            p.compute_nic_gbps,
            p.storage_nics_per_node,
            p.storage_nic_gbps,
            p.oob_ports,
            p.scalable_unit_racks,
        )
        for p in st.campus.catalog.rack_profiles
        if p.name in used
    )
