"""Pydantic models of the campus description: site, catalog, phases, pools, clusters, tenants."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Any, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# Names end up in Kubernetes node names, Ansible host names and DNS: a DNS label, kept short
# enough that a node name (hall-row-rack-node) stays well under the 63-character label limit.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
KUBERNETES_MINOR_PATTERN = r"^1\.\d{1,2}$"
DRIVER_VERSION_PATTERN = r"^\d+\.\d+(\.\d+)?$"
# A chart version as Helm pins it (SemVer 2, an optional leading v)
CHART_VERSION_PATTERN = r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$"
# A DNS domain: dot-separated labels, no trailing dot
DOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
MAC_PATTERN = r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"
SERIAL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
SCHEME_PATTERN = r"^https?$"
REDFISH_SYSTEM_PATTERN = r"^/redfish/v1/Systems/[A-Za-z0-9._{}-]+$"
# A Redfish BIOS attribute name (AttributeRegistry: letters, digits, underscores; a letter first)
BIOS_ATTRIBUTE_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"


def _bios_value(value: object) -> bool | int | str:
    if isinstance(value, bool | int) or (isinstance(value, str) and 0 < len(value) <= 128 and value.isprintable()):
        return value
    raise ValueError(
        f"`{value!r}` is not a BIOS value; fix: write one value as the BMC's attribute registry lists it: "
        "a word (Enabled), a number or true/false"
    )


BiosValue = Annotated[bool | int | str, PlainValidator(_bios_value)]
MIRROR_URL_PATTERN = r"^https?://[^\s@]+$"
IMAGE_KIND_PATTERN = r"^(disk|iso)$"
CHECKSUM_PATTERN = r"^sha256:[0-9a-f]{64}$"
# A git branch: no spaces, no leading '-', none of the characters git refuses in ref names
BRANCH_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,99}$"
# What a value that misses each pattern is not, and how to write it: the loader's error text.
PATTERN_HELP: dict[str, tuple[str, str]] = {
    NAME_PATTERN: (
        "a valid name",
        "use lowercase letters, digits and '-', starting and ending with a letter or digit (a DNS label)",
    ),
    KUBERNETES_MINOR_PATTERN: (
        "a Kubernetes minor version",
        'write a Kubernetes minor version as a quoted string, for example "1.33"',
    ),
    DRIVER_VERSION_PATTERN: (
        "a driver version",
        'write the NVIDIA driver version as a quoted string of numbers and dots, for example "580.95.05"',
    ),
    CHART_VERSION_PATTERN: (
        "a chart version",
        'pin an exact chart version as a quoted string, for example "1.18.3" or "v25.10.0" (no ranges)',
    ),
    DOMAIN_PATTERN: (
        "a DNS domain",
        "write dot-separated lowercase labels without a trailing dot, for example kasbah.internal",
    ),
    MAC_PATTERN: (
        "a MAC address",
        'write six pairs of hex digits separated by colons, quoted, for example "52:54:00:0a:01:02"',
    ),
    SERIAL_PATTERN: (
        "a serial number",
        "write the system serial as printed on the tray: letters, digits and . _ / - (up to 64)",
    ),
    SCHEME_PATTERN: ("a Redfish scheme", "write https (or http, for a lab's emulated BMCs)"),
    REDFISH_SYSTEM_PATTERN: (
        "a Redfish system path",
        "give the system's path on the BMC, for example /redfish/v1/Systems/1 ({node} stands for the node's name)",
    ),
    BIOS_ATTRIBUTE_PATTERN: (
        "a BIOS attribute name",
        "use the name from the BMC's attribute registry (letters, digits, _; a letter first), for example ProcTurboMode",
    ),
    MIRROR_URL_PATTERN: (
        "an image URL",
        "give an http(s) URL on the site's mirror, without credentials in it",
    ),
    IMAGE_KIND_PATTERN: ("an image kind", "write disk (a whole-disk image) or iso (a live image)"),
    CHECKSUM_PATTERN: ("a checksum", "write sha256: and the file's 64 lowercase hex digits (sha256sum)"),
    BRANCH_PATTERN: (
        "a branch name",
        "give the branch the rendered trees are published to, for example `rendered`",
    ),
}
Name = Annotated[
    str,
    StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=24),
]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Physical upper bounds: every count and size a file can give has one, so that no typo (or a
# hostile file) makes validation, the planner or the cabling allocate billions of anything. Each
# bound sits well above the largest real value (REFERENCE.md has the figures) and far below what
# would make planning slow.
MAX_SWITCH_PORTS = 1024  # the largest modular chassis carries 576 x 400G (Arista 7800R3); fixed switches 64-144
MAX_PORT_GBPS = 3200  # 1.6T ports ship in 2026 (Quantum-X800, Spectrum-X1600); one generation of headroom
MAX_BREAKOUT = 8  # an OSFP or QSFP-DD cage carries 8 electrical lanes
MAX_SWITCH_W = 100_000  # a fully loaded modular chassis draws about 20 kW
MAX_NODES_PER_RACK = 144  # GB200 NVL72: 18 compute trays; the densest half-width 1U racks hold about 96
MAX_GPUS_PER_NODE = 16  # HGX boards carry 8; NVL72 trays 4
MAX_CPUS_PER_NODE = 16  # sockets; 8-socket servers are the largest made
MAX_NICS_PER_NODE = 16  # one per rail: 8 rails on HGX and GB200, 4 on NVL72 trays
MAX_NIC_GBPS = 3200
MAX_OOB_EXTRA = 256  # switch trays, power shelves and PDUs of one rack
MAX_SU_RACKS = 64  # a SuperPOD scalable unit is 8 GB200 racks or 4 H100 racks
MAX_RACK_KW = 2000.0  # 600 kW racks are announced for 2027 (Kyber), 1 MW racks are being designed
MAX_RACK_KG = 10_000.0  # an NVL72 rack weighs about 1.4 t
MAX_UNITS = 1000  # UPS modules or CDUs in one hall's group
MAX_UNIT_MW = 100.0  # one UPS module or CDU is 0.5-3 MW
MAX_HALL_ROWS = 100
MAX_ROW_POSITIONS = 100  # a hall of 100 x 100 positions holds 10,000 racks; 50 MW halls hold a few hundred
MAX_HALL_MW = 10_000.0
MAX_SITE_MW = 10_000.0  # the largest announced AI campuses are 5 GW
MAX_AIR_RACK_KW = 200.0  # air cooling stops near 40-50 kW a rack
MAX_HALLS = 256
MAX_SU_PER_HALL = 256
MAX_RAILS = 16
MAX_FABRICS = 4096  # fabrics reserved: a hall has a few (compute, storage, out-of-band); 256 halls x 16
MAX_SWITCHES_PER_FABRIC = 4096  # a three-tier fat tree of 144-port switches for 100,000+ GPUs has about 3,000
MAX_RACKS = 10_000  # racks in one pool, expansion or placement: a whole 500 MW campus has about 4,000
MAX_GPU_QUOTA = 10_000_000  # 500 MW is about 200,000 GPUs
MAX_SLOT = MAX_NODES_PER_RACK

# Upstream Kubernetes tests clusters up to 5,000 nodes and 110 pods per node
# (REFERENCE.md, "Kubernetes at scale", kubernetes.io considerations for large clusters).
UPSTREAM_NODE_LIMIT = 5000
UPSTREAM_PODS_PER_NODE = 110


class Model(BaseModel):
    """Base of every config model: immutable, unknown keys refused."""

    # only finite numbers: `.inf` or `.nan` in a power figure is a typo, never a value
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML reads `yes`, `no`, `on`, `off`, `true` and `false` as booleans; pydantic would take them as 1 and 0."""
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and not _admits_bool(field.annotation):
            raise PydanticCustomError("boolean_not_allowed", "a boolean where this field takes none")
        return value


