"""kueue/kueue.yaml: the topology, a ResourceFlavor a pool, a ClusterQueue and a LocalQueue a tenant."""

from __future__ import annotations

from kasbah.planning import labels as lb
from kasbah.planning.tenancy import ClusterView, tenant_namespace
from kasbah.rendering.kubernetes.objects import GPU, Obj, metadata

COHORT = "shared"
TOPOLOGY_NAME = "kasbah"
LOCAL_QUEUE = "gpu"
KUEUE = "kueue.x-k8s.io/v1beta1"
KUEUE_TOPOLOGY = "kueue.x-k8s.io/v1beta1"  # Kueue 0.14 serves Topology as v1beta1 only


def kueue(view: ClusterView) -> list[Obj]:
    out: list[Obj] = [
        {
            "apiVersion": KUEUE_TOPOLOGY,
            "kind": "Topology",
            "metadata": metadata(TOPOLOGY_NAME),
            "spec": {"levels": [{"nodeLabel": level} for level in lb.TOPOLOGY_LEVELS]},
        }
    ]
    for p in view.pools:
        out.append(
            {
                "apiVersion": KUEUE,
                "kind": "ResourceFlavor",
                "metadata": metadata(p.name),
                "spec": {
                    # a label the kubelet cannot set on itself: a compromised node cannot join a flavour
                    "nodeLabels": {lb.RESTRICTED_POOL: p.name},
                    "tolerations": [t.toleration() for t in lb.pool_taints(p)],
                    "topologyName": TOPOLOGY_NAME,
                },
            }
        )
    for t in view.tenants:
        flavors = []
        # the tenant's own pools first: Kueue tries flavors in order
        for p in view.tenant_pools(t.name):
            if p.tenant == t.name:
                # a dedicated pool is the tenant's alone: nothing of it is lent to the cohort
                res: Obj = {"name": GPU, "nominalQuota": p.gpus, "lendingLimit": 0}
            else:
                res = {"name": GPU, "nominalQuota": view.quota.get((t.name, p.name), 0)}
            flavors.append({"name": p.name, "resources": [res]})
        out.append(
            {
                "apiVersion": KUEUE,
                "kind": "ClusterQueue",
                "metadata": metadata(tenant_namespace(t.name)),
                "spec": {
                    "cohort": COHORT,
                    "namespaceSelector": {"matchLabels": {lb.TENANT: t.name}},
                    "queueingStrategy": "BestEffortFIFO",
                    # use the tenant's own quota in every flavor before borrowing from the cohort
                    "flavorFungibility": {"whenCanBorrow": "TryNextFlavor", "whenCanPreempt": "TryNextFlavor"},
                    "preemption": {
                        "reclaimWithinCohort": "Any",
                        "borrowWithinCohort": {"policy": "Never"},
                        "withinClusterQueue": "LowerPriority",
                    },
                    "resourceGroups": [{"coveredResources": [GPU], "flavors": flavors}],
                    # offboarding drained its workloads: Kueue evicts what runs and admits nothing new
                    **({} if t.runs_workloads else {"stopPolicy": "HoldAndDrain"}),
                },
            }
        )
        out.append(
            {
                "apiVersion": KUEUE,
                "kind": "LocalQueue",
                "metadata": metadata(LOCAL_QUEUE, tenant_namespace(t.name)),
                "spec": {"clusterQueue": tenant_namespace(t.name)},
            }
        )
    return out
