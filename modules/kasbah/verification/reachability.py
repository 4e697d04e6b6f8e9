"""Proves the zero-trust invariant (DESIGN invariant 4) on one cluster's rendered network policies, for any pods.

Two modes. ``standard`` reads NetworkPolicy objects only: what holds on any conformant CNI.
``cilium`` adds CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy as Cilium enforces them:
allows of every policy selecting a pod are unioned; a pod is default-deny in a direction once a
policy selecting it has rules there (unless it sets ``enableDefaultDeny`` false for it); deny
rules override every allow; an empty Cilium rule ``{}`` selects no peer while a NetworkPolicy
``ingress: [{}]`` allows everything; a CiliumNetworkPolicy peer selector is confined to the
policy's namespace unless it names a namespace; a clusterwide ``{}`` peer is every pod.
Cilium converts a NetworkPolicy its own way (``ParseNetworkPolicy``): it enforces the
``ingress`` and ``egress`` rules whatever ``policyTypes`` says, so rules Kubernetes ignores still
allow traffic, and any rule makes its direction default-deny; ``policyTypes`` only adds default deny
to a direction without rules (ingress when Ingress is listed or Egress is not, egress when Egress is).

No pod and no address is listed. Pods of each namespace are cut into label regions by the
requirements of every selector that can reach that namespace, one representative label-set a
region; addresses are cut into intervals at every CIDR boundary of the policies and expectations;
ports are interval sets per protocol (tcp, udp, sctp; "icmp" stands for all protocols without
ports). Cost grows with namespaces, selectors and CIDRs, never with pods.

Properties, checked per mode: tenant isolation (both sides, see below), egress only to the
tenant's destinations, management plane reachable only from the admin zone (``admin_namespaces``,
every target) and from the non-tenant namespaces whose ``PlatformAllowance`` names the target (on
its ports), no outside connection into a non-tenant namespace but from the admin networks, egress of
every non-tenant namespace (admin zone included) only to the outside destinations its allowance
declares (``platform-egress``; flows to a management target on its ports are judged by the
management-plane property alone), every connection between two namespaces that are not both
tenants' one the platform declared (``pod_flows``: DNS to CoreDNS, monitoring's scrape), on its
ports (``platform-access``), no path of allowed connections from a tenant through platform pods to
another tenant or out of its jurisdictions (``transit``: each hop may pass alone, a pod in the
middle can relay), every allow traced to a policy annotated ``kasbah.io/rule``,
default deny in every namespace; features the verifier cannot read soundly are reported as
``unsupported``. A tenant namespace (labelled ``kasbah.io/tenant``) gets tenant rules only: no
allowance or admin-zone membership applies to it. A non-tenant namespace ``platform`` does not
list may reach nothing outside.

Conservative rules — each can only add reachability, never hide it:

- An ipBlock / toCIDR / fromCIDR allow that overlaps the cluster's internal ranges (pod and
  service CIDRs) may match pod IPs on some CNIs, so it also reaches (or admits) every pod of every
  namespace unless its excepts remove the whole overlap; that alone can open a tenant-to-tenant path.
- CIDR *deny* rules count only for plain outside addresses: Cilium gives pods, nodes and the API
  server identities of their own that a CIDR deny may not match. Entity denies count exactly.
- A named port matches any port in an allow and none in a deny; a deny of some ICMP types
  denies nothing.
- In cilium mode a peer selector with only NotIn / DoesNotExist requirements may also select
  identities without labels (world, host: cilium/cilium#46949), so such an allow also admits every
  outside address.
- An L7 or TLS rule keeps its L4 part. toFQDNs, toServices, toRequires, fromRequires, toGroups,
  toNodes, fromNodes and CIDR groups are reported as unsupported and read as allowing every peer
  (ignored in deny rules).
- Outside the cluster only the pod's side is read: the far end is taken as open.
- Tenant isolation must hold on each side alone: a tenant's egress (or ingress) side that admits
  another tenant's pods is a violation even while the other tenant's side happens to block it,
  because a tenant can edit the policies of its own namespaces and zero trust relies on no side.

Inbound: a tenant's pods accept connections from outside the cluster (the world, other clusters'
pod ranges, the admin networks) only from the sources declared for it (``tenant_ingress``), and no
pod accepts one from the BMC network (``no_initiate``).

Outside the proof: namespaces absent from the manifests but for ``builtin_namespaces`` (those
every cluster has); traffic from nodes to pods
(Cilium admits the local host by default); Cilium host policies (nodeSelector, which only
restrict nodes); policy enforcement modes other than Cilium's default (the verifier pins the Helm
values that would set one).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kasbah.verification.reach_labels import EVERY_POD, Region, describe, matches_all, refine, sample
from kasbah.verification.reach_policy import (
    CILIUM_CLUSTERWIDE,
    CILIUM_POLICY,
    CLUSTER_KEY,
    NETWORK_POLICY,
    NS_LABEL_PREFIX,
    NS_NAME_KEY,
    RULE_ANNOTATION,
    Policy,
    Problem,
    Rule,
    Selector,
    read_cilium_policy,
    read_namespace,
    read_network_policy,
)
from kasbah.verification.reach_space import ALL_PORTS, NO_PORTS, PORTED, AddressAtoms, IPNetwork, PortSet, bits

MODES = ("standard", "cilium")
TENANT_LABEL = "kasbah.io/tenant"

TENANT_ISOLATION = "tenant-isolation"
EGRESS_JURISDICTION = "egress-jurisdiction"
MANAGEMENT_PLANE = "management-plane"
PLATFORM_EGRESS = "platform-egress"
PLATFORM_ACCESS = "platform-access"
TRANSIT = "transit"
INBOUND = "inbound"
TRACED = "traced"
DEFAULT_DENY = "default-deny"
UNSUPPORTED = "unsupported"
PROPERTIES = (
    TENANT_ISOLATION,
    EGRESS_JURISDICTION,
    MANAGEMENT_PLANE,
    PLATFORM_EGRESS,
    PLATFORM_ACCESS,
    TRANSIT,
    INBOUND,
    TRACED,
    DEFAULT_DENY,
    UNSUPPORTED,
)

ADMIN_ROW = "admin networks"
WORLD_ROW = "world"
BMC_ROW = "bmc network"
OTHER_EXTERNAL = "other external"


# -- expectations (built by the caller from the model) -----------------------------------------


@dataclass(frozen=True)
class Destination:
    """An outside destination a tenant's jurisdictions (or a platform namespace) may reach: a CIDR, ports, protocols."""

    name: str
    cidr: str
    ports: tuple[int, ...]
    protocols: tuple[str, ...] = ("TCP",)  # TCP, UDP, SCTP (any case)

    def __post_init__(self) -> None:
        unknown = [p for p in self.protocols if p.lower() not in PORTED]
        if unknown or not self.protocols:
            raise ValueError(f"destination {self.name}: protocols must be among TCP, UDP, SCTP, got {self.protocols!r}")