def _admits_bool(annotation: Any) -> bool:
    """Whether a field's type takes a boolean: bool itself, Any, or a union or alias holding one."""
    if annotation is bool or annotation is Any or annotation is object:
        return True
    return any(_admits_bool(a) for a in get_args(annotation))


class Redundancy(StrEnum):
    """How many of a group of power or cooling units may fail while the hall keeps its rating."""

    N = "N"
    N_PLUS_1 = "N+1"
    N_PLUS_2 = "N+2"
    TWO_N = "2N"

    def usable(self, units: int) -> int:
        """Units that carry load while the redundant ones stand by."""
        if self is Redundancy.N:
            return units
        if self is Redundancy.N_PLUS_1:
            return units - 1
        if self is Redundancy.N_PLUS_2:
            return units - 2
        return units // 2


class Cooling(StrEnum):
    """How a rack rejects its heat."""

    DIRECT_LIQUID = "direct-liquid"
    REAR_DOOR = "rear-door"
    AIR = "air"

    @property
    def liquid(self) -> bool:
        """Direct-to-chip and rear-door heat exchangers both load the hall's liquid loop."""
        return self is not Cooling.AIR


class RackKind(StrEnum):
    GPU = "gpu"
    CPU = "cpu"
    STORAGE = "storage"
    NETWORK = "network"


