"""CSV schedules for the build teams: the IP plan, the rack schedule and the cabling schedule, per fabric.

Layout (paths relative to the output directory):

* `ip-plan.csv`: one row per address: every node on every network it has (oob, inband, storage,
  rail1..n) with its rack's block, every switch's loopback with its fabric's block.
* `racks.csv`: one row per rack, network racks included, in floor order.
* `cabling/<fabric>.csv`: one row per cable (planning.cabling), a file per fabric: a compute
  fabric's spines and cores serve several halls, so a fabric, not a hall, is what one cabling
  crew works through; `cabling/fabrics.csv` lists the fabrics with their cable counts.

Rows are streamed from generators into `csv` writers (about 1.1 M cables at 500 MW).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from kasbah.planning.cabling import (
    CABLE_FIELDS,
    LEAF_SPINE,
    NODE_LEAF,
    SPINE_CORE,
    Cable,
    cables_by_fabric,
    switch_halls,
)
from kasbah.planning.model import Plan

IP_PLAN_FIELDS = ("name", "kind", "role", "hall", "rack", "fabric", "network", "address", "cidr")
RACK_FIELDS = (
    "hall",
    "row",
    "position",
    "rack",
    "scalable_unit",
    "pool",
    "profile",
    "kind",
    "power_kw",
    "cooling",
    "weight_kg",
    "feeds",
    "nodes",
    "gpus",
    "phase",
)
FABRIC_FIELDS = ("fabric", "kind", "scope", "file", NODE_LEAF, LEAF_SPINE, SPINE_CORE)

Row = Sequence[object]


def _csv(header: Sequence[str], rows: Iterable[Row]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


_SPECIAL = frozenset(',"\r\n')


def _plain_names(plan: Plan) -> None:
    """Check that no name needs CSV quoting, so the bulk files can be joined without the csv module.

    The config's name pattern already forbids these characters; this keeps the fast path honest.
    """
    names = {*(n.name for n in plan.nodes), *(r.name for r in plan.racks), *(s.name for s in plan.switches)}
    names.update(f.name for f in plan.fabrics)
    names.update(h.name for h in plan.halls)
    bad = [n for n in names if not _SPECIAL.isdisjoint(n)]
    if bad:
        raise ValueError(f"names with CSV delimiters: {', '.join(sorted(bad)[:5])}; fix: rename them")


def _ip_plan_csv(rows: Iterable[Row]) -> bytes:
    lines = [",".join(IP_PLAN_FIELDS)]
    lines += [f"{a},{b},{c},{d},{e},{f},{g},{h},{i}" for a, b, c, d, e, f, g, h, i in rows]
    lines.append("")
    return "\n".join(lines).encode()


def _cables_csv(cables: Iterable[Cable]) -> bytes:
    # 2-3x faster than csv.writer for a million rows; _plain_names vouches for the fields
    lines = [",".join(CABLE_FIELDS)]
    lines += [f"{f},{k},{a},{ap},{b},{bp},{g}" for f, k, a, ap, b, bp, g in cables]
    lines.append("")
    return "\n".join(lines).encode()


def _num(x: float) -> str:
    return f"{x:g}"


def ip_plan_rows(plan: Plan) -> Iterable[Row]:
    racks = {r.name: r for r in plan.racks}
    for n in plan.nodes:
        r = racks[n.rack]
        yield n.name, "node", n.role, n.hall, n.rack, "", "oob", n.oob_ip, r.oob_cidr
        yield n.name, "node", n.role, n.hall, n.rack, "", "inband", n.inband_ip, r.inband_cidr
        yield n.name, "node", n.role, n.hall, n.rack, "", "storage", n.storage_ip, r.storage_cidr
        for i, (ip, cidr) in enumerate(zip(n.rail_ips, r.rail_cidrs, strict=True)):
            yield n.name, "node", n.role, n.hall, n.rack, "", f"rail{i + 1}", ip, cidr
    fabrics = {f.name: f for f in plan.fabrics}
    halls = switch_halls(plan)
    for s in plan.switches:
        yield (
            s.name,
            "switch",
            s.tier,
            halls[s.name],
            "",
            s.fabric,
            "loopback",
            s.loopback,
            fabrics[s.fabric].loopback_block,
        )


def rack_rows(plan: Plan) -> Iterable[Row]:
    for r in sorted(plan.racks, key=lambda r: (r.hall, r.index)):
        yield (
            r.hall, r.row, r.position, r.name, r.scalable_unit or "", r.pool or "", r.profile, r.kind,
            _num(r.power_kw), r.cooling, _num(r.weight_kg), "+".join(r.feeds), r.nodes, r.gpus, r.phase,
        )  # fmt: skip


def render_schedules(plan: Plan) -> dict[str, bytes]:
    """`ip-plan.csv`, `racks.csv`, `cabling/<fabric>.csv` and `cabling/fabrics.csv` for the phase."""
    _plain_names(plan)
    out = {
        "ip-plan.csv": _ip_plan_csv(ip_plan_rows(plan)),
        "racks.csv": _csv(RACK_FIELDS, rack_rows(plan)),
    }
    summary: list[Row] = []
    for f, cables in cables_by_fabric(plan):
        path = f"cabling/{f.name}.csv"
        out[path] = _cables_csv(cables)
        summary.append((f.name, f.kind, f.scope, path, f.node_leaf_cables, f.leaf_spine_cables, f.spine_core_cables))
    out["cabling/fabrics.csv"] = _csv(FABRIC_FIELDS, summary)
    return out
