"""The Plan: one phase of the campus, fully laid out; the single source of truth for every projection."""

from __future__ import annotations

from dataclasses import dataclass, field

from kasbah.config.models import breakout_radix


@dataclass(frozen=True, slots=True)
class Node:
    """A Kubernetes/Ansible node: a GB200 compute tray, a DGX system, a CPU or storage server."""

    name: str
    rack: str
    hall: str
    scalable_unit: str
    slot: int
    pool: str
    role: str  # worker | control-plane | management | storage
    cluster: str | None
    tenant: str | None
    gpus: int
    nvlink_domain: str | None
    oob_ip: str
    inband_ip: str
    storage_ip: str
    rail_ips: tuple[str, ...]
    phase: str


@dataclass(frozen=True, slots=True)
class NodeHardware:
    """The tray that fills a node's slot today (from `hardware/<rack>.yaml`).

    Identity is logical: replacing the tray (an RMA) changes this record and nothing else about
    the node; its name, addresses, labels and cluster stay.
    """

    node: str
    serial: str
    bmc_mac: str
    inband_mac: str
    storage_mac: str | None
    rail_macs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rack:
    name: str
    hall: str
    row: int  # 1-based
    position: int  # 1-based within the row
    index: int  # 0-based floor position in the hall, never reused
    scalable_unit: str | None
    pool: str | None
    profile: str
    kind: str
    power_kw: float
    cooling: str
    weight_kg: float
    feeds: tuple[str, ...]
    nodes: int
    gpus: int
    oob_cidr: str | None
    inband_cidr: str | None
    storage_cidr: str | None
    rail_cidrs: tuple[str, ...]
    phase: str


@dataclass(frozen=True, slots=True)
class ScalableUnit:
    name: str
    hall: str
    index: int  # within the hall
    pool: str
    pool_index: int  # within the pool
    profile: str
    racks: tuple[str, ...]
    phase: str


@dataclass(frozen=True, slots=True)
class Hall:
    name: str
    profile: str
    index: int
    rows: int
    positions: int
    positions_used: int  # including reserved network racks and retired positions
    racks: int
    power_capacity_kw: float
    it_load_kw: float
    liquid_capacity_kw: float
    liquid_load_kw: float
    air_capacity_kw: float
    air_load_kw: float
    phase: str

    @property
    def power_headroom_kw(self) -> float:
        return self.power_capacity_kw - self.it_load_kw

    @property
    def liquid_headroom_kw(self) -> float:
        return self.liquid_capacity_kw - self.liquid_load_kw

    @property
    def air_headroom_kw(self) -> float:
        return self.air_capacity_kw - self.air_load_kw


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    profile: str
    purpose: str
    cluster: str | None
    tenant: str | None
    racks: int
    nodes: int
    gpus: int
    scalable_units: tuple[str, ...]
    halls: tuple[str, ...]
    phase: str
    nvidia_driver: str | None = None
    rollout_racks: int = 1  # racks a configuration change reaches at once (`Plan.waves`)
    image: str = ""  # the `PoolImage` its nodes boot


# What a pool image is built on: the node OS of every pool (the roles' package lists are Debian 12's)
NODE_OS = "debian-12"
# The fields of a PoolImage its name is a digest of (the order is the JSON's, sorted)
IMAGE_INPUTS = ("os", "gpus_per_node", "nvlink", "rdma", "nvidia_driver", "kubernetes_version")