class NvlinkDomain(StrEnum):
    """What one NVLink domain spans: a whole rack (NVL72) or one node (HGX/DGX 8-GPU)."""

    RACK = "rack"
    NODE = "node"
    NONE = "none"


class PoolPurpose(StrEnum):
    TRAINING = "training"
    INFERENCE = "inference"
    HPC = "hpc"
    STORAGE = "storage"
    MANAGEMENT = "management"

    @property
    def kubernetes_workers(self) -> bool:
        """Pools whose nodes join a Kubernetes cluster as workers."""
        return self in (PoolPurpose.TRAINING, PoolPurpose.INFERENCE, PoolPurpose.HPC)


class FabricDesign(StrEnum):
    """How a compute fabric grows past its leaves.

    `fat-tree`: two tiers while they reach (k**2/2 endpoints), then pods of k/2 leaves under a core.
    `rail-groups`: NVIDIA's spine-leaf groups (one per rail and scalable unit) under core groups,
    as in the DGX SuperPOD GB200 reference architecture; one scalable unit is a plain two-tier tree.
    """

    FAT_TREE = "fat-tree"
    RAIL_GROUPS = "rail-groups"


class TenantKind(StrEnum):
    OPERATOR = "operator"
    RESELLER = "reseller"
    PUBLIC_ADMINISTRATION = "public-administration"
    ENTERPRISE = "enterprise"


class GitOpsController(StrEnum):
    """The controller that syncs each cluster's rendered tree."""

    ARGOCD = "argocd"
    FLUX = "flux"


class DecommissionKind(StrEnum):
    HALL = "hall"
    POOL = "pool"
    RACK = "rack"
    CLUSTER = "cluster"
    TENANT = "tenant"


# --------------------------------------------------------------------------- catalog


class SwitchModel(Model):
    """A switch the fabric planner sizes fabrics with."""

    name: Name
    ports: Annotated[int, Field(gt=0, le=MAX_SWITCH_PORTS)] = Field(description="Physical ports at full speed.")
    port_gbps: Annotated[int, Field(gt=0, le=MAX_PORT_GBPS)]
    max_breakout: Annotated[int, Field(gt=0, le=MAX_BREAKOUT)] = Field(
        default=1, description="Lanes one port may be split into (2 for 2x400G on 800G ports)."
    )
    uplink_ports: Annotated[int, Field(ge=0, le=MAX_SWITCH_PORTS)] = Field(
        default=0,
        description="Dedicated uplinks besides `ports` (SN2201: 4x100G); 0 = half the ports go up.",
    )
    power_w: Annotated[int, Field(gt=0, le=MAX_SWITCH_W)] | None = Field(
        default=None, description="Typical draw, when published."
    )
    source: str = ""

    def radix(self, endpoint_gbps: int) -> int:
        """Ports of `endpoint_gbps` one switch offers, splitting faster ports where allowed."""
        return breakout_radix(self.ports, self.port_gbps, self.max_breakout, endpoint_gbps)


