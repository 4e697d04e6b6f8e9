"""Zero-trust reachability: a good policy set verifies clean, and every seeded leak is caught in the mode it leaks in."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from kasbah.verification.reach_labels import (
    EVERY_POD,
    KeySet,
    Region,
    Requirement,
    describe,
    matches_all,
    refine,
    sample,
)
from kasbah.verification.reach_policy import read_network_policy
from kasbah.verification.reach_space import ALL_PORTS, AddressAtoms, PortSet
from kasbah.verification.reachability import (
    DEFAULT_DENY,
    EGRESS_JURISDICTION,
    INBOUND,
    MANAGEMENT_PLANE,
    PLATFORM_ACCESS,
    PLATFORM_EGRESS,
    TENANT_ISOLATION,
    TRACED,
    TRANSIT,
    UNSUPPORTED,
    Destination,
    Expectations,
    ManagementTarget,
    PlatformAllowance,
    PodFlow,
    Report,
    format_matrix,
    verify_cluster,
)

Manifest = dict[str, Any]

POD_CIDR, SERVICE_CIDR = "100.64.0.0/16", "100.96.0.0/16"
POD_CIDR6, SERVICE_CIDR6 = "fd00:10:244::/56", "fd00:10:96::/112"
INTERNAL = (POD_CIDR, SERVICE_CIDR, POD_CIDR6, SERVICE_CIDR6)
ADMIN_NETWORK = "172.30.0.0/24"
OOB = "10.10.0.0/16"
API_SERVERS = ("192.168.0.10/32", "192.168.0.11/32", "192.168.0.12/32")
NODES = "192.168.0.0/22"
UPSTREAM_DNS = "198.51.100.53/32"
PLATFORM = ("kube-system", "monitoring", "gpu-operator", "kueue-system", "kasbah-admin")
ADMIN_ZONE = frozenset({"kasbah-admin"})
APISERVER_ONLY = PlatformAllowance(frozenset({"kube-apiserver"}))
ALLOWANCES = {
    "kube-system": PlatformAllowance(
        frozenset({"kube-apiserver"}), (Destination("upstream-dns", UPSTREAM_DNS, (53,), ("UDP", "TCP")),)
    ),
    "monitoring": APISERVER_ONLY,
    "gpu-operator": APISERVER_ONLY,
    "kueue-system": APISERVER_ONLY,
}
# between namespaces, the fixture's pods connect for DNS and for monitoring's scrape (on 9090) only
POD_FLOWS = (
    PodFlow("dns", None, "kube-system", 53, 53, ("UDP", "TCP")),
    PodFlow("metrics-scrape", "monitoring", None, 9090, 9090),
)
TENANT_KEY = "kasbah.io/tenant"
NS_TENANT = "io.cilium.k8s.namespace.labels.kasbah.io/tenant"

TENANT_NAMESPACES = {
    "tenant-a": ("tenant-a",),
    "tenant-b": ("tenant-b",),
    "tenant-c": ("tenant-c-train", "tenant-c-serve"),
}
DESTINATIONS = {
    "tenant-a": (
        Destination("eu-object-store", "203.0.113.0/24", (443,)),
        Destination("eu-registry", "198.51.100.16/28", (443, 5000)),
    ),
    "tenant-b": (Destination("de-sql", "198.51.100.64/27", (5432,)),),
    "tenant-c": (Destination("fr-store", "192.0.2.0/25", (443,)),),
}


# -- builders ----------------------------------------------------------------------------------


def expectations(destinations: Mapping[str, tuple[Destination, ...]] = DESTINATIONS) -> Expectations:
    return Expectations(
        cluster="lab-1",
        tenants=dict(destinations),
        admin_networks=(ADMIN_NETWORK,),
        admin_namespaces=ADMIN_ZONE,
        internal_cidrs=INTERNAL,
        management=(
            ManagementTarget("oob", (OOB,), None),
            ManagementTarget("kube-apiserver", API_SERVERS, (6443,), ("kube-apiserver",)),
            ManagementTarget("nodes", (NODES,), None, ("host", "remote-node")),
        ),
        platform=ALLOWANCES,
        pod_flows=POD_FLOWS,
        campus_services=(UPSTREAM_DNS,),
        # every tenant publishes its web tier on 443 (the fixture's web-from-internet policies)
        tenant_ingress={t: (Destination("public-web", "0.0.0.0/0", (443,)),) for t in destinations},
        no_initiate=(OOB,),
    )


def namespace(name: str, tenant: str | None = None) -> Manifest:
    labels = {TENANT_KEY: tenant} if tenant else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def netpol(
    ns: str,
    name: str,
    rule: str | None,
    *,
    pods: Mapping[str, Any] | None = None,
    types: Sequence[str] | None = ("Ingress", "Egress"),
    ingress: list[Any] | None = None,
    egress: list[Any] | None = None,
) -> Manifest:
    spec: dict[str, Any] = {"podSelector": dict(pods or {})}
    if types is not None:
        spec["policyTypes"] = list(types)
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if rule:
        meta["annotations"] = {"kasbah.io/rule": rule}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": spec}


def cilium(kind: str, name: str, rule: str | None, spec: Mapping[str, Any], ns: str | None = None) -> Manifest:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    if rule:
        meta["annotations"] = {"kasbah.io/rule": rule}
    return {"apiVersion": "cilium.io/v2", "kind": kind, "metadata": meta, "spec": dict(spec)}


def tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def ns_is(name: str) -> dict[str, Any]:
    return {"matchLabels": {"kubernetes.io/metadata.name": name}}


def to_api_servers(ns: str) -> Manifest:
    peers = [{"ipBlock": {"cidr": c}} for c in API_SERVERS]
    return netpol(
        ns,
        "allow-kube-apiserver",
        "platform-to-apiserver",
        types=["Egress"],
        egress=[{"to": peers, "ports": tcp(6443)}],
    )


def baseline_namespace(ns: str, tenant: str | None, destinations: Sequence[Destination]) -> list[Manifest]:
    """One namespace: default deny, DNS, then what its role needs — every policy named by a model rule."""
    dns_peer = {"namespaceSelector": ns_is("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    out = [
        namespace(ns, tenant),
        netpol(ns, "default-deny", "default-deny"),
        netpol(ns, "allow-dns", "dns", types=["Egress"], egress=[{"to": [dns_peer], "ports": dns_ports}]),
    ]
    if tenant:
        same = [{"namespaceSelector": {"matchLabels": {TENANT_KEY: tenant}}}]
        out.append(netpol(ns, "same-tenant", "tenant-internal", ingress=[{"from": same}], egress=[{"to": same}]))
        for d in destinations:
            rule = {"to": [{"ipBlock": {"cidr": d.cidr}}], "ports": tcp(*d.ports)}
            out.append(netpol(ns, f"egress-{d.name}", f"jurisdiction:{d.name}", types=["Egress"], egress=[rule]))
        prometheus = {
            "namespaceSelector": ns_is("monitoring"),
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
        out.append(
            netpol(
                ns,
                "allow-monitoring",
                "metrics",
                types=["Ingress"],
                ingress=[{"from": [prometheus], "ports": tcp(9090)}],
            )
        )
        internet = {"ipBlock": {"cidr": "0.0.0.0/0", "except": [POD_CIDR, SERVICE_CIDR, OOB]}}
        out.append(
            netpol(
                ns,
                "web-from-internet",
                "public-web",
                pods={"matchLabels": {"app": "web"}},
                types=["Ingress"],
                ingress=[{"from": [internet], "ports": tcp(443)}],
            )
        )
        for tier, client, port in (("api", "web", 8080), ("db", "api", 5432)):
            peer = {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": [client]}]}}
            out.append(
                netpol(
                    ns,
                    f"{tier}-from-{client}",
                    "app-tiers",
                    pods={"matchLabels": {"app": tier}},
                    types=["Ingress"],
                    ingress=[{"from": [peer], "ports": tcp(port)}],
                )
            )
        return out
    out.append(to_api_servers(ns))
    if ns == "kube-system":
        coredns = {"matchLabels": {"k8s-app": "kube-dns"}}
        out.append(
            netpol(
                ns,
                "dns-from-cluster",
                "dns",
                pods=coredns,
                types=["Ingress"],
                ingress=[{"from": [{"namespaceSelector": {}}], "ports": dns_ports}],
            )
        )
        upstream = {"to": [{"ipBlock": {"cidr": UPSTREAM_DNS}}], "ports": dns_ports}
        out.append(netpol(ns, "dns-upstream", "dns-upstream", pods=coredns, types=["Egress"], egress=[upstream]))
    elif ns == "monitoring":
        tenants = {"namespaceSelector": {"matchExpressions": [{"key": TENANT_KEY, "operator": "Exists"}]}}
        prometheus = {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
        out.append(
            netpol(
                ns,
                "scrape-tenants",
                "metrics",
                pods=prometheus,
                types=["Egress"],
                egress=[{"to": [tenants], "ports": tcp(9090)}],
            )
        )
        grafana = {"matchLabels": {"app.kubernetes.io/name": "grafana"}}
        admins = [{"ipBlock": {"cidr": ADMIN_NETWORK}}]
        out.append(
            netpol(
                ns,
                "grafana-from-admins",
                "admin-access",
                pods=grafana,
                types=["Ingress"],
                ingress=[{"from": admins, "ports": tcp(3000)}],
            )
        )
    elif ns == "kasbah-admin":
        admins = [{"ipBlock": {"cidr": ADMIN_NETWORK}}]
        out.append(
            netpol(ns, "from-admins", "admin-access", types=["Ingress"], ingress=[{"from": admins, "ports": tcp(443)}])
        )
        bmc = {"to": [{"ipBlock": {"cidr": OOB}}], "ports": [*tcp(443), {"protocol": "UDP", "port": 623}]}
        out.append(netpol(ns, "to-bmc", "oob-management", types=["Egress"], egress=[bmc]))
    return out


def guardrail(tenant: str, destinations: Sequence[Destination]) -> Manifest:
    """Clusterwide Cilium guardrail: deny other tenants and everything outside but the jurisdictions, allow nothing."""
    others = {
        "matchExpressions": [
            {"key": NS_TENANT, "operator": "NotIn", "values": [tenant]},
            {"key": NS_TENANT, "operator": "Exists"},
        ]
    }
    spec = {
        "endpointSelector": {"matchLabels": {NS_TENANT: tenant}},
        "enableDefaultDeny": {"ingress": False, "egress": False},
        "ingressDeny": [{"fromEndpoints": [others]}],
        "egressDeny": [
            {"toEndpoints": [others]},
            {
                "toCIDRSet": [
                    {"cidr": "0.0.0.0/0", "except": [d.cidr for d in destinations if ":" not in d.cidr]},
                    {"cidr": "::/0", "except": [d.cidr for d in destinations if ":" in d.cidr]},
                ]
            },
            {"toEntities": ["host", "remote-node", "kube-apiserver"]},
        ],
    }
    return cilium("CiliumClusterwideNetworkPolicy", f"guardrail-{tenant}", "tenant-guardrail", spec)


def build_cluster(
    tenant_namespaces: Mapping[str, Sequence[str]] = TENANT_NAMESPACES,
    destinations: Mapping[str, tuple[Destination, ...]] = DESTINATIONS,
) -> list[Manifest]:
    out: list[Manifest] = []
    for ns in PLATFORM:
        out += baseline_namespace(ns, None, ())
    for tenant, namespaces in tenant_namespaces.items():
        for ns in namespaces:
            out += baseline_namespace(ns, tenant, destinations[tenant])
        out.append(guardrail(tenant, destinations[tenant]))
    return out


def scaled(tenants: int = 20) -> tuple[list[Manifest], Expectations]:
    """tenants x 3 namespaces, two destinations each: the size of the benchmark."""
    names = [f"t{i:02d}" for i in range(tenants)]
    namespaces = {t: tuple(f"{t}-{stage}" for stage in ("dev", "train", "serve")) for t in names}
    dests = {
        t: (Destination("store", f"198.18.{i}.0/24", (443,)), Destination("sql", f"198.19.{i}.0/28", (5432,)))
        for i, t in enumerate(names)
    }
    return build_cluster(namespaces, dests), expectations(dests)


# -- helpers -----------------------------------------------------------------------------------


def find(manifests: list[Manifest], kind: str, name: str, ns: str | None = None) -> Manifest:
    for m in manifests:
        meta = m["metadata"]
        if m["kind"] == kind and meta["name"] == name and meta.get("namespace") == ns:
            return m
    raise KeyError((kind, ns, name))


def drop(manifests: list[Manifest], kind: str, name: str, ns: str | None = None) -> None:
    manifests.remove(find(manifests, kind, name, ns))


def verify(manifests: list[Manifest]) -> Report:
    return verify_cluster(manifests, expectations())


def properties(report: Report, mode: str) -> set[str]:
    return {v.property for v in report.of(mode)}


def dump(report: Report) -> str:
    return "\n".join(f"{v}  [policy={v.policy}] [flow={v.flow}]" for v in report.violations)


# -- the good baseline -------------------------------------------------------------------------


def test_baseline_verifies_clean_in_both_modes() -> None:
    report = verify(build_cluster())
    assert report.ok(), dump(report)
    for mode in ("standard", "cilium"):
        matrix = report.matrix[mode]
        assert matrix.cell("tenant-a", "kube-system") == "tcp,udp/53"
        assert matrix.cell("tenant-c-train", "tenant-c-serve") == "all"
        assert matrix.cell("tenant-a", "tenant-b") == "·"
        assert matrix.cell("tenant-a", "tenant-a:eu-registry") == "tcp/443,5000"
        assert matrix.cell("monitoring", "tenant-b") == "tcp/9090"
        assert matrix.cell("kube-system", "mgmt:kube-apiserver") == "tcp/6443"
        assert matrix.cell("kasbah-admin", "mgmt:oob") == "tcp/443 udp/623"
        assert matrix.cell("tenant-a", "mgmt:oob") == "·"
        assert matrix.cell("world", "tenant-a") == "tcp/443"  # only pods labelled app=web, see the flows
        assert matrix.cell("admin networks", "kasbah-admin") == "tcp/443"
        assert matrix.cell("world", "kasbah-admin") == "·"


def test_baseline_flows_name_their_rules() -> None:
    report = verify(build_cluster())
    flows = {(f.mode, f.source, f.destination): f for f in report.flows}
    dns = flows[("standard", "tenant-a", "kube-system")]
    assert dns.rules == ("dns",)
    assert dns.allowed_by == (
        "NetworkPolicy kube-system/dns-from-cluster (ingress rule 0)",
        "NetworkPolicy tenant-a/allow-dns (egress rule 0)",
    )
    web = flows[("cilium", "world", "tenant-a")]
    assert web.rules == ("public-web",)
    assert all(f.rules for f in report.flows)


def test_format_matrix_is_a_readable_table() -> None:
    text = format_matrix(verify(build_cluster()), "cilium")
    lines = text.splitlines()
    assert lines[0].startswith("lab-1 — cilium mode")
    assert lines[1].split()[:3] == ["from", "\\", "to"]
    for column in ("tenant-a:eu-object-store", "other external", "mgmt:oob", "mgmt:kube-apiserver", "mgmt:nodes"):
        assert column in lines[1]
    row = next(line for line in lines if line.startswith("tenant-a "))
    assert "tcp,udp/53" in row and "·" in row
    assert (
        next(line for line in lines if line.startswith("world ")).count("n/a") == 4 + 1 + 3
    )  # destinations, other external, management targets


# -- seeded leaks ------------------------------------------------------------------------------

Seed = Callable[[list[Manifest]], None]
NP, CNP, CCNP = "NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"


@dataclass(frozen=True)
class Leak:
    """A seeded leak and, per mode, the exact properties it breaks with the (property, policy) pairs that must be named."""

    seed: Seed
    standard: frozenset[tuple[str, str | None]] = frozenset()
    cilium: frozenset[tuple[str, str | None]] = frozenset()
    # properties broken besides the ones named with a policy above, per mode
    also: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _add(*objs: Manifest) -> Seed:
    def seed(m: list[Manifest]) -> None:
        m.extend(copy.deepcopy(list(objs)))

    return seed


def _edit(kind: str, name: str, ns: str | None, change: Callable[[Manifest], None]) -> Seed:
    def seed(m: list[Manifest]) -> None:
        change(find(m, kind, name, ns))

    return seed


def _all(*seeds: Seed) -> Seed:
    def seed(m: list[Manifest]) -> None:
        for s in seeds:
            s(m)

    return seed


def _set_spec(**values: Any) -> Callable[[Manifest], None]:
    def change(obj: Manifest) -> None:
        obj["spec"].update(copy.deepcopy(values))

    return change


def _pol(kind: str, ns: str | None, name: str) -> str:
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def _ingress_only_everywhere(m: list[Manifest]) -> None:
    for obj in m:
        if obj["kind"] == NP and obj["metadata"]["namespace"] == "tenant-a" and "policyTypes" in obj["spec"]:
            obj["spec"]["policyTypes"] = ["Ingress"]  # the egress rules stay, and are no longer enforced


def _drop_policy_types(name: str) -> Callable[[Manifest], None]:
    def change(obj: Manifest) -> None:
        del obj["spec"]["policyTypes"]

    return change


def _remove_annotation(obj: Manifest) -> None:
    del obj["metadata"]["annotations"]


def _widen(obj: Manifest) -> None:
    obj["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] = "203.0.112.0/23"


def _extra_port(obj: Manifest) -> None:
    obj["spec"]["egress"][0]["ports"].append({"protocol": "TCP", "port": 22})


def _wrong_guardrail_except(obj: Manifest) -> None:
    obj["spec"]["egressDeny"][1]["toCIDRSet"][0]["except"][0] = "203.0.112.0/23"


def _widen_upstream(obj: Manifest) -> None:
    obj["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] = "198.51.100.0/24"


def _egress_np(ns: str, name: str, cidr: str, ports: list[dict[str, Any]] | None = None) -> Manifest:
    rule: dict[str, Any] = {"to": [{"ipBlock": {"cidr": cidr}}]}
    if ports:
        rule["ports"] = ports
    return netpol(ns, name, "debug", types=["Egress"], egress=[rule])


ALLOW_ALL_A = netpol("tenant-a", "allow-all", "debug", ingress=[{}], egress=[{}])
P1, P2, P3, P4, P5 = TENANT_ISOLATION, EGRESS_JURISDICTION, MANAGEMENT_PLANE, TRACED, DEFAULT_DENY
PA = PLATFORM_ACCESS
PROMETHEUS = {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}


def _all_ports(kind: str, name: str, ns: str) -> Seed:
    """Drop the ports of every rule of one policy: the same peers, on every port."""

    def change(obj: Manifest) -> None:
        for direction in ("ingress", "egress"):
            for rule in obj["spec"].get(direction, []):
                rule.pop("ports", None)

    return _edit(kind, name, ns, change)


def _seeds(*seeds: Seed) -> Seed:
    def seed(m: list[Manifest]) -> None:
        for s in seeds:
            s(m)

    return seed


PE = PLATFORM_EGRESS

LEAKS: dict[str, Leak] = {
    "allow-all-ingress": Leak(
        _add(netpol("tenant-b", "allow-all-ingress", "debug", types=["Ingress"], ingress=[{}])),
        standard=frozenset({(P1, _pol(NP, "tenant-b", "allow-all-ingress"))}),
    ),
    "allow-all-egress": Leak(
        _add(netpol("tenant-a", "allow-all-egress", "debug", types=["Egress"], egress=[{}])),
        standard=frozenset(
            {
                (P1, _pol(NP, "tenant-a", "allow-all-egress")),
                (P2, _pol(NP, "tenant-a", "allow-all-egress")),
                (P3, _pol(NP, "tenant-a", "allow-all-egress")),
            }
        ),
        # the guardrail denies other tenants and all but the jurisdictions, on any port though
        cilium=frozenset({(P2, _pol(NP, "tenant-a", "allow-all-egress"))}),
    ),
    "namespace-selector-empty": Leak(
        _add(
            netpol(
                "tenant-a",
                "from-everywhere",
                "debug",
                types=["Ingress"],
                ingress=[{"from": [{"namespaceSelector": {}}]}],
            )
        ),
        standard=frozenset({(P1, _pol(NP, "tenant-a", "from-everywhere"))}),
    ),
    "namespace-selector-tenant-exists": Leak(
        _add(
            netpol(
                "tenant-a",
                "from-tenants",
                "debug",
                types=["Ingress"],
                ingress=[
                    {"from": [{"namespaceSelector": {"matchExpressions": [{"key": TENANT_KEY, "operator": "Exists"}]}}]}
                ],
            )
        ),
        standard=frozenset({(P1, _pol(NP, "tenant-a", "from-tenants"))}),
    ),
    "pod-selector-only-is-same-namespace": Leak(  # negative control: nothing leaks
        _add(
            netpol(
                "tenant-a",
                "api-from-web",
                "web-to-api",
                pods={"matchLabels": {"app": "api"}},
                types=["Ingress"],
                ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": tcp(8080)}],
            )
        ),
    ),
    "ip-block-wider-than-jurisdiction": Leak(
        _edit(NP, "egress-eu-object-store", "tenant-a", _widen),
        standard=frozenset({(P2, _pol(NP, "tenant-a", "egress-eu-object-store"))}),
        # cilium: the guardrail's toCIDRSet except is the exact /24, the other half stays denied
    ),
    "ip-block-extra-port": Leak(
        _edit(NP, "egress-eu-object-store", "tenant-a", _extra_port),
        standard=frozenset({(P2, _pol(NP, "tenant-a", "egress-eu-object-store"))}),
        cilium=frozenset({(P2, _pol(NP, "tenant-a", "egress-eu-object-store"))}),
    ),
    "ip-block-leaves-pod-range-open": Leak(
        _add(
            netpol(
                "tenant-a",
                "egress-internet",
                "debug",
                types=["Egress"],
                egress=[
                    {
                        "to": [
                            {
                                "ipBlock": {
                                    "cidr": "0.0.0.0/0",
                                    "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
                                }
                            }
                        ],
                        "ports": tcp(443),
                    }
                ],
            )
        ),
        # 100.64.0.0/16 (pods) is not excepted: the egress side admits every pod of every tenant
        standard=frozenset(
            {(P1, _pol(NP, "tenant-a", "egress-internet")), (P2, _pol(NP, "tenant-a", "egress-internet"))}
        ),
    ),
    "missing-egress-default-deny": Leak(
        _edit(NP, "default-deny", "tenant-a", _set_spec(policyTypes=["Ingress"])),
        # allow-dns still isolates egress, so nothing flows: only the missing default deny is reported
        also={"standard": frozenset({P5})},
    ),
    "new-namespace-without-policies": Leak(
        _add(namespace("tenant-c-batch", "tenant-c")),
        also={"standard": frozenset({P1, P2, P3, P4, P5}), "cilium": frozenset({P2, P4, P5})},
    ),
    "policy-types-ingress-with-egress-rules": Leak(
        _ingress_only_everywhere,
        # Kubernetes drops the egress rules, leaving egress open; Cilium still converts them, and any
        # egress rule makes egress default-deny there: the baseline's egress allows hold unchanged
        also={"standard": frozenset({P1, P2, P3, P4, P5})},
    ),
    "policy-types-ingress-only-egress-rule-allows-all-ports-under-cilium": Leak(
        # Kubernetes ignores the egress rule (Egress is not in policyTypes; default-deny holds egress);
        # Cilium converts it: every port to the jurisdiction, not only 443
        _add(
            netpol(
                "tenant-a",
                "monitoring-and-store",
                "metrics",
                types=["Ingress"],
                ingress=[{"from": [{"namespaceSelector": ns_is("monitoring")}], "ports": tcp(9090)}],
                egress=[{"to": [{"ipBlock": {"cidr": DESTINATIONS["tenant-a"][0].cidr}}]}],
            )
        ),
        cilium=frozenset({(P2, _pol(NP, "tenant-a", "monitoring-and-store"))}),
    ),
    "policy-types-egress-only-ingress-rule-allows-all-under-cilium": Leak(
        # the same with the directions swapped: Cilium admits every tenant through the ingress rule, and
        # the guardrail's deny keeps the other tenants out, so only the ingress-side blind spot shows
        # when the guardrail is gone
        _all(
            lambda m: drop(m, CCNP, "guardrail-tenant-b"),
            _add(netpol("tenant-b", "egress-with-open-ingress", "debug", types=["Egress"], ingress=[{}], egress=[])),
        ),
        cilium=frozenset({(P1, _pol(NP, "tenant-b", "egress-with-open-ingress"))}),
    ),
    "policy-types-absent-means-ingress-only": Leak(
        _edit(NP, "default-deny", "tenant-a", _drop_policy_types("default-deny")),
        also={"standard": frozenset({P5})},
    ),
    "policy-types-absent-with-egress-rules": Leak(  # negative control: Egress is defaulted in
        _edit(NP, "allow-dns", "tenant-a", _drop_policy_types("allow-dns")),
    ),
    "tenant-to-oob": Leak(
        _add(netpol("tenant-a", "to-bmc", "debug", types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": OOB}}]}])),
        standard=frozenset({(P2, _pol(NP, "tenant-a", "to-bmc")), (P3, _pol(NP, "tenant-a", "to-bmc"))}),
    ),
    "tenant-to-kube-apiserver": Leak(
        _add(
            netpol(
                "tenant-a",
                "to-apiserver",
                "debug",
                types=["Egress"],
                egress=[{"to": [{"ipBlock": {"cidr": API_SERVERS[0]}}], "ports": tcp(6443)}],
            )
        ),
        standard=frozenset({(P2, _pol(NP, "tenant-a", "to-apiserver")), (P3, _pol(NP, "tenant-a", "to-apiserver"))}),
        # cilium: the guardrail's entity deny (kube-apiserver, host, remote-node) wins over the CIDR allow
    ),
    "not-in-forgets-does-not-exist": Leak(
        # meant "platform namespaces only" (DoesNotExist); NotIn also matches every other tenant
        _add(
            netpol(
                "tenant-a",
                "from-platform",
                "platform-access",
                types=["Ingress"],
                ingress=[
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [
                                        {"key": TENANT_KEY, "operator": "NotIn", "values": ["tenant-a"]}
                                    ]
                                }
                            }
                        ],
                        "ports": tcp(8080),
                    }
                ],
            )
        ),
        standard=frozenset({(P1, _pol(NP, "tenant-a", "from-platform"))}),
    ),
    "platform-egress-anywhere": Leak(
        # monitoring may reach the API server only: the world and the other management targets are leaks
        _add(_egress_np("monitoring", "egress-anywhere", "0.0.0.0/0")),
        standard=frozenset(
            {(PE, _pol(NP, "monitoring", "egress-anywhere")), (P3, _pol(NP, "monitoring", "egress-anywhere"))}
        ),
        cilium=frozenset(
            {(PE, _pol(NP, "monitoring", "egress-anywhere")), (P3, _pol(NP, "monitoring", "egress-anywhere"))}
        ),
    ),
    "platform-operator-to-oob": Leak(
        _add(_egress_np("gpu-operator", "to-bmc", OOB)),
        standard=frozenset({(P3, _pol(NP, "gpu-operator", "to-bmc"))}),
        cilium=frozenset({(P3, _pol(NP, "gpu-operator", "to-bmc"))}),
    ),
    "platform-api-server-address-off-port": Leak(
        # the API server's address on another port than 6443 is a node port (all ports of "nodes")
        _add(_egress_np("monitoring", "apiserver-any-port", API_SERVERS[0])),
        standard=frozenset({(P3, _pol(NP, "monitoring", "apiserver-any-port"))}),
        cilium=frozenset({(P3, _pol(NP, "monitoring", "apiserver-any-port"))}),
    ),
    "platform-api-server-as-allowed": Leak(  # negative control: the allowance covers 6443 on a node address
        _add(_egress_np("gpu-operator", "apiserver-again", API_SERVERS[1], tcp(6443))),
    ),
    "platform-dns-upstream-wider": Leak(
        _edit(NP, "dns-upstream", "kube-system", _widen_upstream),
        standard=frozenset({(PE, _pol(NP, "kube-system", "dns-upstream"))}),
        cilium=frozenset({(PE, _pol(NP, "kube-system", "dns-upstream"))}),
    ),
    # two hops, each harmless alone: tenant-a pushes to Prometheus, Prometheus scrapes tenant-b
    "transit-through-monitoring": Leak(
        _add(
            netpol(
                "tenant-a",
                "push-metrics",
                "metrics-push",
                types=["Egress"],
                egress=[
                    {"to": [{"namespaceSelector": ns_is("monitoring"), "podSelector": PROMETHEUS}], "ports": tcp(9091)}
                ],
            ),
            netpol(
                "monitoring",
                "accept-push",
                "metrics-push",
                pods=PROMETHEUS,
                types=["Ingress"],
                ingress=[{"from": [{"namespaceSelector": ns_is("tenant-a")}], "ports": tcp(9091)}],
            ),
        ),
        standard=frozenset({(PA, _pol(NP, "tenant-a", "push-metrics")), (PA, _pol(NP, "monitoring", "accept-push"))}),
        cilium=frozenset({(PA, _pol(NP, "tenant-a", "push-metrics")), (PA, _pol(NP, "monitoring", "accept-push"))}),
        also={"standard": frozenset({TRANSIT}), "cilium": frozenset({TRANSIT})},
    ),
    # platform allowances bounded to their rendered ports: DNS on every port is wider than DNS
    "platform-dns-widened": Leak(
        _seeds(_all_ports(NP, "allow-dns", "tenant-a"), _all_ports(NP, "dns-from-cluster", "kube-system")),
        standard=frozenset(
            {(PA, _pol(NP, "tenant-a", "allow-dns")), (PA, _pol(NP, "kube-system", "dns-from-cluster"))}
        ),
        cilium=frozenset({(PA, _pol(NP, "tenant-a", "allow-dns")), (PA, _pol(NP, "kube-system", "dns-from-cluster"))}),
    ),
    "platform-scrape-widened": Leak(
        _seeds(_all_ports(NP, "allow-monitoring", "tenant-b"), _all_ports(NP, "scrape-tenants", "monitoring")),
        standard=frozenset(
            {(PA, _pol(NP, "tenant-b", "allow-monitoring")), (PA, _pol(NP, "monitoring", "scrape-tenants"))}
        ),
        cilium=frozenset(
            {(PA, _pol(NP, "tenant-b", "allow-monitoring")), (PA, _pol(NP, "monitoring", "scrape-tenants"))}
        ),
    ),
    # inbound: another cluster's pods (their pod range is outside this cluster) and the BMC network
    "tenant-ingress-from-another-cluster": Leak(
        _add(
            netpol(
                "tenant-a",
                "from-cluster-2",
                "debug",
                types=["Ingress"],
                ingress=[{"from": [{"ipBlock": {"cidr": "100.80.0.0/16"}}], "ports": tcp(8080)}],
            )
        ),
        standard=frozenset({(INBOUND, _pol(NP, "tenant-a", "from-cluster-2"))}),
        cilium=frozenset({(INBOUND, _pol(NP, "tenant-a", "from-cluster-2"))}),
    ),
    "tenant-ingress-from-bmc-network": Leak(
        _add(
            netpol(
                "tenant-b",
                "from-bmcs",
                "debug",
                types=["Ingress"],
                ingress=[{"from": [{"ipBlock": {"cidr": OOB}}], "ports": tcp(22)}],
            )
        ),
        standard=frozenset({(INBOUND, _pol(NP, "tenant-b", "from-bmcs"))}),
        cilium=frozenset({(INBOUND, _pol(NP, "tenant-b", "from-bmcs"))}),
    ),
    "admin-zone-egress-to-world": Leak(
        # the admin zone may reach the management plane, but its way out must be declared too
        _add(_egress_np("kasbah-admin", "to-internet", "0.0.0.0/0", tcp(443))),
        standard=frozenset({(PE, _pol(NP, "kasbah-admin", "to-internet"))}),
        cilium=frozenset({(PE, _pol(NP, "kasbah-admin", "to-internet"))}),
    ),
    "platform-namespace-without-allowance": Leak(
        # a non-tenant namespace the expectations do not list may reach nothing outside
        _add(*baseline_namespace("network-operator", None, ())),
        standard=frozenset({(P3, _pol(NP, "network-operator", "allow-kube-apiserver"))}),
        cilium=frozenset({(P3, _pol(NP, "network-operator", "allow-kube-apiserver"))}),
    ),
    "platform-cilium-to-world-and-host": Leak(
        _add(
            cilium(
                CNP,
                "to-world-and-nodes",
                "debug",
                {"endpointSelector": {}, "egress": [{"toEntities": ["world", "host", "kube-apiserver"]}]},
                "monitoring",
            )
        ),
        cilium=frozenset(
            {(PE, _pol(CNP, "monitoring", "to-world-and-nodes")), (P3, _pol(CNP, "monitoring", "to-world-and-nodes"))}
        ),
    ),
    "platform-ingress-from-world": Leak(
        # only the admin networks may open connections into a non-tenant namespace
        _add(
            netpol(
                "monitoring",
                "grafana-from-anywhere",
                "debug",
                pods={"matchLabels": {"app.kubernetes.io/name": "grafana"}},
                types=["Ingress"],
                ingress=[{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [POD_CIDR, SERVICE_CIDR]}}]}],
            )
        ),
        standard=frozenset({(P3, _pol(NP, "monitoring", "grafana-from-anywhere"))}),
        cilium=frozenset({(P3, _pol(NP, "monitoring", "grafana-from-anywhere"))}),
    ),
    "unannotated-allow": Leak(
        _edit(NP, "allow-dns", "tenant-a", _remove_annotation),
        standard=frozenset({(P4, _pol(NP, "tenant-a", "allow-dns"))}),
        cilium=frozenset({(P4, _pol(NP, "tenant-a", "allow-dns"))}),
    ),
    "cilium-to-entities-world": Leak(
        _add(
            cilium(
                CNP, "to-world", "debug", {"endpointSelector": {}, "egress": [{"toEntities": ["world"]}]}, "tenant-a"
            )
        ),
        cilium=frozenset({(P2, _pol(CNP, "tenant-a", "to-world"))}),
    ),
    "cilium-guardrail-deleted": Leak(  # the NetworkPolicies alone still hold: nothing leaks
        lambda m: drop(m, CCNP, "guardrail-tenant-a"),
    ),
    "cilium-guardrail-deleted-and-allow-all": Leak(  # now nothing masks the NetworkPolicy leak
        _all(lambda m: drop(m, CCNP, "guardrail-tenant-a"), _add(ALLOW_ALL_A)),
        standard=frozenset(
            {
                (P1, _pol(NP, "tenant-a", "allow-all")),
                (P2, _pol(NP, "tenant-a", "allow-all")),
                (P3, _pol(NP, "tenant-a", "allow-all")),
            }
        ),
        cilium=frozenset(
            {
                (P1, _pol(NP, "tenant-a", "allow-all")),
                (P2, _pol(NP, "tenant-a", "allow-all")),
                (P3, _pol(NP, "tenant-a", "allow-all")),
            }
        ),
    ),
    "allow-all-overridden-by-guardrail": Leak(
        _add(ALLOW_ALL_A),
        standard=frozenset(
            {
                (P1, _pol(NP, "tenant-a", "allow-all")),
                (P2, _pol(NP, "tenant-a", "allow-all")),
                (P3, _pol(NP, "tenant-a", "allow-all")),
            }
        ),
        # the guardrail's deny rules win: no tenant path, no management plane; jurisdiction ports stay open
        cilium=frozenset({(P2, _pol(NP, "tenant-a", "allow-all"))}),
    ),
    "cilium-to-cidr-set-wrong-except": Leak(
        # the guardrail excepts a /23 where the jurisdiction is a /24: it no longer masks a wide ipBlock
        _all(
            _edit(CCNP, "guardrail-tenant-a", None, _wrong_guardrail_except),
            _edit(NP, "egress-eu-object-store", "tenant-a", _widen),
        ),
        standard=frozenset({(P2, _pol(NP, "tenant-a", "egress-eu-object-store"))}),
        cilium=frozenset({(P2, _pol(NP, "tenant-a", "egress-eu-object-store"))}),
    ),
    "cilium-from-entities-all": Leak(
        _add(
            cilium(
                CNP,
                "from-anywhere",
                "debug",
                {
                    "endpointSelector": {},
                    "ingress": [
                        {"fromEntities": ["all"], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}
                    ],
                },
                "kasbah-admin",
            )
        ),
        cilium=frozenset({(P3, _pol(CNP, "kasbah-admin", "from-anywhere"))}),
    ),
    "cilium-to-fqdns-unsupported": Leak(
        _add(
            cilium(
                CNP,
                "to-fqdn",
                "debug",
                {
                    "endpointSelector": {},
                    "egress": [
                        {
                            "toFQDNs": [{"matchName": "api.example.com"}],
                            "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
                        }
                    ],
                },
                "tenant-a",
            )
        ),
        cilium=frozenset({(UNSUPPORTED, _pol(CNP, "tenant-a", "to-fqdn"))}),
    ),
}

# Leaks that also open pods to connections from outside the cluster (beyond a tenant's declared sources)
# or from the BMC network: the inbound property fails too, in these modes.
_ALSO_INBOUND = {
    "allow-all-ingress": ("standard", "cilium"),
    "new-namespace-without-policies": ("standard", "cilium"),
    "policy-types-egress-only-ingress-rule-allows-all-under-cilium": ("cilium",),
    "not-in-forgets-does-not-exist": ("cilium",),
    "platform-ingress-from-world": ("standard", "cilium"),
    "cilium-guardrail-deleted-and-allow-all": ("standard", "cilium"),
    "allow-all-overridden-by-guardrail": ("standard", "cilium"),
    "cilium-from-entities-all": ("cilium",),
}
for _name, _modes in _ALSO_INBOUND.items():
    _leak = LEAKS[_name]
    LEAKS[_name] = dataclasses.replace(
        _leak, also={**_leak.also, **{m: _leak.also.get(m, frozenset()) | {INBOUND} for m in _modes}}
    )


@pytest.mark.parametrize("name", list(LEAKS))
def test_seeded_leak_is_caught_where_it_leaks(name: str) -> None:
    leak = LEAKS[name]
    manifests = build_cluster()
    leak.seed(manifests)
    report = verify(manifests)
    for mode, named in (("standard", leak.standard), ("cilium", leak.cilium)):
        found = {(v.property, v.policy) for v in report.of(mode)}
        assert named <= found, f"{mode}: missing {named - found}\n{dump(report)}"
        expected = {p for p, _ in named} | leak.also.get(mode, frozenset())
        assert properties(report, mode) == expected, f"{mode}\n{dump(report)}"


def test_messages_name_both_policies_and_the_flow() -> None:
    manifests = build_cluster()
    manifests.append(netpol("tenant-a", "allow-all", "debug", types=["Egress"], egress=[{}]))
    manifests.append(netpol("tenant-b", "allow-everything", "debug", types=["Ingress"], ingress=[{}]))
    report = verify(manifests)
    path = [v for v in report.of("standard", TENANT_ISOLATION) if v.message.startswith("tenant-a -> tenant-b:")]
    assert {v.policy for v in path} == {"NetworkPolicy tenant-a/allow-all", "NetworkPolicy tenant-b/allow-everything"}
    assert path[0].message == (
        "tenant-a -> tenant-b: allowed by NetworkPolicy tenant-a/allow-all (egress rule 0)"
        " and NetworkPolicy tenant-b/allow-everything (ingress rule 0)"
    )
    assert path[0].flow == "tenant-a/* -> tenant-b/* all"
    assert report.of("cilium", TENANT_ISOLATION) == ()


def test_ip_block_path_explains_the_pod_range_overlap() -> None:
    leak = LEAKS["ip-block-leaves-pod-range-open"]
    manifests = build_cluster()
    leak.seed(manifests)
    (v, *_) = [v for v in verify(manifests).of("standard", TENANT_ISOLATION) if "tenant-b" in v.message]
    assert (
        "ipBlock 0.0.0.0/0 except 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 covers pod/service addresses" in v.message
    )
    assert v.flow == "tenant-a/* -> tenant-b/* tcp/443"


def test_platform_messages_name_the_allowance() -> None:
    manifests = build_cluster()
    LEAKS["platform-operator-to-oob"].seed(manifests)
    LEAKS["platform-dns-upstream-wider"].seed(manifests)
    report = verify(manifests)
    (v,) = report.of("cilium", MANAGEMENT_PLANE)
    assert v.policy == "NetworkPolicy gpu-operator/to-bmc" and v.flow == "gpu-operator/* -> 10.10.0.0/16 all"
    assert v.message == (
        "gpu-operator -> management target oob (10.10.0.0/16) all: only the admin zone and the namespaces allowed"
        " this target may reach it (gpu-operator allowed: kube-apiserver);"
        " allowed by NetworkPolicy gpu-operator/to-bmc (egress rule 0)"
    )
    flows = {v.flow for v in report.of("standard", PLATFORM_EGRESS)}
    assert "kube-system/k8s-app=kube-dns -> 198.51.100.16/28 tcp,udp/53" in flows  # tenant-a's registry
    assert "kube-system/k8s-app=kube-dns -> 198.51.100.53/32 tcp,udp/53" not in flows  # the declared resolver
    assert all("(declared: upstream-dns)" in v.message for v in report.of("standard", PLATFORM_EGRESS))


def test_platform_destinations_are_per_protocol() -> None:
    tcp_only = PlatformAllowance(frozenset({"kube-apiserver"}), (Destination("upstream-dns", UPSTREAM_DNS, (53,)),))
    expect = dataclasses.replace(expectations(), platform={**ALLOWANCES, "kube-system": tcp_only})
    (v,) = verify_cluster(build_cluster(), expect).of("standard", PLATFORM_EGRESS)
    assert v.flow == "kube-system/k8s-app=kube-dns -> 198.51.100.53/32 udp/53"
    assert Destination("x", UPSTREAM_DNS, (53,), ("udp", "TCP")).protocols == ("udp", "TCP")
    with pytest.raises(ValueError, match="protocols"):
        Destination("x", UPSTREAM_DNS, (53,), ("ICMP",))


def test_platform_allowance_does_not_apply_to_tenant_namespaces() -> None:
    expect = dataclasses.replace(
        expectations(),
        admin_namespaces=frozenset({"kasbah-admin", "tenant-a"}),
        platform={**ALLOWANCES, "tenant-a": APISERVER_ONLY},
    )
    manifests = build_cluster()
    LEAKS["tenant-to-kube-apiserver"].seed(manifests)
    report = verify_cluster(manifests, expect)
    assert {v.policy for v in report.of("standard", MANAGEMENT_PLANE)} == {"NetworkPolicy tenant-a/to-apiserver"}


def test_default_deny_names_the_namespace() -> None:
    manifests = build_cluster()
    manifests.append(namespace("scratch"))
    (v,) = verify(manifests).of("standard", DEFAULT_DENY)
    assert v.policy is None and v.flow == "scratch/*"
    assert v.message.startswith("namespace scratch has no default-deny NetworkPolicy for ingress and egress")


def test_jurisdiction_violation_names_addresses_and_ports() -> None:
    manifests = build_cluster()
    LEAKS["ip-block-extra-port"].seed(manifests)
    (v,) = verify(manifests).of("cilium", EGRESS_JURISDICTION)
    assert v.flow == "tenant-a/* -> 203.0.113.0/24 tcp/22"
    assert "outside the jurisdictions of tenant tenant-a" in v.message


# -- semantics the proof rests on --------------------------------------------------------------


def test_empty_rule_allows_everything_in_kubernetes_and_nothing_in_cilium() -> None:
    manifests = build_cluster()
    drop(manifests, NP, "web-from-internet", "tenant-b")
    manifests.append(netpol("tenant-b", "k8s-empty-rule", "debug", types=["Ingress"], ingress=[{}]))
    matrix = verify(manifests).matrix
    assert matrix["standard"].cell("world", "tenant-b") == "all"
    assert matrix["cilium"].cell("world", "tenant-b") == "all"  # Cilium reads a NetworkPolicy the Kubernetes way

    manifests = build_cluster()
    drop(manifests, NP, "web-from-internet", "tenant-b")
    drop(manifests, NP, "default-deny", "tenant-b")
    drop(manifests, NP, "allow-monitoring", "tenant-b")
    drop(manifests, NP, "same-tenant", "tenant-b")
    manifests.append(
        cilium(CNP, "cilium-empty-rule", "default-deny", {"endpointSelector": {}, "ingress": [{}]}, "tenant-b")
    )
    report = verify(manifests)
    assert report.matrix["standard"].cell("world", "tenant-b") == "all"  # no NetworkPolicy isolates ingress
    assert report.matrix["cilium"].cell("world", "tenant-b") == "·"  # {} selects no peer, and isolates
    assert not [v for v in report.of("cilium", DEFAULT_DENY) if "ingress" in v.message]


def test_policy_types_default_from_the_rules() -> None:
    def types(spec: dict[str, Any]) -> dict[str, bool]:
        policy, problems = read_network_policy(
            {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "n"}, "spec": spec}
        )
        assert policy is not None and not problems
        return policy.isolates

    assert types({"podSelector": {}}) == {"ingress": True, "egress": False}
    assert types({"podSelector": {}, "egress": []}) == {"ingress": True, "egress": False}
    assert types({"podSelector": {}, "egress": [{}]}) == {"ingress": True, "egress": True}
    assert types({"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]}) == {"ingress": False, "egress": True}


def test_cilium_converts_rules_outside_policy_types() -> None:
    """Cilium's ParseNetworkPolicy: every rule counts, policyTypes only adds default deny to a direction without rules."""

    def read(spec: dict[str, Any]) -> tuple[dict[str, bool], dict[str, bool], list[str], list[str]]:
        policy, problems = read_network_policy(
            {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "n"}, "spec": spec}
        )
        assert policy is not None and not problems
        kube, cil = policy.enforced_rules(False), policy.enforced_rules(True)
        return policy.isolation(False), policy.isolation(True), [r.label for r in kube], [r.label for r in cil]

    both = {"ingress": True, "egress": True}
    ingress_only = {"ingress": True, "egress": False}
    egress_only = {"ingress": False, "egress": True}
    assert read({"podSelector": {}}) == (ingress_only, ingress_only, [], [])
    assert read({"podSelector": {}, "policyTypes": ["Egress"]}) == (egress_only, egress_only, [], [])
    assert read({"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]}) == (
        ingress_only,
        both,
        [],
        ["egress rule 0"],
    )
    assert read({"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]}) == (
        egress_only,
        both,
        [],
        ["ingress rule 0"],
    )
    # no ingress rule and Ingress not listed: Cilium adds no ingress default deny either
    assert read({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}) == (
        egress_only,
        egress_only,
        ["egress rule 0"],
        ["egress rule 0"],
    )


def test_problems_in_rules_outside_policy_types_count_for_cilium_only() -> None:
    manifests = build_cluster()
    bad = {"to": [{"ipBlock": {"cidr": "not-a-cidr"}}]}
    manifests.append(netpol("tenant-a", "bad-ignored-egress", "debug", types=["Ingress"], ingress=[], egress=[bad]))
    report = verify(manifests)
    assert report.of("standard", UNSUPPORTED) == ()
    assert {v.policy for v in report.of("cilium", UNSUPPORTED)} == {"NetworkPolicy tenant-a/bad-ignored-egress"}


def test_rules_outside_policy_types_under_cilium_in_the_matrix() -> None:
    manifests = build_cluster()
    manifests.append(netpol("tenant-b", "egress-types-open-ingress", "debug", types=["Egress"], ingress=[{}]))
    report = verify(manifests)
    assert report.matrix["standard"].cell("world", "tenant-b") == "tcp/443"
    assert report.matrix["cilium"].cell("world", "tenant-b") == "all"
    (flow,) = [f for f in report.flows if (f.mode, f.source, f.destination) == ("cilium", "world", "tenant-b")]
    assert (
        "NetworkPolicy tenant-b/egress-types-open-ingress (ingress rule 0)"
        " [Cilium enforces it although Ingress is not in policyTypes]" in flow.allowed_by
    )


def test_cilium_peer_scope_namespace_vs_clusterwide() -> None:
    manifests = build_cluster()
    drop(manifests, CCNP, "guardrail-tenant-a")
    drop(manifests, CCNP, "guardrail-tenant-b")
    # a CiliumNetworkPolicy {} peer means "pods of this namespace": tenant-internal, fine
    manifests.append(
        cilium(
            CNP,
            "same-namespace",
            "tenant-internal",
            {"endpointSelector": {}, "egress": [{"toEndpoints": [{}]}]},
            "tenant-a",
        )
    )
    assert verify(manifests).ok("cilium")
    # a clusterwide {} peer means every pod of the cluster
    spec = {"endpointSelector": {"matchLabels": {NS_TENANT: "tenant-b"}}, "ingress": [{"fromEndpoints": [{}]}]}
    manifests.append(cilium(CCNP, "tenant-b-from-all-pods", "debug", spec))
    manifests.append(
        cilium(
            CNP,
            "to-tenant-b",
            "debug",
            {
                "endpointSelector": {},
                "egress": [{"toEndpoints": [{"matchLabels": {"io.kubernetes.pod.namespace": "tenant-b"}}]}],
            },
            "tenant-a",
        )
    )
    report = verify(manifests)
    assert report.ok("standard")
    path = {
        v.policy
        for v in report.of("cilium", TENANT_ISOLATION)
        if v.message.startswith("tenant-a -> tenant-b: allowed by")
    }
    assert path == {"CiliumNetworkPolicy tenant-a/to-tenant-b", "CiliumClusterwideNetworkPolicy tenant-b-from-all-pods"}


def test_cilium_deny_beats_allow_and_enable_default_deny_false_does_not_isolate() -> None:
    manifests = build_cluster()
    drop(manifests, NP, "default-deny", "tenant-b")
    drop(manifests, NP, "same-tenant", "tenant-b")
    drop(manifests, NP, "allow-monitoring", "tenant-b")
    drop(manifests, NP, "web-from-internet", "tenant-b")
    report = verify(manifests)
    # tenant-b's ingress is open to the world (the guardrail sets enableDefaultDeny false), but other tenants stay denied
    assert report.matrix["cilium"].cell("world", "tenant-b") == "all"
    assert report.of("cilium", TENANT_ISOLATION) == ()
    # only the pods no app-tier policy selects: api and db pods stay isolated for ingress
    (v,) = report.of("cilium", DEFAULT_DENY)
    assert v.flow == "tenant-b/app notin (api,db,web) | app=web"
    assert (
        v.message
        == "namespace tenant-b: pods app notin (api,db,web) | app=web are not isolated for ingress by any policy"
    )


def test_unsupported_features_are_violations_not_exceptions() -> None:
    manifests = build_cluster()
    l7 = {"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [{"method": "GET"}]}}
    manifests.append(
        cilium(
            CNP,
            "l7",
            "web",
            {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}], "toPorts": [l7]}]},
            "tenant-a",
        )
    )
    manifests.append(
        cilium(CNP, "requires", "x", {"endpointSelector": {}, "ingress": [{"fromRequires": [{}]}]}, "tenant-a")
    )
    manifests.append(
        netpol("tenant-a", "bad-cidr", "x", types=["Egress"], egress=[{"to": [{"ipBlock": {"cidr": "not-a-cidr"}}]}])
    )
    manifests.append(
        {
            "apiVersion": "policy.networking.k8s.io/v1alpha1",
            "kind": "AdminNetworkPolicy",
            "metadata": {"name": "anp"},
            "spec": {},
        }
    )
    report = verify(manifests)
    unsupported = {v.policy for v in report.of("cilium", UNSUPPORTED)}
    assert unsupported == {
        "CiliumNetworkPolicy tenant-a/l7",
        "CiliumNetworkPolicy tenant-a/requires",
        "NetworkPolicy tenant-a/bad-cidr",
        "AdminNetworkPolicy anp",
    }
    assert {v.policy for v in report.of("standard", UNSUPPORTED)} == {
        "NetworkPolicy tenant-a/bad-cidr",
        "AdminNetworkPolicy anp",
    }


