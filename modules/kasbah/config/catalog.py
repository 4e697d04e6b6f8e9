"""The catalog: switch models, rack profiles (what a rack holds, draws and how its BMCs speak) and hall profiles."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import (
    Field,
    PlainValidator,
    StringConstraints,
    model_validator,
)

from kasbah.config.fields import (
    BIOS_ATTRIBUTE_PATTERN,
    DRIVER_VERSION_PATTERN,
    MAX_BREAKOUT,
    MAX_CPUS_PER_NODE,
    MAX_GPUS_PER_NODE,
    MAX_HALL_MW,
    MAX_HALL_ROWS,
    MAX_NIC_GBPS,
    MAX_NICS_PER_NODE,
    MAX_NODES_PER_RACK,
    MAX_OOB_EXTRA,
    MAX_PORT_GBPS,
    MAX_RACK_KG,
    MAX_RACK_KW,
    MAX_RACKS,
    MAX_ROW_POSITIONS,
    MAX_SU_RACKS,
    MAX_SWITCH_PORTS,
    MAX_SWITCH_W,
    MAX_UNIT_MW,
    MAX_UNITS,
    REDFISH_SYSTEM_PATTERN,
    SCHEME_PATTERN,
    Model,
    Name,
)


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


def _bios_value(value: object) -> bool | int | str:
    if isinstance(value, bool | int) or (isinstance(value, str) and 0 < len(value) <= 128 and value.isprintable()):
        return value
    raise ValueError(
        f"`{value!r}` is not a BIOS value; fix: write one value as the BMC's attribute registry lists it: "
        "a word (Enabled), a number or true/false"
    )


BiosValue = Annotated[bool | int | str, PlainValidator(_bios_value)]


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
