"""Kubernetes manifests of one cluster of a phase: tenancy, Kueue, NVIDIA operators, zero-trust policy, the platform.

Two trees per cluster, one per owner (planning.platform, DESIGN.md "One owner per object"):

* `clusters/<cluster>/`: what the GitOps controller syncs (tenants' namespaces, RBAC, quotas, network
  policies, Cilium guardrails, Kueue, the NVIDIA custom resources). It is all the published branch holds.
* `bootstrap/<cluster>/platform/`: what the cluster stack applies before the controller runs (the
  system and platform namespaces, the controller's own network policies, its sync object) and the
  Helm releases with their pinned charts and values.

Every object says its owner in the `kasbah.io/owner` annotation; the verifier and the stacks check it.

A module a rendered file or directory; this one lays the two trees out:

    clusters/<cluster>/                   bootstrap/<cluster>/platform/
      namespaces.yaml        namespaces     namespaces.yaml           namespaces
      rbac.yaml              rbac           network-policies/<ns>     network_policies
      quotas.yaml            quotas         gitops.yaml               gitops
      network-policies/<ns>  network_policies  releases.yaml,
      cilium/guardrails.yaml cilium           helm-values/<release>   releases
      kueue/kueue.yaml       kueue
      nvidia/nvidia.yaml     nvidia
      node-pools.yaml        node_pools     (objects: what they all share)

The builders keep their names here (`kueue`, `nvidia`, `network_policies`, ...), so from this package a
name such as `kueue` is the function, not its module: import a module's other names from the module
(`from kasbah.rendering.kubernetes.kueue import KUEUE`).
"""

from __future__ import annotations

from collections.abc import Iterator

from kasbah.planning.model import Plan
from kasbah.planning.platform import BOOTSTRAP, GITOPS
from kasbah.planning.tenancy import ClusterView, cluster_view
from kasbah.rendering.kubernetes.admission import admission
from kasbah.rendering.kubernetes.cilium import CILIUM_NAMESPACE, CILIUM_NS_LABEL, cilium_guardrails
from kasbah.rendering.kubernetes.gitops import GIT_CREDENTIALS, GIT_REPOSITORY, sync_objects
from kasbah.rendering.kubernetes.kueue import COHORT, KUEUE, KUEUE_TOPOLOGY, LOCAL_QUEUE, TOPOLOGY_NAME, kueue
from kasbah.rendering.kubernetes.namespaces import ZONE, namespaces
from kasbah.rendering.kubernetes.network_policies import network_policies
from kasbah.rendering.kubernetes.node_pools import node_pools
from kasbah.rendering.kubernetes.nvidia import (
    DCGM_HOSTENGINE,
    RDMA_SHARED_DEVICES,
    compute_domains,
    nvidia,
    nvl72_pools,
)
from kasbah.rendering.kubernetes.objects import (
    GPU,
    OWNER,
    RULE,
    WAVE,
    Obj,
    dump,
    gitops_of,
    kustomization,
    owned,
    owner_of,
)
from kasbah.rendering.kubernetes.quotas import quotas
from kasbah.rendering.kubernetes.rbac import DEVELOPER_ROLE, rbac
from kasbah.rendering.kubernetes.releases import cluster_releases, gpu_operator_values, helm_values, releases
from kasbah.rendering.kubernetes.storage import storage_classes

__all__ = [
    "CILIUM_NAMESPACE",
    "CILIUM_NS_LABEL",
    "COHORT",
    "DCGM_HOSTENGINE",
    "DEVELOPER_ROLE",
    "GIT_CREDENTIALS",
    "GIT_REPOSITORY",
    "GPU",
    "KUEUE",
    "KUEUE_TOPOLOGY",
    "LOCAL_QUEUE",
    "OWNER",
    "PLATFORM_DIR",
    "RDMA_SHARED_DEVICES",
    "RULE",
    "TOPOLOGY_NAME",
    "WAVE",
    "ZONE",
    "Obj",
    "admission",
    "cilium_guardrails",
    "cluster_files",
    "compute_domains",
    "dump",
    "gpu_operator_values",
    "helm_values",
    "kueue",
    "namespaces",
    "network_policies",
    "node_pools",
    "nvidia",
    "nvl72_pools",
    "owned",
    "owner_of",
    "platform_files",
    "quotas",
    "rbac",
    "render_cluster",
    "render_clusters",
    "render_platform",
    "storage_classes",
    "sync_objects",
]