def test_ipv6_egress_is_checked_too() -> None:
    manifests = build_cluster()
    manifests.append(
        netpol(
            "tenant-a",
            "egress-v6",
            "debug",
            types=["Egress"],
            egress=[{"to": [{"ipBlock": {"cidr": "2001:db8::/32"}}], "ports": tcp(443)}],
        )
    )
    report = verify(manifests)
    (v,) = report.of("standard", EGRESS_JURISDICTION)
    assert v.flow == "tenant-a/* -> 2001:db8::/32 tcp/443"
    assert report.ok("cilium")  # the guardrail denies ::/0


def test_twenty_tenants_verify_clean() -> None:
    manifests, expect = scaled(20)
    report = verify_cluster(manifests, expect)
    assert report.ok(), dump(report)
    assert len(report.matrix["cilium"].rows) == 20 * 3 + len(PLATFORM) + 3  # admin networks, world, bmc network


# -- the algebra underneath --------------------------------------------------------------------


LABEL_SETS: list[dict[str, str]] = [
    {},
    {"app": "web"},
    {"app": "db"},
    {"app": "x"},
    {"tier": "a"},
    {"app": "web", "tier": "b"},
]


def _selectors() -> Iterable[tuple[Requirement, ...]]:
    yield (Requirement("app", "NotIn", ("web",)),)
    yield (Requirement("app", "In", ("web", "db")), Requirement("tier", "DoesNotExist"))
    yield (Requirement("tier", "Exists"),)


