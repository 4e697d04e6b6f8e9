"""What `kasbah` prints for people: the rich tables and verdicts of every command.

The commands compute, these functions show: the plan's capacity, power, fabric, cluster, tenant
and address tables, a diff's additions, retirements and violations, a verification's clusters and
findings, a preview's or apply's outcomes (and their markdown summary), a configure run's slices
and a provision run's racks. `out` is stdout, `err` stderr; piped or logged, both are 200 columns
wide so rows stay on one line. `print_json` is the one writer of `--json` results.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kasbah.planning.diff import PlanDiff
from kasbah.planning.export import to_json
from kasbah.planning.model import Plan
from kasbah.verification.identity import format_identity
from kasbah.verification.reachability import format_matrix
from kasbah.verification.verify import Verification

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
for _console in (out, err):
    if not _console.is_terminal and "COLUMNS" not in os.environ:
        _console.width = 200  # piped or logged: keep table rows and messages on one line


def print_json(data: Any) -> None:
    sys.stdout.write(to_json(data))


def _mw(kw: float) -> str:
    return f"{kw / 1000:,.2f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]], left: int = 1) -> Table:
    """A table whose first `left` columns are text and the rest right-aligned figures."""
    t = Table(title=title, title_justify="left")
    for i, h in enumerate(headers):
        t.add_column(h, justify="left" if i < left else "right")
    for row in rows:
        t.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    return t


def show_plan(plan: Plan, phases: int) -> None:
    p = plan.power
    out.rule(f"[bold]kasbah plan[/] {plan.environment} / {plan.phase} (phase {plan.phase_index + 1} of {phases})")
    counts = (
        ("halls", len(plan.halls)), ("scalable units", len(plan.scalable_units)), ("racks", len(plan.racks)),
        ("nodes", len(plan.nodes)), ("GPUs", plan.gpus), ("pools", len(plan.pools)),
        ("clusters", len(plan.clusters)), ("tenants", len(plan.tenants)), ("switches", len(plan.switches)),
    )  # fmt: skip
    out.print(_table("Capacity", ("", "count"), counts))
    out.print(_table(
        "Power (MW)",
        ("IT load", "PUE", "facility load", "phase budget", "headroom", "renewable supply", "headroom"),
        [(_mw(p.it_load_kw), f"{p.pue:g}", _mw(p.facility_load_kw), _mw(p.budget_kw),
          f"{_mw(p.budget_headroom_kw)} ({_pct(p.budget_headroom_kw, p.budget_kw)})", _mw(p.supply_kw),
          f"{_mw(p.supply_headroom_kw)} ({_pct(p.supply_headroom_kw, p.supply_kw)})")],
        left=0,
    ))  # fmt: skip
    out.print(_table(
        "Halls: power and cooling (kW, with redundancy)",
        ("hall", "profile", "racks", "positions used", "IT load", "IT capacity", "headroom", "liquid load", "liquid cap.", "air load", "air cap."),
        ((h.name, h.profile, h.racks, f"{h.positions_used}/{h.positions}", f"{h.it_load_kw:,.0f}", f"{h.power_capacity_kw:,.0f}",
          f"{h.power_headroom_kw:,.0f}", f"{h.liquid_load_kw:,.0f}", f"{h.liquid_capacity_kw:,.0f}", f"{h.air_load_kw:,.0f}",
          f"{h.air_capacity_kw:,.0f}") for h in plan.halls),
        left=2,
    ))  # fmt: skip
    out.print(_table(
        "Node pools",
        ("pool", "profile", "purpose", "cluster", "tenant", "SUs", "racks", "nodes", "GPUs", "halls"),
        ((x.name, x.profile, x.purpose, x.cluster or "-", x.tenant or "shared", len(x.scalable_units), x.racks, x.nodes,
          x.gpus, ", ".join(x.halls)) for x in plan.pools),
        left=5,
    ))  # fmt: skip
    fabric_rows: list[Sequence[object]] = [
        (f.name, f.switch_model, f.radix, f.design, f.tiers, f.endpoint_ports, f.leaves, f.spines, f.cores,
         f.node_leaf_cables, f.leaf_spine_cables, f.spine_core_cables)
        for f in plan.fabrics if f.kind == "compute"
    ]  # fmt: skip
    for kind in ("storage", "oob"):
        fs = [f for f in plan.fabrics if f.kind == kind]
        if fs:
            sums = (
                sum(getattr(f, a) for f in fs)
                for a in (
                    "endpoint_ports",
                    "leaves",
                    "spines",
                    "cores",
                    "node_leaf_cables",
                    "leaf_spine_cables",
                    "spine_core_cables",
                )
            )
            fabric_rows.append(
                (
                    f"{kind} ({len(fs)} halls)",
                    fs[0].switch_model,
                    fs[0].radix,
                    "per hall",
                    max(f.tiers for f in fs),
                    *sums,
                )
            )
    out.print(_table(
        "Fabrics",
        ("fabric", "switch", "radix", "design", "tiers", "endpoints", "leaves", "spines", "cores", "node-leaf", "leaf-spine", "spine-core"),
        fabric_rows,
        left=2,
    ))  # fmt: skip
    out.print(_table(
        "Kubernetes clusters",
        ("cluster", "version", "pod range", "node pods", "service range", "pools", "nodes", "limit", "control plane", "GPUs"),
        ((c.name, c.kubernetes_version, c.pod_cidr, f"/{c.node_pod_prefix}", c.service_cidr, ", ".join(c.pools), c.nodes,
          c.node_limit, len(c.control_plane), c.gpus) for c in plan.clusters),
        left=6,
    ))  # fmt: skip
    out.print(_table(
        "Tenants",
        ("tenant", "kind", "reseller", "jurisdictions", "GPU quota", "dedicated GPUs"),
        ((tn.name, tn.kind, tn.reseller or "-", ", ".join(tn.jurisdictions), tn.gpu_quota, tn.dedicated_gpus) for tn in plan.tenants),
        left=4,
    ))  # fmt: skip
    out.print(_table(
        "Address plan",
        ("network", "supernet", "block", "blocks", "allocated", "used", "of supernet"),
        ((a.network, a.supernet, a.block, a.blocks, a.allocated, a.used, _pct(a.allocated, ip_network(a.supernet).num_addresses))
         for a in plan.addresses),
        left=3,
    ))  # fmt: skip
    if plan.retired:
        out.print(f"[bold]decommissioned so far:[/] {len(plan.retired)} (see `kasbah diff`)")


def print_violations(d: PlanDiff) -> None:
    err.print(
        f"[bold red]NOT STABLE[/]: {d.new_phase} changes or removes {len(d.violations)} thing(s) that exist in {d.old_phase} without a decommission:"
    )
    for v in d.violations[:50]:
        err.print(f"  [red]✗[/] {v}")
    if len(d.violations) > 50:
        err.print(f"  … and {len(d.violations) - 50} more (`kasbah diff --json` lists all)")
    err.print("fix: restore what changed, or declare it under the later phase's `decommissions` with a reason")


TENANCY_MARK = {"onboard": "+", "quota": "~", "offboard-access": "-", "offboard-workloads": "-", "offboard-data": "x"}


def show_diff(d: PlanDiff) -> None:
    out.rule(f"[bold]kasbah diff[/] {d.old_phase} → {d.new_phase}")

    def row(label: str, a: float, b: float) -> tuple[str, str, str, str]:
        fmt = "{:,.2f}" if isinstance(a, float) or isinstance(b, float) else "{:,}"
        return label, fmt.format(a), fmt.format(b), ("+" if b >= a else "") + fmt.format(b - a)

    labels = {"it_load_mw": "IT load (MW)", "facility_load_mw": "facility load (MW)", "gpus": "GPUs"}
    rows = [row(labels.get(k, k), a, b) for k, (a, b) in d.totals.items()]
    rows += [row(f"{k} addresses used", a, b) for k, (a, b) in d.addresses.items()]
    out.print(_table("Totals", ("", d.old_phase, d.new_phase, "added"), rows))
    for kind in ("halls", "clusters", "pools", "tenants"):
        names = d.added.get(kind, [])
        if names:
            out.print(f"[green]+[/] {len(names)} {kind}: {', '.join(names)}")
    for kind in ("scalable_units", "racks", "nodes", "switches"):
        n = len(d.added.get(kind, []))
        if n:
            out.print(f"[green]+[/] {n:,} {kind.replace('_', ' ')}")
    if d.retired:
        out.print("[bold yellow]DECOMMISSIONED[/] (declared):")
        for r in d.retired:
            out.print(f"  [yellow]-[/] {r['kind']} {r['name']} in {r['phase']}: {r['reason']}")
        for kind, n in d.removed_by_decommission.items():
            out.print(f"  [yellow]-[/] {n:,} {kind.replace('_', ' ')} removed with them")
    if d.repatched:
        out.print("[bold yellow]RE-PATCHED[/] (the fabric grew spines or cores, and its rules re-spread the uplinks):")
        for fabric, links in d.repatched.items():
            for link, n in links.items():
                out.print(f"  [yellow]~[/] {n:,} {link} cables of {fabric} move to other ports")
        for example in d.repatched_examples:
            out.print(f"    e.g. {escape(example)}")
    if d.hardware_arrived:
        out.print(f"[green]+[/] hardware manifests for {len(d.hardware_arrived):,} nodes (ready to provision)")
    if d.replaced:
        out.print(
            f"[bold yellow]HARDWARE REPLACED[/] ({len(d.replaced)} tray(s); each node keeps its name, addresses, "
            "labels and cluster, and is provisioned and burned in again before it takes work):"
        )
        for r in d.replaced:
            new = f"serial {escape(r['to'])}" if r["to"] else "no tray recorded"
            out.print(f"  [yellow]~[/] {r['node']}: serial {escape(r['from'])} → {new} ({r['changed']})")
    if d.upgrades:
        out.print(
            f"[bold cyan]UPGRADE[/] ({len(d.upgrades)} cluster(s); rolled out by upgrade.yml: control plane one host "
            "at a time, then workers rack by rack with drain and health gate):"
        )
        for u in d.upgrades:
            out.print(f"  [cyan]^[/] cluster {u['cluster']}: Kubernetes {u['from']} → {u['to']} (phase {u['phase']})")
    if d.tenancy:
        out.print(
            f"[bold magenta]TENANCY[/] ({len(d.tenancy)} step(s), no construction; offboarding goes access, then "
            "workloads, then data):"
        )
        for r in d.tenancy:
            out.print(
                f"  [magenta]{TENANCY_MARK.get(r['action'], '~')}[/] {r['action']} {r['tenant']}"
                f" ({escape(r['change'])}, after {r['after']}){': ' + escape(r['detail']) if r['detail'] else ''}"
            )
    if d.stable:
        out.print(
            "[green]stable[/]: everything in the earlier phase keeps its name, place, addresses, labels and cluster"
        )
    else:
        print_violations(d)


def show_verification(result: Verification, label: str, matrix: bool) -> None:
    out.rule(f"[bold]kasbah verify[/] {label}")

    def mark(ok: bool) -> str:
        return "[green]proven[/]" if ok else "[red]FAILED[/]"

    rows = []
    for c in result.clusters:
        rep = c.reachability
        rows.append(
            (
                c.name,
                c.kubernetes_version,
                c.files,
                c.objects,
                len(c.schema_issues),
                mark(bool(rep and rep.ok("standard"))),
                mark(bool(rep and rep.ok("cilium"))),
                f"{mark(not c.identity.violations)} ({len(c.identity.issuers)} issuers)" if c.identity else "-",
            )
        )
    out.print(
        _table(
            "Clusters",
            (
                "cluster",
                "Kubernetes",
                "files",
                "objects",
                "schema issues",
                "zero trust (NetworkPolicy)",
                "zero trust (+ Cilium)",
                "identity",
            ),
            rows,
            left=2,
        )
    )
    if matrix:
        for c in result.clusters:
            if c.reachability:
                for mode in ("standard", "cilium"):
                    out.print(format_matrix(c.reachability, mode), soft_wrap=True, markup=False)
                    out.print()
            if c.identity:
                out.print(format_identity(c.identity), soft_wrap=True, markup=False)
                out.print()
    if result.residency is not None:
        counts = result.residency.summary()
        out.print(
            f"residency: {len(result.residency.rows)} endpoint(s) "
            f"({', '.join(f'{n} {via}' for via, n in sorted(counts.items()))}), "
            + ("every one declared and in its tenants' jurisdictions" if not result.residency.findings else "see below")
        )
    for note in result.notes:
        out.print(f"[yellow]note[/]: {note}")
    if result.ok:
        out.print(
            "[green]ok[/]: every manifest matches its schema and is read as the appliers apply it; no path "
            "between tenants (directly or through platform pods), egress only to their jurisdictions, management "
            "plane reachable from the admin zone only (platform namespaces: the API server), platform egress and "
            "connections between namespaces only where declared and on their ports, nothing from outside or "
            "the BMC network into a tenant, Cilium's enforcement pinned on, the nodes' host firewall the Plan's, "
            "every allowed flow named; every issuer's identities prefixed with their tenant and reaching only its "
            "namespaces (a reseller reads its customers'), cluster-scoped objects only from the admin issuer; every "
            "endpoint (registries, charts, packages, issuers, campus services) declared and in the jurisdictions of "
            "the tenants it serves"
        )
        return
    err.print(f"[bold red]NOT SAFE TO APPLY[/]: {len(result.findings)} problem(s)")
    for f in result.findings[:200]:
        err.print(f"  [red]✗[/] {escape(str(f))}", soft_wrap=True)  # one line each: grep-able
    if len(result.findings) > 200:
        err.print(f"  … and {len(result.findings) - 200} more")


SYNC_STYLE = {
    "create": ("green", "+"),
    "change": ("yellow", "~"),
    "unchanged": ("dim", "="),
    "rejected": ("red", "✗"),
    "missing-kind": ("red", "?"),
}


def _short(value: Any) -> str:
    text = "(none)" if value is None else json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def show_sync(report: Any, label: str, verbose: bool) -> None:
    from kasbah.kube.sync import missing_kind_fix

    what = "preview (server-side dry-run)" if report.dry_run else "apply (server-side apply)"
    out.rule(f"[bold]kasbah {what.split()[0]}[/] {escape(label)}")
    for o in report.outcomes:
        if o.action == "unchanged" and not verbose:
            continue
        style, mark = SYNC_STYLE[o.action]
        out.print(f"  [{style}]{mark} {o.action:<9}[/] {escape(o.label)}")
        for c in o.changes[:20]:
            out.print(f"      {escape(c.path)}: {escape(_short(c.before))} → {escape(_short(c.after))}")
        if len(o.changes) > 20:
            out.print(f"      … and {len(o.changes) - 20} more fields (--json lists all)")
        if o.message:
            out.print(f"      [dim]{escape(o.message)}[/]" if not o.failed else f"      {escape(o.message)}")
    counts = ", ".join(
        f"{report.count(a)} {word}"
        for a, word in (
            ("create", "to create" if report.dry_run else "created"),
            ("change", "to change" if report.dry_run else "changed"),
            ("unchanged", "unchanged"),
            ("rejected", "rejected"),
            ("missing-kind", "of kinds the cluster does not serve"),
        )
        if report.count(a) or a in ("create", "change", "unchanged")
    )
    out.print(
        f"{what} of {len(report.outcomes)} objects against {report.server} ({report.version}): {counts}; "
        f"{report.seconds:.2f} s, {report.rate:,.0f} objects/s at {report.concurrency} at a time"
    )
    if report.unchecked:
        out.print(
            f"[yellow]{report.unchecked} object(s) not checked by the server[/]: their namespace or CRD is created by "
            "this change, and a dry-run cannot check objects inside what does not exist yet"
        )
    for missing in report.missing_kinds():
        api_version, kind = missing.split(" ")
        err.print(f"[red]the cluster does not serve {missing}[/]; fix: {escape(missing_kind_fix(api_version, kind))}")
    if report.missing_kinds():
        err.print(
            "  on a kind or test cluster, `kasbah apply TARGET --crds-only` installs the CRDs kasbah verifies against"
        )


def sync_markdown(report: Any, label: str) -> str:
    """The preview as a markdown summary (a pull request's job summary)."""
    word = "Preview" if report.dry_run else "Apply"
    lines = [
        f"### {word}: {label}",
        "",
        f"Against {report.server} ({report.version}), {len(report.outcomes)} objects, "
        f"{report.seconds:.2f} s at {report.concurrency} at a time.",
        "",
        "| create | change | unchanged | rejected | kind not served |",
        "|---:|---:|---:|---:|---:|",
        "| "
        + " | ".join(str(report.count(a)) for a in ("create", "change", "unchanged", "rejected", "missing-kind"))
        + " |",
        "",
    ]
    shown = [o for o in report.outcomes if o.action != "unchanged"]
    if shown:
        lines += ["| | object | fields / reason |", "|---|---|---|"]
        for o in shown:
            detail = "; ".join(f"`{c.path}`" for c in o.changes[:10]) or o.message
            cell = detail.replace("|", "\\|")
            lines.append(f"| {o.action} | `{o.label}` | {cell} |")
        lines.append("")
    return "\n".join(lines)


def show_provision(results: list[Any], missing: list[str], goal: str) -> None:
    by_rack: dict[str, list[Any]] = {}
    for r in results:
        by_rack.setdefault(r.rack, []).append(r)
    rows = []
    for rack, rs in by_rack.items():
        states: dict[str, int] = {}
        for r in rs:
            states[r.state] = states.get(r.state, 0) + 1
        rows.append(
            (
                rack,
                f"{len(rs):,}",
                f"{sum(r.ok and r.state == goal for r in rs):,}",
                f"{sum(not r.ok for r in rs):,}",
                f"{sum(r.replaced for r in rs):,}",
                ", ".join(f"{k} {v}" for k, v in sorted(states.items())),
            )
        )
    out.print(_table(f"provision: nodes to {goal}", ("rack", "nodes", goal, "failed", "replaced", "states"), rows))
    for r in results:
        if r.replaced:
            out.print(
                f"[yellow]~[/] {r.node}: hardware replaced; it keeps its name and addresses and must be burned in "
                "again before it takes work (its node group commissions it)"
            )
    for r in results:
        if not r.ok:
            out.print(f"[red]✗[/] {r.node} ({r.state}): {escape(r.error)}\n    fix: {escape(r.fix)}")
    if missing:
        out.print(f"{len(missing):,} node(s) have no hardware manifest yet and were left alone (e.g. {missing[0]})")
    bad = sum(not r.ok for r in results)
    if bad:
        out.print(f"[red]{bad:,} of {len(results):,} node(s) failed[/]; the others went on")
    else:
        out.print(f"[green]ok[/]: {len(results):,} node(s) {goal}")


def show_configure(result: Any, artifacts: Path) -> None:
    from kasbah.runners.ansible import check_only

    rows = []
    for s in result.slices:
        counts: dict[str, int] = {}
        for h in s.hosts.values():
            counts[h.status] = counts.get(h.status, 0) + 1
        rows.append(
            (
                s.name,
                s.status,
                f"{len(s.hosts):,}",
                f"{counts.get('ok', 0):,}",
                f"{counts.get('changed', 0):,}",
                f"{counts.get('failed', 0) + counts.get('unreachable', 0):,}",
                f"{s.seconds:,.1f}",
            )
        )
    out.print(_table(f"{result.playbook}: slices", ("slice", "status", "hosts", "ok", "changed", "failed", "s"), rows))
    for s in result.slices:
        if s.error:
            out.print(f"[red]{s.status}[/] {s.name}: {escape(s.error)} (artifacts: {s.artifacts})", soft_wrap=True)
    for h in result.hosts:
        for task, message in h.failures:
            out.print(
                f"[red]{h.status}[/] {escape(h.host)} ({h.slice}): {escape(task)}: {escape(message)}", soft_wrap=True
            )
    for line in check_only(result.hosts):
        out.print(f"[yellow]{escape(line)}[/]", soft_wrap=True)
    hosts = result.hosts
    bad = sum(1 for h in hosts if h.failed or h.unreachable)
    verdict = "[green]configured[/]" if result.ok else "[red]not configured[/]"
    out.print(
        f"{verdict}: {len(hosts):,} hosts, {sum(1 for h in hosts if h.changed):,} changed, {bad:,} failed or "
        f"unreachable; per-host results in {artifacts / 'summary.json'}"
    )


def show_images(doc: dict[str, Any], nodes: dict[str, int], tree: Path) -> None:
    """The pool images of a rendered tree: inputs, pools, and how many of its nodes (with hardware) boot each."""
    rows = [
        [
            i["name"], i["os"], i["nvidia_driver"] or "-", i["kubernetes_version"] or "-", ", ".join(i["pools"]),
            i["gpus_per_node"], nodes.get(i["name"], 0),
        ]
        for i in doc["images"]
    ]  # fmt: skip
    headers = ["image", "os", "driver", "kubernetes", "pools", "GPUs/node", "nodes (with hardware)"]
    out.print(_table(f"pool images of {tree} ({doc['phase']})", headers, rows, left=5))