@dataclass(frozen=True)
class ManagementTarget:
    """Part of the management plane: its CIDRs, ports (None: all) and the Cilium entities that denote it."""

    name: str
    cidrs: tuple[str, ...]
    ports: tuple[int, ...] | None
    entities: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlatformAllowance:
    """What one non-tenant namespace may reach outside the cluster: management targets by name, other destinations."""

    management: frozenset[str] = frozenset()  # names of ManagementTargets, on their ports only
    external: tuple[Destination, ...] = ()


NO_ALLOWANCE = PlatformAllowance()


@dataclass(frozen=True)
class PodFlow:
    """A connection between pods of two namespaces the platform needs, on these ports only.

    `source` or `target` None: any namespace (a tenant's included). Flows inside one namespace and
    between two tenants are judged elsewhere (tenant isolation); every other flow between
    namespaces must be one of these, or the platform-access property fails.
    """

    name: str
    source: str | None
    target: str | None
    first: int
    last: int
    protocols: tuple[str, ...] = ("TCP",)

    def ports(self) -> PortSet:
        return PortSet.union_of(PortSet.of(p.lower(), self.first, self.last) for p in self.protocols)


@dataclass(frozen=True)
class Expectations:
    cluster: str
    tenants: Mapping[str, tuple[Destination, ...]]
    admin_networks: tuple[str, ...]
    admin_namespaces: frozenset[str]  # the admin zone: may reach every management target
    internal_cidrs: tuple[str, ...]
    management: tuple[ManagementTarget, ...]
    # non-tenant namespace -> what it may reach outside; a non-tenant namespace not listed may reach nothing
    platform: Mapping[str, PlatformAllowance] = field(default_factory=dict)
    # connections between namespaces the platform needs (DNS, metrics); None: not checked (older callers)
    pod_flows: tuple[PodFlow, ...] | None = None
    # the campus's own services outside the cluster (the site's resolvers, its Git servers): traffic a
    # platform pod relays there stays on site
    campus_services: tuple[str, ...] = ()
    # namespaces every cluster has whether or not the tree holds them (`default`...): in the proof all the same
    builtin_namespaces: tuple[str, ...] = ()
    # tenant -> the outside sources (and ports) its pods may accept connections from: a published
    # endpoint; None: not checked; a tenant not listed accepts nothing from outside the cluster
    tenant_ingress: Mapping[str, tuple[Destination, ...]] | None = None
    # ranges from which no pod may ever be reached (the BMC network): a row of their own
    no_initiate: tuple[str, ...] = ()


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    mode: str
    property: str
    message: str
    policy: str | None  # "NetworkPolicy tenant-a/allow-all"; None when no single policy is to blame
    flow: str  # "tenant-a/* -> tenant-b/* tcp/1-65535"

    def __str__(self) -> str:
        return f"[{self.mode}] {self.property}: {self.message}"


@dataclass(frozen=True)
class Flow:
    """An allowed flow between a matrix row and column, with the rules that admit it."""

    mode: str
    source: str
    destination: str
    ports: str
    allowed_by: tuple[str, ...]  # "NetworkPolicy tenant-a/allow-dns (egress rule 0)"
    rules: tuple[str, ...]  # kasbah.io/rule names


@dataclass(frozen=True)
class Matrix:
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: tuple[tuple[str, ...], ...]

    def cell(self, row: str, column: str) -> str:
        return self.cells[self.rows.index(row)][self.columns.index(column)]


@dataclass(frozen=True)
class Report:
    cluster: str
    violations: tuple[Violation, ...]
    matrix: Mapping[str, Matrix]  # by mode
    flows: tuple[Flow, ...]

    def of(self, mode: str | None = None, prop: str | None = None) -> tuple[Violation, ...]:
        return tuple(
            v for v in self.violations if (mode is None or v.mode == mode) and (prop is None or v.property == prop)
        )

    def ok(self, mode: str | None = None) -> bool:
        return not self.of(mode)


# -- the cluster, cut into pod regions and address atoms ---------------------------------------


def _net(text: str) -> IPNetwork:
    return ipaddress.ip_network(text, strict=False)


