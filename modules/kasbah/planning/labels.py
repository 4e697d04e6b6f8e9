"""Node labels and taints from the Plan: the one definition kubelet configs, inventories and Kueue share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from kasbah.planning.model import Node, Plan, Pool, Rack

DOMAIN = "kasbah.io"
TOPOLOGY = f"topology.{DOMAIN}"

HALL = f"{TOPOLOGY}/hall"
ROW = f"{TOPOLOGY}/row"
RACK = f"{TOPOLOGY}/rack"
SCALABLE_UNIT = f"{TOPOLOGY}/scalable-unit"
NVLINK_DOMAIN = f"{TOPOLOGY}/nvlink-domain"
POOL = f"{DOMAIN}/pool"
PURPOSE = f"{DOMAIN}/purpose"
TENANT = f"{DOMAIN}/tenant"
# the same facts under the prefix a kubelet may not set on itself (NodeRestriction): set from a control-plane host
# by the node playbooks (kubelet role), and what every placement decision selects on
RESTRICTED = "node-restriction.kubernetes.io"
RESTRICTED_POOL = f"{RESTRICTED}/pool"
RESTRICTED_TENANT = f"{RESTRICTED}/tenant"
PHASE = f"{DOMAIN}/phase"
HOSTNAME = "kubernetes.io/hostname"

# Kueue's Topology levels, widest first; the last level must be the hostname for
# topology-aware scheduling to place pods on nodes. An NVL72 rack is one NVLink domain.
TOPOLOGY_LEVELS = (HALL, SCALABLE_UNIT, RACK, HOSTNAME)

# New GPU nodes join with this taint; the burn-in gate lifts it once the pool's health checks pass.
BURN_IN = "kasbah.io/burn-in"


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str  # NoSchedule | PreferNoSchedule | NoExecute

    def as_dict(self) -> dict[str, str]:
        return (
            {"key": self.key, "value": self.value, "effect": self.effect}
            if self.value
            else {
                "key": self.key,
                "effect": self.effect,
            }
        )

    def as_flag(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"

    def toleration(self) -> dict[str, str]:
        if self.value:
            return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}
        return {"key": self.key, "operator": "Exists", "effect": self.effect}


GPU_TAINT = Taint("nvidia.com/gpu", "present", "NoSchedule")
CONTROL_PLANE_TAINT = Taint("node-role.kubernetes.io/control-plane", "", "NoSchedule")


def node_labels(site: str, node: Node, rack: Rack, pool: Pool) -> dict[str, str]:
    """Labels the kubelet registers the node with (`--node-labels`).

    Only keys a kubelet may set on itself (NodeRestriction): no `node-role.kubernetes.io/*`
    (kubeadm adds the control-plane one) and no `node-restriction.kubernetes.io/*`.
    """
    labels = {
        "topology.kubernetes.io/region": site,
        "topology.kubernetes.io/zone": node.hall,
        HALL: node.hall,
        ROW: f"{node.hall}-row{rack.row:02d}",
        RACK: node.rack,
        SCALABLE_UNIT: node.scalable_unit,
        POOL: node.pool,
        PURPOSE: pool.purpose,
        PHASE: node.phase,
    }
    if node.nvlink_domain:
        labels[NVLINK_DOMAIN] = node.nvlink_domain
    if node.tenant:
        labels[TENANT] = node.tenant
    return dict(sorted(labels.items()))


def pool_taints(pool: Pool) -> tuple[Taint, ...]:
    """Taints every worker of the pool carries for good; pods must tolerate them to land there."""
    taints: list[Taint] = []
    if pool.gpus:
        taints.append(GPU_TAINT)
    if pool.tenant:
        taints.append(Taint(TENANT, pool.tenant, "NoSchedule"))
    if pool.purpose == "storage":
        taints.append(Taint(PURPOSE, "storage", "NoSchedule"))
    return tuple(taints)


def registration_taints(node: Node, pool: Pool) -> tuple[Taint, ...]:
    """Taints the node registers with: the pool's, the control plane's, and the burn-in gate on GPU nodes."""
    if node.role == "control-plane":
        return (CONTROL_PLANE_TAINT,)
    taints = pool_taints(pool)
    if node.gpus:
        taints = (*taints, Taint(BURN_IN, "pending", "NoSchedule"))
    return taints


@dataclass(frozen=True, slots=True)
class NodeView:
    """A cluster node with what the projections need beside it."""

    node: Node
    rack: Rack
    pool: Pool


def cluster_nodes(plan: Plan, cluster: str) -> list[NodeView]:
    racks = {r.name: r for r in plan.racks}
    pools = {p.name: p for p in plan.pools}
    return [NodeView(n, racks[n.rack], pools[n.pool]) for n in plan.nodes if n.cluster == cluster]


def multi_node_nvlink_domains(nodes: Iterable[Node]) -> frozenset[str]:
    """The NVLink domains that span several nodes (NVL72 racks): IMEX and DRA ComputeDomains run there."""
    sizes = Counter(n.nvlink_domain for n in nodes if n.nvlink_domain)
    return frozenset(d for d, count in sizes.items() if count > 1)