def breakout_radix(ports: int, port_gbps: int, max_breakout: int, endpoint_gbps: int) -> int:
    """Ports of `endpoint_gbps` a switch of `ports` x `port_gbps` offers, splitting a port into up to `max_breakout` lanes."""
    split = min(max_breakout, max(1, port_gbps // endpoint_gbps))
    return ports * split


class NvlinkSpec(Model):
    domain: NvlinkDomain = NvlinkDomain.NONE
    switch_trays: Annotated[int, Field(ge=0, le=MAX_OOB_EXTRA)] = 0  # NVL72: 9


class BmcSpec(Model):
    """How the nodes' BMCs of a rack profile speak Redfish (vendor-specific: the system's path differs by make)."""

    scheme: Annotated[str, Field(pattern=SCHEME_PATTERN)] = "https"
    port: Annotated[int, Field(ge=1, le=65535)] = 443
    system: Annotated[str, Field(pattern=REDFISH_SYSTEM_PATTERN, max_length=120)] = Field(
        "/redfish/v1/Systems/1",
        description="The node's Redfish system on its BMC: /redfish/v1/Systems/1 (most servers), "
        "System.Embedded.1 (Dell), System_0 (OpenBMC trays); `{node}` stands for the node's name.",
    )
    verify_tls: bool = Field(True, description="Check the BMC's certificate (false only for lab emulators).")
    bios: dict[Annotated[str, StringConstraints(pattern=BIOS_ATTRIBUTE_PATTERN)], BiosValue] = Field(
        default_factory=dict,
        max_length=256,
        description="BIOS attributes the nodes need, by the BMC's Redfish attribute-registry names (vendor-specific: "
        "e.g. ProcTurboMode: Enabled, SriovGlobalEnable: Enabled); Ironic's redfish BIOS interface applies them "
        "before a node is made available, and again when they change.",
    )


class RackProfile(Model):
    """One kind of rack as delivered: what it holds, what it draws, how it is cooled."""

    name: Name
    kind: RackKind
    description: str = ""
    nodes: Annotated[int, Field(ge=0, le=MAX_NODES_PER_RACK)] = Field(
        description="Kubernetes/Ansible nodes (GB200: compute trays)."
    )
    gpus_per_node: Annotated[int, Field(ge=0, le=MAX_GPUS_PER_NODE)] = 0
    cpus_per_node: Annotated[int, Field(ge=0, le=MAX_CPUS_PER_NODE)] = 0
    compute_nics_per_node: Annotated[int, Field(ge=0, le=MAX_NICS_PER_NODE)] = Field(
        default=0, description="Compute-fabric NICs per node, one per rail."
    )
    compute_nic_gbps: Annotated[int, Field(ge=0, le=MAX_NIC_GBPS)] = 0
    storage_nics_per_node: Annotated[int, Field(ge=0, le=MAX_NICS_PER_NODE)] = Field(
        default=0, description="Storage/in-band NICs per node (BlueField-3)."
    )
    storage_nic_gbps: Annotated[int, Field(ge=0, le=MAX_NIC_GBPS)] = 0
    oob_ports_extra: Annotated[int, Field(ge=0, le=MAX_OOB_EXTRA)] = Field(
        default=0,
        description="Out-of-band ports per rack besides node BMCs (switch trays, power shelves).",
    )
    nvlink: NvlinkSpec = NvlinkSpec()
    bmc: BmcSpec = Field(default_factory=lambda: BmcSpec(), description="How the nodes' BMCs are reached (Redfish).")
    power_kw: Annotated[float, Field(gt=0, le=MAX_RACK_KW)]
    cooling: Cooling
    weight_kg: Annotated[float, Field(gt=0, le=MAX_RACK_KG)]
    feeds: Annotated[int, Field(ge=1, le=2)] = Field(
        default=2, description="Independent power feeds the rack needs (2 for A/B)."
    )
    nvidia_driver: Annotated[str, Field(pattern=DRIVER_VERSION_PATTERN)] | None = Field(
        default=None, description="NVIDIA data-center driver the nodes run, pinned (GPU racks only)."
    )
    scalable_unit_racks: Annotated[int, Field(gt=0, le=MAX_SU_RACKS)] = Field(
        default=1, description="Racks in one scalable unit; pools grow in whole units."
    )
    source: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> RackProfile:
        if self.kind is RackKind.GPU and (self.gpus_per_node == 0 or self.nodes == 0):
            raise ValueError(
                "a gpu rack profile has no GPUs; fix: set `nodes` and `gpus_per_node` above 0, or change `kind`"
            )
        if self.kind is not RackKind.GPU and self.nvidia_driver:
            raise ValueError(
                f"a {self.kind.value} rack profile has no GPUs to drive; fix: remove `nvidia_driver` or set `kind: gpu`"
            )
        if self.kind is not RackKind.GPU and self.gpus_per_node:
            raise ValueError(
                f"a {self.kind.value} rack profile cannot have GPUs; fix: set `kind: gpu` or remove `gpus_per_node`"
            )
        if (self.compute_nics_per_node or self.storage_nics_per_node) and self.nodes == 0:
            raise ValueError(
                "NICs on a rack without nodes; fix: set `nodes`, or remove the NICs (network racks carry switches, not nodes)"
            )
        if self.compute_nics_per_node and not self.compute_nic_gbps:
            raise ValueError("compute NICs without a speed; fix: set `compute_nic_gbps` (400 for NDR, 800 for XDR)")
        if self.storage_nics_per_node and not self.storage_nic_gbps:
            raise ValueError("storage NICs without a speed; fix: set `storage_nic_gbps`")
        if self.nvlink.domain is NvlinkDomain.RACK and self.kind is not RackKind.GPU:
            raise ValueError("only gpu racks have a rack-wide NVLink domain; fix: set `nvlink.domain` to none")
        return self

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def oob_ports(self) -> int:
        return self.nodes + self.oob_ports_extra


class UnitGroup(Model):
    """A group of identical power or cooling units with a redundancy scheme."""

    units: Annotated[int, Field(gt=0, le=MAX_UNITS)]
    unit_mw: Annotated[float, Field(gt=0, le=MAX_UNIT_MW)]
    redundancy: Redundancy = Redundancy.N_PLUS_1

    @model_validator(mode="after")
    def _enough_units(self) -> UnitGroup:
        if self.redundancy.usable(self.units) <= 0:
            raise ValueError(
                f"{self.units} unit(s) leave nothing usable under {self.redundancy.value}; "
                "fix: add units or lower the redundancy"
            )
        return self

    @property
    def usable_mw(self) -> float:
        return self.redundancy.usable(self.units) * self.unit_mw


class NetworkRacks(Model):
    profile: Name
    count: Annotated[int, Field(ge=0, le=MAX_RACKS)]


class HallProfile(Model):
    """A modular data hall: floor positions, power train, liquid and air cooling."""

    name: Name
    description: str = ""
    rows: Annotated[int, Field(gt=0, le=MAX_HALL_ROWS)]
    positions_per_row: Annotated[int, Field(gt=0, le=MAX_ROW_POSITIONS)]
    power: UnitGroup = Field(description="IT power modules (UPS/busway) and their redundancy.")
    feeds: Annotated[int, Field(ge=1, le=2)] = Field(
        default=2, description="Independent power feeds at each position (2 = A/B)."
    )
    liquid_cooling: UnitGroup | None = Field(
        default=None, description="Coolant distribution units feeding direct-liquid racks."
    )
    air_cooling_mw: Annotated[float, Field(ge=0, le=MAX_HALL_MW)] = 0.0
    max_rack_kw: Annotated[float, Field(gt=0, le=MAX_RACK_KW)] = Field(
        description="Power one position's busway tap delivers."
    )
    max_rack_weight_kg: Annotated[float, Field(gt=0, le=MAX_RACK_KG)]
    network_racks: NetworkRacks | None = Field(
        default=None, description="Positions reserved at the head of row 1 for fabric switches."
    )
    source: str = ""

    @property
    def positions(self) -> int:
        return self.rows * self.positions_per_row


class Catalog(Model):
    rack_profiles: list[RackProfile] = Field(min_length=1)
    hall_profiles: list[HallProfile] = Field(min_length=1)
    switch_models: list[SwitchModel] = Field(min_length=1)


# --------------------------------------------------------------------------- site


class Destination(Model):
    """An address range a jurisdiction allows egress to."""

    name: Name
    cidr: IPNetwork
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=lambda: [443])


class Jurisdiction(Model):
    """A legal area for data residency, with the egress destinations it allows."""

    name: Name
    description: str = ""
    egress: list[Destination] = Field(default_factory=list)


class Network(Model):
    """An address pool carved site → hall → scalable unit → rack, `per_rack` addresses a rack."""

    supernet: IPNetwork
    per_rack: Annotated[int, Field(gt=0, le=65536)]
    mtu: Annotated[int, Field(ge=1280, le=9216)] | None = Field(
        None, description="The nodes' interface MTU on this network; unset: 1500, 9000 on storage and compute."
    )

    @field_validator("per_rack")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(
                f"{v} is not a power of two (a subnet size); fix: use {1 << (v.bit_length() - 1)} or {1 << v.bit_length()}"
            )
        return v


class PodNetwork(Model):
    """Pod ranges: one block a cluster, one `node_prefix` a node inside it."""

    supernet: IPNetwork
    cluster_prefix: Annotated[int, Field(ge=1, le=127)]
    node_prefix: Annotated[int, Field(ge=1, le=128)]


class ServiceNetwork(Model):
    supernet: IPNetwork
    cluster_prefix: Annotated[int, Field(ge=1, le=128)]


class Reservations(Model):
    """Index space reserved up front so that growth never renumbers anything."""

    halls: Annotated[int, Field(gt=0, le=MAX_HALLS)]
    scalable_units_per_hall: Annotated[int, Field(gt=0, le=MAX_SU_PER_HALL)]
    racks_per_scalable_unit: Annotated[int, Field(gt=0, le=MAX_SU_RACKS)]
    rails: Annotated[int, Field(gt=0, le=MAX_RAILS)]
    fabrics: Annotated[int, Field(gt=0, le=MAX_FABRICS)]
    switches_per_fabric: Annotated[int, Field(gt=0, le=MAX_SWITCHES_PER_FABRIC)]


class Addressing(Model):
    reserve: Reservations
    oob: Network
    inband: Network
    storage: Network
    compute: Network = Field(description="Split into `reserve.rails` ranges, one a compute rail.")
    loopback: IPNetwork
    pods: PodNetwork
    services: ServiceNetwork


class FabricDefaults(Model):
    compute_switch: dict[Annotated[int, Field(gt=0, le=MAX_NIC_GBPS)], Name] = Field(
        description="Compute-fabric switch model by NIC speed in Gb/s."
    )
    storage_switch: Name
    oob_switch: Name


class AdminZone(Model):
    """Where the management plane (BMC/out-of-band, Kubernetes control plane, node SSH) may be reached from."""

    networks: list[IPNetwork] = Field(
        default_factory=list, description="Operators' bastions and CI runners; empty: reachable from no network."
    )
    dns_resolvers: list[IPNetwork] = Field(
        default_factory=list, description="Site resolvers CoreDNS forwards to; empty: cluster names only."
    )


def _userinfo(url: str) -> str:
    """The `user[:password]` part of a URL's authority, if any."""
    authority = url.split("//", 1)[-1].split("/", 1)[0]
    return authority.rsplit("@", 1)[0] if "@" in authority else ""


class ChartSource(Model):
    """Where one Helm chart comes from, pinned: a chart in an HTTPS repository, or an OCI reference."""

    chart: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S+$")]
    version: Annotated[str, StringConstraints(pattern=CHART_VERSION_PATTERN)]
    repository: Annotated[str, StringConstraints(pattern=r"^https://\S+$")] | None = Field(
        default=None, description="The chart repository (a mirror on a sovereign site); none for an oci:// chart."
    )

    @model_validator(mode="after")
    def _source(self) -> ChartSource:
        oci = self.chart.startswith("oci://")
        if oci and self.repository:
            raise ValueError("an oci:// chart names its registry itself; fix: remove `repository`")
        if not oci and not self.repository:
            raise ValueError(
                f"chart {self.chart} needs a `repository` (https://...), or write it as an oci:// reference"
            )
        if self.repository and _userinfo(self.repository):
            raise ValueError("credentials in a repository URL end up in state and logs; fix: remove `user:password@`")
        return self


class GitOps(Model):
    """The GitOps controller that syncs each cluster's tree, and the repository it reads them from."""

    controller: GitOpsController = GitOpsController.ARGOCD
    repository: Annotated[str, StringConstraints(pattern=r"^(https|ssh)://\S+$")] = Field(
        description="The Git repository the rendered trees are published to (on the campus)."
    )
    branch: Annotated[str, StringConstraints(pattern=BRANCH_PATTERN)] = "rendered"
    sources: list[IPNetwork] = Field(
        min_length=1, description="Addresses of the Git server (and its mirrors): the controller's only egress."
    )

    @field_validator("repository")
    @classmethod
    def _no_credentials(cls, v: str) -> str:
        user = _userinfo(v)
        # ssh://git@host/... names an account, not a secret; a password or an HTTPS user is a credential
        if user and (":" in user or v.startswith("https://")):
            raise ValueError(
                "credentials in the repository URL end up in state and logs; fix: remove them "
                "(the controller's repository credentials are a secret of the cluster, not of the environment)"
            )
        return v


class Platform(Model):
    """What every cluster runs: the GitOps controller and the pinned Helm charts of the platform's releases."""

    gitops: GitOps
    charts: dict[Name, ChartSource] = Field(
        description="Each Helm release of the platform (cilium, kueue, gpu-operator, ...) and its pinned chart."
    )


class NodeImage(Model):
    """The node OS image on the site's mirror (never a public URL: the nodes have no route out)."""

    kind: Annotated[str, Field(pattern=IMAGE_KIND_PATTERN)] = Field(
        "disk",
        description="disk: a whole-disk image Ironic's agent writes to the node's disk; "
        "iso: a live image the node boots from virtual media (diskless nodes, labs).",
    )
    url: Annotated[str, StringConstraints(pattern=MIRROR_URL_PATTERN, max_length=500)]
    checksum: Annotated[str, StringConstraints(pattern=CHECKSUM_PATTERN)] = Field(
        description="sha256 of the image file, as `sha256:<hex>`: Ironic checks it before booting the node."
    )


class Provisioning(Model):
    """Day 0: the network services that reach racked nodes before they have an OS, and what Ironic deploys."""

    domain: Annotated[str, StringConstraints(pattern=DOMAIN_PATTERN, max_length=120)] = Field(
        "kasbah.internal", description="The site's names live under `<site>.<domain>`."
    )
    dns_servers: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = Field(
        default_factory=list,
        description="The authoritative DNS servers of the site's zones (their NS records and glue); empty: ns1 with no address.",
    )
    image: NodeImage | None = Field(None, description="The OS image Ironic writes to a node, from the site's mirror.")


class BackupTarget(Model):
    """Where backups go: a directory of the campus's own storage, mounted on the hosts that write them."""

    name: Name
    jurisdiction: Name = Field(description="Where the data lies; every tenant whose objects it holds must allow it.")
    path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._/-]*$", max_length=200)] = Field(
        description="An absolute directory on the writing hosts (a mount of the campus storage, storage_client)."
    )
    description: str = ""


