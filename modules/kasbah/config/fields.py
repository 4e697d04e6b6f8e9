"""The parts every config model is built from: the base `Model`, name and value patterns with the
loader's help text for each, and the physical upper bound of every count and size."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
    field_validator,
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