class _Cluster:
    def __init__(self, manifests: Sequence[Mapping[str, Any]], expect: Expectations) -> None:
        self.expect = expect
        labels: dict[str, dict[str, str]] = {}
        self.policies: list[Policy] = []
        self.problems: list[Problem] = []
        for obj in manifests:
            kind = obj.get("kind")
            if kind == "Namespace":
                name, ns_labels = read_namespace(obj)
                labels[name] = ns_labels
            elif kind == NETWORK_POLICY:
                policy, problems = read_network_policy(obj)
                self.policies.extend([policy] if policy else [])
                self.problems.extend(problems)
            elif kind in (CILIUM_POLICY, CILIUM_CLUSTERWIDE):
                policies, problems = read_cilium_policy(obj)
                self.policies.extend(policies)
                self.problems.extend(problems)
            elif isinstance(kind, str) and kind.endswith("NetworkPolicy"):
                label = f"{kind} {(obj.get('metadata') or {}).get('name')}"
                self.problems.append(Problem(False, label, f"{label}: this kind is not analysed"))
        for policy in self.policies:
            if policy.namespace and policy.namespace not in labels:
                labels[policy.namespace] = {}
        for ns in expect.builtin_namespaces:
            labels.setdefault(ns, {})  # exists in the cluster: its pods are in the proof, policies or not
        self.namespaces = sorted(labels)
        self.labels = labels
        self.tenant = {ns: labels[ns].get(TENANT_LABEL) for ns in self.namespaces}
        self.attrs = {ns: self._attrs(ns) for ns in self.namespaces}
        self._cut_pods()
        self._cut_addresses()
        self._pod_cache: dict[Selector, int] = {}

    def _attrs(self, ns: str) -> dict[str, str]:
        # What a pod of ns carries besides its own labels, under Cilium's keys.
        ns_labels = {**self.labels[ns], "kubernetes.io/metadata.name": ns}
        out = {NS_LABEL_PREFIX + k: v for k, v in ns_labels.items()}
        out[NS_NAME_KEY] = ns
        out[CLUSTER_KEY] = self.expect.cluster
        return out

    def _reaches(self, sel: Selector, ns: str) -> bool:
        return (sel.namespace is None or sel.namespace == ns) and matches_all(sel.ns_reqs, self.attrs[ns])

    def _cut_pods(self) -> None:
        selectors: set[Selector] = set()
        for policy in self.policies:
            if policy.selects_pods:
                selectors.add(policy.subject)
            for rule in policy.rules:
                selectors.update(rule.peers.selectors)
        self.region_ns: list[str] = []
        self.region_shape: list[Region] = []
        self.region_labels: list[dict[str, str]] = []
        self.ns_mask: dict[str, int] = {}
        for ns in self.namespaces:
            # only selectors that can pick pods of ns cut it: regions stay few per namespace
            groups = sorted({s.pod_reqs for s in selectors if s.pod_reqs and self._reaches(s, ns)})
            regions: list[Region] = [EVERY_POD]
            for group in groups:
                regions = refine(regions, group)
            mask = 0
            for region in sorted(regions, key=describe):
                mask |= 1 << len(self.region_ns)
                self.region_ns.append(ns)
                self.region_shape.append(region)
                self.region_labels.append(sample(region))
            self.ns_mask[ns] = mask
        self.all_pods = (1 << len(self.region_ns)) - 1
        self.region_tenant = [self.tenant[ns] for ns in self.region_ns]
        self.tenant_pods: dict[str, int] = {}
        for ns in self.namespaces:
            if tenant := self.tenant[ns]:
                self.tenant_pods[tenant] = self.tenant_pods.get(tenant, 0) | self.ns_mask[ns]
        self.any_tenant_pods = 0
        for mask in self.tenant_pods.values():
            self.any_tenant_pods |= mask

    def _cut_addresses(self) -> None:
        e = self.expect
        nets: list[IPNetwork] = []
        for policy in self.policies:
            for rule in policy.rules:
                for block in rule.peers.blocks:
                    nets += [block.cidr, *block.excepts]
        dests = [(t, d) for t in sorted(e.tenants) for d in e.tenants[t]]
        nets += [_net(d.cidr) for _, d in dests] + [_net(c) for c in (*e.admin_networks, *e.internal_cidrs)]
        nets += [_net(c) for t in e.management for c in t.cidrs]
        nets += [_net(d.cidr) for allowance in e.platform.values() for d in allowance.external]
        nets += [_net(x) for x in e.campus_services]
        nets += [_net(x) for x in e.no_initiate]
        nets += [_net(d.cidr) for sources in (e.tenant_ingress or {}).values() for d in sources]
        atoms = self.atoms = AddressAtoms(nets)
        self.internal = atoms.masks(_net(c) for c in e.internal_cidrs)
        self.external = atoms.everything & ~self.internal
        self.entity: dict[str, int] = {}
        self.target: dict[str, int] = {}
        self.target_ports: dict[str, PortSet] = {}
        for t in e.management:
            mask = atoms.masks(_net(c) for c in t.cidrs) & self.external
            self.target[t.name] = self.target.get(t.name, 0) | mask
            self.target_ports[t.name] = _ports(PORTED, t.ports)
            for entity in t.entities:
                self.entity[entity] = self.entity.get(entity, 0) | mask
        self.entity_backed = 0
        for mask in self.entity.values():
            self.entity_backed |= mask
        self.world = self.external & ~self.entity_backed
        self.admin = atoms.masks(_net(c) for c in e.admin_networks) & self.external
        self.no_initiate = atoms.masks(_net(c) for c in e.no_initiate) & self.external
        self.ingress_from: dict[str, list[tuple[int, PortSet]]] = {
            t: [(atoms.mask(_net(d.cidr)) & self.external, _dest_ports(d)) for d in sources]
            for t, sources in (e.tenant_ingress or {}).items()
        }
        any_target = 0
        for mask in self.target.values():
            any_target |= mask
        self.any_target = any_target
        self.on_campus = self.admin | any_target | (atoms.masks(_net(x) for x in e.campus_services) & self.external)
        self.dest: dict[tuple[str, str], int] = {
            (t, d.name): atoms.mask(_net(d.cidr)) & self.external for t, d in dests
        }
        self.dests = dests
        self.columns_of: dict[int, list[str]] = {}
        self.row_of: dict[int, str] = {}
        for a in bits(self.external):
            bit = 1 << a
            cols = [f"{t}:{d.name}" for t, d in dests if self.dest[(t, d.name)] & bit]
            cols += [f"mgmt:{t.name}" for t in e.management if self.target[t.name] & bit]
            self.columns_of[a] = cols or [OTHER_EXTERNAL]
            if bit & self.no_initiate:
                self.row_of[a] = BMC_ROW
            elif bit & self.admin:
                self.row_of[a] = ADMIN_ROW
            elif not bit & any_target:
                self.row_of[a] = WORLD_ROW
        self._dest_ports: dict[tuple[str, int], PortSet] = {}
        # non-tenant namespaces: the management targets each may reach, its declared outside destinations
        self.may_manage = {ns: self._may_manage(ns) for ns in self.namespaces}
        self.declared: dict[str, list[tuple[int, PortSet]]] = {
            ns: [(atoms.mask(_net(d.cidr)) & self.external, _dest_ports(d)) for d in allowance.external]
            for ns, allowance in e.platform.items()
            if ns in self.tenant and not self.tenant[ns]
        }
        self._management_ports: dict[tuple[str | None, int], PortSet] = {}
        self._platform_ports: dict[tuple[str, int], PortSet] = {}

    def _may_manage(self, ns: str) -> frozenset[str]:
        if self.tenant[ns]:
            return frozenset()  # a tenant namespace gets tenant rules only, whatever `platform` says
        if ns in self.expect.admin_namespaces:
            return frozenset(self.target)
        return self.expect.platform.get(ns, NO_ALLOWANCE).management

    def allowance_text(self, ns: str) -> str:
        """What a non-tenant namespace is declared to reach outside, for messages."""
        names = [d.name for d in self.expect.platform.get(ns, NO_ALLOWANCE).external] if ns in self.declared else []
        return "declared: " + ", ".join(names) if names else "none declared"

    def dest_ports(self, tenant: str, atom: int) -> PortSet:
        key = (tenant, atom)
        if key not in self._dest_ports:
            bit = 1 << atom
            out = NO_PORTS
            for t, d in self.dests:
                if t == tenant and self.dest[(t, d.name)] & bit:
                    out |= _dest_ports(d)
            self._dest_ports[key] = out
        return self._dest_ports[key]

    def management_ports(self, ns: str | None, atom: int) -> PortSet:
        """Ports on an address atom that reach a management target ns may reach (any target when ns is None)."""
        key = (ns, atom)
        if key not in self._management_ports:
            bit = 1 << atom
            out = NO_PORTS
            for target, mask in self.target.items():
                if mask & bit and (ns is None or target in self.may_manage[ns]):
                    out |= self.target_ports[target]
            self._management_ports[key] = out
        return self._management_ports[key]

    def platform_ports(self, ns: str, atom: int) -> PortSet:
        """Ports on an address atom a non-tenant namespace may use without breaking platform-egress.

        Its declared destinations, plus every flow to a management target on that target's ports:
        the management-plane property judges those (allowed, or reported there).
        """
        key = (ns, atom)
        if key not in self._platform_ports:
            bit = 1 << atom
            out = self.management_ports(None, atom)
            for mask, ports in self.declared.get(ns, ()):
                if mask & bit:
                    out |= ports
            self._platform_ports[key] = out
        return self._platform_ports[key]

    def pods(self, sel: Selector) -> int:
        if sel not in self._pod_cache:
            mask = 0
            for ns in self.namespaces:
                if self._reaches(sel, ns):
                    for i in bits(self.ns_mask[ns]):
                        if matches_all(sel.pod_reqs, self.region_labels[i]):
                            mask |= 1 << i
            self._pod_cache[sel] = mask
        return self._pod_cache[sel]

    def _entity(self, entity: str, deny: bool) -> tuple[bool, int]:
        """(every pod?, address atoms) an entity stands for; allows over- and denies under-approximate."""
        if entity == "all":
            return True, self.external
        if entity in ("world", "world-ipv4", "world-ipv6"):
            family = {"world": self.atoms.everything, "world-ipv4": self.atoms.ipv4, "world-ipv6": self.atoms.ipv6}
            return False, self.world & family[entity]
        if entity == "cluster":
            nodes = self.entity.get("host", 0) | self.entity.get("remote-node", 0)
            return True, nodes if deny else self.entity_backed
        if entity in ("host", "remote-node", "kube-apiserver"):
            return False, self.entity.get(entity, 0)
        if entity in ("unmanaged", "ingress"):
            return not deny, 0  # unmanaged pods, or a proxy that forwards to any pod
        if entity in ("health", "init"):
            return False, 0
        return not deny, 0 if deny else self.external  # unknown, reported as unsupported

    def compile(self, policy: Policy, rule: Rule, mode: str) -> _Rule:
        peers = rule.peers
        notes: list[str] = []
        if rule.cilium_only:
            notes.append(f"Cilium enforces it although {rule.direction.capitalize()} is not in policyTypes")
        if peers.everything:
            return _Rule(policy, rule.label, rule.deny, self.all_pods, self.external, rule.ports, "; ".join(notes))
        pods = atoms = 0
        for sel in peers.selectors:
            pods |= self.pods(sel)
            if mode == "cilium" and not rule.deny and sel.negative_only:
                atoms |= self.external
                notes.append("a selector with only NotIn/DoesNotExist also matches world and host in Cilium")
        for block in peers.blocks:
            mask = self.atoms.mask(block.cidr) & ~self.atoms.masks(block.excepts)
            if rule.deny:
                atoms |= mask & self.world
                continue
            atoms |= mask & self.external
            if mask & self.internal:
                pods = self.all_pods
                notes.append(f"ipBlock {block} covers pod/service addresses")
        for entity in peers.entities:
            every_pod, mask = self._entity(entity, rule.deny)
            pods |= self.all_pods if every_pod else 0
            atoms |= mask
        return _Rule(policy, rule.label, rule.deny, pods, atoms, rule.ports, "; ".join(notes))