class EtcdBackups(Model):
    """Scheduled snapshots of every cluster's etcd, from each control-plane host."""

    target: Name = Field(description="A site.backups.targets entry.")
    every_minutes: Annotated[int, Field(ge=5, le=1440)] = 60
    keep: Annotated[int, Field(ge=1, le=10000)] = Field(
        default=48, description="Snapshots kept per cluster and host; older ones are removed after a good snapshot."
    )


class Backups(Model):
    targets: list[BackupTarget] = Field(default_factory=list)
    etcd: EtcdBackups | None = Field(default=None, description="Unset: no etcd snapshots (the report says so).")


class Site(Model):
    name: Name
    description: str = ""
    renewable_supply_mw: Annotated[float, Field(gt=0, le=MAX_SITE_MW)] = Field(
        description="Facility power the supply can deliver."
    )
    pue: Annotated[float, Field(ge=1.0, le=3.0)]
    air_cooling_ceiling_kw: Annotated[float, Field(gt=0, le=MAX_AIR_RACK_KW)] = Field(
        description="Most an air-cooled rack may draw."
    )
    jurisdictions: list[Jurisdiction] = Field(min_length=1)
    addressing: Addressing
    fabrics: FabricDefaults
    admin_zone: AdminZone = Field(default_factory=AdminZone)
    platform: Platform
    provisioning: Provisioning = Field(default_factory=lambda: Provisioning())
    backups: Backups = Field(default_factory=Backups)
    phases: list[Name] = Field(min_length=1, description="Phase names, in build order.")
    source: str = ""


