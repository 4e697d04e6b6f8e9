"""network-policies/<namespace>.yaml: default-deny in every namespace, then one named NetworkPolicy per allowed flow.

The GitOps controller's own namespace is the exception that proves the rule: its policies are the bootstrap
platform's (bootstrap/<cluster>/platform/network-policies/), so a sync can never cut the controller off.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from kasbah.planning import labels as lb
from kasbah.planning import ports
from kasbah.planning.model import GitOpsSource
from kasbah.planning.tenancy import (
    BUILTIN_NAMESPACES,
    MONITORING_NAMESPACE,
    PLATFORM,
    SYSTEM_NAMESPACE,
    ClusterView,
    tenant_namespace,
)
from kasbah.rendering.kubernetes.objects import Obj, gitops_of, metadata


def _host(ip: str) -> str:
    return f"{ip}/{ipaddress.ip_address(ip).max_prefixlen}"


def _ports(protocols: Iterable[str], port: int, end: int | None = None) -> list[Obj]:
    out = []
    for proto in protocols:
        p: Obj = {"protocol": proto, "port": port}
        if end is not None and end != port:
            p["endPort"] = end
        out.append(p)
    return out


def _ns_peer(**match: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": dict(match)}}


def _policy(name: str, namespace: str, rule: str, spec: Obj) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, namespace, rule, wave=-1),
        "spec": spec,
    }


def _dns_egress(namespace: str) -> Obj:
    return _policy(
        "allow-dns",
        namespace,
        "dns",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": SYSTEM_NAMESPACE}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": _ports(("UDP", "TCP"), ports.DNS),
                }
            ],
        },
    )


def _monitoring_scrape(namespace: str) -> Obj:
    return _policy(
        "allow-monitoring-scrape",
        namespace,
        "platform:monitoring-scrape",
        {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [_ns_peer(**{"kubernetes.io/metadata.name": MONITORING_NAMESPACE})],
                    "ports": _ports(("TCP",), *ports.METRICS),
                }
            ],
        },
    )


def _default_deny(namespace: str) -> Obj:
    return _policy("default-deny", namespace, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})


def network_policies(view: ClusterView) -> dict[str, list[Obj]]:
    """NetworkPolicies by namespace: default-deny everywhere, then one named rule per allowed flow."""
    apiserver = [{"ipBlock": {"cidr": _host(ip)}} for ip in view.control_plane_ips]
    by_ns: dict[str, list[Obj]] = {}

    system = SYSTEM_NAMESPACE
    coredns = {"matchLabels": {"k8s-app": "kube-dns"}}
    by_ns[system] = [
        _default_deny(system),
        _dns_egress(system),
        _policy(
            "allow-dns-from-cluster",
            system,
            "dns",
            {
                "podSelector": coredns,
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {}}], "ports": _ports(("UDP", "TCP"), ports.DNS)}],
            },
        ),
        _policy(
            "allow-coredns-apiserver",
            system,
            "platform:kube-apiserver",
            {
                "podSelector": coredns,
                "policyTypes": ["Egress"],
                "egress": [{"to": apiserver, "ports": _ports(("TCP",), view.cluster.api_port)}],
            },
        ),
    ]
    if view.plan.dns_resolvers:
        by_ns[system].append(
            _policy(
                "allow-dns-upstream",
                system,
                "dns-upstream",
                {
                    "podSelector": coredns,
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [{"ipBlock": {"cidr": c}} for c in view.plan.dns_resolvers],
                            "ports": _ports(("UDP", "TCP"), ports.DNS),
                        }
                    ],
                },
            )
        )

    for ns in (n.name for n in view.namespaces if n.zone == PLATFORM):
        rules = [
            _default_deny(ns),
            _dns_egress(ns),
            _policy(
                "allow-same-namespace",
                ns,
                "platform:internal",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [{"podSelector": {}}]}],
                    "egress": [{"to": [{"podSelector": {}}]}],
                },
            ),
            _policy(
                "allow-apiserver",
                ns,
                "platform:kube-apiserver",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [{"to": apiserver, "ports": _ports(("TCP",), view.cluster.api_port)}],
                },
            ),
            _monitoring_scrape(ns),
        ]
        if ns == "kueue-system":
            # admission webhooks are called by kube-apiserver from the control-plane hosts
            rules.append(
                _policy(
                    "allow-webhooks",
                    ns,
                    "platform:webhooks",
                    {
                        "podSelector": {},
                        "policyTypes": ["Ingress"],
                        "ingress": [{"from": apiserver, "ports": _ports(("TCP",), ports.WEBHOOK)}],
                    },
                )
            )
        if ns == gitops_of(view).namespace:
            rules.append(_gitops_source_egress(ns, gitops_of(view)))
        if ns == MONITORING_NAMESPACE:
            rules.append(
                _policy(
                    "allow-scrape-everywhere",
                    ns,
                    "platform:monitoring-scrape",
                    {
                        "podSelector": {},
                        "policyTypes": ["Egress"],
                        "egress": [{"to": [{"namespaceSelector": {}}], "ports": _ports(("TCP",), *ports.METRICS)}],
                    },
                )
            )
        by_ns[ns] = rules

    for t in view.tenants:
        ns = tenant_namespace(t.name)
        rules = [
            _default_deny(ns),
            _dns_egress(ns),
            _policy(
                "allow-same-tenant",
                ns,
                "tenant-internal",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [_ns_peer(**{lb.TENANT: t.name})]}],
                    "egress": [{"to": [_ns_peer(**{lb.TENANT: t.name})]}],
                },
            ),
            _monitoring_scrape(ns),
        ]
        for e in view.egress[t.name]:
            rules.append(
                _policy(
                    f"allow-egress-{e.name}",
                    ns,
                    f"egress:{e.jurisdiction}/{e.name}",
                    {
                        "podSelector": {},
                        "policyTypes": ["Egress"],
                        "egress": [
                            {
                                "to": [{"ipBlock": {"cidr": e.cidr}}],
                                "ports": [p for port in e.ports for p in _ports(("TCP",), port)],
                            }
                        ],
                    },
                )
            )
        by_ns[ns] = rules
    for ns in BUILTIN_NAMESPACES:
        by_ns[ns] = [_default_deny(ns)]
    return by_ns


def _gitops_source_egress(namespace: str, gitops: GitOpsSource) -> Obj:
    """The GitOps controller reads the published branch from the site's Git servers, and nothing else outside."""
    return _policy(
        "allow-gitops-source",
        namespace,
        "platform:gitops-source",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"ipBlock": {"cidr": c}} for c in gitops.sources], "ports": _ports(("TCP",), gitops.port)}
            ],
        },
    )
