"""Plans as plain data (JSON-ready dicts with a fixed key order) and summaries of them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, is_dataclass
from typing import Any

from kasbah.planning.model import Plan

PLAN_FORMAT = 1
SECTIONS = (
    "halls",
    "scalable_units",
    "racks",
    "nodes",
    "pools",
    "fabrics",
    "switches",
    "clusters",
    "tenants",
    "addresses",
    "retired",
    "grants",
    "egress",
    "namespaces",
    "host_flows",
)


def _row(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for n in names:
        v = getattr(obj, n)
        out[n] = list(v) if isinstance(v, tuple) else v
    return out


def _rows(items: tuple[Any, ...]) -> list[dict[str, Any]]:
    if not items:
        return []
    names = tuple(f.name for f in fields(items[0]))
    return [_row(i, names) for i in items]


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    power = plan.power
    assert is_dataclass(power)
    out: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "environment": plan.environment,
        "site": plan.site,
        "phase": plan.phase,
        "phase_index": plan.phase_index,
        "summary": summary(plan),
        "power": _row(power, tuple(f.name for f in fields(power))),
        "admin_networks": list(plan.admin_networks),
        "dns_resolvers": list(plan.dns_resolvers),
    }
    for section in SECTIONS:
        out[section] = _rows(getattr(plan, section))
    return out


def summary(plan: Plan) -> dict[str, Any]:
    p = plan.power
    return {
        "halls": len(plan.halls),
        "scalable_units": len(plan.scalable_units),
        "racks": len(plan.racks),
        "nodes": len(plan.nodes),
        "gpus": plan.gpus,
        "pools": len(plan.pools),
        "clusters": len(plan.clusters),
        "tenants": len(plan.tenants),
        "switches": len(plan.switches),
        "it_load_mw": round(p.it_load_kw / 1000, 3),
        "facility_load_mw": round(p.facility_load_kw / 1000, 3),
        "budget_mw": round(p.budget_kw / 1000, 3),
        "supply_mw": round(p.supply_kw / 1000, 3),
    }


def to_json(data: Any, compact: bool = False) -> str:
    if compact:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def section_digests(data: dict[str, Any]) -> dict[str, str]:
    """A SHA-256 per section, so a golden test can say which part of a large plan changed."""
    return {
        s: hashlib.sha256(json.dumps(data[s], separators=(",", ":"), sort_keys=True).encode()).hexdigest()
        for s in SECTIONS
    }
