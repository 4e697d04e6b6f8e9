"""kubeadm bootstrap configuration per cluster: init, per-pool kubelet settings, and join files per rack.

Layout (paths relative to the output directory), for each cluster:

* `<cluster>/kubeadm-init.yaml`: InitConfiguration + ClusterConfiguration (kubeadm.k8s.io/v1beta4)
  + the cluster-wide KubeletConfiguration baseline, for the first control-plane node.
* `<cluster>/kubelet-<pool>.yaml`: the pool's KubeletConfiguration (kubelet.config.k8s.io/v1beta1),
  installed by the role as a kubeadm `kubeletconfiguration` patch on the pool's nodes.
* `<cluster>/join/<rack>.yaml`: one JoinConfiguration per rack and distinct (labels, taints): the
  nodes of an NVL72 rack share them all. Where they differ within a rack (an NVLink domain per
  node, a control-plane node beside others) each group is named after its first node instead.
* `<cluster>/join/index.json`: which join file each node uses.

Labels and taints come from planning.labels. Taints are registered through kubeadm's
`nodeRegistration.taints` (kubeadm passes them to the kubelet as `--register-with-taints`), not the
KubeletConfiguration's `registerWithTaints` (there since Kubernetes 1.23): the taints differ per
join group while the kubelet file is per pool, and kubeadm's own default (the control-plane taint on
`init`) stays visible in the same place.

No secrets: the bootstrap token, CA certificate hash and certificate key are the placeholders
`${KUBEADM_TOKEN}`, `${KUBEADM_CA_CERT_HASH}`, `${KUBEADM_CERTIFICATE_KEY}`; the Kubernetes patch
release is `${KUBERNETES_PATCH}` (kubeadm needs a full version; the Plan fixes the minor, the role
pins the patch it installs). The Ansible role substitutes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import jinja2

from kasbah.planning.identity import cluster_issuers
from kasbah.planning.labels import NodeView, Taint, cluster_nodes, node_labels, registration_taints
from kasbah.planning.model import Cluster, Node, Plan, Pool
from kasbah.rendering.authentication import PATH as AUTHENTICATION_PATH
from kasbah.rendering.authentication import authentication_config
from kasbah.rendering.encryption import PATH as ENCRYPTION_PATH
from kasbah.rendering.encryption import encryption_config
from kasbah.rendering.templates import new_environment

CRI_SOCKET = "unix:///run/containerd/containerd.sock"
PATCHES_DIR = "/etc/kubernetes/kasbah/patches"
PLACEHOLDERS = ("${KUBEADM_TOKEN}", "${KUBEADM_CA_CERT_HASH}", "${KUBEADM_CERTIFICATE_KEY}", "${KUBERNETES_PATCH}")


@dataclass(frozen=True, slots=True)
class Reserved:
    """Resources a pool's kubelet keeps from pods."""

    why: str
    kube_cpu: str
    kube_memory: str
    kube_storage: str
    system_cpu: str
    system_memory: str
    eviction_memory: str


def reserved(pool: Pool, max_pods: int) -> Reserved:
    # kube-reserved memory: 255 MiB + 11 MiB a pod, the Amazon EKS AMI's formula; GPU nodes keep
    # more for the host's GPU stack. Parameters, not measurements: revise with real node profiles.
    kube_memory = f"{255 + 11 * max_pods}Mi"
    if pool.gpus:
        return Reserved(
            "GPU node: the driver, fabric manager, IMEX, DCGM and DPU agents run outside pods",
            "1", kube_memory, "10Gi", "2", "8Gi", "2Gi",
        )  # fmt: skip
    return Reserved("CPU node", "500m", kube_memory, "10Gi", "1", "4Gi", "1Gi")


@dataclass(frozen=True, slots=True)
class JoinGroup:
    """Nodes that join with the same configuration."""

    name: str  # the file's stem: the rack, or the group's first node
    pool: str
    nodes: tuple[str, ...]
    node_labels: str  # --node-labels value
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    control_plane: bool
    advertise_address: str | None  # control-plane joins only: one node a group


