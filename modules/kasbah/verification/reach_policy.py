"""Reads rendered NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy objects into one rule form."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kasbah.verification.reach_labels import OPERATORS, Requirement
from kasbah.verification.reach_space import ALL_PORTS, MAX_PORT, NO_PORTS, PORTED, IPNetwork, PortSet

RULE_ANNOTATION = "kasbah.io/rule"
NETWORK_POLICY = "NetworkPolicy"
CILIUM_POLICY = "CiliumNetworkPolicy"
CILIUM_CLUSTERWIDE = "CiliumClusterwideNetworkPolicy"

# Labels Cilium derives from the namespace (a pod cannot set them: the agent overwrites them).
NS_NAME_KEY = "io.kubernetes.pod.namespace"
NS_LABEL_PREFIX = "io.cilium.k8s.namespace.labels."
CLUSTER_KEY = "io.cilium.k8s.policy.cluster"

# Entities the model gives addresses to (through ManagementTarget.entities) or meaning to.
KNOWN_ENTITIES = frozenset(
    {"all", "world", "world-ipv4", "world-ipv6", "cluster", "host", "remote-node", "kube-apiserver"}
    | {"unmanaged", "ingress", "health", "init"}
)

_CILIUM_PEERS = {
    "ingress": ("fromEndpoints", "fromCIDR", "fromCIDRSet", "fromEntities"),
    "egress": ("toEndpoints", "toCIDR", "toCIDRSet", "toEntities"),
}
# Peer kinds whose members are only known at run time (DNS answers, services, node labels,
# CIDR groups) or that combine rules across policies: no sound static reading of them here.
_CILIUM_UNSUPPORTED_PEERS = {
    "ingress": ("fromRequires", "fromGroups", "fromNodes"),
    "egress": ("toFQDNs", "toServices", "toRequires", "toGroups", "toNodes"),
}
_CILIUM_RULE_KEYS = {"toPorts", "icmps"}


@dataclass(frozen=True, slots=True)
class Selector:
    """Pods picked by a selector: an optional fixed namespace, namespace-level and pod-level requirements."""

    namespace: str | None
    ns_reqs: tuple[Requirement, ...] = ()
    pod_reqs: tuple[Requirement, ...] = ()

    @property
    def negative_only(self) -> bool:
        """No positive requirement anywhere: Cilium may also match identities without labels (world, host)."""
        reqs = self.ns_reqs + self.pod_reqs
        return self.namespace is None and bool(reqs) and not any(r.positive for r in reqs)


@dataclass(frozen=True, slots=True)
class Block:
    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def __str__(self) -> str:
        return f"{self.cidr} except {', '.join(map(str, self.excepts))}" if self.excepts else str(self.cidr)


@dataclass(frozen=True, slots=True)
class Peers:
    everything: bool = False
    selectors: tuple[Selector, ...] = ()
    blocks: tuple[Block, ...] = ()
    entities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    label: str  # "egress rule 0", "specs[1] ingressDeny rule 2"
    direction: str  # "ingress" | "egress"
    deny: bool
    peers: Peers
    ports: PortSet
    cilium_only: bool = False  # a NetworkPolicy rule outside policyTypes: Kubernetes ignores it, Cilium enforces it


@dataclass(slots=True)
class Policy:
    kind: str
    namespace: str | None
    name: str
    rule_name: str | None  # the kasbah.io/rule annotation
    subject: Selector
    isolates: dict[str, bool]
    rules: list[Rule] = field(default_factory=list)
    selects_pods: bool = True  # False for Cilium host policies (nodeSelector)
    cilium_isolates: dict[str, bool] | None = None  # how Cilium isolates, when it differs from the Kubernetes way

    @property
    def cilium_only(self) -> bool:
        return self.kind != NETWORK_POLICY

    def isolation(self, cilium: bool) -> dict[str, bool]:
        """The directions the policy makes default-deny for the pods it selects, as Kubernetes or Cilium reads it."""
        return self.cilium_isolates if cilium and self.cilium_isolates is not None else self.isolates

    def enforced_rules(self, cilium: bool) -> list[Rule]:
        """The rules Kubernetes (only those of a direction in policyTypes) or Cilium (all) enforces."""
        return self.rules if cilium else [r for r in self.rules if not r.cilium_only]

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Problem:
    """A feature that cannot be analysed soundly, or a malformed object."""

    cilium_only: bool
    policy: str
    message: str


class _Reader:
    def __init__(self, kind: str, namespace: str | None, name: str) -> None:
        self.kind, self.namespace, self.name = kind, namespace, name
        self.problems: list[Problem] = []
        self.label = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
        self.cilium_only = kind != NETWORK_POLICY  # problems found from here on matter to Cilium only

    def problem(self, message: str) -> None:
        self.problems.append(Problem(self.cilium_only, self.label, f"{self.label}: {message}"))

    # -- shared pieces -------------------------------------------------------------------------

    def requirements(self, raw: Any, where: str) -> tuple[Requirement, ...] | None:
        if raw is None:
            return ()
        if not isinstance(raw, Mapping):
            self.problem(f"{where} is not a label selector")
            return None
        out: list[Requirement] = []
        for key, value in (raw.get("matchLabels") or {}).items():
            out.append(Requirement(str(key), "In", (str(value),)))
        for expr in raw.get("matchExpressions") or []:
            op = expr.get("operator") if isinstance(expr, Mapping) else None
            if op not in OPERATORS:
                self.problem(f"{where}: unknown selector operator {op!r}")
                return None
            values = tuple(sorted(str(v) for v in expr.get("values") or []))
            out.append(Requirement(str(expr.get("key")), str(op), values))
        return tuple(sorted(out))

    def network(self, raw: Any, where: str) -> IPNetwork | None:
        try:
            return ipaddress.ip_network(str(raw), strict=False)
        except ValueError:
            self.problem(f"{where}: {raw!r} is not a CIDR")
            return None

    def block(self, cidr: Any, excepts: Any, where: str) -> Block | None:
        net = self.network(cidr, where)
        if net is None:
            return None
        outs = [self.network(e, where) for e in excepts or []]
        if any(o is None for o in outs):
            return None
        return Block(net, tuple(o for o in outs if o is not None))

    def port_range(self, port: Any, end: Any, where: str, deny: bool) -> tuple[int, int] | None:
        """Inclusive port range; a named port matches any port (allow) or no port (deny) — conservative both ways."""
        if port is None or str(port) == "0":
            return 1, MAX_PORT
        text = str(port)
        if not text.isdigit():
            return None if deny else (1, MAX_PORT)
        first = int(text)
        last = int(end) if end is not None else first
        if not 1 <= first <= last <= MAX_PORT:
            self.problem(f"{where}: port range {first}-{last} is out of bounds")
            return None if deny else (1, MAX_PORT)
        return first, last


def read_namespace(obj: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    meta = obj.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return str(meta.get("name")), labels


def _meta(obj: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    rule = annotations.get(RULE_ANNOTATION)
    ns = meta.get("namespace")
    return str(meta.get("name")), (str(ns) if ns else None), (str(rule) if rule else None)


# -- Kubernetes NetworkPolicy ------------------------------------------------------------------


def read_network_policy(obj: Mapping[str, Any]) -> tuple[Policy | None, list[Problem]]:
    name, namespace, rule_name = _meta(obj)
    namespace = namespace or "default"
    r = _Reader(NETWORK_POLICY, namespace, name)
    spec = obj.get("spec") or {}
    pod_reqs = r.requirements(spec.get("podSelector"), "podSelector")
    if pod_reqs is None:
        return None, r.problems
    types = spec.get("policyTypes")
    if not types:
        # API defaulting: every policy affects ingress; egress only when it has egress rules.
        types = ["Ingress", *(["Egress"] if spec.get("egress") else [])]
    # Kubernetes enforces the directions in policyTypes and ignores the rules of the others.
    isolates = {"ingress": "Ingress" in types, "egress": "Egress" in types}
    # Cilium (pkg/k8s/network_policy.go, ParseNetworkPolicy) converts spec.ingress and spec.egress
    # whatever policyTypes says, and any converted rule makes its direction default-deny; policyTypes
    # only adds an empty rule (default deny) to a direction without rules: ingress when Ingress is
    # listed or Egress is not, egress when Egress is listed.
    cilium_isolates = {
        "ingress": bool(spec.get("ingress")) or "Ingress" in types or "Egress" not in types,
        "egress": bool(spec.get("egress")) or "Egress" in types,
    }
    policy = Policy(
        NETWORK_POLICY,
        namespace,
        name,
        rule_name,
        Selector(namespace, (), pod_reqs),
        isolates,
        cilium_isolates=cilium_isolates if cilium_isolates != isolates else None,
    )
    for direction, peer_key in (("ingress", "from"), ("egress", "to")):
        r.cilium_only = not isolates[direction]
        for index, raw in enumerate(spec.get(direction) or []):
            where = f"{direction} rule {index}"
            peers = _np_peers(r, namespace, (raw or {}).get(peer_key), where)
            ports = _np_ports(r, (raw or {}).get("ports"), where)
            policy.rules.append(Rule(where, direction, False, peers, ports, cilium_only=not isolates[direction]))
    r.cilium_only = False
    return policy, r.problems


def _np_peers(r: _Reader, namespace: str, raw: Any, where: str) -> Peers:
    if not raw:
        return Peers(everything=True)  # no from/to: every source or destination
    selectors: list[Selector] = []
    blocks: list[Block] = []
    for peer in raw:
        if "ipBlock" in peer:
            ip = peer["ipBlock"] or {}
            block = r.block(ip.get("cidr"), ip.get("except"), where)
            if block is None:
                return Peers(everything=True)
            blocks.append(block)
            continue
        pods = r.requirements(peer.get("podSelector"), where)
        if "namespaceSelector" in peer:
            ns_raw = r.requirements(peer.get("namespaceSelector"), where)
            if ns_raw is None or pods is None:
                return Peers(everything=True)
            ns_reqs = tuple(Requirement(NS_LABEL_PREFIX + q.key, q.op, q.values) for q in ns_raw)
            selectors.append(Selector(None, ns_reqs, pods))
        else:
            if pods is None:
                return Peers(everything=True)
            selectors.append(Selector(namespace, (), pods))
    return Peers(selectors=tuple(selectors), blocks=tuple(blocks))


def _np_ports(r: _Reader, raw: Any, where: str) -> PortSet:
    if not raw:
        return ALL_PORTS
    out = NO_PORTS
    for entry in raw:
        protocol = str(entry.get("protocol", "TCP")).lower()
        if protocol not in PORTED:
            r.problem(f"{where}: unknown protocol {protocol!r}")
            return ALL_PORTS
        span = r.port_range(entry.get("port"), entry.get("endPort"), where, deny=False)
        if span is not None:
            out |= PortSet.of(protocol, *span)
    return out


# -- Cilium ------------------------------------------------------------------------------------


def read_cilium_policy(obj: Mapping[str, Any]) -> tuple[list[Policy], list[Problem]]:
    kind = str(obj.get("kind"))
    name, namespace, rule_name = _meta(obj)
    namespace = (namespace or "default") if kind == CILIUM_POLICY else None
    r = _Reader(kind, namespace, name)
    specs: list[tuple[str, Any]] = []
    if obj.get("spec"):
        specs.append(("", obj["spec"]))
    specs.extend((f"specs[{i}] ", s) for i, s in enumerate(obj.get("specs") or []))
    policies = [p for prefix, spec in specs if (p := _cilium_spec(r, spec, prefix, rule_name)) is not None]
    return policies, r.problems


def _cilium_spec(r: _Reader, spec: Mapping[str, Any], prefix: str, rule_name: str | None) -> Policy | None:
    if "nodeSelector" in spec:
        # Host policies restrict traffic of the nodes themselves; the proof treats the far end of
        # every pod connection to a node as open already, so leaving them out only over-approximates.
        return Policy(r.kind, r.namespace, r.name, rule_name, Selector(None), {}, selects_pods=False)
    subject = _cilium_selector(r, spec.get("endpointSelector"), f"{prefix}endpointSelector", peer=False)
    if subject is None:
        return None
    defaults = spec.get("enableDefaultDeny") or {}
    isolates: dict[str, bool] = {}
    for direction in ("ingress", "egress"):
        has_rules = bool(spec.get(direction)) or bool(spec.get(f"{direction}Deny"))
        explicit = defaults.get(direction)
        isolates[direction] = has_rules if explicit is None else bool(explicit) and has_rules
    policy = Policy(r.kind, r.namespace, r.name, rule_name, subject, isolates)
    for direction in ("ingress", "egress"):
        for deny in (False, True):
            section = f"{direction}Deny" if deny else direction
            for index, raw in enumerate(spec.get(section) or []):
                where = f"{prefix}{section} rule {index}"
                policy.rules.append(_cilium_rule(r, raw or {}, direction, deny, where))
    return policy


def _cilium_selector(r: _Reader, raw: Any, where: str, *, peer: bool) -> Selector | None:
    reqs = r.requirements(raw, where)
    if reqs is None:
        return None
    ns_reqs: list[Requirement] = []
    pod_reqs: list[Requirement] = []
    for req in reqs:
        source, _, key = req.key.partition(":") if ":" in req.key else ("any", "", req.key)
        if source not in ("k8s", "any"):
            r.problem(f"{where}: label source {source!r} in {req.key!r} is not supported (use toEntities/fromEntities)")
            return None
        plain = Requirement(key, req.op, req.values)
        if key in (NS_NAME_KEY, CLUSTER_KEY) or key.startswith(NS_LABEL_PREFIX):
            ns_reqs.append(plain)
        else:
            pod_reqs.append(plain)
    scoped = r.namespace
    if peer and any(q.key == NS_NAME_KEY or q.key.startswith(NS_LABEL_PREFIX) for q in ns_reqs):
        scoped = None  # Cilium adds the policy's namespace only when the selector names no namespace itself
    return Selector(scoped, tuple(ns_reqs), tuple(pod_reqs))


def _cilium_rule(r: _Reader, raw: Mapping[str, Any], direction: str, deny: bool, where: str) -> Rule:
    known = set(_CILIUM_PEERS[direction]) | set(_CILIUM_UNSUPPORTED_PEERS[direction]) | _CILIUM_RULE_KEYS
    everything = False
    for key in raw:
        if key not in known:
            r.problem(f"{where}: {key} is not supported by the verifier")
            everything = everything or not deny
    for key in _CILIUM_UNSUPPORTED_PEERS[direction]:
        if key in raw:
            how = "ignored for this deny rule" if deny else "treated as allowing every peer"
            r.problem(f"{where}: {key} cannot be analysed soundly ({how})")
            everything = everything or not deny
    l3_given = any(k in raw for k in _CILIUM_PEERS[direction] + _CILIUM_UNSUPPORTED_PEERS[direction])
    has_l4 = bool(raw.get("toPorts")) or bool(raw.get("icmps"))
    # Cilium: a rule naming no peer at all selects every peer only when it names ports; the empty
    # rule {} selects nothing (the default-deny idiom). Empty peer lists select nothing either.
    if not l3_given and has_l4:
        everything = True
    selectors: list[Selector] = []
    blocks: list[Block] = []
    entities: list[str] = []
    endpoints_key, cidr_key, cidrset_key, entities_key = _CILIUM_PEERS[direction]
    for index, sel in enumerate(raw.get(endpoints_key) or []):
        parsed = _cilium_selector(r, sel, f"{where} {endpoints_key}[{index}]", peer=True)
        if parsed is None:
            everything = everything or not deny
        else:
            selectors.append(parsed)
    for cidr in raw.get(cidr_key) or []:
        block = r.block(cidr, (), where)
        if block is not None:
            blocks.append(block)
    for entry in raw.get(cidrset_key) or []:
        if "cidr" not in entry:
            r.problem(f"{where}: {cidrset_key} entries other than cidr/except (CIDR groups) are not supported")
            everything = everything or not deny
            continue
        block = r.block(entry.get("cidr"), entry.get("except"), where)
        if block is not None:
            blocks.append(block)
    for entity in raw.get(entities_key) or []:
        if str(entity) not in KNOWN_ENTITIES:
            r.problem(f"{where}: unknown entity {entity!r}")
        entities.append(str(entity))
    ports = _cilium_ports(r, raw, where, deny) if has_l4 else ALL_PORTS
    peers = Peers(everything, tuple(selectors), tuple(blocks), tuple(entities))
    return Rule(where, direction, deny, peers, ports)


def _cilium_ports(r: _Reader, raw: Mapping[str, Any], where: str, deny: bool) -> PortSet:
    out = NO_PORTS
    for entry in raw.get("toPorts") or []:
        for key, value in entry.items():
            if key == "ports" or not value:
                continue
            # L7 rules only narrow an allow further: keeping its L4 part over-approximates it.
            r.problem(
                f"{where}: toPorts.{key} (L7 / TLS) cannot be analysed soundly (its ports are kept, the rest ignored)"
            )
        ports: Sequence[Mapping[str, Any]] = entry.get("ports") or []
        if not ports:
            out |= NO_PORTS if deny else ALL_PORTS
        for port in ports:
            protocol = str(port.get("protocol", "ANY")).lower()
            protocols = PORTED if protocol == "any" else (protocol,)
            if any(p not in PORTED for p in protocols):
                r.problem(f"{where}: unknown protocol {protocol!r}")
                out |= NO_PORTS if deny else ALL_PORTS
                continue
            span = r.port_range(port.get("port"), port.get("endPort"), where, deny)
            if span is not None:
                for p in protocols:
                    out |= PortSet.of(p, *span)
    if raw.get("icmps") and not deny:
        # a deny of some ICMP types leaves the others open: only allows are counted
        out |= PortSet.of("icmp")
    return out
