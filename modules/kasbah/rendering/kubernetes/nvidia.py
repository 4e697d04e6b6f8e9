"""nvidia/nvidia.yaml: the Network Operator's NIC policy and the NVL72 pools' ComputeDomains, over a host-managed stack."""

from __future__ import annotations

import json
from collections.abc import Iterable

from kasbah.planning import labels as lb
from kasbah.planning import ports
from kasbah.planning.model import Pool
from kasbah.planning.tenancy import ClusterView, tenant_namespace
from kasbah.rendering.kubernetes.objects import Obj, metadata


def operator_tolerations(view: ClusterView) -> list[Obj]:
    """The operators' DaemonSets run on every GPU node, whatever tenant or burn-in taint it carries."""
    taints = {lb.GPU_TAINT}
    for p in view.pools:
        taints.update(lb.pool_taints(p))
    tolerations = [t.toleration() for t in sorted(taints, key=lambda t: (t.key, t.value))]
    tolerations.append({"key": lb.BURN_IN, "operator": "Exists", "effect": "NoSchedule"})
    return tolerations


def gpu_pool_affinity(pools: Iterable[Pool]) -> Obj:
    """The pools' nodes, by the label a kubelet cannot set on itself (a node cannot pull the operators onto it)."""
    return {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {"key": lb.RESTRICTED_POOL, "operator": "In", "values": sorted(p.name for p in pools)}
                ]
            }
        ]
    }


# The DCGM host engine the dcgm role runs on every GPU node; the exporter pods reach it on the node.
DCGM_HOSTENGINE = f"localhost:{ports.DCGM_HOSTENGINE}"
RDMA_SHARED_DEVICES = json.dumps(
    {"configList": [{"resourceName": "rdma_shared", "rdmaHcaMax": 63, "selectors": {"vendors": ["15b3"]}}]},
    separators=(",", ":"),
)


def nvidia(view: ClusterView) -> list[Obj]:
    """The GPU and Network Operators over a host-managed NVIDIA stack.

    The driver (pinned per pool), fabric manager / IMEX, the DCGM host engine, the container
    toolkit and DOCA-OFED are installed on the node by the Ansible roles (playbooks/), because
    the burn-in gate runs DCGM and NCCL on the node before it takes work. The operators keep
    what is per-cluster: device plugin, feature discovery, DCGM exporter (reading the host
    engine), validation and the NIC policy's device plugins. The GPU Operator's ClusterPolicy is
    rendered by its chart from the release's values (`gpu_operator_values`): the release owns it.
    """
    if not view.pools:
        return []
    tolerations = operator_tolerations(view)
    out: list[Obj] = [
        {
            "apiVersion": "mellanox.com/v1alpha1",
            "kind": "NicClusterPolicy",
            "metadata": metadata("nic-cluster-policy"),
            "spec": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": gpu_pool_affinity(view.pools)},
                "tolerations": tolerations,
                # DOCA-OFED is on the host (doca_ofed role): the operator only shares the RDMA devices
                "rdmaSharedDevicePlugin": {
                    "image": "k8s-rdma-shared-dev-plugin",
                    "repository": "nvcr.io/nvidia/mellanox",
                    "version": "network-operator-v25.4.0",
                    "config": RDMA_SHARED_DEVICES,
                },
            },
        },
    ]
    out.extend(compute_domains(view))
    return out


def nvl72_pools(view: ClusterView) -> list[Pool]:
    """Pools whose GPU nodes share multi-node NVLink domains (NVL72 racks): IMEX through DRA ComputeDomains."""
    multi = lb.multi_node_nvlink_domains(view.plan.nodes)
    pools = {n.pool for n in view.plan.nodes if n.cluster == view.cluster.name and n.gpus and n.nvlink_domain in multi}
    return [p for p in view.pools if p.name in pools]


def compute_domains(view: ClusterView) -> list[Obj]:
    out = []
    trays = {r.pool: r.nodes for r in view.plan.racks if r.pool}
    for p in nvl72_pools(view):
        for t in view.tenants:
            if view.quota.get((t.name, p.name)) or p.tenant == t.name:
                out.append(
                    {
                        "apiVersion": "resource.nvidia.com/v1beta1",
                        "kind": "ComputeDomain",
                        "metadata": metadata(f"{p.name}-nvl72", tenant_namespace(t.name)),
                        "spec": {
                            "numNodes": trays[p.name],
                            "channel": {"resourceClaimTemplate": {"name": f"{p.name}-imex-channel"}},
                        },
                    }
                )
    return out