def test_regions_partition_label_space_and_samples_decide_every_selector() -> None:
    regions: list[Region] = [EVERY_POD]
    for sel in _selectors():
        regions = refine(regions, sel)
    assert len({describe(r) for r in regions}) == len(regions)
    for labels in LABEL_SETS:
        homes = [r for r in regions if all(_holds(ks, labels.get(k)) for k, ks in r)]
        assert len(homes) == 1, (labels, [describe(r) for r in homes])
        for sel in _selectors():
            assert matches_all(sel, labels) == matches_all(sel, sample(homes[0]))


def _holds(ks: KeySet, value: str | None) -> bool:
    if value is None:
        return ks.absent
    return value not in ks.values if ks.cofinite else value in ks.values


def test_not_in_matches_pods_without_the_key() -> None:
    assert Requirement("app", "NotIn", ("web",)).matches({})
    assert not Requirement("app", "In", ("web",)).matches({})


def test_port_sets_and_address_atoms() -> None:
    dns = PortSet.of("udp", 53, 53) | PortSet.of("tcp", 53, 53)
    assert dns.format() == "tcp,udp/53"
    assert (ALL_PORTS - dns) & dns == PortSet()
    assert (PortSet.of("tcp", 1, 100) - PortSet.of("tcp", 50, 60)).format() == "tcp/1-49,61-100"
    assert ALL_PORTS.format() == "all"
    import ipaddress

    nets = [ipaddress.ip_network(n) for n in ("0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "::/0", "2001:db8::/32")]
    atoms = AddressAtoms(nets)
    outside = atoms.mask(nets[0]) & ~atoms.mask(nets[2])
    assert atoms.cidrs(outside & atoms.mask(nets[1])) == [
        "10.0.0.0/16",
        *(f"10.{2**k}.0.0/{16 - k}" for k in range(1, 8)),
    ]
    assert atoms.cidrs(atoms.mask(nets[4])) == ["2001:db8::/32"]