PLATFORM_DIR = "platform"  # bootstrap/<cluster>/platform/


def cluster_files(view: ClusterView) -> Iterator[tuple[str, list[Obj]]]:
    """Manifest files of the cluster's GitOps tree, in apply order: what the GitOps controller owns."""
    controller_ns = gitops_of(view).namespace
    yield "namespaces.yaml", owned(namespaces(view, GITOPS), GITOPS)
    yield "rbac.yaml", owned(rbac(view), GITOPS)
    yield "quotas.yaml", owned(quotas(view), GITOPS)
    classes = storage_classes(view)
    if classes:
        yield "storage.yaml", owned(classes, GITOPS)
    if view.tenants:
        yield "admission.yaml", owned(admission(view), GITOPS)
    for ns, objs in network_policies(view).items():
        if ns != controller_ns:
            yield f"network-policies/{ns}.yaml", owned(objs, GITOPS)
    yield "cilium/guardrails.yaml", owned(cilium_guardrails(view), GITOPS)
    yield "kueue/kueue.yaml", owned(kueue(view), GITOPS)
    nv = nvidia(view)
    if nv:
        yield "nvidia/nvidia.yaml", owned(nv, GITOPS)


def platform_files(view: ClusterView) -> Iterator[tuple[str, list[Obj]]]:
    """Manifest files the cluster stack applies before the GitOps controller runs, in apply order.

    The system and platform namespaces (the releases install into them), the controller's own
    namespace's network policies (a sync can never cut the controller off its source or the API
    server), then its sync object, which needs the controller's CRDs (after the releases).
    """
    controller_ns = gitops_of(view).namespace
    yield "namespaces.yaml", owned(namespaces(view, BOOTSTRAP), BOOTSTRAP)
    yield f"network-policies/{controller_ns}.yaml", owned(network_policies(view)[controller_ns], BOOTSTRAP)
    yield "gitops.yaml", owned(sync_objects(view), BOOTSTRAP)


def render_cluster(view: ClusterView) -> dict[str, bytes]:
    """The cluster's GitOps tree (clusters/<cluster>/)."""
    files: dict[str, bytes] = {}
    for path, objs in cluster_files(view):
        files[path] = dump(objs)
    files["kustomization.yaml"] = kustomization(list(files))
    files["node-pools.yaml"] = dump([node_pools(view)])
    return files


def render_platform(view: ClusterView) -> dict[str, bytes]:
    """The cluster's bootstrap platform (bootstrap/<cluster>/platform/): objects, releases, their values."""
    files: dict[str, bytes] = {}
    for path, objs in platform_files(view):
        files[path] = dump(objs)
    files["kustomization.yaml"] = kustomization(list(files))
    values = helm_values(view)
    files["releases.yaml"] = dump([releases(view)])
    for r in cluster_releases(view):
        files[f"helm-values/{r.name}.yaml"] = dump([values.get(r.name, {})])
    return files


def render_clusters(plan: Plan) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Every cluster's GitOps tree (under clusters/) and bootstrap platform (under bootstrap/)."""
    trees: dict[str, bytes] = {}
    platforms: dict[str, bytes] = {}
    for c in plan.clusters:
        view = cluster_view(plan, c)
        for path, data in render_cluster(view).items():
            trees[f"{c.name}/{path}"] = data
        for path, data in render_platform(view).items():
            platforms[f"{c.name}/{PLATFORM_DIR}/{path}"] = data
    return trees, platforms
