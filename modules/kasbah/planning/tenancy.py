"""What a cluster holds: its namespaces (the system's, the platform's, its tenants') and, as a lookup view, its tenants' GPUs by pool.

The planner decides it once (`Plan.namespaces`, `Cluster.tenants`, `Plan.grants`, `Tenant.egress`);
`ClusterView` only indexes those facts for the projections that read them (manifests, components)
and computes nothing the Plan does not say. The verifier reads the same Plan facts directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kasbah.planning.model import Cluster, ClusterNamespace, Egress, Plan, Pool, Tenant
from kasbah.planning.platform import BOOTSTRAP, GITOPS

SYSTEM_NAMESPACE = "kube-system"
ADMIN_NAMESPACE = "kasbah-admin"
MONITORING_NAMESPACE = "monitoring"  # scrapes every namespace's metrics ports
# Namespaces the API server itself creates in every cluster. Nothing of the platform or of a tenant
# runs in them; kasbah owns no Namespace object for them, but holds each to default deny, so that a
# pod started there by mistake reaches nothing and is reached by nothing.
BUILTIN_NAMESPACES = ("default", "kube-public", "kube-node-lease")
# Platform namespaces and the Pod Security level their workloads need: the NVIDIA operators and
# node exporters run privileged DaemonSets; everything else is held to `restricted`.
PLATFORM_NAMESPACES = {
    ADMIN_NAMESPACE: "restricted",
    "kueue-system": "restricted",
    MONITORING_NAMESPACE: "privileged",
    "gpu-operator": "privileged",
    "network-operator": "privileged",
    "nvidia-dra-driver-gpu": "privileged",
}
SYSTEM, PLATFORM, TENANT = "system", "platform", "tenant"


def tenant_namespace(tenant: str) -> str:
    return f"tenant-{tenant}"


def cluster_namespaces(cluster: str, tenants: Iterable[str], controller: str) -> tuple[ClusterNamespace, ...]:
    """Every namespace of a cluster: the system's, the platform's, the GitOps controller's, one per tenant.

    The cluster stack applies the first three kinds (the platform's releases install into them);
    tenants' namespaces are in the GitOps tree, so a tenant arrives and leaves with the tree.
    """
    out = [ClusterNamespace(cluster, SYSTEM_NAMESPACE, SYSTEM, None, "privileged", BOOTSTRAP)]
    platform = {**PLATFORM_NAMESPACES, controller: "restricted"}  # Argo CD and Flux run under `restricted`
    out += [ClusterNamespace(cluster, name, PLATFORM, None, level, BOOTSTRAP) for name, level in platform.items()]
    out += [ClusterNamespace(cluster, tenant_namespace(t), TENANT, t, "restricted", GITOPS) for t in tenants]
    return tuple(out)


@dataclass(frozen=True)
class ClusterView:
    """One cluster's facts from the Plan, indexed for the projections that read them."""

    plan: Plan
    cluster: Cluster
    pools: tuple[Pool, ...]  # the cluster's pools with GPUs
    tenants: tuple[Tenant, ...]  # `cluster.tenants`, as Tenant records
    namespaces: tuple[ClusterNamespace, ...]
    quota: dict[tuple[str, str], int]  # (tenant, pool) -> nominal GPUs (`Plan.grants`)
    control_plane_ips: tuple[str, ...]
    egress: dict[str, tuple[Egress, ...]]  # tenant -> destinations (`Tenant.egress`)

    @property
    def version(self) -> str:
        return f"v{self.cluster.kubernetes_version}"

    def tenant_gpus(self, tenant: str) -> int:
        return sum(g for (t, _), g in self.quota.items() if t == tenant)

    def tenant_pools(self, tenant: str) -> tuple[Pool, ...]:
        """The GPU pools a tenant's pods may run on: its own (dedicated) first, then the shared ones (Kueue's order)."""
        return tuple(p for p in self.pools if p.tenant == tenant) + tuple(p for p in self.pools if not p.tenant)


def cluster_view(plan: Plan, cluster: Cluster) -> ClusterView:
    pools = tuple(p for p in plan.pools if p.cluster == cluster.name and p.gpus)
    by_name = {t.name: t for t in plan.tenants}
    tenants = tuple(by_name[t] for t in cluster.tenants)
    seats = set(cluster.control_plane)
    inband = {n.name: n.inband_ip for n in plan.nodes if n.name in seats}
    return ClusterView(
        plan,
        cluster,
        pools,
        tenants,
        tuple(ns for ns in plan.namespaces if ns.cluster == cluster.name),
        {(g.tenant, g.pool): g.gpus for g in plan.grants if g.cluster == cluster.name},
        tuple(inband[n] for n in cluster.control_plane),
        {t.name: plan.tenant_egress(t) for t in tenants},
    )
