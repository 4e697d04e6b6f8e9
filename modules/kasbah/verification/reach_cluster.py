"""The cluster as the reachability proofs see it: pods cut into label regions, addresses into atoms, rules compiled.

A pod region or an address atom is one bit of an integer mask; a policy rule becomes a `CompiledRule`
over those masks, and each region's ingress and egress in one mode a `Side`, the rules that select it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kasbah.verification.reach_expect import NO_ALLOWANCE, TENANT_LABEL, Destination, Expectations
from kasbah.verification.reach_labels import EVERY_POD, Region, describe, matches_all, refine, sample
from kasbah.verification.reach_policy import (
    CILIUM_CLUSTERWIDE,
    CILIUM_POLICY,
    CLUSTER_KEY,
    NETWORK_POLICY,
    NS_LABEL_PREFIX,
    NS_NAME_KEY,
    Policy,
    Problem,
    Rule,
    Selector,
    read_cilium_policy,
    read_namespace,
    read_network_policy,
)
from kasbah.verification.reach_report import ADMIN_ROW, BMC_ROW, OTHER_EXTERNAL, WORLD_ROW
from kasbah.verification.reach_space import ALL_PORTS, NO_PORTS, PORTED, AddressAtoms, IPNetwork, PortSet, bits


def _net(text: str) -> IPNetwork:
    return ipaddress.ip_network(text, strict=False)


class Cluster:
    """One cluster's namespaces, policies and expectations, its pods cut into regions and its addresses into atoms."""

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

    def compile(self, policy: Policy, rule: Rule, mode: str) -> CompiledRule:
        peers = rule.peers
        notes: list[str] = []
        if rule.cilium_only:
            notes.append(f"Cilium enforces it although {rule.direction.capitalize()} is not in policyTypes")
        if peers.everything:
            return CompiledRule(
                policy, rule.label, rule.deny, self.all_pods, self.external, rule.ports, "; ".join(notes)
            )
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
        return CompiledRule(policy, rule.label, rule.deny, pods, atoms, rule.ports, "; ".join(notes))


def _ports(protocols: Sequence[str], ports: Sequence[int] | None) -> PortSet:
    if ports is None:
        return ALL_PORTS
    return PortSet.union_of(PortSet.of(p, n, n) for p in protocols for n in ports)


def _dest_ports(d: Destination) -> PortSet:
    return _ports(tuple(p.lower() for p in d.protocols), d.ports)


@dataclass(slots=True)
class CompiledRule:
    """A policy rule in one mode, over region and atom masks: whom it allows (or denies), on which ports."""

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
class Side:
    """One pod region's ingress or egress side in one mode."""

    isolated: bool = False
    allows: list[CompiledRule] = field(default_factory=list)
    denies: list[CompiledRule] = field(default_factory=list)

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

    def pod_rules(self, bit: int, ports: PortSet) -> list[CompiledRule]:
        return [r for r in self.allows if r.pods & bit and r.ports & ports]

    def atom_rules(self, bit: int, ports: PortSet) -> list[CompiledRule]:
        return [r for r in self.allows if r.atoms & bit and r.ports & ports]