def _labels_flag(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def cluster_views(plan: Plan) -> dict[str, list[NodeView]]:
    """Every cluster's nodes in one pass (planning.labels.cluster_nodes, for all clusters at once)."""
    racks = {r.name: r for r in plan.racks}
    pools = {p.name: p for p in plan.pools}
    out: dict[str, list[NodeView]] = {c.name: [] for c in plan.clusters}
    for n in plan.nodes:
        if n.cluster is not None:
            out.setdefault(n.cluster, []).append(NodeView(n, racks[n.rack], pools[n.pool]))
    return out


def join_groups(plan: Plan, cluster: Cluster, views: list[NodeView] | None = None) -> list[JoinGroup]:
    """The cluster's nodes, but the first control-plane node, grouped by rack and (labels, taints)."""
    init = cluster.control_plane[0] if cluster.control_plane else None
    # per rack: [first node, labels, taints, members]; control-plane nodes join alone (own address)
    by_rack: dict[str, list[tuple[Node, dict[str, str], tuple[Taint, ...], list[str]]]] = {}
    for view in cluster_nodes(plan, cluster.name) if views is None else views:
        n = view.node
        if n.name == init:
            continue
        labels = node_labels(plan.site, n, view.rack, view.pool)
        taints = registration_taints(n, view.pool)
        groups = by_rack.setdefault(n.rack, [])
        if n.role != "control-plane":
            same = next(
                (
                    g
                    for g in groups
                    if g[0].role != "control-plane" and g[0].pool == n.pool and g[1] == labels and g[2] == taints
                ),
                None,
            )
            if same is not None:
                same[3].append(n.name)
                continue
        groups.append((n, labels, taints, [n.name]))
    out: list[JoinGroup] = []
    for rack, groups in by_rack.items():
        for first, labels, taints, members in groups:
            cp = first.role == "control-plane"
            out.append(
                JoinGroup(
                    name=rack if len(groups) == 1 else first.name,
                    pool=first.pool,
                    nodes=tuple(members),
                    node_labels=_labels_flag(labels),
                    labels=labels,
                    taints=taints,
                    control_plane=cp,
                    advertise_address=first.inband_ip if cp else None,
                )
            )
    return out


def _quote(value: object) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is YAML's); no HTML escaping, unlike `tojson`."""
    return json.dumps(str(value))


@cache
def _environment() -> jinja2.Environment:
    env = new_environment()
    env.filters["q"] = _quote
    return env


def _template(name: str) -> jinja2.Template:
    return _environment().get_template(f"bootstrap/{name}")


def render_cluster(plan: Plan, cluster: Cluster, views: list[NodeView] | None = None) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    views = cluster_nodes(plan, cluster.name) if views is None else views
    if not views:
        return out
    trusted = cluster_issuers(plan, cluster)
    common = {
        "plan": plan,
        "cluster": cluster,
        "endpoint": cluster.api_endpoint,
        "api_host": cluster.api_host,
        "api_port": cluster.api_port,
        "cri_socket": CRI_SOCKET,
        "patches_dir": PATCHES_DIR,
        "authentication_config": AUTHENTICATION_PATH if trusted else None,
        "encryption_config": ENCRYPTION_PATH if plan.kms else None,
        "kms_socket_dir": plan.kms.socket.rsplit("/", 1)[0] if plan.kms else None,
    }
    by_name = {v.node.name: v for v in views}
    if cluster.control_plane:
        first = by_name[cluster.control_plane[0]]
        labels = node_labels(plan.site, first.node, first.rack, first.pool)
        group = JoinGroup(
            first.node.rack, first.node.pool, (first.node.name,), _labels_flag(labels), labels,
            registration_taints(first.node, first.pool), True, first.node.inband_ip,
        )  # fmt: skip
        text = _template("kubeadm-init.yaml.j2").render(common, init_node=first.node, group=group)
        out[f"{cluster.name}/kubeadm-init.yaml"] = text.encode()
    pools = {v.pool.name: v.pool for v in views}
    if trusted:
        out[f"{cluster.name}/authentication.yaml"] = authentication_config(trusted)
    if plan.kms is not None:
        out[f"{cluster.name}/encryption.yaml"] = encryption_config(plan.kms)
    kubelet = _template("kubelet.yaml.j2")
    for name in sorted(pools):
        text = kubelet.render(common, pool=pools[name], reserved=reserved(pools[name], cluster.max_pods_per_node))
        out[f"{cluster.name}/kubelet-{name}.yaml"] = text.encode()
    join = _template("join.yaml.j2")
    index: dict[str, str] = {}
    for g in join_groups(plan, cluster, views):
        path = f"join/{g.name}.yaml"
        out[f"{cluster.name}/{path}"] = join.render(common, group=g).encode()
        index.update(dict.fromkeys(g.nodes, path))
    out[f"{cluster.name}/join/index.json"] = (json.dumps(index, indent=0, sort_keys=True) + "\n").encode()
    return out


def render_bootstrap(plan: Plan) -> dict[str, bytes]:
    """kubeadm init, kubelet and join configuration for every cluster of the phase."""
    out: dict[str, bytes] = {}
    views = cluster_views(plan)
    for cluster in plan.clusters:
        out.update(render_cluster(plan, cluster, views[cluster.name]))
    return out
