"""node-pools.yaml: what the kubelets of each pool register with (documentation for GitOps readers; not applied)."""

from __future__ import annotations

from kasbah.planning import labels as lb
from kasbah.planning.tenancy import ClusterView
from kasbah.rendering.kubernetes.objects import Obj


def node_pools(view: ClusterView) -> Obj:
    """What the kubelets of each pool register with (documentation for GitOps readers; not applied)."""
    pools = [p for p in view.plan.pools if p.cluster == view.cluster.name]
    return {
        "cluster": view.cluster.name,
        "pools": [
            {
                "name": p.name,
                "purpose": p.purpose,
                "tenant": p.tenant,
                "nodes": p.nodes,
                "gpus": p.gpus,
                "labels": {lb.POOL: p.name, lb.PURPOSE: p.purpose, **({lb.TENANT: p.tenant} if p.tenant else {})},
                "per_node_labels": [lb.HALL, lb.ROW, lb.RACK, lb.SCALABLE_UNIT, lb.NVLINK_DOMAIN],
                "taints": [t.as_flag() for t in lb.pool_taints(p)],
                "join_taints": [lb.Taint(lb.BURN_IN, "pending", "NoSchedule").as_flag()] if p.gpus else [],
            }
            for p in pools
        ],
        "kueue_topology": list(lb.TOPOLOGY_LEVELS),
    }