@dataclass(frozen=True, slots=True)
class PoolImage:
    """The OS image a pool's nodes boot: what the roles install and configure that does not depend on the node.

    `name` is `<gpu|cpu>-<10 hex>` of the other fields: pools whose nodes need the same software share
    one image, and a change of any input (a driver, a Kubernetes minor) is a new image, so a new name
    in the pools' inventory variables, so a rolling change of their racks. What the image holds
    beyond these inputs (the roles' own files) is the image build's recipe digest, recorded in the
    image and its manifest (playbooks/image.yml, kasbah.runners.images).
    """

    name: str
    os: str
    gpus_per_node: int
    nvlink: str  # the rack profile's NVLink domain kind
    rdma: bool  # compute-fabric NICs (DOCA-OFED)
    nvidia_driver: str | None
    kubernetes_version: str | None
    pools: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Wave:
    """Racks of one pool that a configuration change drains, configures and health-checks together.

    Waves run in `index` order; the next starts only when every rack of this one passed. Racks are
    striped across the pool's scalable units, so consecutive waves take racks of different units.
    """

    pool: str
    index: int
    racks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RackPorts:
    """What a rack profile plugs into the fabrics: the ports cabling lays out, and their speeds (from the catalog)."""

    name: str  # the rack profile
    nodes: int
    compute_nics_per_node: int  # one per rail
    compute_nic_gbps: int
    storage_nics_per_node: int
    storage_nic_gbps: int
    oob_ports: int  # node BMCs and the rack's other management ports
    scalable_unit_racks: int


@dataclass(frozen=True, slots=True)
class BmcAccess:
    """How Ironic reaches the BMCs of one rack profile's nodes over Redfish (from the catalog)."""

    name: str  # the rack profile
    scheme: str
    port: int
    system: str  # the Redfish system's path; `{node}` is the node's name
    verify_tls: bool
    bios: tuple[tuple[str, bool | int | str], ...] = ()  # (attribute, value), by name: what Ironic applies

    def address(self, ip: str) -> str:
        host = f"[{ip}]" if ":" in ip else ip
        default = (self.scheme, self.port) in (("https", 443), ("http", 80))
        return f"{self.scheme}://{host}" + ("" if default else f":{self.port}")


@dataclass(frozen=True, slots=True)
class SwitchPorts:
    """A switch model's ports as cabling numbers them (from the catalog)."""

    name: str  # the switch model
    ports: int
    port_gbps: int
    max_breakout: int
    uplink_ports: int  # dedicated uplinks besides `ports`; 0: half the ports go up

    def radix(self, endpoint_gbps: int) -> int:
        return breakout_radix(self.ports, self.port_gbps, self.max_breakout, endpoint_gbps)


@dataclass(frozen=True, slots=True)
class Switch:
    name: str
    fabric: str
    tier: str  # leaf | spine | core
    model: str
    loopback: str


@dataclass(frozen=True, slots=True)
class Fabric:
    """A physical network sized from the rules in REFERENCE.md, not from a table."""

    name: str
    kind: str  # compute | storage | oob
    scope: str  # the pool or hall it serves
    switch_model: str
    radix: int
    design: str
    tiers: int
    endpoint_ports: int
    rails: int
    leaves: int
    spines: int
    cores: int
    node_leaf_cables: int
    leaf_spine_cables: int
    spine_core_cables: int
    power_kw: float | None
    loopback_block: str

    @property
    def switches(self) -> int:
        return self.leaves + self.spines + self.cores


