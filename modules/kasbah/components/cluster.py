"""A Kubernetes cluster in Pulumi: its node pools and its bootstrap, which hands every other object to GitOps.

One owner per object (DESIGN.md; planning.platform): this stack applies only what
`kasbah.rendering.kubernetes.platform_files` renders (the system and platform namespaces, the
GitOps controller's own network policies and its sync object, all annotated `kasbah.io/owner:
bootstrap`) and the platform's Helm releases with the charts the environment pins (`Plan.releases`).
Every other in-cluster object (tenants' namespaces, RBAC, quotas, policies, Kueue, the NVIDIA
custom resources) is the GitOps controller's: it syncs `clusters/<cluster>/` from the published
branch, and this stack never creates it, so no two appliers fight over one object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from kasbah.components.nodes import GpuNodePool, NodeConfigs, NodePoolArgs, NodeRun
from kasbah.components.provisioning import Day0
from kasbah.planning.model import Plan
from kasbah.planning.platform import BOOTSTRAP
from kasbah.planning.tenancy import SYSTEM_NAMESPACE, cluster_view, tenant_namespace
from kasbah.rendering.kubernetes import helm_values, owner_of, platform_files

Obj = dict[str, Any]


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


def bootstrap_objects(plan: Plan, cluster: str) -> list[Obj]:
    """What the cluster stack applies to one cluster, in order; each must say `kasbah.io/owner: bootstrap`."""
    c = next(x for x in plan.clusters if x.name == cluster)
    objs = [o for _, group in platform_files(cluster_view(plan, c)) for o in group]
    wrong = [object_key(o) for o in objs if owner_of(o) != BOOTSTRAP]
    if wrong:
        raise ValueError(
            f"cluster {cluster}: {', '.join(wrong)} are not the bootstrap's; the rendering is inconsistent"
        )
    return objs


@dataclass(frozen=True)
class KubernetesClusterArgs:
    """One cluster of one phase."""

    plan: Plan
    """The phase's Plan; the cluster, its pools, releases and bootstrap objects are read from it."""
    cluster: str
    """The cluster's name in the Plan."""
    kubeconfig: pulumi.Input[str]
    """Admin kubeconfig of the cluster's API server (a secret)."""
    nodes: NodeConfigs
    """Per-rack node configuration digests (shared with the site's pools)."""
    run: NodeRun
    """How node groups run the playbooks."""
    day0: Day0 | None = None
    """Each rack's provisioning through Ironic, before its node group (None: nodes are installed otherwise)."""


class KubernetesCluster(pulumi.ComponentResource):
    """Node pools, the platform's Helm releases and the GitOps controller's bootstrap of one cluster."""

    kubeconfig: pulumi.Output[str]
    gpus: pulumi.Output[int]
    nodes: pulumi.Output[int]
    tenants: pulumi.Output[dict[str, Any]]
    gitops: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: KubernetesClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kasbah:cluster:KubernetesCluster", name, None, opts)
        clusters = {c.name: c for c in args.plan.clusters}
        if args.cluster not in clusters:
            raise ValueError(
                f"no cluster {args.cluster!r} in {args.plan.environment} {args.plan.phase}; "
                f"clusters: {', '.join(clusters) or 'none'}"
            )
        cluster = clusters[args.cluster]
        gitops = args.plan.gitops
        if gitops is None:
            raise ValueError(f"{args.plan.phase}: the Plan names no GitOps controller; plan the phase again")
        view = cluster_view(args.plan, cluster)
        child = pulumi.ResourceOptions(parent=self)
        for pool in (p for p in args.plan.pools if p.cluster == cluster.name):
            GpuNodePool(f"{name}-{pool.name}", NodePoolArgs(pool, args.nodes, args.run, args.day0), child)

        provider = k8s.Provider(
            f"{name}-api",
            kubeconfig=args.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        objs = bootstrap_objects(args.plan, cluster.name)
        namespaces: dict[str, pulumi.Resource] = {}
        for obj in (o for o in objs if o["kind"] == "Namespace"):
            ns = obj["metadata"]["name"]
            namespaces[ns] = KubernetesObject(
                f"{name}:{object_key(obj)}",
                obj,
                pulumi.ResourceOptions(
                    parent=self,
                    provider=provider,
                    # a namespace holds workloads and volumes; kube-system is the cluster's own
                    protect=True,
                    retain_on_delete=ns == SYSTEM_NAMESPACE,
                ),
            )
        # the controller's own network policies before the controller: it starts behind them
        policies = [
            KubernetesObject(
                f"{name}:{object_key(o)}",
                o,
                pulumi.ResourceOptions(
                    parent=self, provider=provider, depends_on=[namespaces[o["metadata"]["namespace"]]]
                ),
            )
            for o in objs
            if o["kind"] == "NetworkPolicy"
        ]
        values = helm_values(view)
        releases: list[pulumi.Resource] = []
        cni: pulumi.Resource | None = None
        for r in (r for r in args.plan.releases if r.cluster == cluster.name):
            deps: list[pulumi.Resource] = [namespaces[r.namespace]] if r.namespace in namespaces else []
            if cni is not None:
                deps.append(cni)  # no pod starts before the CNI
            if r.namespace == gitops.namespace:
                deps += policies
            res = k8s.helm.v3.Release(
                f"{name}-{r.name}",
                k8s.helm.v3.ReleaseArgs(
                    name=r.name,
                    chart=r.chart,
                    version=r.version,
                    namespace=r.namespace,
                    repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=r.repository) if r.repository else None,
                    values=values.get(r.name, {}),
                    atomic=True,
                    max_history=10,
                ),
                pulumi.ResourceOptions(parent=self, provider=provider, depends_on=deps),
            )
            releases.append(res)
            if r.name == "cilium":
                cni = res
        # the sync object last: the controller then applies clusters/<cluster>/, whose objects need
        # every release's CRDs
        for o in (o for o in objs if o["kind"] not in ("Namespace", "NetworkPolicy")):
            KubernetesObject(
                f"{name}:{object_key(o)}",
                o,
                pulumi.ResourceOptions(parent=self, provider=provider, depends_on=releases),
            )
        tenants = {
            t.name: {
                "namespace": tenant_namespace(t.name),
                "gpus": view.tenant_gpus(t.name),
                # a tenancy change's state: onboarded by which change, and how far its offboarding went
                "since": t.since or t.phase,
                "state": f"offboarding ({t.offboarded} removed)" if t.offboarded else "active",
            }
            for t in view.tenants
        }
        self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        self.gpus = pulumi.Output.from_input(cluster.gpus)
        self.nodes = pulumi.Output.from_input(cluster.nodes)
        self.tenants = pulumi.Output.from_input(tenants)
        self.gitops = pulumi.Output.from_input(
            {
                "controller": gitops.controller,
                "repository": gitops.repository,
                "branch": gitops.branch,
                "path": cluster.gitops_path,
            }
        )
        self.register_outputs(
            {
                "kubeconfig": self.kubeconfig,
                "gpus": self.gpus,
                "nodes": self.nodes,
                "tenants": self.tenants,
                "gitops": self.gitops,
            }
        )
