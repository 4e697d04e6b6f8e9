"""cilium/guardrails.yaml: cluster-wide deny rules a tenant's own policies cannot override, and the host firewall."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from kasbah.planning import labels as lb
from kasbah.planning.tenancy import ClusterView
from kasbah.rendering.kubernetes.objects import Obj, metadata

CILIUM_NS_LABEL = "k8s:io.cilium.k8s.namespace.labels."
CILIUM_NAMESPACE = "k8s:io.kubernetes.pod.namespace"


def _world(cidrs: Iterable[str]) -> list[str]:
    versions = {ipaddress.ip_network(c).version for c in cidrs} | {4}
    return [("0.0.0.0/0" if v == 4 else "::/0") for v in sorted(versions)]


def cilium_guardrails(view: ClusterView) -> list[Obj]:
    """Cluster-wide deny rules a tenant's own policies cannot override, and the host firewall."""
    tenant_key = CILIUM_NS_LABEL + lb.TENANT
    off = {"ingress": False, "egress": False}  # deny-only: do not switch endpoints to default-deny
    out: list[Obj] = []
    for t in view.tenants:
        others = {
            "matchExpressions": [
                {"key": tenant_key, "operator": "Exists"},
                {"key": tenant_key, "operator": "NotIn", "values": [t.name]},
            ]
        }
        allowed = [e.cidr for e in view.egress[t.name]]
        world = []
        for w in _world(allowed):
            keep = [c for c in allowed if ipaddress.ip_network(c).version == ipaddress.ip_network(w).version]
            world.append({"cidr": w, "except": keep} if keep else {"cidr": w})
        out.append(
            {
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumClusterwideNetworkPolicy",
                "metadata": metadata(f"kasbah-isolate-{t.name}", rule="guardrail:tenant-isolation"),
                "spec": {
                    "description": f"Tenant {t.name}: no traffic with other tenants, egress only to its jurisdictions, no management plane",
                    "endpointSelector": {"matchLabels": {tenant_key: t.name}},
                    "enableDefaultDeny": off,
                    "ingressDeny": [{"fromEndpoints": [others]}],
                    "egressDeny": [
                        {"toEndpoints": [others]},
                        {"toCIDRSet": world},
                        {"toEntities": ["host", "remote-node", "kube-apiserver"]},
                    ],
                },
            }
        )
    admin = list(view.plan.admin_networks)
    host_ingress: list[Obj] = [{"fromEntities": ["cluster", "health"]}]
    if admin:
        host_ingress.append({"fromCIDR": admin})
    out.append(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumClusterwideNetworkPolicy",
            "metadata": metadata("kasbah-host-firewall", rule="guardrail:host-firewall"),
            "spec": {
                "description": "Nodes answer the cluster and the admin zone only (SSH, kubelet, API server)",
                "nodeSelector": {},
                "ingress": host_ingress,
            },
        }
    )
    return out