@dataclass(frozen=True, slots=True)
class Cluster:
    name: str
    kubernetes_version: str
    node_limit: int
    max_pods_per_node: int
    control_plane: tuple[str, ...]
    pools: tuple[str, ...]
    workers: int
    gpus: int
    pod_cidr: str
    node_pod_prefix: int
    service_cidr: str
    phase: str
    api_host: str  # the control plane's DNS name: kubelets, Cilium and the stacks reach the API server there
    api_port: int
    tenants: tuple[str, ...]  # tenants with GPUs here (a quota grant or a dedicated pool), in commissioning order
    gitops_path: str  # where the cluster's tree is on the published branch (`<environment>/<phase>/clusters/<name>`)
    # The API's virtual IP (`api_host` resolves to it): keepalived holds it on one control-plane host, whose
    # HAProxy spreads to every healthy API server. Empty in plans of format 3, before the control plane had one.
    api_vip: str = ""
    api_vrrp_id: int = 0  # keepalived's virtual_router_id, unique a cluster (1-255)
    # The minor the cluster was commissioned at; `kubernetes_version` moves from it only by declared upgrades
    commissioned_version: str = ""

    @property
    def nodes(self) -> int:
        return self.workers + len(self.control_plane)

    @property
    def api_endpoint(self) -> str:
        return f"{self.api_host}:{self.api_port}"


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    display_name: str
    kind: str
    reseller: str | None
    jurisdictions: tuple[str, ...]
    gpu_quota: int
    dedicated_pools: tuple[str, ...]
    dedicated_gpus: int
    phase: str
    egress: tuple[str, ...]  # the destinations its jurisdictions allow (`Egress.key`), in the site's order
    issuer: str | None = None  # its users' identity provider (`Issuer.name`); none: no user logs in
    since: str = ""  # the tenancy change that onboarded it; "": it came with its phase
    sinks: tuple[str, ...] = ()  # its own log and telemetry sinks (`Sink.name`, scope tenant)
    offboarded: str = ""  # the last offboarding step done: access (no user reaches it), workloads (drained); "": active

    @property
    def has_access(self) -> bool:
        """Its users log in and reach its namespaces (not offboarded yet)."""
        return not self.offboarded

    @property
    def runs_workloads(self) -> bool:
        """Its queue admits and runs workloads (its offboarding has not drained them)."""
        return self.offboarded in ("", "access")


@dataclass(frozen=True, slots=True)
class Issuer:
    """An identity provider the clusters' API servers trust, and whose users it mints (planning/identity.py)."""

    name: str
    url: str
    jurisdiction: str
    audiences: tuple[str, ...]
    username_claim: str
    groups_claim: str
    tenant_claim: str | None  # a shared issuer: the claim naming a token's tenant
    tenants: tuple[str, ...]  # whose users it mints, in commission order; the admin issuer: none
    admin: bool  # the operator's administrators (the admin zone's issuer)


@dataclass(frozen=True, slots=True)
class QuotaGrant:
    """The GPUs one pool serves a tenant (a Kueue nominal quota): part of its quota on a shared pool, or its own pool."""

    tenant: str
    pool: str
    cluster: str
    gpus: int
    dedicated: bool  # the tenant's own pool: it lends nothing to the cohort


@dataclass(frozen=True, slots=True)
class Egress:
    """A destination a jurisdiction lets its tenants reach; the only egress beyond the campus."""

    jurisdiction: str
    name: str
    cidr: str
    ports: tuple[int, ...]

    @property
    def key(self) -> str:
        return f"{self.jurisdiction}/{self.name}"


@dataclass(frozen=True, slots=True)
class ClusterNamespace:
    """A namespace a cluster holds: the system's, a platform service's, or a tenant's."""

    cluster: str
    name: str
    zone: str  # system | platform | tenant
    tenant: str | None
    pod_security: str  # the Pod Security level enforced: privileged | restricted
    owner: str  # who applies the Namespace object: bootstrap (the cluster stack) | gitops (planning.platform)


@dataclass(frozen=True, slots=True)
class HelmRelease:
    """A Helm release the cluster stack installs on one cluster (planning.platform), with its pinned chart."""

    cluster: str
    name: str
    namespace: str
    chart: str
    version: str
    repository: str | None  # None: `chart` is an oci:// reference; both on the site's mirror when it has one
    crd_groups: tuple[str, ...]  # API groups whose CRDs it installs
    creates: tuple[tuple[str, str, str], ...]  # (apiVersion, kind, name) its chart creates: the release owns them
    origin: str = ""  # where the chart comes from upstream (repository URL or oci:// reference): the mirror's source


@dataclass(frozen=True, slots=True)
class GitOpsSource:
    """The GitOps controller of every cluster and where it reads the published trees."""

    controller: str  # argocd | flux
    namespace: str  # the controller's own namespace
    field_manager: str  # the name it server-side-applies under (break-glass applies under it too)
    repository: str
    branch: str
    sources: tuple[str, ...]  # the Git servers' addresses: the controller's only egress
    port: int  # where it reaches them: SSH for an ssh:// repository, HTTPS otherwise