class SiteDocument(Model):
    """`site.yaml`: the site, its catalog, and the ordered list of phases."""

    site: Site
    catalog: Catalog


# --------------------------------------------------------------------------- phases


class HallSpec(Model):
    name: Name
    profile: Name


class Placement(Model):
    hall: Name
    racks: Annotated[int, Field(gt=0, le=MAX_RACKS)]


class Rollout(Model):
    """How a pool's configuration changes reach its racks: in waves, each a few racks (NVLink domains)."""

    racks: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1,
        description=(
            "Racks drained, configured and health-checked at once; the next wave starts only when this one "
            "passed. A management pool that hosts a control plane rolls one rack at a time."
        ),
    )


class PoolSpec(Model):
    """A node pool: racks of one profile, for one purpose, in one cluster."""

    name: Name
    rack_profile: Name
    purpose: PoolPurpose
    cluster: Name | None = Field(
        default=None, description="Cluster the workers join; omitted = first cluster with room."
    )
    tenant: Name | None = Field(default=None, description="Dedicated to this tenant; omitted = shared.")
    placements: list[Placement] = Field(min_length=1)
    compute_switch: Name | None = Field(
        default=None, description="Switch model of the compute fabric; default by NIC speed."
    )
    fabric_design: FabricDesign = FabricDesign.FAT_TREE
    rollout: Rollout = Field(default_factory=Rollout)


