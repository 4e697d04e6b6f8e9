"""The phase planner: applies phases in build order and lays each one out as a Plan. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable
from math import ceil
from typing import TYPE_CHECKING

from kasbah.config.issues import ConfigError, ConfigIssue, Loc, PlanningError
from kasbah.config.models import (
    Campus,
    Phase,
    RackProfile,
    SlotHardware,
    SwitchModel,
)
from kasbah.planning import fabric as fab
from kasbah.planning import ports
from kasbah.planning.addresses import address_usage
from kasbah.planning.clusters import (
    check_charts,
    check_node_limits,
    cluster_snapshot,
    commission_cluster,
    etcd_backup,
    place_control_plane,
    releases,
    upgrade_cluster,
)
from kasbah.planning.decommissions import retire
from kasbah.planning.halls import check_hall_loads, commission_hall
from kasbah.planning.host_flows import FLOWS
from kasbah.planning.model import (
    BmcAccess,
    Egress,
    Fabric,
    GitOpsSource,
    NodeHardware,
    Plan,
    Power,
    Rack,
    Switch,
    SwitchPorts,
)
from kasbah.planning.pools import commission_pool, expand_pool, pool_snapshot, waves
from kasbah.planning.racks import rack_ports
from kasbah.planning.state import PlanState, PoolState
from kasbah.planning.tenancy import cluster_namespaces
from kasbah.planning.tenants import check_quotas, commission_tenant, expand_tenant, grant_snapshot, tenant_snapshot

if TYPE_CHECKING:
    from kasbah.config.loader import Environment

Progress = Callable[[str], None]

# Interface MTUs where the site sets none: storage and the compute rails carry jumbo frames
DEFAULT_MTU = {"oob": 1500, "inband": 1500, "storage": 9000, "compute": 9000}


class _Planner(PlanState):
    """The phase planner over one PlanState (moving out to modules per noun)."""

    def __init__(self, campus: Campus, environment: str) -> None:
        super().__init__(campus, environment)
        check_charts(self)

    # ------------------------------------------------------------------ phases
    def apply(self, phase: Phase) -> None:
        self.doc = phase.name
        self.pool_paths, self.hall_paths = {}, {}
        self.phase_start = len(self.issues)
        self.retiring = {(d.kind.value, d.name) for d in phase.decommissions}
        p: Loc = ("phase",)
        if phase.facility_budget_mw > self.campus.site.renewable_supply_mw:
            self.issue(
                (*p, "facility_budget_mw"),
                f"the phase budget of {phase.facility_budget_mw:g} MW is above the renewable supply of {self.campus.site.renewable_supply_mw:g} MW",
                "lower the phase budget; the supply is the campus cap",
            )
        retire(self, phase)
        for i, hall in enumerate(phase.halls):
            commission_hall(self, hall, (*p, "halls", i), phase.name)
        for i, tenant in enumerate(phase.tenants):
            commission_tenant(self, tenant, (*p, "tenants", i), phase.name)
        new_clusters = []
        for i, cluster in enumerate(phase.clusters):
            if commission_cluster(self, cluster, (*p, "clusters", i), phase.name):
                new_clusters.append((i, cluster))
        for i, pool in enumerate(phase.pools):
            commission_pool(self, pool, (*p, "pools", i), phase.name)
        for i, exp in enumerate(phase.expansions.pools):
            expand_pool(self, exp, (*p, "expansions", "pools", i), phase.name)
        for i, cluster in new_clusters:
            place_control_plane(self, cluster, (*p, "clusters", i, "control_plane"))
        seen: set[str] = set()
        for i, up in enumerate(phase.upgrades):
            upgrade_cluster(self, up, (*p, "upgrades", i), phase.name, seen)
        for i, change in enumerate(phase.expansions.tenants):
            expand_tenant(self, change, (*p, "expansions", "tenants", i))
        self._check_phase(phase)

    # ------------------------------------------------------------------ checks
    def _check_phase(self, phase: Phase) -> None:
        site = self.campus.site
        # the quota cross-check only means something when every pool was placed
        clean = len(self.issues) == self.phase_start and not any(kind == "pool" for kind, _ in self.failed)
        it_kw = sum(r.power_kw for r in self.racks.values())
        facility_kw = it_kw * site.pue
        if facility_kw > phase.facility_budget_mw * 1000:
            self.issue(
                ("phase", "facility_budget_mw"),
                f"facility load {_mw(facility_kw)} (IT {_mw(it_kw)} x PUE {site.pue:g}) is above the phase budget of {phase.facility_budget_mw:g} MW",
                f"raise facility_budget_mw to at least {ceil(facility_kw) / 1000:g}, or commission fewer racks",
            )
        if facility_kw > site.renewable_supply_mw * 1000:
            self.issue(
                ("phase",),
                f"facility load {_mw(facility_kw)} is above the renewable supply of {site.renewable_supply_mw:g} MW",
                "commission fewer racks; the supply is the campus cap",
            )
        check_hall_loads(self)
        check_node_limits(self)
        check_quotas(self, clean)

    def snapshot(self, phase: Phase, index: int) -> Plan:
        site = self.campus.site
        self.phase_name = phase.name
        halls = tuple(self.hall_loads)
        it_kw = sum(h.it_load_kw for h in halls)
        fabrics, switches = self._fabrics()
        pools = tuple(pool_snapshot(self, p) for p in self.pools.values())
        egress = tuple(
            Egress(j.name, d.name, str(d.cidr), tuple(d.ports)) for j in site.jurisdictions for d in j.egress
        )
        tenants = tuple(tenant_snapshot(self, t, pools, egress) for t in self.tenants.values())
        grants = grant_snapshot(self, pools)
        clusters = tuple(cluster_snapshot(self, name, c, pools, tenants, grants) for name, c in self.clusters.items())
        racks = tuple(self.racks.values())
        return Plan(
            environment=self.environment,
            site=site.name,
            phase=phase.name,
            phase_index=index,
            power=Power(
                site.pue,
                round(it_kw, 3),
                round(it_kw * site.pue, 3),
                phase.facility_budget_mw * 1000,
                site.renewable_supply_mw * 1000,
            ),
            halls=halls,
            scalable_units=tuple(self.units.values()),
            racks=racks,
            nodes=tuple(self.nodes.values()),
            pools=pools,
            fabrics=fabrics,
            switches=switches,
            clusters=clusters,
            tenants=tenants,
            addresses=address_usage(self, racks, fabrics, switches, clusters),
            retired=tuple(self.retired),
            upgrades=tuple(self.upgrades),
            etcd_backup=etcd_backup(self, clusters, tenants),
            grants=grants,
            egress=egress,
            admin_networks=tuple(str(n) for n in site.admin_zone.networks),
            dns_resolvers=tuple(str(n) for n in site.admin_zone.dns_resolvers),
            namespaces=tuple(
                ns for c in clusters for ns in cluster_namespaces(c.name, c.tenants, self.controller.namespace)
            ),
            host_flows=FLOWS,
            rack_ports=rack_ports(self, racks),
            switch_ports=self._switch_ports(fabrics, switches),
            releases=releases(self, clusters),
            waves=waves(self, pools),
            hardware=self._hardware(),
            zone=self.zone,
            dns_servers=tuple(str(a) for a in site.provisioning.dns_servers),
            bmcs=tuple(
                BmcAccess(
                    p.name, p.bmc.scheme, p.bmc.port, p.bmc.system, p.bmc.verify_tls, tuple(sorted(p.bmc.bios.items()))
                )
                for p in self.campus.catalog.rack_profiles
                if p.nodes and any(r.profile == p.name for r in racks)
            ),
            image=(site.provisioning.image.kind, site.provisioning.image.url, site.provisioning.image.checksum)
            if site.provisioning.image
            else None,
            mtus=tuple((net, getattr(site.addressing, net).mtu or mtu) for net, mtu in DEFAULT_MTU.items()),
            gitops=GitOpsSource(
                self.controller.kind.value,
                self.controller.namespace,
                self.controller.field_manager,
                site.platform.gitops.repository,
                site.platform.gitops.branch,
                tuple(str(n) for n in site.platform.gitops.sources),
                ports.SSH if site.platform.gitops.repository.startswith("ssh://") else ports.HTTPS,
            ),
        )

    def _hardware(self) -> tuple[NodeHardware, ...]:
        """The hardware of this phase's nodes whose manifest fits them (`check_hardware` reports the rest)."""
        out: list[NodeHardware] = []
        for m in self.campus.hardware:
            rack = self.racks.get(m.rack)
            if rack is None:
                continue
            profile = self.racks_by_name[rack.profile]
            for s in m.slots:
                node = f"{rack.name}-n{s.slot:02d}"
                if node in self.nodes and not self._slot_problems(s, profile):
                    out.append(NodeHardware(node, s.serial, s.bmc_mac, s.inband_mac, s.storage_mac, tuple(s.rail_macs)))
        return tuple(sorted(out, key=lambda h: h.node))

    @staticmethod
    def _slot_problems(s: SlotHardware, profile: RackProfile) -> list[tuple[str, str, str]]:
        """(key, what is wrong, fix) for a manifest row the rack profile contradicts."""
        out: list[tuple[str, str, str]] = []
        if s.slot > profile.nodes:
            out.append(
                (
                    "slot",
                    f"has no slot {s.slot}: rack profile `{profile.name}` has {profile.nodes} slot(s)",
                    f"number slots 1 to {profile.nodes} as the Plan does (node n01 is slot 1), or check the rack's profile",
                )
            )
            return out
        rails = profile.compute_nics_per_node
        if len(s.rail_macs) != rails:
            out.append(
                (
                    "rail_macs",
                    f"slot {s.slot} lists {len(s.rail_macs)} rail NIC MAC(s); rack profile `{profile.name}` has {rails} compute rail(s)",
                    f"list {rails} MAC(s) in rail order"
                    if rails
                    else "remove rail_macs: this profile has no compute NICs",
                )
            )
        if profile.storage_nics_per_node and s.storage_mac is None:
            out.append(
                (
                    "storage_mac",
                    f"slot {s.slot} has no storage NIC MAC; rack profile `{profile.name}` has a storage NIC",
                    "add storage_mac from the integrator's manifest",
                )
            )
        if not profile.storage_nics_per_node and s.storage_mac is not None:
            out.append(
                (
                    "storage_mac",
                    f"slot {s.slot} has a storage NIC MAC, but rack profile `{profile.name}` has no storage NIC",
                    "remove storage_mac, or check the rack's profile",
                )
            )
        return out

    def check_hardware(self, complete: bool) -> None:
        """Each manifest against the rack it describes: the rack exists (by the last phase planned), the slots fit.

        Only once the phases plan without problems: a rack a broken phase did not lay out is not a manifest's fault.
        """
        if self.issues:
            return
        for m in self.campus.hardware:
            doc = f"hardware/{m.rack}.yaml"
            rack = self.racks.get(m.rack)
            if rack is None:
                if m.rack in self.ever_racks:
                    continue  # a decommissioned rack's manifest stays: it describes the rack in the phases before
                if complete:
                    close = sorted(r for r in self.racks if r.split("-")[0] == m.rack.split("-")[0])[:4]
                    self.issues.append(
                        ConfigIssue(
                            doc,
                            ("hardware", "rack"),
                            f"no rack `{m.rack}` in any phase",
                            "name the file and hardware.rack after a rack of `kasbah plan --json`"
                            + (f" (in that hall: {', '.join(close)}, ...)" if close else ""),
                        )
                    )
                continue
            if not rack.nodes:
                self.issues.append(
                    ConfigIssue(
                        doc,
                        ("hardware", "rack"),
                        f"rack `{m.rack}` holds no nodes (a {rack.kind} rack)",
                        "manifests describe racks of servers; remove this file",
                    )
                )
                continue
            profile = self.racks_by_name[rack.profile]
            for i, s in enumerate(m.slots):
                for key, what, fix in self._slot_problems(s, profile):
                    self.issues.append(ConfigIssue(doc, ("hardware", "slots", i, key), f"rack {m.rack} {what}", fix))

    def _switch_ports(self, fabrics: tuple[Fabric, ...], switches: tuple[Switch, ...]) -> tuple[SwitchPorts, ...]:
        used = {s.model for s in switches} | {f.switch_model for f in fabrics}
        return tuple(
            SwitchPorts(m.name, m.ports, m.port_gbps, m.max_breakout, m.uplink_ports)
            for m in self.campus.catalog.switch_models
            if m.name in used
        )

    # ------------------------------------------------------------------ fabrics
    def _fabrics(self) -> tuple[tuple[Fabric, ...], tuple[Switch, ...]]:
        fabrics: list[Fabric] = []
        switches: list[Switch] = []
        for name, p in self.pools.items():
            if p.fabric_index is None or p.switch is None or not p.units:
                continue
            units = tuple(p.units)
            key: tuple[object, ...] = ("compute", name, tuple(self.units[u].racks for u in units))
            got = self.fabric_cache.get(key)
            if got is None:
                got = self._compute_fabric(p, units)
                self.fabric_cache[key] = got
            fabrics.append(got[0])
            switches.extend(got[1])
        for hall in self.halls:
            racks = tuple(r.name for r in self.racks.values() if r.hall == hall)
            hall_key = ("hall", hall, racks)
            cached = self.hall_cache.get(hall_key)
            if cached is None:
                try:
                    cached = self._hall_fabrics(hall)
                except fab.FabricError as exc:
                    self.fabric_issue(("phase",), f"hall `{hall}`", exc)
                    cached = []
                self.hall_cache[hall_key] = cached
            for f, sw in cached:
                fabrics.append(f)
                switches.extend(sw)
        return tuple(fabrics), tuple(switches)

    def _power(self, model: SwitchModel, count: int) -> float | None:
        return None if model.power_w is None else model.power_w * count / 1000

    def _switches(self, fabric: str, index: int, tier: str, model: str, named: list[tuple[str, int]]) -> list[Switch]:
        """Switches with loopbacks at fixed indexes (from never-reused unit and rack indexes)."""
        room = self.ipam.loopback_room(tier)
        top = max((i for _, i in named), default=-1)
        if top >= room:
            raise fab.FabricError(
                f"fabric {fabric} needs {tier} loopback #{top + 1} but a fabric has {room} for {tier} switches; fix: raise site.addressing.reserve.switches_per_fabric (before phase 1)"
            )
        return [Switch(n, fabric, tier, model, self.ipam.loopback(index, tier, i)) for n, i in named]

    def _tree_switches(
        self,
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
            self._switches(fabric, index, "leaf", leaf_model, leaves)
            + self._switches(fabric, index, "spine", upper_model, spines)
            + self._switches(fabric, index, "core", upper_model, cores)
        )  # fmt: skip

    def _compute_fabric(self, p: PoolState, units: tuple[str, ...]) -> tuple[Fabric, tuple[Switch, ...]]:
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
                    (self.units[u].pool_index * rails + rail) * lpr + i,
                )
                for u in units
                for rail in range(rails)
                for i in range(lpr)
            ]
            sw = self._tree_switches(fname, p.fabric_index, leaves, p.switch.name, p.switch.name, tree, p.spec.name, 3)
        except fab.FabricError as exc:
            self.fabric_issue(self.pool_paths.get(p.spec.name, ("phase",)), f"pool `{p.spec.name}`", exc)
            layer, tree, sw = fab.LeafLayer(0, 0, 0), fab.TreeSize(0, 0, 0, 0, 0, 0), []
        nodes = sum(self.racks[r].nodes for u in units for r in self.units[u].racks)
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
            power_kw=self._power(p.switch, len(sw)),
            loopback_block=self.ipam.loopback_block(p.fabric_index),
        )
        return f, tuple(sw)

    def _hall_fabrics(self, hall: str) -> list[tuple[Fabric, tuple[Switch, ...]]]:
        """Storage/in-band and out-of-band fabrics of one hall."""
        site = self.campus.site
        storage_idx, oob_idx = self.hall_fabrics[hall]
        racks = [r for r in self.racks.values() if r.hall == hall and r.nodes]
        out = []
        # storage and in-band: rack-aligned leaves per scalable unit, one non-blocking tree per hall
        sm = self.switch_models[site.fabrics.storage_switch]
        units: dict[str, list[Rack]] = {}
        for r in racks:
            assert r.scalable_unit is not None
            units.setdefault(r.scalable_unit, []).append(r)
        leaves: list[tuple[str, int]] = []
        uplinks = 0
        ports = 0
        radix = 0
        for unit, members in units.items():
            prof = self.racks_by_name[members[0].profile]
            if not prof.storage_nics_per_node:
                continue
            radix = sm.radix(prof.storage_nic_gbps)
            per_rack = prof.nodes * prof.storage_nics_per_node
            ports += per_rack * len(members)
            layer = fab.leaf_layer(len(members), per_rack, radix)
            uplinks = max(uplinks, layer.uplinks)
            base = self.units[unit].index * self.reserve.racks_per_scalable_unit
            leaves += [(f"{unit}-storage-leaf{i + 1}", base + i) for i in range(layer.leaves_per_rail)]
        tree = fab.fat_tree(len(leaves), uplinks, radix or sm.ports) if leaves else fab.TreeSize(0, 0, 0, 0, 0, 0)
        fname = f"{hall}-storage"
        sw = self._tree_switches(fname, storage_idx, leaves, sm.name, sm.name, tree, f"{hall}-storage", 2)
        out.append(
            (
                self._hall_fabric(
                    fname,
                    "storage",
                    hall,
                    sm.name,
                    radix or sm.ports,
                    tree,
                    ports,
                    self._power(sm, len(sw)),
                    storage_idx,
                ),
                tuple(sw),
            )
        )
        # out of band: one or more 1G management switches a rack, two aggregation switches or more
        om = self.switch_models[site.fabrics.oob_switch]
        oname = f"{hall}-oob"
        up = om.uplink_ports or om.ports // 2
        down = om.ports if om.uplink_ports else om.ports - up
        # a fixed stride from the site's reservation, so catalog changes never move a loopback
        stride = ceil(site.addressing.oob.per_rack / down)
        named: list[tuple[str, int]] = []
        oob_ports = 0
        for r in racks:
            prof = self.racks_by_name[r.profile]
            oob_ports += prof.oob_ports
            named += [(f"{r.name}-oob{i + 1}", r.index * stride + i) for i in range(ceil(prof.oob_ports / down))]
        agg_radix = sm.radix(fab.OOB_UPLINK_GBPS)
        otree = fab.fat_tree(len(named), up, agg_radix, min_spines=2) if named else fab.TreeSize(0, 0, 0, 0, 0, 0)
        osw = self._tree_switches(oname, oob_idx, named, om.name, sm.name, otree, f"{hall}-oob", 2, spine_word="agg")
        power = (
            None
            if om.power_w is None or sm.power_w is None
            else (om.power_w * len(named) + sm.power_w * (otree.spines + otree.cores)) / 1000
        )
        out.append(
            (self._hall_fabric(oname, "oob", hall, om.name, om.ports, otree, oob_ports, power, oob_idx), tuple(osw))
        )
        return out

    def _hall_fabric(
        self,
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
            power_kw=power, loopback_block=self.ipam.loopback_block(index),
        )  # fmt: skip


