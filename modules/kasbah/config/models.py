"""Pydantic models of the campus description: site, catalog, phases, pools, clusters, tenants.

The models live by what they describe: `fields` (the base model, patterns, bounds), `catalog`
(switches, rack and hall profiles), `site` (jurisdictions, addressing, platform, provisioning,
backups), `phases` (halls, pools, clusters, tenants and their changes) and `hardware` (rack
manifests). This module holds `Campus`, the whole description, and keeps every name importable here.
"""

from __future__ import annotations

from kasbah.config.catalog import (
    BiosValue,
    BmcSpec,
    Catalog,
    Cooling,
    HallProfile,
    NetworkRacks,
    NvlinkDomain,
    NvlinkSpec,
    RackKind,
    RackProfile,
    Redundancy,
    SwitchModel,
    UnitGroup,
    breakout_radix,
)
from kasbah.config.fields import (
    BIOS_ATTRIBUTE_PATTERN,
    BRANCH_PATTERN,
    CHART_VERSION_PATTERN,
    CHECKSUM_PATTERN,
    DOMAIN_PATTERN,
    DRIVER_VERSION_PATTERN,
    IMAGE_KIND_PATTERN,
    KUBERNETES_MINOR_PATTERN,
    MAC_PATTERN,
    MAX_AIR_RACK_KW,
    MAX_BREAKOUT,
    MAX_CPUS_PER_NODE,
    MAX_FABRICS,
    MAX_GPU_QUOTA,
    MAX_GPUS_PER_NODE,
    MAX_HALL_MW,
    MAX_HALL_ROWS,
    MAX_HALLS,
    MAX_NIC_GBPS,
    MAX_NICS_PER_NODE,
    MAX_NODES_PER_RACK,
    MAX_OOB_EXTRA,
    MAX_PORT_GBPS,
    MAX_RACK_KG,
    MAX_RACK_KW,
    MAX_RACKS,
    MAX_RAILS,
    MAX_ROW_POSITIONS,
    MAX_SITE_MW,
    MAX_SLOT,
    MAX_SU_PER_HALL,
    MAX_SU_RACKS,
    MAX_SWITCH_PORTS,
    MAX_SWITCH_W,
    MAX_SWITCHES_PER_FABRIC,
    MAX_UNIT_MW,
    MAX_UNITS,
    MIRROR_URL_PATTERN,
    NAME_PATTERN,
    PATTERN_HELP,
    REDFISH_SYSTEM_PATTERN,
    SCHEME_PATTERN,
    SERIAL_PATTERN,
    UPSTREAM_NODE_LIMIT,
    UPSTREAM_PODS_PER_NODE,
    IPNetwork,
    Model,
    Name,
)
from kasbah.config.hardware import (
    HardwareDocument,
    Mac,
    RackManifest,
    SlotHardware,
)
from kasbah.config.phases import (
    ClusterSpec,
    ClusterUpgrade,
    ControlPlane,
    Decommission,
    DecommissionKind,
    Expansions,
    FabricDesign,
    HallSpec,
    Offboarding,
    OffboardStep,
    Phase,
    PhaseDocument,
    Placement,
    PoolExpansion,
    PoolPurpose,
    PoolSpec,
    QuotaChange,
    Rollout,
    TenancyChange,
    TenancyDocument,
    TenantKind,
    TenantSpec,
)
from kasbah.config.site import (
    Addressing,
    AdminZone,
    Backups,
    BackupTarget,
    ChartSource,
    Destination,
    EtcdBackups,
    FabricDefaults,
    GitOps,
    GitOpsController,
    Identity,
    Issuer,
    Jurisdiction,
    Kms,
    Mirror,
    MirrorKind,
    Network,
    NodeImage,
    Platform,
    PodNetwork,
    Provisioning,
    Reservations,
    ServiceNetwork,
    Sink,
    SinkKind,
    SinkScope,
    Site,
    SiteDocument,
    Storage,
)