@dataclass(frozen=True, slots=True)
class HostFlow:
    """A flow a node's host firewall admits (planning.host_flows)."""

    name: str
    sources: tuple[str, ...]  # network names (planning.host_flows.NETWORKS)
    protocol: str  # tcp | udp | icmp | vrrp
    ports: tuple[str, ...]  # "22" or "2379-2380"; empty for icmp
    groups: tuple[str, ...]  # inventory groups the flow reaches ("all" for every node)
    why: str


@dataclass(frozen=True, slots=True)
class AddressUsage:
    """One network's address space: what the site reserved, what the phase allocated and used."""

    network: str
    supernet: str
    block: str  # what one allocation is: "/26 a rack", "/13 a cluster"
    blocks: int
    allocated: int
    used: int


@dataclass(frozen=True, slots=True)
class Power:
    pue: float
    it_load_kw: float
    facility_load_kw: float
    budget_kw: float
    supply_kw: float

    @property
    def budget_headroom_kw(self) -> float:
        return self.budget_kw - self.facility_load_kw

    @property
    def supply_headroom_kw(self) -> float:
        return self.supply_kw - self.facility_load_kw


@dataclass(frozen=True, slots=True)
class Retired:
    kind: str
    name: str
    phase: str
    reason: str


@dataclass(frozen=True, slots=True)
class StorageClassSpec:
    """A storage pool as a StorageClass of every cluster (site.storage): where tenants' volumes live."""

    name: str  # the StorageClass's name: the storage pool's
    pool: str
    jurisdiction: str  # the campus's: the pool's racks are on it
    provisioner: str
    parameters: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class WorkloadBackup:
    """A tenant's scheduled backups (site.backups.workloads): to the first target in its jurisdictions."""

    tenant: str
    target: str
    jurisdiction: str
    path: str  # the target's directory; a cluster's backups of the tenant go to <path>/workloads/<cluster>/<tenant>/
    every_minutes: int
    keep: int

    def directory(self, cluster: str) -> str:
        return f"{self.path.rstrip('/')}/workloads/{cluster}/{self.tenant}"


@dataclass(frozen=True, slots=True)
class KmsProvider:
    """The API servers' KMS v2 provider for Secrets (site.kms): the plugin's socket and where its keys are held."""

    name: str
    socket: str
    jurisdiction: str
    timeout_seconds: int


@dataclass(frozen=True, slots=True)
class Sink:
    """A log or telemetry sink (site.sinks): what leaves the clusters for it, and where it then lies."""

    name: str
    kind: str  # logs | telemetry
    url: str
    jurisdiction: str
    scope: str  # platform (every tenant's data) | tenant (only `tenants`')
    tenants: tuple[str, ...]  # a tenant-scope sink's tenants, in commission order; a platform sink: ()


@dataclass(frozen=True, slots=True)
class TenancyRecord:
    """One applied step of a tenancy change (tenancy.yaml): an onboarding, a quota change, an offboarding step."""

    change: str
    after: str  # the phase it applies on top of
    action: str  # onboard | quota | offboard-access | offboard-workloads | offboard-data
    tenant: str
    detail: str  # the change's description, the quota change, or the offboarding's reason
    reseller: str = ""  # the tenant's reseller (kept: an offboarded customer is still on its reseller's invoice)


@dataclass(frozen=True, slots=True)
class Mirror:
    """A mirror on the campus (site.mirrors): nodes and clusters fetch what it lists from it, never upstream."""

    name: str
    kind: str  # packages | charts | registry
    url: str  # https://host[/path], no trailing slash
    jurisdiction: str
    upstreams: tuple[str, ...]  # URL prefixes (packages, charts) or registry hosts (registry)