def _mw(kw: float) -> str:
    return f"{kw / 1000:,.2f} MW" if kw >= 1000 else f"{kw:,.1f} kW"


def plan_campus(
    campus: Campus, environment: str = "", upto: str | None = None, progress: Progress | None = None
) -> list[Plan]:
    """Plan every phase in build order (or up to `upto`); raise PlanningError listing every problem."""
    if upto is not None:
        campus.phase_index(upto)  # KeyError naming the phases if unknown
    planner = _Planner(campus, environment)
    plans: list[Plan] = []
    for i, phase in enumerate(campus.phases):
        if progress:
            progress(phase.name)
        planner.apply(phase)
        plans.append(planner.snapshot(phase, i))
        if phase.name == upto:
            break
    planner.check_hardware(complete=len(plans) == len(campus.phases))
    if planner.issues:
        raise PlanningError(planner.issues)
    return plans


def plan_environment(env: Environment, upto: str | None = None, progress: Progress | None = None) -> list[Plan]:
    """plan_campus for a loaded environment: refusals come back located in its files (ConfigError).

    An unknown `upto` raises KeyError naming the phases.
    """
    try:
        return plan_campus(env.campus, env.name, upto=upto, progress=progress)
    except PlanningError as exc:
        raise ConfigError(env.locate(i) for i in exc.issues) from None


def plan_phase(campus: Campus, phase: str, environment: str = "") -> Plan:
    return plan_campus(campus, environment, upto=phase)[-1]
