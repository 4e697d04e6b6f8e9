"""README.md of the report: the phase's numbers in tables, from templates/report/README.md.j2, linking the pictures."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from ipaddress import ip_network
from typing import Any

import jinja2

from kasbah.planning.model import Fabric, Hall, Plan, Rack
from kasbah.rendering.report.addresses import ADDRESSES
from kasbah.rendering.report.capacity import CAPACITY
from kasbah.rendering.report.fabrics import fabric_path
from kasbah.rendering.report.hall_power import HALL_POWER
from kasbah.rendering.report.halls import hall_path
from kasbah.rendering.report.racks import RACKS
from kasbah.rendering.report.rail_groups import rail_group_path
from kasbah.rendering.report.units import as_kw, as_pct, as_power
from kasbah.rendering.templates import new_environment

README = "README.md"


def _md(value: object) -> str:
    """A markdown table cell: pipes and line breaks would end the cell or the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _count(value: float) -> str:
    return f"{round(value):,}"


def _names(values: Iterable[str]) -> str:
    return ", ".join(values) or "-"


@cache
def _templates() -> jinja2.Environment:
    env = new_environment()  # markdown, not HTML: cells are escaped with the `md` filter
    env.filters.update(md=_md, n=_count, kw=as_kw, power=as_power, names=_names)
    env.globals.update(pct=as_pct)
    return env


@dataclass(frozen=True, slots=True)
class _HallRow:
    hall: Hall
    gpus: int
    pools: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _FabricTotal:
    kind: str
    fabrics: int
    models: str
    leaves: int
    spines: int
    cores: int
    endpoints: int
    node_leaf: int
    leaf_spine: int
    spine_core: int


@dataclass(frozen=True, slots=True)
class _AddressRow:
    network: str
    supernet: str
    block: str
    blocks: int
    allocated: int
    used: int
    size: int


def _summary(plan: Plan, previous: Plan | None, kinds: Counter[str]) -> list[tuple[str, str, str]]:
    """The summary table: (what, value in this phase, change since the previous phase)."""
    power = plan.power

    def count(get: Callable[[Plan], int]) -> str:
        return "" if previous is None else f"{get(plan) - get(previous):+,}"

    def load(get: Callable[[Plan], float]) -> str:
        if previous is None:
            return ""
        change = get(plan) - get(previous)
        return ("-" if change < 0 else "+") + as_power(abs(change))

    return [
        ("IT load", as_power(power.it_load_kw), load(lambda p: p.power.it_load_kw)),
        ("PUE", f"{power.pue:.2f}", ""),
        ("facility load (IT x PUE)", as_power(power.facility_load_kw), load(lambda p: p.power.facility_load_kw)),
        ("facility budget of the phase", as_power(power.budget_kw), load(lambda p: p.power.budget_kw)),
        (
            "headroom to budget",
            f"{as_power(power.budget_headroom_kw)} ({as_pct(power.budget_headroom_kw, power.budget_kw)})",
            "",
        ),
        ("renewable supply", as_power(power.supply_kw), ""),
        (
            "headroom to supply",
            f"{as_power(power.supply_headroom_kw)} ({as_pct(power.supply_headroom_kw, power.supply_kw)})",
            "",
        ),
        ("GPUs", f"{plan.gpus:,}", count(lambda p: p.gpus)),
        ("nodes", f"{len(plan.nodes):,}", count(lambda p: len(p.nodes))),
        (
            "racks",
            f"{len(plan.racks):,} ({', '.join(f'{n:,} {k}' for k, n in sorted(kinds.items()))})",
            count(lambda p: len(p.racks)),
        ),
        ("scalable units", f"{len(plan.scalable_units):,}", count(lambda p: len(p.scalable_units))),
        ("data halls", f"{len(plan.halls):,}", count(lambda p: len(p.halls))),
        ("switches", f"{len(plan.switches):,} in {len(plan.fabrics):,} fabrics", count(lambda p: len(p.switches))),
        ("pools", f"{len(plan.pools):,}", count(lambda p: len(p.pools))),
        ("clusters", f"{len(plan.clusters):,}", count(lambda p: len(p.clusters))),
        ("tenants", f"{len(plan.tenants):,}", count(lambda p: len(p.tenants))),
    ]


