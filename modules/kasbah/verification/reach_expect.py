"""What the reachability verifier is told a cluster should allow, built by the caller from the model.

Each tenant's outside destinations, the management plane and who may reach it, what each platform
namespace may reach, the connections between namespaces the platform needs, the tenants' published
endpoints and the ranges no pod may be reached from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kasbah.verification.reach_space import PORTED, PortSet

TENANT_LABEL = "kasbah.io/tenant"


@dataclass(frozen=True)
class Destination:
    """An outside destination a tenant's jurisdictions (or a platform namespace) may reach: a CIDR, ports, protocols."""

    name: str
    cidr: str
    ports: tuple[int, ...]
    protocols: tuple[str, ...] = ("TCP",)  # TCP, UDP, SCTP (any case)

    def __post_init__(self) -> None:
        unknown = [p for p in self.protocols if p.lower() not in PORTED]
        if unknown or not self.protocols:
            raise ValueError(f"destination {self.name}: protocols must be among TCP, UDP, SCTP, got {self.protocols!r}")


@dataclass(frozen=True)
class ManagementTarget:
    """Part of the management plane: its CIDRs, ports (None: all) and the Cilium entities that denote it."""

    name: str
    cidrs: tuple[str, ...]
    ports: tuple[int, ...] | None
    entities: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlatformAllowance:
    """What one non-tenant namespace may reach outside the cluster: management targets by name, other destinations."""

    management: frozenset[str] = frozenset()  # names of ManagementTargets, on their ports only
    external: tuple[Destination, ...] = ()


NO_ALLOWANCE = PlatformAllowance()


@dataclass(frozen=True)
class PodFlow:
    """A connection between pods of two namespaces the platform needs, on these ports only.

    `source` or `target` None: any namespace (a tenant's included). Flows inside one namespace and
    between two tenants are judged elsewhere (tenant isolation); every other flow between
    namespaces must be one of these, or the platform-access property fails.
    """

    name: str
    source: str | None
    target: str | None
    first: int
    last: int
    protocols: tuple[str, ...] = ("TCP",)

    def ports(self) -> PortSet:
        return PortSet.union_of(PortSet.of(p.lower(), self.first, self.last) for p in self.protocols)


@dataclass(frozen=True)
class Expectations:
    cluster: str
    tenants: Mapping[str, tuple[Destination, ...]]
    admin_networks: tuple[str, ...]
    admin_namespaces: frozenset[str]  # the admin zone: may reach every management target
    internal_cidrs: tuple[str, ...]
    management: tuple[ManagementTarget, ...]
    # non-tenant namespace -> what it may reach outside; a non-tenant namespace not listed may reach nothing
    platform: Mapping[str, PlatformAllowance] = field(default_factory=dict)
    # connections between namespaces the platform needs (DNS, metrics); None: not checked (older callers)
    pod_flows: tuple[PodFlow, ...] | None = None
    # the campus's own services outside the cluster (the site's resolvers, its Git servers): traffic a
    # platform pod relays there stays on site
    campus_services: tuple[str, ...] = ()
    # namespaces every cluster has whether or not the tree holds them (`default`...): in the proof all the same
    builtin_namespaces: tuple[str, ...] = ()
    # tenant -> the outside sources (and ports) its pods may accept connections from: a published
    # endpoint; None: not checked; a tenant not listed accepts nothing from outside the cluster
    tenant_ingress: Mapping[str, tuple[Destination, ...]] | None = None
    # ranges from which no pod may ever be reached (the BMC network): a row of their own
    no_initiate: tuple[str, ...] = ()
