"""A kind cluster shaped like a Plan's cluster: one kind node per Plan node, labelled and tainted as
the Plan registers it (`planning.labels`, the same definition the kubelet configurations use).

Labels go in kind's per-node `labels`; taints through a kubeadm patch of the node's
`nodeRegistration.taints`, which is how kubeadm registers them on real nodes too (see
`rendering/bootstrap.py`). The pod and service ranges are the Plan's, so the rendered policies'
address blocks mean the same thing on kind. kind's default CNI stays on: previews and applies
only need the API server; to enforce the Cilium policies, set `disableDefaultCNI: true` and
install Cilium with the tree's `bootstrap/<cluster>/platform/helm-values/cilium.yaml`.
"""

from __future__ import annotations

from ipaddress import ip_network

import yaml

from kasbah.planning.labels import cluster_nodes, node_labels, registration_taints
from kasbah.planning.model import Plan


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the kubeadm patches) as literal blocks, the way kind's docs write them."""


_Dumper.add_representer(
    str,
    lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None),
)


def kind_config(plan: Plan, cluster: str, max_nodes: int = 12, image: str | None = None) -> str:
    c = next(c for c in plan.clusters if c.name == cluster)
    views = cluster_nodes(plan, cluster)
    if len(views) > max_nodes:
        raise ValueError(
            f"cluster {cluster} of {plan.phase} has {len(views)} nodes: too many for kind containers on one "
            f"machine (the limit is --max-nodes {max_nodes}); use the tiny environment (-e environments/tiny)"
        )
    # control-plane nodes first: kind makes the first node in its list the one that runs `kubeadm init`
    views.sort(key=lambda v: (v.node.role != "control-plane", v.node.name))
    nodes = []
    for i, v in enumerate(views):
        role = "control-plane" if v.node.role == "control-plane" else "worker"
        registration = "InitConfiguration" if i == 0 else "JoinConfiguration"
        taints = [t.as_dict() for t in registration_taints(v.node, v.pool)]
        patch = yaml.safe_dump({"kind": registration, "nodeRegistration": {"taints": taints}}, sort_keys=False)
        node = {"role": role, "labels": node_labels(plan.site, v.node, v.rack, v.pool), "kubeadmConfigPatches": [patch]}
        if image:
            node["image"] = image
        nodes.append(node)
    ipv6 = ip_network(c.pod_cidr).version == 6
    config = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": f"kasbah-{cluster}",
        "networking": {
            **({"ipFamily": "ipv6"} if ipv6 else {}),
            "podSubnet": c.pod_cidr,
            "serviceSubnet": c.service_cidr,
        },
        "nodes": nodes,
    }
    names = ", ".join(v.node.name for v in views)
    header = (
        f"# kind cluster for {plan.phase} cluster {cluster} (Kubernetes {c.kubernetes_version}), written by\n"
        f"# `kasbah kind-config`: one kind node per Plan node ({names}), in that order,\n"
        "# labelled and tainted as the Plan registers them. Pin the node image to the cluster's minor\n"
        f"# version with `kind create cluster --image kindest/node:v{c.kubernetes_version}.<patch>`.\n"
    )
    return header + yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=1000)
