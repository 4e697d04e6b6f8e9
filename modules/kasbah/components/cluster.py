"""A Kubernetes cluster in Pulumi: its operators as Helm releases, its tenants and its zero-trust policy, all from the rendered manifests.

Nothing here decides what an object says: `kasbah.rendering.kubernetes` renders each object
from the Plan (the same objects the GitOps tree holds) and these components only decide who
owns it in the resource graph and what it waits for. Objects become Pulumi resources one to one
(about 70-120 a cluster); per-node objects never do (nodes carry their labels and taints from
the kubelet configuration that node configuration writes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from kasbah.components.nodes import GpuNodePool, NodeConfigs, NodePoolArgs, NodeRun
from kasbah.planning.model import Plan
from kasbah.planning.tenancy import SYSTEM_NAMESPACE, ClusterView, cluster_view, tenant_namespace
from kasbah.rendering.kubernetes import cluster_files, helm_values

Obj = dict[str, Any]
NETWORK_POLICY_KINDS = frozenset({"NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"})


@dataclass(frozen=True)
class Chart:
    """Where a Helm chart comes from; a sovereign site points `repository` at its own mirror."""

    chart: str
    version: str
    namespace: str
    repository: str | None = None  # None: `chart` is an OCI reference
    crd_groups: tuple[str, ...] = ()  # API groups whose CRDs the chart installs


# Versions pinned here are the ones the rendered values were written for; override per stack
# with `kasbah:charts` (for example to a mirror) rather than editing them in place.
CHARTS: dict[str, Chart] = {
    "cilium": Chart("cilium", "1.18.3", SYSTEM_NAMESPACE, "https://helm.cilium.io", ("cilium.io",)),
    "kueue": Chart("oci://registry.k8s.io/kueue/charts/kueue", "0.14.3", "kueue-system", None, ("kueue.x-k8s.io",)),
    "gpu-operator": Chart(
        "gpu-operator", "v25.10.0", "gpu-operator", "https://helm.ngc.nvidia.com/nvidia", ("nvidia.com",)
    ),
    "network-operator": Chart(
        "network-operator", "25.4.0", "network-operator", "https://helm.ngc.nvidia.com/nvidia", ("mellanox.com",)
    ),
    "nvidia-dra-driver-gpu": Chart(
        "nvidia-dra-driver-gpu",
        "25.8.0",
        "nvidia-dra-driver-gpu",
        "https://helm.ngc.nvidia.com/nvidia",
        ("resource.nvidia.com",),
    ),
}


def charts_with(overrides: Mapping[str, Mapping[str, str]] | None) -> dict[str, Chart]:
    """The pinned charts with a stack's `kasbah:charts` overrides (keys: chart, version, repository)."""
    out = dict(CHARTS)
    for name, fields in (overrides or {}).items():
        if name not in out:
            raise ValueError(f"kasbah:charts.{name}: no such release; releases: {', '.join(sorted(out))}")
        unknown = set(fields) - {"chart", "version", "repository"}
        if unknown:
            raise ValueError(
                f"kasbah:charts.{name}: unknown key(s) {', '.join(sorted(unknown))}; use chart, version, repository"
            )
        base = out[name]
        out[name] = Chart(
            fields.get("chart", base.chart),
            fields.get("version", base.version),
            base.namespace,
            fields.get("repository", base.repository) or None,
            base.crd_groups,
        )
    return out


def type_token(obj: Obj) -> str:
    """pulumi-kubernetes' type token for an object (`kubernetes:core/v1:Namespace`)."""
    api = str(obj["apiVersion"])
    return f"kubernetes:{api if '/' in api else 'core/' + api}:{obj['kind']}"


def object_key(obj: Obj) -> str:
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else str(meta["name"])