@dataclass(frozen=True, slots=True)
class EtcdBackup:
    """Where and how often every control-plane host snapshots its cluster's etcd (site.backups)."""

    target: str
    jurisdiction: str
    path: str  # the target's directory; snapshots go to <path>/etcd/<cluster>/
    every_minutes: int
    keep: int

    def directory(self, cluster: str) -> str:
        """Where a cluster's snapshots go on the target."""
        return f"{self.path.rstrip('/')}/etcd/{cluster}"


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A declared Kubernetes minor upgrade: the cluster moves from `from_version` to `to_version` in `phase`."""

    cluster: str
    from_version: str
    to_version: str
    phase: str


@dataclass(frozen=True, slots=True)
class Plan:
    environment: str
    site: str
    phase: str
    phase_index: int
    power: Power
    halls: tuple[Hall, ...]
    scalable_units: tuple[ScalableUnit, ...]
    racks: tuple[Rack, ...]
    nodes: tuple[Node, ...]
    pools: tuple[Pool, ...]
    fabrics: tuple[Fabric, ...]
    switches: tuple[Switch, ...]
    clusters: tuple[Cluster, ...]
    tenants: tuple[Tenant, ...]
    addresses: tuple[AddressUsage, ...]
    retired: tuple[Retired, ...] = field(default=())
    grants: tuple[QuotaGrant, ...] = field(default=())
    egress: tuple[Egress, ...] = field(default=())
    admin_networks: tuple[str, ...] = field(default=())
    dns_resolvers: tuple[str, ...] = field(default=())
    namespaces: tuple[ClusterNamespace, ...] = field(default=())
    host_flows: tuple[HostFlow, ...] = field(default=())
    rack_ports: tuple[RackPorts, ...] = field(default=())  # the rack profiles of `racks`
    switch_ports: tuple[SwitchPorts, ...] = field(default=())  # the switch models of `switches`
    releases: tuple[HelmRelease, ...] = field(default=())  # per cluster
    gitops: GitOpsSource | None = None
    waves: tuple[Wave, ...] = field(default=())  # per pool, in rollout order
    hardware: tuple[NodeHardware, ...] = field(default=())  # the nodes whose rack has a manifest, in node order
    zone: str = ""  # the site's DNS zone, `<site>.<provisioning.domain>`: every name of the Plan lives under it
    dns_servers: tuple[str, ...] = field(default=())  # the zone's authoritative servers
    mtus: tuple[tuple[str, int], ...] = field(default=())  # (network, MTU of the nodes' interfaces on it)
    bmcs: tuple[BmcAccess, ...] = field(default=())  # the rack profiles of `racks` that hold nodes
    image: tuple[str, str, str] | None = (
        None  # (disk | iso, URL on the site's mirror, sha256:<hex>): what Ironic deploys
    )
    upgrades: tuple[Upgrade, ...] = field(default=())  # every declared upgrade up to this phase, in order
    etcd_backup: EtcdBackup | None = None
    images: tuple[PoolImage, ...] = field(default=())  # what the pools' nodes boot, by name
    issuers: tuple[Issuer, ...] = field(default=())  # who may log in: the admin issuer, then tenants' in order
    registry: str | None = None  # the site's container registry: tenants' pods run images from it only
    jurisdiction: str = ""  # where the campus lies: its own names and storage are there
    mirrors: tuple[Mirror, ...] = field(default=())  # the site's mirrors, in site.yaml order
    revision: str = ""  # the last tenancy change this plan includes; "": the phase as built
    tenancy: tuple[TenancyRecord, ...] = field(default=())  # every tenancy step applied so far, in order
    sinks: tuple[Sink, ...] = field(default=())  # where logs and telemetry leave the clusters for
    kms: KmsProvider | None = None  # Secrets encrypted at rest (every cluster), keys held where it says
    storage_classes: tuple[StorageClassSpec, ...] = field(default=())  # one a storage pool, in pool order
    workload_backups: tuple[WorkloadBackup, ...] = field(default=())  # one a tenant, in tenant order

    @property
    def gpus(self) -> int:
        return sum(r.gpus for r in self.racks)

    def tenant_egress(self, tenant: Tenant) -> tuple[Egress, ...]:
        """The destinations a tenant may reach, as the Plan lists them for it."""
        by_key = {e.key: e for e in self.egress}
        return tuple(by_key[k] for k in tenant.egress)
