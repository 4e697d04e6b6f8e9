"""The reachability properties, proved region by region in one mode.

Tenant isolation (both sides), egress jurisdictions, the management plane, platform egress and
access, transit through platform pods, inbound connections, tracing and default deny.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from kasbah.verification.reach_cluster import Cluster, CompiledRule, Side
from kasbah.verification.reach_findings import FindingKey, Findings
from kasbah.verification.reach_policy import NETWORK_POLICY, Policy
from kasbah.verification.reach_report import (
    BMC_ROW,
    DEFAULT_DENY,
    EGRESS_JURISDICTION,
    INBOUND,
    MANAGEMENT_PLANE,
    PLATFORM_ACCESS,
    PLATFORM_EGRESS,
    TENANT_ISOLATION,
    TRANSIT,
    WORLD_ROW,
)
from kasbah.verification.reach_space import NO_PORTS, PortSet, bits


class Verifier(Findings):
    """One mode's sides for every pod region, and the property checks over them."""

    def __init__(self, cluster: Cluster, mode: str) -> None:
        super().__init__(cluster, mode)
        count = len(cluster.region_ns)
        # allowed connections, region to region and region to address atom, for the path properties
        self.pod_edges: dict[int, dict[int, tuple[PortSet, list[str]]]] = {}
        self.out_edges: dict[int, dict[int, tuple[PortSet, list[str]]]] = {}
        self.egress = [Side() for _ in range(count)]
        self.ingress = [Side() for _ in range(count)]
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

    def run(self) -> None:
        self._pods_to_pods()
        self._tenant_ingress_sides()
        self._pods_to_outside()
        self._outside_to_pods()
        self._default_deny()
        self._transit()

    def _platform_access(self, s: int, t: int, ports: PortSet, rules: list[CompiledRule]) -> None:
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
            key: FindingKey = (PLATFORM_ACCESS, policy, "platform-access", s_ns, t_ns, names)
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
                        key: FindingKey = (TRANSIT, None, "transit", c.region_ns[path[0]], c.region_ns[t], chain)
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

    def _refs(self, side: Side, rules: list[CompiledRule], region: int, direction: str) -> list[str]:
        refs = [r.ref for r in rules]
        return refs if side.isolated else [*refs, self._unisolated(region, direction)]

    @staticmethod
    def _blame(side: Side, rules: list[CompiledRule]) -> list[str | None]:
        """Who admits a flow on one side: each allowing policy, or nobody when the side is not isolated."""
        blamed: list[str | None] = [*sorted({r.policy.label for r in rules})]
        return blamed if side.isolated else [*blamed, None]


def _has_default_deny(policies: Sequence[Policy], ns: str, direction: str) -> bool:
    return any(
        p.kind == NETWORK_POLICY
        and p.namespace == ns
        and not p.subject.pod_reqs
        and p.isolates[direction]
        and not any(r.direction == direction for r in p.enforced_rules(False))
        for p in policies
    )