def _ports(protocols: Sequence[str], ports: Sequence[int] | None) -> PortSet:
    if ports is None:
        return ALL_PORTS
    return PortSet.union_of(PortSet.of(p, n, n) for p in protocols for n in ports)


def _dest_ports(d: Destination) -> PortSet:
    return _ports(tuple(p.lower() for p in d.protocols), d.ports)


@dataclass(slots=True)
class _Rule:
    policy: Policy
    label: str
    deny: bool
    pods: int
    atoms: int
    ports: PortSet
    note: str

    @property
    def ref(self) -> str:
        base = f"{self.policy.label} ({self.label})"
        return f"{base} [{self.note}]" if self.note else base


@dataclass(slots=True)
class _Side:
    """One pod region's ingress or egress side in one mode."""

    isolated: bool = False
    allows: list[_Rule] = field(default_factory=list)
    denies: list[_Rule] = field(default_factory=list)

    def pod_candidates(self, everything: int) -> int:
        if not self.isolated:
            return everything
        mask = 0
        for r in self.allows:
            mask |= r.pods
        return mask

    def atom_candidates(self, everything: int) -> int:
        if not self.isolated:
            return everything
        mask = 0
        for r in self.allows:
            mask |= r.atoms
        return mask & everything

    def pod_ports(self, bit: int) -> PortSet:
        allowed = ALL_PORTS if not self.isolated else PortSet.union_of(r.ports for r in self.allows if r.pods & bit)
        if allowed and self.denies:
            allowed = allowed - PortSet.union_of(r.ports for r in self.denies if r.pods & bit)
        return allowed

    def atom_ports(self, bit: int) -> PortSet:
        allowed = ALL_PORTS if not self.isolated else PortSet.union_of(r.ports for r in self.allows if r.atoms & bit)
        if allowed and self.denies:
            allowed = allowed - PortSet.union_of(r.ports for r in self.denies if r.atoms & bit)
        return allowed

    def pod_rules(self, bit: int, ports: PortSet) -> list[_Rule]:
        return [r for r in self.allows if r.pods & bit and r.ports & ports]

    def atom_rules(self, bit: int, ports: PortSet) -> list[_Rule]:
        return [r for r in self.allows if r.atoms & bit and r.ports & ports]


