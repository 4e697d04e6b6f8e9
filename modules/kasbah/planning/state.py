"""The planner's one state record: what the phases applied so far have built, and the problems found. Pure.

`PlanState` is mutable and private to one planning run; a Plan is an immutable snapshot of it
(planner.snapshot). The modules named after what they plan (halls, racks, pools, clusters,
tenants, decommissions, switches, addresses, hardware) are functions over it; planner.py runs the
phase loop. Here too: the live record of each commissioned hall, pool, cluster and tenant, and
the small lookups every one of those modules asks (a problem found, a name claimed or retired, a
pool's live racks, a cluster's workers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kasbah.config.issues import ConfigIssue, Loc
from kasbah.config.models import (
    Campus,
    ClusterSpec,
    HallProfile,
    HallSpec,
    PoolSpec,
    RackProfile,
    Reservations,
    SwitchModel,
    TenantSpec,
)
from kasbah.config.models import Issuer as IssuerSpec
from kasbah.planning import fabric as fab
from kasbah.planning import platform
from kasbah.planning.ipam import AddressPlan
from kasbah.planning.model import (
    Fabric,
    Hall,
    Node,
    Rack,
    Retired,
    ScalableUnit,
    Switch,
    TenancyRecord,
    Upgrade,
)


@dataclass
class HallState:
    spec: HallSpec
    profile: HallProfile
    index: int
    phase: str
    next_position: int = 0
    next_unit: int = 0


@dataclass
class PoolState:
    spec: PoolSpec
    profile: RackProfile
    index: int
    phase: str
    cluster: str | None
    units: list[str] = field(default_factory=list)
    next_unit: int = 0
    switch: SwitchModel | None = None
    fabric_index: int | None = None


@dataclass
class ClusterState:
    spec: ClusterSpec
    index: int
    phase: str
    control_plane: list[str] = field(default_factory=list)
    version: str = ""  # the current minor: the commissioned one, moved by declared upgrades
    vip: str = ""


@dataclass
class TenantState:
    spec: TenantSpec
    gpu_quota: int
    phase: str
    since: str = ""  # the tenancy change that onboarded it; "": its phase
    offboarded: str = ""  # the last offboarding step done (OffboardStep); "": active


@dataclass
class PlanState:
    """Mutable build state, private to one planning run; plans are immutable snapshots of it."""

    campus: Campus
    environment: str
    # the catalog and site, indexed once
    racks_by_name: dict[str, RackProfile] = field(init=False)
    halls_by_name: dict[str, HallProfile] = field(init=False)
    switch_models: dict[str, SwitchModel] = field(init=False)
    jurisdictions: set[str] = field(init=False)
    issuers: dict[str, IssuerSpec] = field(init=False)
    ipam: AddressPlan = field(init=False)
    reserve: Reservations = field(init=False)
    controller: platform.Controller = field(init=False)
    zone: str = field(init=False)
    # problems, and where the phase being applied reports them
    issues: list[ConfigIssue] = field(default_factory=list)
    doc: str = ""
    hall_loads: list[Hall] = field(default_factory=list)
    phase_start: int = 0
    phase_name: str = ""
    retiring: set[tuple[str, str]] = field(default_factory=set)
    pool_paths: dict[str, Loc] = field(default_factory=dict)  # pools declared or grown in the phase being applied
    hall_paths: dict[str, Loc] = field(default_factory=dict)  # last placement into each hall in that phase
    # names whose commissioning failed: references to them are not reported again
    failed: set[tuple[str, str]] = field(default_factory=set)
    # what is built
    halls: dict[str, HallState] = field(default_factory=dict)
    pools: dict[str, PoolState] = field(default_factory=dict)
    clusters: dict[str, ClusterState] = field(default_factory=dict)
    tenants: dict[str, TenantState] = field(default_factory=dict)
    issuer_tenants: dict[str, list[str]] = field(default_factory=dict)  # issuer -> the tenants naming it, in order
    units: dict[str, ScalableUnit] = field(default_factory=dict)
    racks: dict[str, Rack] = field(default_factory=dict)
    ever_racks: set[str] = field(default_factory=set)  # every rack laid out so far, decommissioned ones included
    nodes: dict[str, Node] = field(default_factory=dict)
    retired: list[Retired] = field(default_factory=list)
    upgrades: list[Upgrade] = field(default_factory=list)
    tenancy: list[TenancyRecord] = field(default_factory=list)  # applied tenancy steps, in order
    # what was reported outside a tenant's jurisdictions (mirrors, sinks, the KMS, backups): once, not every phase
    reported_outside: set[tuple[str, str]] = field(default_factory=set)  # (kind, name)
    used_names: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> phase that commissioned it
    # indexes handed out once, never reused
    next_hall: int = 0
    next_cluster: int = 0
    next_pool: int = 0
    next_fabric: int = 0
    hall_fabrics: dict[str, tuple[int, int]] = field(default_factory=dict)  # hall -> (storage, oob) fabric index
    fabric_cache: dict[tuple[object, ...], tuple[Fabric, tuple[Switch, ...]]] = field(default_factory=dict)
    hall_cache: dict[tuple[object, ...], list[tuple[Fabric, tuple[Switch, ...]]]] = field(default_factory=dict)
    # (tenant, pool) -> GPUs of the tenant's quota that pool serves; kept across phases so a
    # tenant's Kueue quota stays where its workloads already run
    grants: dict[tuple[str, str], int] = field(default_factory=dict)
    # releases a cluster needs and the site pins no chart for (reported once)
    unpinned: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        campus = self.campus
        site = campus.site
        self.racks_by_name = {p.name: p for p in campus.catalog.rack_profiles}
        self.halls_by_name = {p.name: p for p in campus.catalog.hall_profiles}
        self.switch_models = {s.name: s for s in campus.catalog.switch_models}
        self.jurisdictions = {j.name for j in site.jurisdictions}
        self.issuers = {i.name: i for i in site.identity.issuers}
        self.ipam = AddressPlan(site.addressing)
        self.reserve = site.addressing.reserve
        self.controller = platform.CONTROLLERS[site.platform.gitops.controller]
        self.zone = f"{site.name}.{site.provisioning.domain}"

    def issue(self, path: Loc, message: str, fix: str) -> None:
        self.issues.append(ConfigIssue(self.doc, path, message, fix))

    def fabric_issue(self, path: Loc, what: str, exc: fab.FabricError) -> None:
        problem, _, fix = str(exc).partition("; fix: ")
        self.issue(path, f"{what}: {problem}", fix or "use a higher-radix switch model")

    def gone(self, kind: str, name: str) -> str | None:
        """`was decommissioned in X` for a retired name, else None."""
        for r in self.retired:
            if r.kind == kind and r.name == name:
                return f"{kind} `{name}` was decommissioned in {r.phase}"
        return None

    def claim(self, kind: str, name: str, path: Loc, phase: str) -> bool:
        earlier = self.used_names.get((kind, name))
        if earlier is not None:
            if earlier == phase:
                self.issue(
                    path,
                    f"{kind} `{name}` is commissioned twice in this phase",
                    f"give each {kind} a unique name",
                )
            else:
                grow = " to grow it, add it under expansions" if kind in ("pool", "tenant") else ""
                self.issue(
                    path,
                    f"{kind} `{name}` was already commissioned in {earlier}; names are never reused",
                    f"choose a new name;{grow}" if grow else "choose a new name",
                )
            return False
        self.used_names[(kind, name)] = phase
        return True

    def pool_racks(self, p: PoolState) -> list[Rack]:
        return [self.racks[r] for u in p.units for r in self.units[u].racks]

    def workers(self, cluster: str) -> int:
        """Worker nodes a cluster has now: the live racks of the pools that joined it."""
        return sum(r.nodes for p in self.pools.values() if p.cluster == cluster for r in self.pool_racks(p))

    def rack_nodes(self, rack: Rack) -> list[str]:
        return [f"{rack.name}-n{s:02d}" for s in range(1, rack.nodes + 1)]


def with_article(word: str) -> str:
    """`an hpc`, `a gpu`: a word with its indefinite article, for messages."""
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"