class ControlPlane(Model):
    pool: Name = Field(description="Management pool whose nodes host this control plane.")
    replicas: Annotated[int, Field(ge=1, le=7)] = 3
    api_vip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = Field(
        default=None,
        description=(
            "The API server's virtual IP (keepalived holds it on one control-plane host, HAProxy there spreads "
            "to every API server): an unused in-band address of a control-plane rack. Unset: the last address "
            "of the first control-plane rack's in-band block."
        ),
    )

    @field_validator("replicas")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(
                f"{v} control-plane replicas: etcd needs an odd number of members for quorum; fix: use {v - 1 or 1} or {v + 1}"
            )
        return v


class ClusterSpec(Model):
    name: Name
    kubernetes_version: Annotated[str, StringConstraints(pattern=KUBERNETES_MINOR_PATTERN)]
    node_limit: Annotated[int, Field(ge=1, le=UPSTREAM_NODE_LIMIT)]
    max_pods_per_node: Annotated[int, Field(ge=1, le=UPSTREAM_PODS_PER_NODE)] = UPSTREAM_PODS_PER_NODE
    control_plane: ControlPlane


class TenantSpec(Model):
    name: Name
    display_name: str = ""
    kind: TenantKind
    reseller: Name | None = Field(default=None, description="White-label reseller serving it.")
    jurisdictions: list[Name] = Field(min_length=1)
    gpu_quota: Annotated[int, Field(ge=0, le=MAX_GPU_QUOTA)] = Field(
        default=0, description="Nominal GPUs on shared pools."
    )


