"""The flows a node's host firewall admits, per network: one table, projected by the inventory.

Every flow names where it comes from by network (`admin`, `inband`, `compute`, `storage`, `oob`,
`pods`: the node's own cluster pod range) and which nodes it reaches by inventory group. The
host_firewall role turns the table into an nftables input chain that drops everything else;
outbound traffic is not filtered on the host (the fabric's and Cilium's egress policy owns it).
"""

from __future__ import annotations

from dataclasses import dataclass

from kasbah.planning.model import Plan

# How a pod or a host may reach a node. Ports follow the upstream defaults (Kubernetes "Ports and
# Protocols", Cilium "Firewall Rules": VXLAN 8472/udp, health 4240/tcp; RoCEv2 4791/udp).
NETWORKS = ("admin", "inband", "compute", "storage", "oob", "pods")


@dataclass(frozen=True, slots=True)
class HostFlow:
    name: str
    sources: tuple[str, ...]  # network names from NETWORKS
    protocol: str  # tcp | udp | icmp
    ports: tuple[str, ...]  # "22" or "2379-2380"; empty for icmp
    groups: tuple[str, ...]  # inventory groups the flow reaches ("all" for every node)
    why: str

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "sources": list(self.sources),
            "protocol": self.protocol,
            "ports": list(self.ports),
            "groups": list(self.groups),
            "why": self.why,
        }


FLOWS: tuple[HostFlow, ...] = (
    HostFlow(
        "ssh", ("admin",), "tcp", ("22",), ("all",), "operators and the configuration runners, from the admin zone"
    ),
    HostFlow("icmp", ("admin", "inband", "storage", "compute"), "icmp", (), ("all",), "reachability and path MTU"),
    HostFlow(
        "kube-apiserver",
        ("admin", "inband", "pods"),
        "tcp",
        ("6443",),
        ("control_plane",),
        "kubelets, in-cluster clients and operators",
    ),
    HostFlow("etcd", ("inband",), "tcp", ("2379-2380",), ("control_plane",), "etcd peers and the API servers"),
    HostFlow("kubelet", ("inband",), "tcp", ("10250",), ("all",), "the API server (logs, exec) and metrics"),
    HostFlow("cilium-vxlan", ("inband",), "udp", ("8472",), ("all",), "the pod overlay between nodes"),
    HostFlow("cilium-health", ("inband",), "tcp", ("4240",), ("all",), "Cilium's node-to-node health checks"),
    HostFlow(
        "metrics",
        ("pods", "inband"),
        "tcp",
        ("9100", "9400"),
        ("all",),
        "node and DCGM exporters, scraped from the monitoring namespace",
    ),
    HostFlow("roce", ("compute",), "udp", ("4791",), ("gpu",), "RoCEv2 on the compute rails (GPU to GPU)"),
)


def networks(plan: Plan) -> dict[str, list[str]]:
    """The address ranges behind each network name (`pods` is per cluster, so it is not here)."""
    supernets = {a.network: a.supernet for a in plan.addresses}
    out = {"admin": list(plan.admin_networks)}
    for name in ("inband", "compute", "storage", "oob"):
        if name in supernets:
            out[name] = [supernets[name]]
    return out


def host_flows() -> list[dict[str, object]]:
    return [f.as_dict() for f in FLOWS]
