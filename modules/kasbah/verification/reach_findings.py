"""The reachability verifier's findings, aggregated per (property, policy, kind, source, destination), and how each is told.

`Findings` gathers, for one mode, what the proofs find and every allowed flow (the matrix's cells,
the rules behind each), and turns them into violations, the matrix and the flows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kasbah.verification.reach_cluster import Cluster, CompiledRule, Side
from kasbah.verification.reach_labels import describe
from kasbah.verification.reach_policy import RULE_ANNOTATION
from kasbah.verification.reach_report import (
    ADMIN_ROW,
    BMC_ROW,
    OTHER_EXTERNAL,
    TRACED,
    UNSUPPORTED,
    WORLD_ROW,
    Flow,
    Matrix,
    Violation,
)
from kasbah.verification.reach_space import NO_PORTS, PortSet, bits


@dataclass(slots=True)
class Finding:
    """What one finding covers so far: source and destination regions or atoms, ports, the rules on either side."""

    src_pods: int = 0
    dst_pods: int = 0
    src_atoms: int = 0
    dst_atoms: int = 0
    ports: PortSet = NO_PORTS
    first: set[str] = field(default_factory=set)
    second: set[str] = field(default_factory=set)


FindingKey = tuple[str, str | None, str, str, str, str]  # property, policy, kind, source, destination, extra


class Findings:
    """What one mode's proofs found and allowed, and its output: violations, the matrix, the flows."""

    def __init__(self, cluster: Cluster, mode: str) -> None:
        self.c = cluster
        self.mode = mode
        self.findings: dict[FindingKey, Finding] = {}
        self.cells: dict[tuple[str, str], PortSet] = {}
        self.refs: dict[tuple[str, str], set[str]] = {}
        self.names: dict[tuple[str, str], set[str]] = {}

    def find(
        self,
        key: FindingKey,
        ports: PortSet,
        *,
        src_pods: int = 0,
        dst_pods: int = 0,
        src_atoms: int = 0,
        dst_atoms: int = 0,
        first: Sequence[str] = (),
        second: Sequence[str] = (),
    ) -> None:
        f = self.findings.setdefault(key, Finding())
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
        sides: Sequence[tuple[Side, list[CompiledRule], str]],
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
                key: FindingKey = (TRACED, None, "unisolated", row, col, unisolated)
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

    def _violation(self, key: FindingKey, f: Finding) -> Violation:
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
