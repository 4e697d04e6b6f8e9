"""A build phase: its halls, pools, clusters and tenants, their expansions, upgrades and decommissions."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
)

from kasbah.config.fields import (
    KUBERNETES_MINOR_PATTERN,
    MAX_GPU_QUOTA,
    MAX_RACKS,
    MAX_SITE_MW,
    UPSTREAM_NODE_LIMIT,
    UPSTREAM_PODS_PER_NODE,
    Model,
    Name,
)


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


class DecommissionKind(StrEnum):
    HALL = "hall"
    POOL = "pool"
    RACK = "rack"
    CLUSTER = "cluster"
    TENANT = "tenant"


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
    issuer: Name | None = Field(
        default=None,
        description="The tenant's identity provider (a site.identity.issuers entry); unset: no users log in "
        "(an operator tenant's administrators use site.identity.admin_issuer).",
    )
    sinks: list[Name] = Field(
        default_factory=list,
        description="Sinks of scope `tenant` (site.sinks) that receive this tenant's logs or usage series, "
        "besides the platform's.",
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


class OffboardStep(StrEnum):
    """The steps of an offboarding, in the order they must be declared: access, then workloads, then data."""

    ACCESS = "access"  # its users can no longer log in or reach its namespaces (bindings and issuer mapping gone)
    WORKLOADS = "workloads"  # its queue holds and drains: running workloads are evicted, nothing new starts
    DATA = "data"  # its namespaces (and what they hold) are deleted; its name is retired, never reused

    @property
    def order(self) -> int:
        return list(OffboardStep).index(self)


class Offboarding(Model):
    tenant: Name
    step: OffboardStep
    reason: Annotated[str, StringConstraints(min_length=3)]


class TenancyChange(Model):
    """A declared change of tenancy between construction phases: tenants onboarded, quotas changed, offboarding
    steps. It applies on top of the phase it names, after that phase's own declarations and the changes above it."""

    name: Name = Field(description="Unique among phases and changes: a plan target (`kasbah plan <name>`).")
    after: Name = Field(description="The construction phase it applies on top of.")
    description: str = ""
    onboard: list[TenantSpec] = Field(default_factory=list)
    quotas: list[QuotaChange] = Field(
        default_factory=list, description="New GPU quotas: a tenancy change may lower one (the grants shrink)."
    )
    offboard: list[Offboarding] = Field(default_factory=list)


class TenancyDocument(Model):
    """`tenancy.yaml`: the tenancy changes, in the order they were made."""

    changes: list[TenancyChange] = Field(default_factory=list)