class PoolExpansion(Model):
    pool: Name
    placements: list[Placement] = Field(min_length=1)


class QuotaChange(Model):
    tenant: Name
    gpu_quota: Annotated[int, Field(ge=0, le=MAX_GPU_QUOTA)]


class Expansions(Model):
    pools: list[PoolExpansion] = Field(default_factory=list)
    tenants: list[QuotaChange] = Field(default_factory=list)


class ClusterUpgrade(Model):
    """A declared Kubernetes minor upgrade of a cluster commissioned in an earlier phase: one minor at a time."""

    cluster: Name
    kubernetes_version: Annotated[str, StringConstraints(pattern=KUBERNETES_MINOR_PATTERN)] = Field(
        description="The next minor after the cluster's current one (kubeadm upgrades one minor at a time)."
    )


class Decommission(Model):
    kind: DecommissionKind
    name: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    reason: Annotated[str, StringConstraints(min_length=3)]


class Phase(Model):
    """One build phase: its facility budget, and what it commissions, grows and retires."""

    name: Name
    description: str = ""
    facility_budget_mw: Annotated[float, Field(gt=0, le=MAX_SITE_MW)]
    halls: list[HallSpec] = Field(default_factory=list)
    pools: list[PoolSpec] = Field(default_factory=list)
    clusters: list[ClusterSpec] = Field(default_factory=list)
    tenants: list[TenantSpec] = Field(default_factory=list)
    expansions: Expansions = Expansions()
    upgrades: list[ClusterUpgrade] = Field(
        default_factory=list, description="Kubernetes minor upgrades of existing clusters, rolled out by upgrade.yml."
    )
    decommissions: list[Decommission] = Field(default_factory=list)


class PhaseDocument(Model):
    """`phases/<name>.yaml`."""

    phase: Phase


Mac = Annotated[str, StringConstraints(pattern=MAC_PATTERN, to_lower=True)]


class SlotHardware(Model):
    """One tray or server as the integrator delivered it: the row of its manifest."""

    slot: Annotated[int, Field(gt=0, le=MAX_SLOT)] = Field(
        description="Position in the rack as the Plan numbers it (node n01 is slot 1)."
    )
    serial: Annotated[str, StringConstraints(pattern=SERIAL_PATTERN)]
    bmc_mac: Mac
    inband_mac: Mac = Field(description="The in-band NIC: the node boots and is reached through it.")
    storage_mac: Mac | None = None
    rail_macs: list[Mac] = Field(default_factory=list, description="One NIC per compute rail, rail 0 first.")


class RackManifest(Model):
    """`hardware/<rack>.yaml`: what arrived in one rack, slot by slot (an integrator's spreadsheet, one row a slot)."""

    rack: Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=60)]
    integrator: str = ""
    slots: list[SlotHardware] = Field(min_length=1)


class HardwareDocument(Model):
    hardware: RackManifest


class Campus(Model):
    """Everything the planner needs: the site, its catalog and its phases in build order."""

    site: Site
    catalog: Catalog
    phases: tuple[Phase, ...]
    hardware: tuple[RackManifest, ...] = ()

    def phase_index(self, name: str) -> int:
        for i, phase in enumerate(self.phases):
            if phase.name == name:
                return i
        known = ", ".join(p.name for p in self.phases)
        raise KeyError(f"no phase `{name}` in this environment (phases: {known})")
