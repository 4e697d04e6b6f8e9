"""The phase planner: applies phases in build order and lays each one out as a Plan. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from math import ceil
from typing import TYPE_CHECKING

from kasbah.config.issues import SITE_DOC, ConfigError, ConfigIssue, Loc, PlanningError
from kasbah.config.models import (
    Campus,
    ClusterSpec,
    ClusterUpgrade,
    DecommissionKind,
    HallSpec,
    NvlinkDomain,
    Phase,
    Placement,
    PoolPurpose,
    PoolSpec,
    RackKind,
    RackProfile,
    SlotHardware,
    SwitchModel,
    TenantKind,
    TenantSpec,
)
from kasbah.planning import fabric as fab
from kasbah.planning import platform, ports
from kasbah.planning.host_flows import FLOWS
from kasbah.planning.hostnet import gateway
from kasbah.planning.labels import multi_node_nvlink_domains
from kasbah.planning.model import (
    AddressUsage,
    BmcAccess,
    Cluster,
    Egress,
    EtcdBackup,
    Fabric,
    GitOpsSource,
    Hall,
    HelmRelease,
    Node,
    NodeHardware,
    Plan,
    Pool,
    Power,
    QuotaGrant,
    Rack,
    RackPorts,
    Retired,
    ScalableUnit,
    Switch,
    SwitchPorts,
    Tenant,
    Upgrade,
    Wave,
)
from kasbah.planning.state import ClusterState, HallState, PlanState, PoolState, TenantState, with_article
from kasbah.planning.tenancy import cluster_namespaces

if TYPE_CHECKING:
    from kasbah.config.loader import Environment

Progress = Callable[[str], None]

_ROLE = {
    PoolPurpose.TRAINING: "worker",
    PoolPurpose.INFERENCE: "worker",
    PoolPurpose.HPC: "worker",
    PoolPurpose.STORAGE: "storage",
    PoolPurpose.MANAGEMENT: "management",
}
# Interface MTUs where the site sets none: storage and the compute rails carry jumbo frames
DEFAULT_MTU = {"oob": 1500, "inband": 1500, "storage": 9000, "compute": 9000}
_RETIRE_ORDER = [
    DecommissionKind.RACK,
    DecommissionKind.POOL,
    DecommissionKind.CLUSTER,
    DecommissionKind.TENANT,
    DecommissionKind.HALL,
]


class _Planner(PlanState):
    """The phase planner over one PlanState (moving out to modules per noun)."""

    def __init__(self, campus: Campus, environment: str) -> None:
        super().__init__(campus, environment)
        self._check_charts()

    def _check_charts(self) -> None:
        charts: Loc = ("site", "platform", "charts")
        other = {c.release for c in platform.CONTROLLERS.values()} - {self.controller.release}
        for name in self.campus.site.platform.charts:
            if name not in platform.RELEASES:
                self.issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        (*charts, name),
                        f"no platform release `{name}`",
                        f"pin charts for the releases kasbah installs: {', '.join(platform.RELEASES)}",
                    )
                )
            elif name in other:
                self.issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        (*charts, name),
                        f"`{name}` installs another GitOps controller than gitops.controller "
                        f"({self.controller.kind.value}): no cluster runs it",
                        "remove it, or set gitops.controller to the controller it installs",
                    )
                )

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
        self._retire(phase)
        for i, hall in enumerate(phase.halls):
            self._commission_hall(hall, (*p, "halls", i), phase.name)
        for i, tenant in enumerate(phase.tenants):
            self._commission_tenant(tenant, (*p, "tenants", i), phase.name)
        new_clusters = []
        for i, cluster in enumerate(phase.clusters):
            if self.claim("cluster", cluster.name, (*p, "clusters", i, "name"), phase.name):
                if self.next_cluster >= self.ipam.clusters_reserved():
                    self.issue(
                        (*p, "clusters", i),
                        f"no pod or service range left: the site reserves {self.ipam.clusters_reserved()} cluster ranges",
                        "lower site.addressing.pods.cluster_prefix / services.cluster_prefix, or give larger supernets (before phase 1)",
                    )
                if cluster.node_limit > self.ipam.nodes_per_cluster_range():
                    self.issue(
                        (*p, "clusters", i, "node_limit"),
                        f"node_limit {cluster.node_limit} is more than a cluster's pod range holds ({self.ipam.nodes_per_cluster_range()} node ranges of /{self.campus.site.addressing.pods.node_prefix})",
                        f"lower node_limit to {self.ipam.nodes_per_cluster_range()} or widen site.addressing.pods.cluster_prefix",
                    )
                pod_ips = 1 << (
                    self.campus.site.addressing.pods.supernet.max_prefixlen
                    - self.campus.site.addressing.pods.node_prefix
                )
                if cluster.max_pods_per_node > pod_ips - 2:
                    self.issue(
                        (*p, "clusters", i, "max_pods_per_node"),
                        f"{cluster.max_pods_per_node} pods a node do not fit a node's /{self.campus.site.addressing.pods.node_prefix} pod range ({pod_ips - 2} usable addresses)",
                        f"lower max_pods_per_node to {pod_ips - 2}, or lower site.addressing.pods.node_prefix",
                    )
                self.clusters[cluster.name] = ClusterState(
                    cluster, self.next_cluster, phase.name, version=cluster.kubernetes_version
                )
                self.next_cluster += 1
                new_clusters.append((i, cluster))
        for i, pool in enumerate(phase.pools):
            self._commission_pool(pool, (*p, "pools", i), phase.name)
        for i, exp in enumerate(phase.expansions.pools):
            path = (*p, "expansions", "pools", i)
            state = self.pools.get(exp.pool)
            if state is None and ("pool", exp.pool) in self.failed:
                continue
            gone = self.gone("pool", exp.pool)
            if state is None and gone:
                self.issue(
                    (*path, "pool"), f"{gone}; a retired pool cannot grow", "commission a new pool with a new name"
                )
                continue
            if state is None:
                self.issue(
                    (*path, "pool"),
                    f"no pool `{exp.pool}` to expand",
                    f"expand one of: {', '.join(self.pools) or '(none yet)'}; or commission it under pools",
                )
                continue
            self.pool_paths.setdefault(exp.pool, path)
            self._place(state, exp.placements, path, phase.name)
        for i, cluster in new_clusters:
            self._place_control_plane(cluster, (*p, "clusters", i, "control_plane"))
        seen: set[str] = set()
        for i, up in enumerate(phase.upgrades):
            self._upgrade(up, (*p, "upgrades", i), phase.name, seen)
        for i, change in enumerate(phase.expansions.tenants):
            path = (*p, "expansions", "tenants", i)
            t = self.tenants.get(change.tenant)
            if t is None:
                self.issue(
                    (*path, "tenant"),
                    f"no tenant `{change.tenant}`",
                    f"use one of: {', '.join(self.tenants) or '(none yet)'}",
                )
            elif change.gpu_quota < t.gpu_quota:
                self.issue(
                    (*path, "gpu_quota"),
                    f"lowers `{change.tenant}`'s GPU quota from {t.gpu_quota} to {change.gpu_quota}; phases only grow",
                    "keep the quota, or decommission the tenant and commission a new one",
                )
            else:
                t.gpu_quota = change.gpu_quota
        self._check_phase(phase)

    # ------------------------------------------------------------------ commissioning
    def _commission_hall(self, spec: HallSpec, path: Loc, phase: str) -> None:
        if not self.claim("hall", spec.name, (*path, "name"), phase):
            return
        profile = self.halls_by_name.get(spec.profile)
        if profile is None:
            self.issue(
                (*path, "profile"),
                f"unknown hall profile `{spec.profile}`",
                f"use one of: {', '.join(self.halls_by_name)}",
            )
            self.failed.add(("hall", spec.name))
            return
        index = self.next_hall
        self.next_hall += 1
        if index >= self.reserve.halls:
            self.issue(
                path,
                f"this is hall {index + 1} but site.addressing.reserve.halls is {self.reserve.halls}",
                "raise site.addressing.reserve.halls (before phase 1 is built; hall indexes are never reused)",
            )
            self.failed.add(("hall", spec.name))
            return
        first = self._new_fabrics(2, path)
        if first is None:
            self.failed.add(("hall", spec.name))
            return
        state = HallState(spec, profile, index, phase)
        self.halls[spec.name] = state
        self.hall_fabrics[spec.name] = (first, first + 1)
        nr = profile.network_racks
        if nr is not None and nr.count:
            net = self.racks_by_name[nr.profile]
            self._fits_hall(state, net, path, key="profile")
            for _ in range(nr.count):
                self._add_rack(state, net, None, None, -1, -1, phase)

    def _new_fabrics(self, count: int, path: Loc) -> int | None:
        """Reserve loopback blocks for new fabrics; indexes are never reused."""
        if self.next_fabric + count > self.reserve.fabrics:
            self.issue(
                path,
                f"no loopback block left for its fabrics: site.addressing.reserve.fabrics is {self.reserve.fabrics} and {self.next_fabric} are taken",
                "raise site.addressing.reserve.fabrics (before phase 1 is built)",
            )
            return None
        first = self.next_fabric
        self.next_fabric += count
        return first

    def _commission_tenant(self, spec: TenantSpec, path: Loc, phase: str) -> None:
        if not self.claim("tenant", spec.name, (*path, "name"), phase):
            return
        for j, jur in enumerate(spec.jurisdictions):
            if jur not in self.jurisdictions:
                self.issue(
                    (*path, "jurisdictions", j),
                    f"unknown jurisdiction `{jur}`",
                    f"use one of: {', '.join(sorted(self.jurisdictions))}, or declare it in site.jurisdictions",
                )
        if spec.reseller is not None:
            reseller = self.tenants.get(spec.reseller)
            if reseller is None:
                self.issue(
                    (*path, "reseller"),
                    f"unknown reseller `{spec.reseller}`",
                    "commission the reseller tenant first (in this phase, above, or earlier)",
                )
            elif reseller.spec.kind is not TenantKind.RESELLER:
                self.issue(
                    (*path, "reseller"),
                    f"`{spec.reseller}` is {with_article(reseller.spec.kind.value)} tenant, not a reseller",
                    "name a tenant of kind reseller",
                )
            else:
                outside = sorted(set(spec.jurisdictions) - set(reseller.spec.jurisdictions))
                if outside:
                    self.issue(
                        (*path, "jurisdictions"),
                        f"reseller `{spec.reseller}` does not operate in {', '.join(outside)}",
                        f"limit the tenant to {', '.join(reseller.spec.jurisdictions)} or extend the reseller",
                    )
        self.tenants[spec.name] = TenantState(spec, spec.gpu_quota, phase)

    def _commission_pool(self, spec: PoolSpec, path: Loc, phase: str) -> None:
        if not self.claim("pool", spec.name, (*path, "name"), phase):
            return
        self.pool_paths[spec.name] = path
        profile = self.racks_by_name.get(spec.rack_profile)
        if profile is None:
            self.issue(
                (*path, "rack_profile"),
                f"unknown rack profile `{spec.rack_profile}`",
                f"use one of: {', '.join(self.racks_by_name)}",
            )
            self.failed.add(("pool", spec.name))
            return
        if profile.kind is RackKind.NETWORK:
            self.issue(
                (*path, "rack_profile"),
                f"`{profile.name}` is a network rack; pools hold nodes",
                "network racks are placed by the hall profile's network_racks",
            )
            self.failed.add(("pool", spec.name))
            return
        purpose = spec.purpose
        if purpose in (PoolPurpose.TRAINING, PoolPurpose.INFERENCE) and profile.kind is not RackKind.GPU:
            self.issue(
                (*path, "rack_profile"),
                f"{with_article(purpose.value)} pool needs GPU racks; `{profile.name}` is {with_article(profile.kind.value)} rack",
                "choose a GPU rack profile or change the purpose",
            )
        if purpose is PoolPurpose.MANAGEMENT and profile.kind is not RackKind.CPU:
            self.issue(
                (*path, "rack_profile"),
                f"a management pool needs CPU racks; `{profile.name}` is {with_article(profile.kind.value)} rack",
                "choose a cpu rack profile; GPUs in a management pool would serve no cluster",
            )
        if purpose is PoolPurpose.STORAGE and profile.kind is not RackKind.STORAGE:
            self.issue(
                (*path, "rack_profile"),
                f"a storage pool needs storage racks; `{profile.name}` is {with_article(profile.kind.value)} rack",
                "choose a storage rack profile",
            )
        if spec.tenant is not None and spec.tenant not in self.tenants and ("tenant", spec.tenant) not in self.failed:
            self.issue(
                (*path, "tenant"),
                f"unknown tenant `{spec.tenant}`",
                f"use one of: {', '.join(self.tenants) or '(none yet)'}; tenants must be commissioned in this phase or earlier",
            )
        cluster = self._choose_cluster(spec, profile, path)
        state = PoolState(spec, profile, self.next_pool, phase, cluster)
        self.next_pool += 1
        if profile.compute_nics_per_node:
            sw_name = spec.compute_switch or self.campus.site.fabrics.compute_switch.get(profile.compute_nic_gbps)
            state.switch = self.switch_models.get(sw_name) if sw_name else None
            if state.switch is None:
                self.issue(
                    (*path, "compute_switch"),
                    f"unknown switch model `{sw_name}`",
                    f"use one of: {', '.join(self.switch_models)}",
                )
            state.fabric_index = self._new_fabrics(1, (*path, "name"))
        self.pools[spec.name] = state
        self._place(state, spec.placements, path, phase)

    def _choose_cluster(self, spec: PoolSpec, profile: RackProfile, path: Loc) -> str | None:
        if not spec.purpose.kubernetes_workers:
            if spec.cluster is not None:
                self.issue(
                    (*path, "cluster"),
                    f"{with_article(spec.purpose.value)} pool does not join a cluster as workers",
                    "remove `cluster`; management pools host control planes through clusters[].control_plane",
                )
            return None
        nodes = profile.nodes * sum(pl.racks for pl in spec.placements)
        if spec.cluster is not None:
            if ("cluster", spec.cluster) in self.failed:
                return None
            if spec.cluster not in self.clusters and (gone := self.gone("cluster", spec.cluster)):
                self.issue((*path, "cluster"), gone, f"use a live cluster: {', '.join(self.clusters) or '(none)'}")
                return None
            if spec.cluster not in self.clusters:
                self.issue(
                    (*path, "cluster"),
                    f"unknown cluster `{spec.cluster}`",
                    f"use one of: {', '.join(self.clusters) or '(none yet)'}; clusters must be commissioned in this phase or earlier",
                )
                return None
            return spec.cluster
        for name, c in self.clusters.items():
            if self.workers(name) + c.spec.control_plane.replicas + nodes <= c.spec.node_limit:
                return name
        self.issue(
            path,
            f"no cluster has room for this pool's {nodes} nodes",
            "commission a cluster for it, or name one under `cluster` and raise its node_limit",
        )
        return None

    def _place(self, state: PoolState, placements: list[Placement], path: Loc, phase: str) -> None:
        before = len(self.issues)
        self._place_units(state, placements, path, phase)
        if len(self.issues) > before:
            self.failed.add(("pool", state.spec.name))

    def _place_units(self, state: PoolState, placements: list[Placement], path: Loc, phase: str) -> None:
        profile = state.profile
        su = profile.scalable_unit_racks
        for j, pl in enumerate(placements):
            ppath = (*path, "placements", j)
            hall = self.halls.get(pl.hall)
            if hall is None and ("hall", pl.hall) in self.failed:
                self.failed.add(("pool", state.spec.name))  # incomplete: no knock-on errors
                continue
            if hall is None and (gone := self.gone("hall", pl.hall)):
                self.issue((*ppath, "hall"), gone, f"use a live hall: {', '.join(self.halls) or '(none)'}")
                continue
            if hall is None:
                self.issue(
                    (*ppath, "hall"),
                    f"unknown hall `{pl.hall}`",
                    f"use one of: {', '.join(self.halls) or '(none yet)'}; halls must be commissioned in this phase or earlier",
                )
                continue
            if pl.racks % su:
                lower, upper = pl.racks // su * su, (pl.racks // su + 1) * su
                self.issue(
                    (*ppath, "racks"),
                    f"{pl.racks} racks is not a whole number of {su}-rack scalable units of `{profile.name}`",
                    f"use {lower or upper} or {upper}" if lower else f"use {upper}",
                )
                continue
            if not self._fits_hall(hall, profile, ppath):
                continue
            free = hall.profile.positions - hall.next_position
            if pl.racks > free:
                self.issue(
                    (*ppath, "racks"),
                    f"hall `{hall.spec.name}` has {free} free positions; {pl.racks} racks do not fit",
                    "place the rest in another hall (another placement), or commission a new hall",
                )
                continue
            units = pl.racks // su
            if hall.next_unit + units > self.reserve.scalable_units_per_hall:
                self.issue(
                    (*ppath, "racks"),
                    f"hall `{hall.spec.name}` would hold {hall.next_unit + units} scalable units; site.addressing.reserve.scalable_units_per_hall is {self.reserve.scalable_units_per_hall}",
                    "place the units in another hall, or raise the reservation (before phase 1)",
                )
                continue
            if state.spec.purpose.kubernetes_workers and state.cluster is not None:
                c = self.clusters[state.cluster]
                total = self.workers(state.cluster) + c.spec.control_plane.replicas + pl.racks * profile.nodes
                if total > c.spec.node_limit:
                    self.issue(
                        (*ppath, "racks"),
                        f"cluster `{state.cluster}` would reach {total} nodes, above its node_limit of {c.spec.node_limit}",
                        "put these racks in a new pool on another cluster, or raise node_limit (upstream tests up to 5,000)",
                    )
                    continue
            self.hall_paths[hall.spec.name] = ppath
            for _ in range(units):
                self._add_unit(state, hall, phase)

    def _fits_hall(self, hall: HallState, profile: RackProfile, path: Loc, key: str = "hall") -> bool:
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
            self.issue((*path, key), message, fix)
        return not problems

    def _add_unit(self, state: PoolState, hall: HallState, phase: str) -> None:
        unit_index = hall.next_unit
        hall.next_unit += 1
        name = f"{hall.spec.name}-su{unit_index + 1:02d}"
        racks = tuple(
            self._add_rack(hall, state.profile, state, name, unit_index, r, phase)
            for r in range(state.profile.scalable_unit_racks)
        )
        self.units[name] = ScalableUnit(
            name,
            hall.spec.name,
            unit_index,
            state.spec.name,
            state.next_unit,
            state.profile.name,
            racks,
            phase,
        )
        state.next_unit += 1
        state.units.append(name)

    def _add_rack(
        self,
        hall: HallState,
        profile: RackProfile,
        pool: PoolState | None,
        unit: str | None,
        unit_index: int,
        rack_index: int,
        phase: str,
    ) -> str:
        pos = hall.next_position
        hall.next_position += 1
        per_row = hall.profile.positions_per_row
        row, col = pos // per_row + 1, pos % per_row + 1
        hname = hall.spec.name
        name = f"{hname}-r{row:02d}p{col:02d}"
        self.ever_racks.add(name)
        ip, h = self.ipam, hall.index
        has_nodes = profile.nodes > 0 and unit is not None
        rails = profile.compute_nics_per_node
        self.racks[name] = Rack(
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
                self.nodes[node] = Node(
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
                    nvlink_domain=name
                    if domain is NvlinkDomain.RACK
                    else node
                    if domain is NvlinkDomain.NODE
                    else None,
                    oob_ip=ip.host(ip.oob, h, unit_index, rack_index, slot),
                    inband_ip=ip.host(ip.inband, h, unit_index, rack_index, slot),
                    storage_ip=ip.host(ip.storage, h, unit_index, rack_index, slot),
                    rail_ips=tuple(ip.host(ip.compute, h, unit_index, rack_index, slot, r) for r in range(rails)),
                    phase=phase,
                )
        return name

    def _place_control_plane(self, spec: ClusterSpec, path: Loc) -> None:
        cp = spec.control_plane
        pool = self.pools.get(cp.pool)
        if ("pool", cp.pool) in self.failed:
            return
        if pool is None:
            self.issue(
                (*path, "pool"),
                f"unknown pool `{cp.pool}`",
                f"name a management pool: {', '.join(n for n, p in self.pools.items() if p.spec.purpose is PoolPurpose.MANAGEMENT) or '(none yet)'}",
            )
            return
        if pool.spec.purpose is not PoolPurpose.MANAGEMENT:
            self.issue(
                (*path, "pool"),
                f"`{cp.pool}` is {with_article(pool.spec.purpose.value)} pool; control planes run on management pools",
                "name a pool with purpose management",
            )
            return
        if pool.spec.rollout.racks > 1:
            # one replica a rack: two racks at once would take two etcd members, quorum of 3 gone
            self.issue(
                (*self.pool_paths.get(cp.pool, (*path, "pool")), "rollout", "racks"),
                f"pool `{cp.pool}` hosts the control plane of cluster {spec.name} and rolls "
                f"{pool.spec.rollout.racks} racks at once: that can take several etcd members down together",
                "a management pool that hosts a control plane rolls one rack at a time: remove rollout.racks or set 1",
            )
        chosen: list[str] = []
        # one replica a rack, so a rack (or its A/B feed pair) failing costs at most one etcd member
        for unit in pool.units:
            for rack in self.units[unit].racks:
                for slot in range(1, self.racks[rack].nodes + 1):
                    node = self.nodes[f"{rack}-n{slot:02d}"]
                    if node.cluster is None:
                        chosen.append(node.name)
                        break
                if len(chosen) == cp.replicas:
                    break
            if len(chosen) == cp.replicas:
                break
        if len(chosen) < cp.replicas:
            self.issue(
                (*path, "replicas"),
                f"management pool `{cp.pool}` has a free node in {len(chosen)} distinct rack(s); {cp.replicas} control-plane replicas need {cp.replicas} racks, one replica each",
                "grow the management pool (expansions) or use fewer replicas",
            )
            return
        for name in chosen:
            self.nodes[name] = replace(self.nodes[name], role="control-plane", cluster=spec.name)
        self.clusters[spec.name].control_plane = chosen
        self.clusters[spec.name].vip = self._api_vip(spec, chosen, (*path, "api_vip"))

    def _api_vip(self, spec: ClusterSpec, chosen: list[str], path: Loc) -> str:
        """The API's virtual IP: declared, or the highest free address of the first control-plane rack's in-band block.

        VRRP moves an address between hosts of one segment, so it must be an in-band address of a rack
        holding a replica, and neither a node's, the gateway's, nor another cluster's VIP.
        """
        racks = [self.racks[self.nodes[n].rack] for n in chosen]
        taken = {c.vip for c in self.clusters.values() if c.vip}
        used = {ip_address(n.inband_ip) for n in self.nodes.values() if n.rack in {r.name for r in racks}}
        blocks = [ip_network(r.inband_cidr) for r in racks if r.inband_cidr]
        if not blocks:
            return ""

        def reserved(net: IPv4Network | IPv6Network, addr: IPv4Address | IPv6Address) -> bool:
            ends = (net.network_address, net.broadcast_address)
            return addr in ends or str(addr) == gateway(str(net))

        if spec.control_plane.api_vip is not None:
            vip = spec.control_plane.api_vip
            home = next((b for b in blocks if vip in b), None)
            fix = (
                f"use a free address of {', '.join(map(str, blocks))}, or leave api_vip unset for the Plan to pick one"
            )
            if home is None:
                self.issue(
                    path,
                    f"{vip} is outside the management network of cluster {spec.name}'s control plane "
                    f"(the in-band blocks of its racks: {', '.join(map(str, blocks))}); VRRP can only move it there",
                    fix,
                )
            elif reserved(home, vip):
                self.issue(path, f"{vip} is the network, gateway or broadcast address of {home}", fix)
            elif vip in used:
                owner = next(n.name for n in self.nodes.values() if ip_address(n.inband_ip) == vip)
                self.issue(path, f"{vip} is the in-band address of node {owner}", fix)
            elif str(vip) in taken:
                other = next(c.spec.name for c in self.clusters.values() if c.vip == str(vip))
                self.issue(path, f"{vip} is already the API address of cluster {other}", fix)
            else:
                return str(vip)
            return ""
        block = blocks[0]
        for offset in range(block.num_addresses - 2, 1, -1):
            addr = block[offset]
            if addr not in used and str(addr) not in taken:
                return str(addr)
        self.issue(
            path,
            f"no free in-band address left in {block} (rack {racks[0].name}) for cluster {spec.name}'s API virtual IP",
            "set clusters[].control_plane.api_vip to a free address of another control-plane rack, or raise "
            "site.addressing.inband.per_rack (only before phase 1 is built: it renumbers)",
        )
        return ""

    def _upgrade(self, up: ClusterUpgrade, path: Loc, phase: str, seen: set[str]) -> None:
        """A declared minor upgrade: a cluster of an earlier phase, one minor forward, once a phase."""
        c = self.clusters.get(up.cluster)
        if c is None:
            gone = self.gone("cluster", up.cluster)
            self.issue(
                (*path, "cluster"),
                gone or f"no cluster `{up.cluster}` to upgrade",
                f"upgrade one of: {', '.join(self.clusters) or '(none yet)'}",
            )
            return
        target = (*path, "kubernetes_version")
        if c.phase == phase:
            self.issue(
                (*path, "cluster"),
                f"cluster `{up.cluster}` is commissioned in this phase",
                f'set its kubernetes_version to "{up.kubernetes_version}" where it is commissioned instead',
            )
            return
        if ("cluster", up.cluster) in self.retiring:
            self.issue(
                (*path, "cluster"), f"cluster `{up.cluster}` is decommissioned in this phase", "drop the upgrade"
            )
            return
        if up.cluster in seen:
            self.issue(
                (*path, "cluster"),
                f"cluster `{up.cluster}` is upgraded twice in this phase",
                "one minor a phase: declare the next minor in a later phase",
            )
            return
        seen.add(up.cluster)
        old, new = (tuple(int(x) for x in v.split(".")) for v in (c.version, up.kubernetes_version))
        if new <= old:
            what = "is the version it runs" if new == old else "would be a downgrade, which kubeadm does not do"
            self.issue(
                target,
                f"{up.kubernetes_version} for cluster `{up.cluster}` (at {c.version}) {what}",
                f"declare the next minor, 1.{old[1] + 1}, or drop the upgrade",
            )
            return
        if new[0] != old[0] or new[1] != old[1] + 1:
            self.issue(
                target,
                f"{c.version} to {up.kubernetes_version} skips "
                f"{', '.join(f'1.{m}' for m in range(old[1] + 1, new[1]))} for cluster `{up.cluster}`: kubeadm upgrades "
                "one minor at a time",
                f"declare 1.{old[1] + 1} here and the next minors in later phases",
            )
            return
        self.upgrades.append(Upgrade(up.cluster, c.version, up.kubernetes_version, phase))
        c.version = up.kubernetes_version

    # ------------------------------------------------------------------ decommissioning
    def _retire(self, phase: Phase) -> None:
        order = sorted(enumerate(phase.decommissions), key=lambda item: _RETIRE_ORDER.index(item[1].kind))
        for i, d in order:
            path: Loc = ("phase", "decommissions", i)
            retire = getattr(self, f"_retire_{d.kind.value}")
            if retire(d.name, path):
                self.retired.append(Retired(d.kind.value, d.name, phase.name, d.reason))

    def _retire_rack(self, name: str, path: Loc) -> bool:
        rack = self.racks.get(name)
        if rack is None or rack.pool is None:
            self.issue(
                (*path, "name"),
                f"no live rack `{name}` in a pool",
                "name a rack from `kasbah plan --json` of the previous phase",
            )
            return False
        cp = [
            n for n in self.rack_nodes(rack)
            if self.nodes[n].role == "control-plane" and ("cluster", self.nodes[n].cluster or "") not in self.retiring
        ]  # fmt: skip
        if cp:
            self.issue(
                (*path, "name"),
                f"rack `{name}` hosts control-plane node(s) {', '.join(cp)}",
                "decommission the cluster first; control planes do not move",
            )
            return False
        self._drop_rack(rack)
        return True

    def _drop_rack(self, rack: Rack) -> None:
        pool = self.pools[rack.pool] if rack.pool else None
        for n in self.rack_nodes(rack):
            del self.nodes[n]
        del self.racks[rack.name]
        if rack.scalable_unit is not None:
            unit = self.units[rack.scalable_unit]
            left = tuple(r for r in unit.racks if r != rack.name)
            if left:
                self.units[unit.name] = replace(unit, racks=left)
            else:
                del self.units[unit.name]
                if pool is not None:
                    pool.units.remove(unit.name)

    def _retire_pool(self, name: str, path: Loc) -> bool:
        pool = self.pools.get(name)
        if pool is None:
            self.issue((*path, "name"), f"no live pool `{name}`", f"use one of: {', '.join(self.pools)}")
            return False
        hosts = [
            c
            for c, s in self.clusters.items()
            if s.spec.control_plane.pool == name and ("cluster", c) not in self.retiring
        ]
        if hosts:
            self.issue(
                (*path, "name"),
                f"pool `{name}` hosts the control plane of {', '.join(hosts)}",
                "decommission those clusters in the same phase or earlier",
            )
            return False
        for unit in list(pool.units):
            for rack in self.units[unit].racks:
                self._drop_rack(self.racks[rack])
        del self.pools[name]
        return True

    def _retire_cluster(self, name: str, path: Loc) -> bool:
        cluster = self.clusters.get(name)
        if cluster is None:
            self.issue(
                (*path, "name"),
                f"no live cluster `{name}`",
                f"use one of: {', '.join(self.clusters)}",
            )
            return False
        users = [p for p, s in self.pools.items() if s.cluster == name]
        if users:
            self.issue(
                (*path, "name"),
                f"cluster `{name}` still has pools: {', '.join(users)}",
                "decommission its pools in the same phase or earlier",
            )
            return False
        for n in cluster.control_plane:
            if n in self.nodes:
                self.nodes[n] = replace(self.nodes[n], role="management", cluster=None)
        del self.clusters[name]
        return True

    def _retire_tenant(self, name: str, path: Loc) -> bool:
        if name not in self.tenants:
            self.issue(
                (*path, "name"),
                f"no live tenant `{name}`",
                f"use one of: {', '.join(self.tenants)}",
            )
            return False
        users = [p for p, s in self.pools.items() if s.spec.tenant == name]
        customers = [
            t for t, s in self.tenants.items() if s.spec.reseller == name and ("tenant", t) not in self.retiring
        ]
        if users or customers:
            self.issue(
                (*path, "name"),
                f"tenant `{name}` still has {'pools ' + ', '.join(users) if users else 'customers ' + ', '.join(customers)}",
                "decommission those first, in the same phase or earlier",
            )
            return False
        del self.tenants[name]
        return True

    def _retire_hall(self, name: str, path: Loc) -> bool:
        if name not in self.halls:
            self.issue((*path, "name"), f"no live hall `{name}`", f"use one of: {', '.join(self.halls)}")
            return False
        busy = [r.name for r in self.racks.values() if r.hall == name and r.pool is not None]
        if busy:
            self.issue(
                (*path, "name"),
                f"hall `{name}` still has {len(busy)} racks in pools",
                "decommission its pools or racks in the same phase or earlier",
            )
            return False
        for r in [r for r in self.racks.values() if r.hall == name]:
            del self.racks[r.name]
        del self.halls[name]
        return True

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
        self.hall_loads = self._hall_snapshots()  # the snapshot of this phase reuses them
        for hall in self.hall_loads:
            where: Loc = self.hall_paths.get(hall.name, ("phase",))
            hp = self.halls[hall.name].profile
            if hall.it_load_kw > hall.power_capacity_kw:
                self.issue(
                    where,
                    f"hall `{hall.name}` draws {hall.it_load_kw:.0f} kW IT, above its {hall.power_capacity_kw:.0f} kW usable ({hp.power.units} x {hp.power.unit_mw:g} MW, {hp.power.redundancy.value})",
                    "move racks to another hall or use a larger hall profile",
                )
            if hall.liquid_load_kw > hall.liquid_capacity_kw:
                self.issue(
                    where,
                    f"hall `{hall.name}` needs {hall.liquid_load_kw:.0f} kW of liquid cooling, above its {hall.liquid_capacity_kw:.0f} kW usable",
                    "move liquid-cooled racks to another hall or add coolant distribution units to the hall profile",
                )
            if hall.air_load_kw > hall.air_capacity_kw:
                self.issue(
                    where,
                    f"hall `{hall.name}` needs {hall.air_load_kw:.0f} kW of air cooling, above its {hall.air_capacity_kw:.0f} kW",
                    "move air-cooled racks to another hall or raise air_cooling_mw",
                )
        for name, c in self.clusters.items():
            nodes = self.workers(name) + len(c.control_plane)
            if nodes > c.spec.node_limit:
                self.issue(
                    ("phase",),
                    f"cluster `{name}` has {nodes} nodes, above its node_limit of {c.spec.node_limit}",
                    "move a pool to another cluster",
                )
        # a grant on a pool (or of a tenant) this phase retired goes with it, whether or not the quotas fit
        self.grants = {k: g for k, g in self.grants.items() if k[0] in self.tenants and k[1] in self.pools}
        if not clean:
            return
        shared = sum(
            r.gpus
            for p in self.pools.values()
            if p.spec.tenant is None and p.spec.purpose.kubernetes_workers
            for r in self.pool_racks(p)
        )
        quota = sum(t.gpu_quota for t in self.tenants.values())
        if quota > shared:
            self.issue(
                ("phase", "tenants"),
                f"tenants' nominal GPU quotas add up to {quota}, above the {shared} GPUs of shared pools",
                "lower quotas or commission more shared GPU racks; dedicated pools are outside quotas",
            )
            return
        self._grant_quotas()

    def _grant_quotas(self) -> None:
        """Place each tenant's quota on shared pools: existing grants stay, growth goes first-fit.

        A grant only moves when its pool shrinks or retires; the quota check above guarantees room.
        """
        free: dict[str, int] = {
            name: sum(r.gpus for r in self.pool_racks(p))
            for name, p in self.pools.items()
            if p.spec.tenant is None and p.spec.purpose.kubernetes_workers and p.cluster is not None
        }
        kept: dict[tuple[str, str], int] = {}
        for (tenant, pool), gpus in self.grants.items():
            if tenant in self.tenants and pool in free:
                take = min(gpus, free[pool])
                if take:
                    kept[(tenant, pool)] = take
                    free[pool] -= take
        for name, t in self.tenants.items():
            need = t.gpu_quota - sum(g for (tenant, _), g in kept.items() if tenant == name)
            for pool in free:
                if need <= 0:
                    break
                take = min(need, free[pool])
                if take:
                    kept[(name, pool)] = kept.get((name, pool), 0) + take
                    free[pool] -= take
                    need -= take
        self.grants = kept

    # ------------------------------------------------------------------ snapshots
    def _hall_snapshots(self) -> list[Hall]:
        loads: dict[str, list[float]] = {h: [0.0, 0.0, 0.0, 0.0] for h in self.halls}
        for r in self.racks.values():
            acc = loads[r.hall]
            acc[0] += r.power_kw
            acc[1 if r.cooling != "air" else 2] += r.power_kw
            acc[3] += 1
        out = []
        for name, h in self.halls.items():
            hp = h.profile
            it, liquid, air, count = loads[name]
            out.append(
                Hall(
                    name=name,
                    profile=hp.name,
                    index=h.index,
                    rows=hp.rows,
                    positions=hp.positions,
                    positions_used=h.next_position,
                    racks=int(count),
                    power_capacity_kw=round(hp.power.usable_mw * 1000, 3),
                    it_load_kw=round(it, 3),
                    liquid_capacity_kw=round(hp.liquid_cooling.usable_mw * 1000, 3) if hp.liquid_cooling else 0.0,
                    liquid_load_kw=round(liquid, 3),
                    air_capacity_kw=round(hp.air_cooling_mw * 1000, 3),
                    air_load_kw=round(air, 3),
                    phase=h.phase,
                )
            )
        return out

    def snapshot(self, phase: Phase, index: int) -> Plan:
        site = self.campus.site
        self.phase_name = phase.name
        halls = tuple(self.hall_loads)
        it_kw = sum(h.it_load_kw for h in halls)
        fabrics, switches = self._fabrics()
        pools = tuple(self._pool_snapshot(p) for p in self.pools.values())
        egress = tuple(
            Egress(j.name, d.name, str(d.cidr), tuple(d.ports)) for j in site.jurisdictions for d in j.egress
        )
        tenants = tuple(self._tenant_snapshot(t, pools, egress) for t in self.tenants.values())
        grants = self._grant_snapshot(pools)
        clusters = tuple(self._cluster_snapshot(name, c, pools, tenants, grants) for name, c in self.clusters.items())
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
            addresses=self._address_usage(racks, fabrics, switches, clusters),
            retired=tuple(self.retired),
            upgrades=tuple(self.upgrades),
            etcd_backup=self._etcd_backup(clusters, tenants),
            grants=grants,
            egress=egress,
            admin_networks=tuple(str(n) for n in site.admin_zone.networks),
            dns_resolvers=tuple(str(n) for n in site.admin_zone.dns_resolvers),
            namespaces=tuple(
                ns for c in clusters for ns in cluster_namespaces(c.name, c.tenants, self.controller.namespace)
            ),
            host_flows=FLOWS,
            rack_ports=self._rack_ports(racks),
            switch_ports=self._switch_ports(fabrics, switches),
            releases=self._releases(clusters),
            waves=self._waves(pools),
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

    def _releases(self, clusters: tuple[Cluster, ...]) -> tuple[HelmRelease, ...]:
        """Each cluster's Helm releases (planning.platform), with the chart the site pins for each."""
        pins = self.campus.site.platform.charts
        multi = multi_node_nvlink_domains(self.nodes.values())
        nvl72 = {n.cluster for n in self.nodes.values() if n.gpus and n.nvlink_domain in multi}
        out: list[HelmRelease] = []
        for c in clusters:
            for name in platform.required_releases(self.controller.kind, c.name in nvl72):
                spec, pin = platform.RELEASES[name], pins.get(name)
                if pin is None:
                    if name not in self.unpinned:
                        self.unpinned.add(name)
                        self.issues.append(
                            ConfigIssue(
                                SITE_DOC,
                                ("site", "platform", "charts"),
                                f"cluster {c.name} runs the Helm release `{name}` and the site pins no chart for it",
                                f"add charts.{name}: {{chart, version, repository}} (the chart from your mirror)",
                            )
                        )
                    continue
                out.append(
                    HelmRelease(
                        c.name,
                        name,
                        spec.namespace,
                        pin.chart,
                        pin.version,
                        pin.repository,
                        spec.crd_groups,
                        spec.creates,
                    )
                )
        return tuple(out)

    def _rack_ports(self, racks: tuple[Rack, ...]) -> tuple[RackPorts, ...]:
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
            for p in self.campus.catalog.rack_profiles
            if p.name in used
        )

    def _switch_ports(self, fabrics: tuple[Fabric, ...], switches: tuple[Switch, ...]) -> tuple[SwitchPorts, ...]:
        used = {s.model for s in switches} | {f.switch_model for f in fabrics}
        return tuple(
            SwitchPorts(m.name, m.ports, m.port_gbps, m.max_breakout, m.uplink_ports)
            for m in self.campus.catalog.switch_models
            if m.name in used
        )

    def _grant_snapshot(self, pools: tuple[Pool, ...]) -> tuple[QuotaGrant, ...]:
        """Shared-pool grants (tenant, pool order), then each dedicated GPU pool of a cluster as its tenant's grant."""
        shared = [
            QuotaGrant(tenant, pool, self.pools[pool].cluster or "", gpus, False)
            for (tenant, pool), gpus in sorted(self.grants.items())
        ]
        dedicated = [
            QuotaGrant(p.tenant, p.name, p.cluster, p.gpus, True) for p in pools if p.tenant and p.cluster and p.gpus
        ]
        return (*shared, *dedicated)

    def _pool_snapshot(self, p: PoolState) -> Pool:
        racks = self.pool_racks(p)
        return Pool(
            name=p.spec.name,
            profile=p.profile.name,
            purpose=p.spec.purpose.value,
            cluster=p.cluster,
            tenant=p.spec.tenant,
            racks=len(racks),
            nodes=sum(r.nodes for r in racks),
            gpus=sum(r.gpus for r in racks),
            scalable_units=tuple(p.units),
            halls=tuple(dict.fromkeys(self.units[u].hall for u in p.units)),
            phase=p.phase,
            nvidia_driver=p.profile.nvidia_driver,
            rollout_racks=p.spec.rollout.racks,
        )

    def _waves(self, pools: tuple[Pool, ...]) -> tuple[Wave, ...]:
        """Each pool's racks in rollout waves: striped across its scalable units, `rollout.racks` at a time."""
        out: list[Wave] = []
        for pool in pools:
            by_unit = [[r for r in self.units[u].racks if self.racks[r].nodes] for u in self.pools[pool.name].units]
            order = [u[i] for i in range(max((len(u) for u in by_unit), default=0)) for u in by_unit if i < len(u)]
            size = pool.rollout_racks
            out += [Wave(pool.name, i, tuple(order[k : k + size])) for i, k in enumerate(range(0, len(order), size))]
        return tuple(out)

    def _etcd_backup(self, clusters: tuple[Cluster, ...], tenants: tuple[Tenant, ...]) -> EtcdBackup | None:
        """The etcd snapshots' target; it must lie where every tenant with objects in a cluster allows its data."""
        backups = self.campus.site.backups
        if backups.etcd is None:
            return None
        target = next((t for t in backups.targets if t.name == backups.etcd.target), None)
        if target is None:
            return None  # reported by the static checks
        allowed = {t.name: set(t.jurisdictions) for t in tenants}
        for c in clusters:
            outside = [t for t in c.tenants if target.jurisdiction not in allowed.get(t, {target.jurisdiction})]
            if outside:
                self.issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        ("site", "backups", "etcd", "target"),
                        f"etcd snapshots of cluster {c.name} would go to `{target.name}` in {target.jurisdiction}, "
                        f"but its etcd holds objects of {', '.join(outside)}, whose data stays in "
                        f"{' / '.join(sorted(set.union(*(allowed[t] for t in outside))))}",
                        "name a target in a jurisdiction every tenant of the cluster allows",
                    )
                )
        return EtcdBackup(target.name, target.jurisdiction, target.path, backups.etcd.every_minutes, backups.etcd.keep)

    def _cluster_snapshot(
        self,
        name: str,
        c: ClusterState,
        pools: tuple[Pool, ...],
        tenants: tuple[Tenant, ...],
        grants: tuple[QuotaGrant, ...],
    ) -> Cluster:
        mine = [p for p in pools if p.cluster == name]
        a = self.campus.site.addressing
        present = {g.tenant for g in grants if g.cluster == name and g.gpus}
        return Cluster(
            name=name,
            kubernetes_version=c.version,
            node_limit=c.spec.node_limit,
            max_pods_per_node=c.spec.max_pods_per_node,
            control_plane=tuple(c.control_plane),
            pools=tuple(p.name for p in mine),
            workers=sum(p.nodes for p in mine),
            gpus=sum(p.gpus for p in mine),
            pod_cidr=self.ipam.pod_cidr(c.index),
            node_pod_prefix=a.pods.node_prefix,
            service_cidr=self.ipam.service_cidr(c.index),
            phase=c.phase,
            api_host=f"api.{name}.{self.zone}",
            api_port=ports.KUBE_APISERVER,
            tenants=tuple(t.name for t in tenants if t.name in present),
            gitops_path="/".join(part for part in (self.environment, self.phase_name, "clusters", name) if part),
            api_vip=c.vip,
            api_vrrp_id=c.index % 255 + 1,
            commissioned_version=c.spec.kubernetes_version,
        )

    def _tenant_snapshot(self, t: TenantState, pools: tuple[Pool, ...], egress: tuple[Egress, ...]) -> Tenant:
        mine = [p for p in pools if p.tenant == t.spec.name]
        return Tenant(
            name=t.spec.name,
            display_name=t.spec.display_name or t.spec.name,
            kind=t.spec.kind.value,
            reseller=t.spec.reseller,
            jurisdictions=tuple(t.spec.jurisdictions),
            gpu_quota=t.gpu_quota,
            dedicated_pools=tuple(p.name for p in mine),
            dedicated_gpus=sum(p.gpus for p in mine),
            phase=t.phase,
            egress=tuple(e.key for e in egress if e.jurisdiction in t.spec.jurisdictions),
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

    # ------------------------------------------------------------------ addresses
    def _address_usage(
        self,
        racks: tuple[Rack, ...],
        fabrics: tuple[Fabric, ...],
        switches: tuple[Switch, ...],
        clusters: tuple[Cluster, ...],
    ) -> tuple[AddressUsage, ...]:
        a = self.campus.site.addressing
        ip = self.ipam
        with_nodes = [r for r in racks if r.nodes]
        oob_used = sum(self.racks_by_name[r.profile].oob_ports for r in with_nodes)
        nodes = sum(r.nodes for r in with_nodes)
        rail_blocks = sum(len(r.rail_cidrs) for r in with_nodes)
        rail_used = sum(r.nodes * len(r.rail_cidrs) for r in with_nodes)
        pod_block = 1 << (a.pods.supernet.max_prefixlen - a.pods.cluster_prefix)
        svc_block = 1 << (a.services.supernet.max_prefixlen - a.services.cluster_prefix)
        node_pod = 1 << (a.pods.supernet.max_prefixlen - a.pods.node_prefix)
        n = len(with_nodes)
        per_rack = (
            ("oob", a.oob, ip.oob, n, oob_used, "a rack"),
            ("inband", a.inband, ip.inband, n, nodes, "a rack"),
            ("storage", a.storage, ip.storage, n, nodes, "a rack"),
            ("compute", a.compute, ip.compute, rail_blocks, rail_used, "a rack and rail"),
        )
        return (
            *(
                AddressUsage(
                    name, str(net.supernet), f"/{carve.prefixlen()} {unit}", blocks, blocks * net.per_rack, used
                )
                for name, net, carve, blocks, used, unit in per_rack
            ),
            AddressUsage(
                "loopback",
                str(a.loopback),
                f"{ip.switches_per_fabric} a fabric",
                len(fabrics),
                len(fabrics) * ip.switches_per_fabric,
                len(switches),
            ),
            AddressUsage(
                "pods",
                str(a.pods.supernet),
                f"/{a.pods.cluster_prefix} a cluster",
                len(clusters),
                len(clusters) * pod_block,
                sum(c.nodes for c in clusters) * node_pod,
            ),
            AddressUsage(
                "services",
                str(a.services.supernet),
                f"/{a.services.cluster_prefix} a cluster",
                len(clusters),
                len(clusters) * svc_block,
                len(clusters) * svc_block,
            ),
        )


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