# -- findings, aggregated per (property, policy, kind, source, destination) --------------------


@dataclass(slots=True)
class _Finding:
    src_pods: int = 0
    dst_pods: int = 0
    src_atoms: int = 0
    dst_atoms: int = 0
    ports: PortSet = NO_PORTS
    first: set[str] = field(default_factory=set)
    second: set[str] = field(default_factory=set)


_FindingKey = tuple[str, str | None, str, str, str, str]  # property, policy, kind, source, destination, extra


class _Verifier:
    def __init__(self, cluster: _Cluster, mode: str) -> None:
        self.c = cluster
        self.mode = mode
        self.findings: dict[_FindingKey, _Finding] = {}
        self.cells: dict[tuple[str, str], PortSet] = {}
        self.refs: dict[tuple[str, str], set[str]] = {}
        self.names: dict[tuple[str, str], set[str]] = {}
        count = len(cluster.region_ns)
        # allowed connections, region to region and region to address atom, for the path properties
        self.pod_edges: dict[int, dict[int, tuple[PortSet, list[str]]]] = {}
        self.out_edges: dict[int, dict[int, tuple[PortSet, list[str]]]] = {}
        self.egress = [_Side() for _ in range(count)]
        self.ingress = [_Side() for _ in range(count)]
        cilium = mode == "cilium"
        for policy in cluster.policies:
            if not policy.selects_pods or (not cilium and policy.cilium_only):
                continue
            subject = cluster.pods(policy.subject)
            isolates, enforced = policy.isolation(cilium), policy.enforced_rules(cilium)
            rules = [cluster.compile(policy, rule, mode) for rule in enforced]
            for i in bits(subject):
                for direction, sides in (("ingress", self.ingress), ("egress", self.egress)):
                    side = sides[i]
                    side.isolated = side.isolated or isolates[direction]
                    for rule, raw in zip(rules, enforced, strict=True):
                        if raw.direction == direction:
                            (side.denies if rule.deny else side.allows).append(rule)

    def find(
        self,
        key: _FindingKey,
        ports: PortSet,
        *,
        src_pods: int = 0,
        dst_pods: int = 0,
        src_atoms: int = 0,
        dst_atoms: int = 0,
        first: Sequence[str] = (),
        second: Sequence[str] = (),
    ) -> None:
        f = self.findings.setdefault(key, _Finding())
        f.src_pods |= src_pods
        f.dst_pods |= dst_pods
        f.src_atoms |= src_atoms
        f.dst_atoms |= dst_atoms
        f.ports |= ports
        f.first.update(first)
        f.second.update(second)

    def record(
        self,
        row: str,
        col: str,
        ports: PortSet,
        sides: Sequence[tuple[_Side, list[_Rule], str]],
        *,
        src_pods: int = 0,
        dst_pods: int = 0,
        src_atoms: int = 0,
        dst_atoms: int = 0,
    ) -> None:
        """A flow into the matrix, and the tracing check on every side that admits it."""
        cell = (row, col)
        self.cells[cell] = self.cells.get(cell, NO_PORTS) | ports
        refs = self.refs.setdefault(cell, set())
        names = self.names.setdefault(cell, set())
        for side, rules, unisolated in sides:
            if not side.isolated:
                refs.add(unisolated)
                key: _FindingKey = (TRACED, None, "unisolated", row, col, unisolated)
                self.find(key, ports, src_pods=src_pods, dst_pods=dst_pods, src_atoms=src_atoms, dst_atoms=dst_atoms)
            for r in rules:
                refs.add(r.ref)
                if r.policy.rule_name:
                    names.add(r.policy.rule_name)
                else:
                    key = (TRACED, r.policy.label, "untraced", row, col, "")
                    self.find(
                        key,
                        ports,
                        src_pods=src_pods,
                        dst_pods=dst_pods,
                        src_atoms=src_atoms,
                        dst_atoms=dst_atoms,
                        first=[r.ref],
                    )

    def run(self) -> None:
        self._pods_to_pods()
        self._tenant_ingress_sides()
        self._pods_to_outside()
        self._outside_to_pods()
        self._default_deny()
        self._transit()

    def _platform_access(self, s: int, t: int, ports: PortSet, rules: list[_Rule]) -> None:
        """A connection between two namespaces, not both tenants', is one the platform declared, on its ports."""
        c = self.c
        declared = c.expect.pod_flows
        if declared is None:
            return
        s_ns, t_ns = c.region_ns[s], c.region_ns[t]
        covering = [f for f in declared if f.source in (None, s_ns) and f.target in (None, t_ns)]
        extra = ports - PortSet.union_of(f.ports() for f in covering)
        if not extra:
            return
        names = ", ".join(f.name for f in covering) or "none"
        refs = sorted({r.ref for r in rules})
        blamed: list[str | None] = [*sorted({r.policy.label for r in rules})]
        for policy in blamed or [None]:  # no rule: a side that is not isolated admits it
            key: _FindingKey = (PLATFORM_ACCESS, policy, "platform-access", s_ns, t_ns, names)
            self.find(key, extra, src_pods=1 << s, dst_pods=1 << t, first=refs)

    def _transit(self) -> None:
        """No chain of allowed connections through platform pods joins two tenants or takes a tenant's traffic
        outside its jurisdictions: each hop may be allowed on its own (a tenant to a platform service, that
        service to another tenant), and a pod in the middle can relay what it receives.

        From each tenant's regions, the platform regions reachable through platform regions only (a hop into
        another tenant is tenant isolation's); from each of those, any connection into another tenant's pods,
        or out to an address outside the campus that is neither the tenant's destination nor one the platform
        namespace was declared (its declared destinations are the site's own resolvers and Git servers).
        """
        c = self.c
        for first in bits(c.any_tenant_pods):
            tenant = c.region_tenant[first] or ""
            via: dict[int, tuple[int, ...]] = {}
            todo: list[tuple[int, tuple[int, ...]]] = [(first, (first,))]
            while todo:
                region, path = todo.pop()
                for t in sorted(self.pod_edges.get(region, {})):
                    if c.region_tenant[t] or t in via:
                        continue
                    via[t] = (*path, t)
                    todo.append((t, via[t]))
            for p, path in sorted(via.items()):
                chain = " -> ".join(c.region_ns[r] for r in path)
                hops = [ref for a, b in itertools.pairwise(path) for ref in self.pod_edges[a][b][1]]
                for t, (ports, refs) in sorted(self.pod_edges.get(p, {}).items()):
                    other = c.region_tenant[t]
                    if other and other != tenant:
                        key: _FindingKey = (TRANSIT, None, "transit", c.region_ns[path[0]], c.region_ns[t], chain)
                        self.find(key, ports, src_pods=1 << path[0], dst_pods=1 << t, first=hops, second=refs)
                for a, (ports, refs) in sorted(self.out_edges.get(p, {}).items()):
                    bit = 1 << a
                    if bit & c.on_campus:
                        continue  # the campus's own services and management plane: data stays on site
                    # what the platform namespace may not reach at all is platform-egress's finding; here,
                    # what it was declared to reach, relayed for a tenant whose jurisdictions do not allow it
                    extra = (ports & c.platform_ports(c.region_ns[p], a)) - c.dest_ports(tenant, a)
                    if extra:
                        for col in c.columns_of[a]:
                            key = (TRANSIT, None, "transit-egress", c.region_ns[path[0]], col, chain)
                            self.find(key, extra, src_pods=1 << path[0], dst_atoms=bit, first=hops, second=refs)

    def _unisolated(self, i: int, direction: str) -> str:
        # per namespace: the flow of the finding says which pods of it
        return f"no policy: {self.c.region_ns[i]} pods are not isolated for {direction}"

    def _pods_to_pods(self) -> None:
        c = self.c
        for s in range(len(c.region_ns)):
            eg = self.egress[s]
            s_bit, s_ns, s_tenant = 1 << s, c.region_ns[s], c.region_tenant[s]
            for t in bits(eg.pod_candidates(c.all_pods)):
                t_bit = 1 << t
                e = eg.pod_ports(t_bit)
                if not e:
                    continue
                ing = self.ingress[t]
                i = ing.pod_ports(s_bit)
                both = e & i
                t_ns, t_tenant = c.region_ns[t], c.region_tenant[t]
                if both:
                    e_rules, i_rules = eg.pod_rules(t_bit, both), ing.pod_rules(s_bit, both)
                    self.pod_edges.setdefault(s, {})[t] = (
                        both,
                        self._refs(eg, e_rules, s, "egress") + self._refs(ing, i_rules, t, "ingress"),
                    )
                    if s_ns != t_ns and not (s_tenant and t_tenant):
                        self._platform_access(s, t, both, e_rules + i_rules)
                    self.record(
                        s_ns,
                        t_ns,
                        both,
                        [(eg, e_rules, self._unisolated(s, "egress")), (ing, i_rules, self._unisolated(t, "ingress"))],
                        src_pods=s_bit,
                        dst_pods=t_bit,
                    )
                if not (s_tenant and t_tenant and s_tenant != t_tenant):
                    continue
                e_refs = self._refs(eg, eg.pod_rules(t_bit, both or e), s, "egress")
                if both:
                    i_refs = self._refs(ing, ing.pod_rules(s_bit, both), t, "ingress")
                    for policy in self._blame(eg, eg.pod_rules(t_bit, both)) + self._blame(
                        ing, ing.pod_rules(s_bit, both)
                    ):
                        key = (TENANT_ISOLATION, policy, "path", s_ns, t_ns, "")
                        self.find(key, both, src_pods=s_bit, dst_pods=t_bit, first=e_refs, second=i_refs)
                else:
                    for policy in self._blame(eg, eg.pod_rules(t_bit, e)):
                        key = (TENANT_ISOLATION, policy, "egress-side", s_ns, t_ns, "")
                        self.find(key, e, src_pods=s_bit, dst_pods=t_bit, first=e_refs)

    def _tenant_ingress_sides(self) -> None:
        c = self.c
        for t in bits(c.any_tenant_pods):
            ing, t_bit, t_tenant = self.ingress[t], 1 << t, c.region_tenant[t]
            others = c.any_tenant_pods & ~c.tenant_pods[t_tenant or ""]
            for s in bits(ing.pod_candidates(c.all_pods) & others):
                i = ing.pod_ports(1 << s)
                if not i or self.egress[s].pod_ports(t_bit) & i:
                    continue  # nothing admitted, or a full path already reported
                rules = ing.pod_rules(1 << s, i)
                refs = self._refs(ing, rules, t, "ingress")
                for policy in self._blame(ing, rules):
                    key = (TENANT_ISOLATION, policy, "ingress-side", c.region_ns[s], c.region_ns[t], "")
                    self.find(key, i, src_pods=1 << s, dst_pods=t_bit, second=refs)

    def _pods_to_outside(self) -> None:
        c = self.c
        for s in range(len(c.region_ns)):
            eg, s_bit, s_ns, tenant = self.egress[s], 1 << s, c.region_ns[s], c.region_tenant[s]
            unisolated = self._unisolated(s, "egress")
            may_manage = c.may_manage[s_ns]
            allowed = "" if tenant else "allowed: " + (", ".join(sorted(may_manage)) or "none")
            for a in bits(eg.atom_candidates(c.external)):
                a_bit = 1 << a
                e = eg.atom_ports(a_bit)
                if not e:
                    continue
                self.out_edges.setdefault(s, {})[a] = (e, self._refs(eg, eg.atom_rules(a_bit, e), s, "egress"))
                for col in c.columns_of[a]:
                    self.record(
                        s_ns, col, e, [(eg, eg.atom_rules(a_bit, e), unisolated)], src_pods=s_bit, dst_atoms=a_bit
                    )
                if tenant and (extra := e - c.dest_ports(tenant, a)):
                    rules = eg.atom_rules(a_bit, extra)
                    refs = self._refs(eg, rules, s, "egress")
                    for policy in self._blame(eg, rules):
                        for col in c.columns_of[a]:
                            key = (EGRESS_JURISDICTION, policy, "jurisdiction", s_ns, col, tenant)
                            self.find(key, extra, src_pods=s_bit, dst_atoms=a_bit, first=refs)
                elif not tenant and (extra := e - c.platform_ports(s_ns, a)):
                    rules = eg.atom_rules(a_bit, extra)
                    refs = self._refs(eg, rules, s, "egress")
                    for policy in self._blame(eg, rules):
                        for col in c.columns_of[a]:
                            key = (PLATFORM_EGRESS, policy, "platform-egress", s_ns, col, c.allowance_text(s_ns))
                            self.find(key, extra, src_pods=s_bit, dst_atoms=a_bit, first=refs)
                for target, mask in c.target.items():
                    if target in may_manage or not mask & a_bit:
                        continue
                    # where targets overlap (the API server on a node address) a port of an allowed target stays allowed
                    if hit := (e & c.target_ports[target]) - c.management_ports(s_ns, a):
                        rules = eg.atom_rules(a_bit, hit)
                        refs = self._refs(eg, rules, s, "egress")
                        for policy in self._blame(eg, rules):
                            key = (MANAGEMENT_PLANE, policy, "management", s_ns, target, allowed)
                            self.find(key, hit, src_pods=s_bit, dst_atoms=a_bit, first=refs)

    def _outside_to_pods(self) -> None:
        c = self.c
        for t in range(len(c.region_ns)):
            ing, t_bit, t_ns = self.ingress[t], 1 << t, c.region_ns[t]
            unisolated = self._unisolated(t, "ingress")
            for a in bits(ing.atom_candidates(c.external)):
                row = c.row_of.get(a)
                if row is None:
                    continue  # nodes and BMCs as sources are outside the proof
                a_bit = 1 << a
                i = ing.atom_ports(a_bit)
                if not i:
                    continue
                rules = ing.atom_rules(a_bit, i)
                self.record(row, t_ns, i, [(ing, rules, unisolated)], src_atoms=a_bit, dst_pods=t_bit)
                tenant = c.region_tenant[t]
                if row == BMC_ROW:  # a BMC never opens a connection to a pod
                    refs = self._refs(ing, rules, t, "ingress")
                    for policy in self._blame(ing, rules):
                        self.find(
                            (INBOUND, policy, "bmc-ingress", row, t_ns, ""),
                            i,
                            src_atoms=a_bit,
                            dst_pods=t_bit,
                            second=refs,
                        )
                elif not tenant and row == WORLD_ROW:
                    refs = self._refs(ing, rules, t, "ingress")
                    for policy in self._blame(ing, rules):
                        key = (MANAGEMENT_PLANE, policy, "admin-ingress", WORLD_ROW, t_ns, "")
                        self.find(key, i, src_atoms=a_bit, dst_pods=t_bit, second=refs)
                elif tenant and c.expect.tenant_ingress is not None:
                    allowed = NO_PORTS
                    for mask, ports in c.ingress_from.get(tenant, ()):
                        if mask & a_bit:
                            allowed |= ports
                    if extra := i - allowed:
                        rules = ing.atom_rules(a_bit, extra)
                        refs = self._refs(ing, rules, t, "ingress")
                        declared = ", ".join(d.name for d in c.expect.tenant_ingress.get(tenant, ())) or "none"
                        for policy in self._blame(ing, rules):
                            key = (INBOUND, policy, "tenant-inbound", row, t_ns, declared)
                            self.find(key, extra, src_atoms=a_bit, dst_pods=t_bit, second=refs)

    def _default_deny(self) -> None:
        c = self.c
        if self.mode == "standard":
            for ns in c.namespaces:
                missing = [d for d in ("ingress", "egress") if not _has_default_deny(c.policies, ns, d)]
                if missing:
                    key = (DEFAULT_DENY, None, "default-deny-np", ns, ns, " and ".join(missing))
                    self.find(key, NO_PORTS, src_pods=c.ns_mask[ns])
            return
        for i, ns in enumerate(c.region_ns):
            for direction, sides in (("ingress", self.ingress), ("egress", self.egress)):
                if not sides[i].isolated:
                    self.find((DEFAULT_DENY, None, "default-deny-cilium", ns, ns, direction), NO_PORTS, src_pods=1 << i)

    def _refs(self, side: _Side, rules: list[_Rule], region: int, direction: str) -> list[str]:
        refs = [r.ref for r in rules]
        return refs if side.isolated else [*refs, self._unisolated(region, direction)]

    @staticmethod
    def _blame(side: _Side, rules: list[_Rule]) -> list[str | None]:
        """Who admits a flow on one side: each allowing policy, or nobody when the side is not isolated."""
        blamed: list[str | None] = [*sorted({r.policy.label for r in rules})]
        return blamed if side.isolated else [*blamed, None]

    # -- output --------------------------------------------------------------------------------

    def violations(self) -> list[Violation]:
        out = [self._violation(key, f) for key, f in self.findings.items()]
        for problem in self.c.problems:
            if self.mode == "cilium" or not problem.cilium_only:
                out.append(Violation(self.mode, UNSUPPORTED, problem.message, problem.policy, ""))
        return out

    def _pods_text(self, ns: str, mask: int) -> str:
        whole = self.c.ns_mask[ns]
        if mask & whole == whole:
            return f"{ns}/*"
        return f"{ns}/" + " | ".join(describe(self.c.region_shape[i]) for i in bits(mask & whole))

    def _atoms_text(self, mask: int) -> str:
        cidrs = self.c.atoms.cidrs(mask)
        return ", ".join(cidrs) if len(cidrs) <= 4 else ", ".join(cidrs[:3]) + f", … ({len(cidrs)} CIDRs)"

    def _violation(self, key: _FindingKey, f: _Finding) -> Violation:
        prop, policy, kind, src, dst, extra = key
        ports = f.ports.format()
        first, second = ", ".join(sorted(f.first)), ", ".join(sorted(f.second))
        src_text = self._pods_text(src, f.src_pods) if f.src_pods else f"{src} ({self._atoms_text(f.src_atoms)})"
        if f.dst_pods:
            dst_text = self._pods_text(dst, f.dst_pods)
        elif f.dst_atoms:
            dst_text = self._atoms_text(f.dst_atoms)
        else:
            dst_text = dst
        flow = f"{src_text} -> {dst_text} {ports}"
        blind = "and isolation must not rest on the other tenant's policies"
        if kind == "path":
            message = f"{src} -> {dst}: allowed by {first} and {second}"
        elif kind == "egress-side":
            message = (
                f"{src} -> {dst}: {src}'s egress side admits it ({first}); only {dst}'s ingress side blocks it, {blind}"
            )
        elif kind == "ingress-side":
            message = f"{src} -> {dst}: {dst}'s ingress side admits it ({second}); only {src}'s egress side blocks it, {blind}"
        elif kind == "jurisdiction":
            message = (
                f"{src} -> {dst} ({dst_text}) {ports}: outside the jurisdictions of tenant {extra}; allowed by {first}"
            )
        elif kind == "management" and not extra:
            message = f"{src} -> management target {dst} ({dst_text}) {ports}: only the admin zone may reach it; allowed by {first}"
        elif kind == "management":
            message = (
                f"{src} -> management target {dst} ({dst_text}) {ports}: only the admin zone and the namespaces"
                f" allowed this target may reach it ({src} {extra}); allowed by {first}"
            )
        elif kind == "platform-egress":
            message = f"{src} -> {dst} ({dst_text}) {ports}: outside the destinations declared for namespace {src} ({extra}); allowed by {first}"
        elif kind == "platform-access":
            message = (
                f"{src} -> {dst} {ports}: not a connection the platform declared between these namespaces "
                f"(declared: {extra}); allowed by {first}"
            )
        elif kind == "transit":
            message = (
                f"{extra} -> {dst} {ports}: a path between tenants through platform pods, each hop allowed on its own "
                f"({first}; then {second})"
            )
        elif kind == "transit-egress":
            message = (
                f"{extra} -> {dst} ({dst_text}) {ports}: a tenant's traffic can leave through platform pods to a "
                f"destination outside its jurisdictions ({first}; then {second})"
            )
        elif kind == "bmc-ingress":
            message = f"{src_text} -> {dst} {ports}: a pod accepts connections from the BMC network, which never opens one to a pod; allowed by {second}"
        elif kind == "tenant-inbound":
            message = (
                f"{src_text} -> {dst} {ports}: a tenant's pods accept connections from outside the cluster only from "
                f"the sources declared for it (declared: {extra}); allowed by {second}"
            )
        elif kind == "admin-ingress":
            message = f"{src_text} -> {dst} {ports}: the admin zone and the platform namespaces accept outside connections only from the admin networks; allowed by {second}"
        elif kind == "untraced":
            message = (
                f"{src} -> {dst} {ports}: allowed by {first}, which has no {RULE_ANNOTATION} annotation naming its rule"
            )
        elif kind == "unisolated":
            message = f"{src} -> {dst} {ports}: admitted by {extra}"
        elif kind == "default-deny-np":
            directions = extra.split(" and ")
            wanted = " and ".join(f"one with {d.capitalize()} in policyTypes and no {d} rules" for d in directions)
            message = f"namespace {src} has no default-deny NetworkPolicy for {extra} (podSelector {{}}: {wanted})"
            flow = f"{src}/*"
        else:  # default-deny-cilium
            who = src_text.split("/", 1)[1]
            message = f"namespace {src}: {'all pods' if who == '*' else 'pods ' + who} are not isolated for {extra} by any policy"
            flow = src_text
        return Violation(self.mode, prop, message, policy, flow)

    def matrix(self) -> Matrix:
        rows, columns = self._axes()
        external = set(columns[len(self.c.namespaces) :])
        cells = tuple(
            tuple(
                "n/a"
                if row in (ADMIN_ROW, WORLD_ROW, BMC_ROW) and col in external
                else self.cells.get((row, col), NO_PORTS).format()
                for col in columns
            )
            for row in rows
        )
        return Matrix(rows, columns, cells)

    def flows(self) -> list[Flow]:
        rows, columns = self._axes()
        out: list[Flow] = []
        for row in rows:
            for col in columns:
                ports = self.cells.get((row, col), NO_PORTS)
                if ports:
                    refs, names = self.refs[(row, col)], self.names[(row, col)]
                    out.append(Flow(self.mode, row, col, ports.format(), tuple(sorted(refs)), tuple(sorted(names))))
        return out

    def _axes(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        c = self.c
        rows = (*c.namespaces, ADMIN_ROW, WORLD_ROW, *((BMC_ROW,) if c.expect.no_initiate else ()))
        dest_cols = [f"{t}:{d.name}" for t, d in c.dests]
        mgmt_cols = [f"mgmt:{t.name}" for t in c.expect.management]
        columns = (*c.namespaces, *dict.fromkeys(dest_cols), OTHER_EXTERNAL, *dict.fromkeys(mgmt_cols))
        return rows, columns


def _has_default_deny(policies: Sequence[Policy], ns: str, direction: str) -> bool:
    return any(
        p.kind == NETWORK_POLICY
        and p.namespace == ns
        and not p.subject.pod_reqs
        and p.isolates[direction]
        and not any(r.direction == direction for r in p.enforced_rules(False))
        for p in policies
    )


def verify_cluster(manifests: Sequence[Mapping[str, Any]], expect: Expectations) -> Report:
    """Check every property in both modes on one cluster's rendered manifests."""
    cluster = _Cluster(manifests, expect)
    violations: list[Violation] = []
    matrices: dict[str, Matrix] = {}
    flows: list[Flow] = []
    for mode in MODES:
        verifier = _Verifier(cluster, mode)
        verifier.run()
        violations.extend(verifier.violations())
        matrices[mode] = verifier.matrix()
        flows.extend(verifier.flows())
    order = {p: i for i, p in enumerate(PROPERTIES)}
    violations.sort(key=lambda v: (MODES.index(v.mode), order[v.property], v.flow, v.message, v.policy or ""))
    return Report(expect.cluster, tuple(violations), matrices, tuple(flows))


def format_matrix(report: Report, mode: str) -> str:
    """The allowed ports from each source (rows) to each destination (columns); "·" where nothing is allowed."""
    m = report.matrix[mode]
    head = ("from \\ to", *m.columns)
    table = [head, *((row, *cells) for row, cells in zip(m.rows, m.cells, strict=True))]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    lines = [f"{report.cluster} — {mode} mode: allowed ports, rows = sources, columns = destinations"]
    for n, line in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"