def readme(
    plans: Sequence[Plan], racks_by_hall: dict[str, list[Rack]] | None = None, rail_groups: Iterable[str] = ()
) -> bytes:
    """README.md of plans[-1], rendered from templates/report/README.md.j2.

    `rail_groups`: the compute fabrics that have a rail-group picture, linked from the fabrics' table.
    """
    plan = plans[-1]
    previous = plans[-2] if len(plans) > 1 else None
    if racks_by_hall is None:
        racks_by_hall = defaultdict(list)
        for rack in plan.racks:
            racks_by_hall[rack.hall].append(rack)

    hall_pools: dict[str, list[str]] = defaultdict(list)
    for pool in plan.pools:
        for h in pool.halls:
            hall_pools[h].append(pool.name)
    halls = [
        _HallRow(
            hall=h,
            gpus=sum(r.gpus for r in racks_by_hall.get(h.name, ())),
            pools=tuple(hall_pools[h.name]),
        )
        for h in plan.halls
    ]
    hall_names = {h.name for h in plan.halls}
    compute = [f for f in plan.fabrics if f.kind == "compute"]
    per_hall: dict[str, list[Fabric]] = defaultdict(list)
    other_fabrics: list[Fabric] = []
    for f in plan.fabrics:
        if f.kind == "compute":
            continue
        (per_hall[f.scope] if f.scope in hall_names else other_fabrics).append(f)
    totals = []
    for kind in sorted({f.kind for f in plan.fabrics if f.kind != "compute"}):
        group = [f for f in plan.fabrics if f.kind == kind]
        totals.append(
            _FabricTotal(
                kind=kind,
                fabrics=len(group),
                models=", ".join(sorted({f.switch_model for f in group})),
                leaves=sum(f.leaves for f in group),
                spines=sum(f.spines for f in group),
                cores=sum(f.cores for f in group),
                endpoints=sum(f.endpoint_ports for f in group),
                node_leaf=sum(f.node_leaf_cables for f in group),
                leaf_spine=sum(f.leaf_spine_cables for f in group),
                spine_core=sum(f.spine_core_cables for f in group),
            )
        )
    addresses = [
        _AddressRow(a.network, a.supernet, a.block, a.blocks, a.allocated, a.used, ip_network(a.supernet).num_addresses)
        for a in plan.addresses
    ]
    kinds = Counter(r.kind for r in plan.racks)

    removed: list[Rack] = []
    if previous is not None:
        live = {r.name for r in plan.racks}
        removed = [r for r in previous.racks if r.name not in live]
    summary = _summary(plan, previous, kinds)

    context: dict[str, Any] = {
        "plan": plan,
        "phases": [p.phase for p in plans],
        "previous": previous,
        "summary": summary,
        "halls": halls,
        "hall_it": sum(h.it_load_kw for h in plan.halls),
        "hall_capacity": sum(h.power_capacity_kw for h in plan.halls),
        "compute": compute,
        "fabric_totals": totals,
        "per_hall_fabrics": per_hall,
        "other_fabrics": other_fabrics,
        "addresses": addresses,
        "retired_now": [r for r in plan.retired if r.phase == plan.phase],
        "retired_before": [r for r in plan.retired if r.phase != plan.phase],
        "removed_racks": len(removed),
        "removed_nodes": sum(r.nodes for r in removed),
        "removed_gpus": sum(r.gpus for r in removed),
        "new": {
            "halls": [h.name for h in plan.halls if h.phase == plan.phase],
            "pools": [p.name for p in plan.pools if p.phase == plan.phase],
            "clusters": [c.name for c in plan.clusters if c.phase == plan.phase],
            "tenants": [t.name for t in plan.tenants if t.phase == plan.phase],
        },
        "hall_path": hall_path,
        "fabric_path": fabric_path,
        "capacity_path": CAPACITY,
        "hall_power_path": HALL_POWER,
        "racks_path": RACKS,
        "addresses_path": ADDRESSES,
        "rail_groups": set(rail_groups),
        "rail_group_path": rail_group_path,
    }
    return _templates().get_template("report/README.md.j2").render(context).encode()