class KubernetesObject(pulumi.CustomResource):
    """One rendered object, applied by pulumi-kubernetes (server-side apply) under its own type token."""

    def __init__(self, resource_name: str, obj: Obj, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {k: v for k, v in obj.items() if k != "status"}
        super().__init__(type_token(obj), resource_name, props, opts)


@dataclass
class _Placed:
    """A cluster's objects sorted by owner, and the resources created so far (for depends_on)."""

    tenants: dict[str, list[Obj]] = field(default_factory=dict)  # tenant -> objects (not policies)
    policies: list[Obj] = field(default_factory=list)
    platform: list[Obj] = field(default_factory=list)
    namespaces: dict[str, pulumi.Resource] = field(default_factory=dict)
    releases: dict[str, pulumi.Resource] = field(default_factory=dict)  # API group -> the release with its CRDs


def _place(view: ClusterView) -> _Placed:
    owner = {tenant_namespace(t.name): t.name for t in view.tenants}
    placed = _Placed(tenants={t.name: [] for t in view.tenants})
    for _path, objs in cluster_files(view):
        for obj in objs:
            meta = obj["metadata"]
            ns = meta.get("namespace") or (meta["name"] if obj["kind"] == "Namespace" else None)
            tenant = owner.get(ns or "") or (owner.get(meta["name"]) if obj["kind"] == "ClusterQueue" else None)
            if obj["kind"] in NETWORK_POLICY_KINDS:
                placed.policies.append(obj)
            elif tenant:
                placed.tenants[tenant].append(obj)
            else:
                placed.platform.append(obj)
    return placed


def _group(obj: Obj) -> str:
    api = str(obj["apiVersion"])
    return api.split("/")[0] if "/" in api else ""


def _create(
    prefix: str, objs: Iterable[Obj], placed: _Placed, parent: pulumi.Resource, provider: pulumi.ProviderResource
) -> dict[str, pulumi.Resource]:
    """Objects as resources that wait for their namespace and for the release that brings their CRD."""
    made: dict[str, pulumi.Resource] = {}
    for obj in objs:
        deps: list[pulumi.Resource] = []
        ns = obj["metadata"].get("namespace")
        if ns and ns in placed.namespaces:
            deps.append(placed.namespaces[ns])
        release = placed.releases.get(_group(obj))
        if release is not None:
            deps.append(release)
        stateful = obj["kind"] == "Namespace"
        res = KubernetesObject(
            f"{prefix}:{object_key(obj)}",
            obj,
            pulumi.ResourceOptions(
                parent=parent,
                provider=provider,
                depends_on=deps,
                # a namespace holds tenants' workloads and volumes; kube-system is the cluster's own
                protect=stateful,
                retain_on_delete=stateful and obj["metadata"]["name"] == SYSTEM_NAMESPACE,
            ),
        )
        if stateful:
            placed.namespaces[obj["metadata"]["name"]] = res
        made[f"{obj['kind']}:{object_key(obj)}"] = res
    return made


@dataclass(frozen=True)
class TenantArgs:
    """One tenant's part of one cluster."""

    tenant: str
    """The tenant's name in the Plan (its namespace is `tenant-<name>`)."""
    gpus: int
    """GPUs the tenant may use in this cluster: its Kueue nominal quota over every pool."""
    objects: Sequence[Obj]
    """The tenant's rendered objects: namespace, quota, limits, role bindings, queues."""


class Tenant(pulumi.ComponentResource):
    """A tenant's namespace with its quota, limits, role bindings and Kueue queues (policies are ZeroTrustPolicy's)."""

    namespace: pulumi.Output[str]
    gpus: pulumi.Output[int]

    def __init__(
        self,
        name: str,
        args: TenantArgs,
        placed: _Placed,
        provider: pulumi.ProviderResource,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kasbah:cluster:Tenant", name, None, opts)
        ns = tenant_namespace(args.tenant)
        kinds = {o["kind"] for o in args.objects}
        for needed in ("Namespace", "ResourceQuota", "LocalQueue"):
            if needed not in kinds:
                raise ValueError(f"tenant {args.tenant}: no {needed} rendered for {ns}; the rendering is incomplete")
        ordered = sorted(args.objects, key=lambda o: o["kind"] != "Namespace")  # the namespace first
        _create(name, ordered, placed, self, provider)
        self.namespace = pulumi.Output.from_input(ns)
        self.gpus = pulumi.Output.from_input(args.gpus)
        self.register_outputs({"namespace": self.namespace, "gpus": self.gpus})


@dataclass(frozen=True)
class ZeroTrustPolicyArgs:
    """A cluster's network policy."""

    policies: Sequence[Obj]
    """Every NetworkPolicy and Cilium policy the rendering made (default-deny first in each namespace)."""
    tenant_namespaces: Sequence[str]
    """Namespaces that must be default-deny; construction fails if one is not."""


def is_default_deny(obj: Obj) -> bool:
    """A NetworkPolicy that selects every pod and admits nothing in either direction."""
    spec = obj.get("spec") or {}
    return (
        obj.get("kind") == "NetworkPolicy"
        and spec.get("podSelector") == {}
        and sorted(spec.get("policyTypes") or []) == ["Egress", "Ingress"]
        and not spec.get("ingress")
        and not spec.get("egress")
    )


class ZeroTrustPolicy(pulumi.ComponentResource):
    """Default-deny in every namespace, the allow rules the Plan's flows need, and Cilium's cluster-wide guardrails."""

    default_deny: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        args: ZeroTrustPolicyArgs,
        placed: _Placed,
        provider: pulumi.ProviderResource,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kasbah:cluster:ZeroTrustPolicy", name, None, opts)
        denied = sorted({o["metadata"]["namespace"] for o in args.policies if is_default_deny(o)})
        missing = sorted(set(args.tenant_namespaces) - set(denied))
        if missing:
            raise ValueError(f"{name}: tenant namespace(s) {', '.join(missing)} have no default-deny NetworkPolicy")
        ordered = sorted(args.policies, key=lambda o: not is_default_deny(o))  # deny before allow
        _create(name, ordered, placed, self, provider)
        self.default_deny = pulumi.Output.from_input(denied)
        self.register_outputs({"default_deny": self.default_deny})


@dataclass(frozen=True)
class KubernetesClusterArgs:
    """One cluster of one phase."""

    plan: Plan
    """The phase's Plan; the cluster, its pools, tenants and manifests are read from it."""
    cluster: str
    """The cluster's name in the Plan."""
    kubeconfig: pulumi.Input[str]
    """Admin kubeconfig of the cluster's API server (a secret)."""
    nodes: NodeConfigs
    """Per-rack node configuration digests (shared with the site's pools)."""
    run: NodeRun
    """How node groups run the playbooks."""
    charts: Mapping[str, Chart] = field(default_factory=lambda: dict(CHARTS))
    """Where each Helm chart comes from (pinned versions; a mirror for a sovereign site)."""


class KubernetesCluster(pulumi.ComponentResource):
    """Node pools, operators (Helm), tenants and zero-trust policy of one cluster."""

    kubeconfig: pulumi.Output[str]
    gpus: pulumi.Output[int]
    nodes: pulumi.Output[int]
    tenants: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: KubernetesClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kasbah:cluster:KubernetesCluster", name, None, opts)
        clusters = {c.name: c for c in args.plan.clusters}
        if args.cluster not in clusters:
            raise ValueError(
                f"no cluster {args.cluster!r} in {args.plan.environment} {args.plan.phase}; "
                f"clusters: {', '.join(clusters) or 'none'}"
            )
        cluster = clusters[args.cluster]
        view = cluster_view(args.plan, cluster)
        child = pulumi.ResourceOptions(parent=self)
        for pool in (p for p in args.plan.pools if p.cluster == cluster.name):
            GpuNodePool(f"{name}-{pool.name}", NodePoolArgs(pool, args.nodes, args.run), child)

        provider = k8s.Provider(
            f"{name}-api",
            kubeconfig=args.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        placed = _place(view)
        # platform namespaces first: the releases install into them
        namespaces = [o for o in placed.platform if o["kind"] == "Namespace"]
        _create(name, namespaces, placed, self, provider)
        values = helm_values(view)
        for release in ("cilium", "kueue", "gpu-operator", "network-operator", "nvidia-dra-driver-gpu"):
            if release not in values:
                continue
            chart = args.charts[release]
            deps = [placed.namespaces[chart.namespace]] if chart.namespace in placed.namespaces else []
            if release != "cilium" and "cilium.io" in placed.releases:
                deps.append(placed.releases["cilium.io"])  # no pod starts before the CNI
            res = k8s.helm.v3.Release(
                f"{name}-{release}",
                k8s.helm.v3.ReleaseArgs(
                    name=release,
                    chart=chart.chart,
                    version=chart.version,
                    namespace=chart.namespace,
                    repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository) if chart.repository else None,
                    values=values[release],
                    atomic=True,
                    max_history=10,
                ),
                pulumi.ResourceOptions(parent=self, provider=provider, depends_on=deps),
            )
            for group in chart.crd_groups:
                placed.releases[group] = res
        _create(name, (o for o in placed.platform if o["kind"] != "Namespace"), placed, self, provider)
        tenants: dict[str, Any] = {}
        for t in view.tenants:
            gpus = view.tenant_gpus(t.name)
            Tenant(f"{name}-{t.name}", TenantArgs(t.name, gpus, placed.tenants[t.name]), placed, provider, child)
            tenants[t.name] = {"namespace": tenant_namespace(t.name), "gpus": gpus}
        ZeroTrustPolicy(
            f"{name}-zero-trust",
            ZeroTrustPolicyArgs(placed.policies, [tenant_namespace(t.name) for t in view.tenants]),
            placed,
            provider,
            child,
        )
        self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        self.gpus = pulumi.Output.from_input(cluster.gpus)
        self.nodes = pulumi.Output.from_input(cluster.nodes)
        self.tenants = pulumi.Output.from_input(tenants)
        self.register_outputs(
            {"kubeconfig": self.kubeconfig, "gpus": self.gpus, "nodes": self.nodes, "tenants": self.tenants}
        )