__all__ = [
    "BIOS_ATTRIBUTE_PATTERN",
    "BRANCH_PATTERN",
    "CHART_VERSION_PATTERN",
    "CHECKSUM_PATTERN",
    "DOMAIN_PATTERN",
    "DRIVER_VERSION_PATTERN",
    "IMAGE_KIND_PATTERN",
    "KUBERNETES_MINOR_PATTERN",
    "MAC_PATTERN",
    "MAX_AIR_RACK_KW",
    "MAX_BREAKOUT",
    "MAX_CPUS_PER_NODE",
    "MAX_FABRICS",
    "MAX_GPUS_PER_NODE",
    "MAX_GPU_QUOTA",
    "MAX_HALLS",
    "MAX_HALL_MW",
    "MAX_HALL_ROWS",
    "MAX_NICS_PER_NODE",
    "MAX_NIC_GBPS",
    "MAX_NODES_PER_RACK",
    "MAX_OOB_EXTRA",
    "MAX_PORT_GBPS",
    "MAX_RACKS",
    "MAX_RACK_KG",
    "MAX_RACK_KW",
    "MAX_RAILS",
    "MAX_ROW_POSITIONS",
    "MAX_SITE_MW",
    "MAX_SLOT",
    "MAX_SU_PER_HALL",
    "MAX_SU_RACKS",
    "MAX_SWITCHES_PER_FABRIC",
    "MAX_SWITCH_PORTS",
    "MAX_SWITCH_W",
    "MAX_UNITS",
    "MAX_UNIT_MW",
    "MIRROR_URL_PATTERN",
    "NAME_PATTERN",
    "PATTERN_HELP",
    "REDFISH_SYSTEM_PATTERN",
    "SCHEME_PATTERN",
    "SERIAL_PATTERN",
    "UPSTREAM_NODE_LIMIT",
    "UPSTREAM_PODS_PER_NODE",
    "Addressing",
    "AdminZone",
    "BackupTarget",
    "Backups",
    "BiosValue",
    "BmcSpec",
    "Campus",
    "Catalog",
    "ChartSource",
    "ClusterSpec",
    "ClusterUpgrade",
    "ControlPlane",
    "Cooling",
    "Decommission",
    "DecommissionKind",
    "Destination",
    "EtcdBackups",
    "Expansions",
    "FabricDefaults",
    "FabricDesign",
    "GitOps",
    "GitOpsController",
    "HallProfile",
    "HallSpec",
    "HardwareDocument",
    "IPNetwork",
    "Identity",
    "Issuer",
    "Jurisdiction",
    "Kms",
    "Mac",
    "Mirror",
    "MirrorKind",
    "Model",
    "Name",
    "Network",
    "NetworkRacks",
    "NodeImage",
    "NvlinkDomain",
    "NvlinkSpec",
    "OffboardStep",
    "Offboarding",
    "Phase",
    "PhaseDocument",
    "Placement",
    "Platform",
    "PodNetwork",
    "PoolExpansion",
    "PoolPurpose",
    "PoolSpec",
    "Provisioning",
    "QuotaChange",
    "RackKind",
    "RackManifest",
    "RackProfile",
    "Redundancy",
    "Reservations",
    "Rollout",
    "ServiceNetwork",
    "Sink",
    "SinkKind",
    "SinkScope",
    "Site",
    "SiteDocument",
    "SlotHardware",
    "Storage",
    "SwitchModel",
    "TenancyChange",
    "TenancyDocument",
    "TenantKind",
    "TenantSpec",
    "UnitGroup",
    "breakout_radix",
]


class Campus(Model):
    """Everything the planner needs: the site, its catalog and its phases in build order."""

    site: Site
    catalog: Catalog
    phases: tuple[Phase, ...]
    hardware: tuple[RackManifest, ...] = ()
    tenancy: tuple[TenancyChange, ...] = ()  # tenancy.yaml's changes, in order

    def phase_index(self, name: str) -> int:
        for i, phase in enumerate(self.phases):
            if phase.name == name:
                return i
        known = ", ".join(p.name for p in self.phases)
        raise KeyError(f"no phase `{name}` in this environment (phases: {known})")

    def target(self, name: str) -> tuple[int, str | None, bool]:
        """What a plan target names: (phase index, tenancy change or None, the phase as built only).

        A phase: the phase with every tenancy change on top of it; `<phase>@built`: without them; a change's name:
        its phase with the changes up to that one.
        """
        built = name.endswith("@built")
        phase = name.removesuffix("@built")
        for change in self.tenancy:
            if not built and change.name == name:
                return self.phase_index(change.after), change.name, False
        try:
            return self.phase_index(phase), None, built
        except KeyError:
            phases = ", ".join(p.name for p in self.phases)
            changes = f"; tenancy changes: {', '.join(c.name for c in self.tenancy)}" if self.tenancy else ""
            raise KeyError(
                f"no phase `{name}` in this environment (phases: {phases}{changes}; "
                "`<phase>@built`: a phase without its tenancy changes)"
            ) from None
