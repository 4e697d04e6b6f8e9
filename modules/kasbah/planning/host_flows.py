"""The flows a node's host firewall admits, per network: one table the planner puts in the Plan (`Plan.host_flows`), projected by the inventory.

Every flow names where it comes from by network (`admin`, `inband`, `compute`, `storage`, `oob`,
`pods`: the node's own cluster pod range) and which nodes it reaches by inventory group. The
host_firewall role turns the table into an nftables input chain that drops everything else;
outbound traffic is not filtered on the host (the fabric's and Cilium's egress policy owns it).
"""

from __future__ import annotations

from kasbah.planning import ports
from kasbah.planning.model import HostFlow, Plan

# How a pod or a host may reach a node; the ports are planning.ports' (upstream defaults).
NETWORKS = ("admin", "inband", "compute", "storage", "oob", "pods")


def _port(*numbers: int) -> str:
    return "-".join(str(n) for n in numbers)


FLOWS: tuple[HostFlow, ...] = (
    HostFlow(
        "ssh",
        ("admin",),
        "tcp",
        (_port(ports.SSH),),
        ("all",),
        "operators and the configuration runners, from the admin zone",
    ),
    HostFlow("icmp", ("admin", "inband", "storage", "compute"), "icmp", (), ("all",), "reachability and path MTU"),
    HostFlow(
        "kube-apiserver",
        ("admin", "inband", "pods"),
        "tcp",
        (_port(ports.KUBE_APISERVER),),
        ("control_plane",),
        "kubelets, in-cluster clients and operators",
    ),
    HostFlow("etcd", ("inband",), "tcp", (_port(*ports.ETCD),), ("control_plane",), "etcd peers and the API servers"),
    HostFlow(
        "vrrp",
        ("inband",),
        "vrrp",
        (),
        ("control_plane",),
        "keepalived's adverts between control-plane hosts: which one holds the API's virtual IP",
    ),
    HostFlow(
        "kubelet", ("inband",), "tcp", (_port(ports.KUBELET),), ("all",), "the API server (logs, exec) and metrics"
    ),
    HostFlow(
        "cilium-vxlan", ("inband",), "udp", (_port(ports.CILIUM_VXLAN),), ("all",), "the pod overlay between nodes"
    ),
    HostFlow(
        "cilium-health",
        ("inband",),
        "tcp",
        (_port(ports.CILIUM_HEALTH),),
        ("all",),
        "Cilium's node-to-node health checks",
    ),
    HostFlow(
        "metrics",
        ("pods", "inband"),
        "tcp",
        (_port(ports.NODE_EXPORTER), _port(ports.DCGM_EXPORTER)),
        ("all",),
        "node and DCGM exporters, scraped from the monitoring namespace",
    ),
    HostFlow(
        "roce", ("compute",), "udp", (_port(ports.ROCE_V2),), ("gpu",), "RoCEv2 on the compute rails (GPU to GPU)"
    ),
)


def networks(plan: Plan) -> dict[str, list[str]]:
    """The address ranges behind each network name (`pods` is per cluster, so it is not here)."""
    supernets = {a.network: a.supernet for a in plan.addresses}
    out = {"admin": list(plan.admin_networks)}
    for name in ("inband", "compute", "storage", "oob"):
        if name in supernets:
            out[name] = [supernets[name]]
    return out


def as_dicts(flows: tuple[HostFlow, ...]) -> list[dict[str, object]]:
    """The flows as the host_firewall role reads them (`kasbah_host_flows`)."""
    return [
        {
            "name": f.name,
            "sources": list(f.sources),
            "protocol": f.protocol,
            "ports": list(f.ports),
            "groups": list(f.groups),
            "why": f.why,
        }
        for f in flows
    ]
