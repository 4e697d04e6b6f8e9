"""The human report of a phase: a README of its numbers and SVG pictures of capacity, data halls and fabrics."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import jinja2

from kasbah.planning.model import Fabric, Hall, Plan, Rack, Switch
from kasbah.rendering.svg import GRID, INK, MUTED, PALETTE, Svg, nice_ticks, tick_label
from kasbah.rendering.templates import TEMPLATES, new_environment

README = "README.md"
CAPACITY = "capacity.svg"
MAX_BOXES = 40  # switches drawn per fabric tier; the rest are summarised so files stay small at 500 MW
_PER_LINE = 16

_KIND_COLOR = {"network": "#5a5a5a", "cpu": "#c9b08a", "storage": "#8db3c7"}
_OTHER_COLOR = "#bbbbbb"
_RETIRED_COLOR = "#f3e3e3"
_TIER_COLOR = {"core": "#d9d2e9", "spine": "#d0e0f0", "leaf": "#e6f0d8"}
_RAIL = re.compile(r"-r(\d+)-leaf\d+$")


def templates_dir() -> Path:
    return TEMPLATES


def hall_path(hall: str) -> str:
    return f"halls/{hall}.svg"


def fabric_path(fabric: str) -> str:
    return f"fabrics/{fabric}.svg"


def render_report(plans: Sequence[Plan]) -> dict[str, bytes]:
    """The report of plans[-1] (the phase being rendered); earlier plans give the history.

    Keys are paths relative to the report directory: "README.md", "capacity.svg", "halls/<hall>.svg"
    and "fabrics/<fabric>.svg" (one a fabric, by its name, e.g. "fabrics/train-a-compute.svg").
    """
    if not plans:
        raise ValueError("render_report needs at least one plan: the phase to report on, last")
    plan = plans[-1]
    racks_by_hall: dict[str, list[Rack]] = defaultdict(list)
    for rack in plan.racks:
        racks_by_hall[rack.hall].append(rack)
    switches_by_fabric: dict[str, list[Switch]] = defaultdict(list)
    for switch in plan.switches:
        switches_by_fabric[switch.fabric].append(switch)
    retired = _retired_positions(plans)
    colors = _pool_colors(plan)

    files: dict[str, bytes] = {CAPACITY: capacity_svg(plans)}
    for hall in plan.halls:
        files[hall_path(hall.name)] = hall_svg(plan, hall, racks_by_hall[hall.name], retired.get(hall.name, {}), colors)
    for fabric in plan.fabrics:
        files[fabric_path(fabric.name)] = fabric_svg(plan, fabric, switches_by_fabric[fabric.name])
    files[README] = readme(plans, racks_by_hall)
    return dict(sorted(files.items()))


# --------------------------------------------------------------------------- README


def _md(value: object) -> str:
    """A markdown table cell: pipes and line breaks would end the cell or the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _count(value: float) -> str:
    return f"{round(value):,}"


def _kw(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def _power(kw: float) -> str:
    """Power in the unit a reader expects at this size: MW from 1 MW up, kW below."""
    return f"{kw / 1000:,.2f} MW" if abs(kw) >= 1000 else f"{kw:,.1f} kW"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _names(values: Iterable[str]) -> str:
    return ", ".join(values) or "-"


@cache
def _templates() -> jinja2.Environment:
    env = new_environment()  # markdown, not HTML: cells are escaped with the `md` filter
    env.filters.update(md=_md, n=_count, kw=_kw, power=_power, names=_names)
    env.globals.update(pct=_pct)
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
        return ("-" if change < 0 else "+") + _power(abs(change))

    return [
        ("IT load", _power(power.it_load_kw), load(lambda p: p.power.it_load_kw)),
        ("PUE", f"{power.pue:.2f}", ""),
        ("facility load (IT x PUE)", _power(power.facility_load_kw), load(lambda p: p.power.facility_load_kw)),
        ("facility budget of the phase", _power(power.budget_kw), load(lambda p: p.power.budget_kw)),
        (
            "headroom to budget",
            f"{_power(power.budget_headroom_kw)} ({_pct(power.budget_headroom_kw, power.budget_kw)})",
            "",
        ),
        ("renewable supply", _power(power.supply_kw), ""),
        (
            "headroom to supply",
            f"{_power(power.supply_headroom_kw)} ({_pct(power.supply_headroom_kw, power.supply_kw)})",
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


def readme(plans: Sequence[Plan], racks_by_hall: dict[str, list[Rack]] | None = None) -> bytes:
    """README.md of plans[-1], rendered from templates/report/README.md.j2."""
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
    }
    return _templates().get_template("report/README.md.j2").render(context).encode()


# --------------------------------------------------------------------------- capacity across phases


def capacity_svg(plans: Sequence[Plan]) -> bytes:
    """IT and facility load, facility budget and renewable supply (top), GPUs (bottom), one bar group a phase."""
    plan = plans[-1]
    n = len(plans)
    group_w = 96.0
    left, right = 78.0, 180.0
    width = max(700.0, left + right + n * group_w)
    plot_w = width - left - right
    group_w = plot_w / n
    panel_h = 190.0
    top1 = 96.0
    top2 = top1 + panel_h + 70.0
    height = top2 + panel_h + 48.0

    loads = [max(p.power.facility_load_kw, p.power.budget_kw) for p in plans]
    scale_kw = max(max(loads), 1.0)
    supply = plan.power.supply_kw
    supply_on_scale = supply <= scale_kw * 1.5
    if supply_on_scale:
        scale_kw = max(scale_kw, supply)
    mw = scale_kw >= 1000
    unit, div = ("MW", 1000.0) if mw else ("kW", 1.0)
    power_ticks = nice_ticks(scale_kw * 1.04 / div)
    power_top = power_ticks[-1]
    gpu_ticks = nice_ticks(max(max(p.gpus for p in plans), 1) * 1.08)
    gpu_top = gpu_ticks[-1]

    title = f"{plan.site}: capacity by phase, up to {plan.phase}"
    svg = Svg(
        width,
        height,
        title,
        f"IT and facility load ({unit}) and GPUs for each of {n} phase(s); facility budget per phase and renewable supply as references.",
    )
    svg.text(left, 24, title, "t")
    svg.text(
        left,
        44,
        f"{plan.phase}: IT {_power(plan.power.it_load_kw)} x PUE {plan.power.pue:g} = facility {_power(plan.power.facility_load_kw)};"
        f" {plan.gpus:,} GPUs",
        "s",
    )
    svg.text(
        left,
        60,
        f"facility budget {_power(plan.power.budget_kw)}, renewable supply {_power(supply)}",
        "s",
    )

    def y_power(kw: float) -> float:
        return top1 + panel_h - panel_h * (kw / div) / power_top

    def y_gpu(g: float) -> float:
        return top2 + panel_h - panel_h * g / gpu_top

    # axes and grid
    svg.text(left - 8, top1 - 10, f"power ({unit})", "l", anchor="end")
    for t in power_ticks:
        y = top1 + panel_h - panel_h * t / power_top
        svg.line(left, y, left + plot_w, y, GRID)
        svg.text(left - 6, y + 3, tick_label(t), "v", anchor="end")
    svg.text(left - 8, top2 - 10, "GPUs", "l", anchor="end")
    for t in gpu_ticks:
        y = top2 + panel_h - panel_h * t / gpu_top
        svg.line(left, y, left + plot_w, y, GRID)
        svg.text(left - 6, y + 3, tick_label(t), "v", anchor="end")
    svg.line(left, top1 + panel_h, left + plot_w, top1 + panel_h, INK)
    svg.line(left, top2 + panel_h, left + plot_w, top2 + panel_h, INK)

    it_color, fac_color, gpu_color, budget_color, supply_color = "#4e79a7", "#a0cbe8", "#59a14f", "#e15759", "#b07aa1"
    bar = min(28.0, group_w / 3.2)
    for i, p in enumerate(plans):
        x0 = left + i * group_w
        cx = x0 + group_w / 2
        svg.open("phase", data_phase=p.phase)
        for kw, color, x, what, ink in (
            (p.power.it_load_kw, it_color, cx - bar - 1, "IT load", "w"),
            (p.power.facility_load_kw, fac_color, cx + 1, "facility load", "m"),
        ):
            y = y_power(kw)
            svg.rect(x, y, bar, top1 + panel_h - y, color, cls="bar", tip=f"{p.phase}: {what} {_power(kw)}")
            _bar_label(svg, x + bar / 2, y, top1 + panel_h - y, f"{kw / div:,.1f}", ink, y_power(p.power.budget_kw))
        yb = y_power(p.power.budget_kw)
        svg.line(cx - bar - 6, yb, cx + bar + 6, yb, budget_color, stroke_width=2, stroke_dasharray="4 2")
        y = y_gpu(p.gpus)
        svg.rect(
            cx - bar - 1, y, 2 * bar + 2, top2 + panel_h - y, gpu_color, cls="bar", tip=f"{p.phase}: {p.gpus:,} GPUs"
        )
        _bar_label(svg, cx, y, top2 + panel_h - y, f"{p.gpus:,}" if bar >= 20 else _short_count(p.gpus))
        svg.text(cx, top1 + panel_h + 14, p.phase, "l", anchor="middle")
        svg.text(cx, top2 + panel_h + 14, p.phase, "l", anchor="middle")
        svg.close()

    lx = left + plot_w + 14
    if supply_on_scale:
        ys = y_power(supply)
        svg.line(left, ys, left + plot_w, ys, supply_color, stroke_width=1.5)
        svg.text(left + 4, ys - 4, f"renewable supply {_power(supply)}", "v")
    entries = [
        (it_color, "IT load"),
        (fac_color, "facility (IT x PUE)"),
        (budget_color, "phase budget (dashed)"),
        (supply_color, "renewable supply" if supply_on_scale else f"supply {_power(supply)}, off scale"),
    ]
    for j, (color, label) in enumerate(entries):
        svg.rect(lx, top1 + j * 18, 11, 11, color)
        svg.text(lx + 15, top1 + j * 18 + 9.5, label, "v")
    svg.rect(lx, top2, 11, 11, gpu_color)
    svg.text(lx + 15, top2 + 9.5, "GPUs", "v")
    return svg.render()


def _short_count(value: int) -> str:
    return f"{value / 1000:,.0f}k" if value >= 10_000 else f"{value:,}"


def _bar_label(
    svg: Svg, x: float, y: float, height: float, label: str, inside: str = "w", above: float | None = None
) -> None:
    """A bar's value: inside its top when the bar is tall enough, above it (and above `above`) otherwise."""
    if height >= 16:
        svg.text(x, y + 11, label, inside, anchor="middle")
    else:
        svg.text(x, min(y, above if above is not None else y) - 3, label, "m", anchor="middle")


# --------------------------------------------------------------------------- hall floor plans


def _retired_positions(plans: Sequence[Plan]) -> dict[str, dict[tuple[int, int], Rack]]:
    """Floor positions that held a rack in an earlier phase and hold none now (positions are never reused)."""
    live = {(r.hall, r.row, r.position) for r in plans[-1].racks}
    out: dict[str, dict[tuple[int, int], Rack]] = defaultdict(dict)
    for p in plans[:-1]:
        for r in p.racks:
            if (r.hall, r.row, r.position) not in live:
                out[r.hall][(r.row, r.position)] = r
    return out


def _pool_colors(plan: Plan) -> dict[str, str]:
    """A colour for every GPU pool, stable across halls; a hall's pools never share one while colours remain."""
    gpu = {r.pool for r in plan.racks if r.kind == "gpu"}
    gpu_pools = [p for p in plan.pools if p.name in gpu]
    colors: dict[str, str] = {}
    used_in_hall: dict[str, set[str]] = defaultdict(set)
    for i, pool in enumerate(gpu_pools):
        taken = set().union(*(used_in_hall[h] for h in pool.halls)) if pool.halls else set()
        choice = PALETTE[i % len(PALETTE)]
        for k in range(len(PALETTE)):
            candidate = PALETTE[(i + k) % len(PALETTE)]
            if candidate not in taken:
                choice = candidate
                break
        colors[pool.name] = choice
        for h in pool.halls:
            used_in_hall[h].add(choice)
    return colors


def _rack_color(rack: Rack, colors: dict[str, str]) -> str:
    if rack.kind == "gpu" and rack.pool in colors:
        return colors[rack.pool]
    return _KIND_COLOR.get(rack.kind, _OTHER_COLOR)


def _runs(positions: Iterable[int]) -> list[tuple[int, int]]:
    """Contiguous runs of positions, as (first, last)."""
    runs: list[tuple[int, int]] = []
    for p in sorted(positions):
        if runs and p == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], p)
        else:
            runs.append((p, p))
    return runs


def _short(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


def hall_svg(
    plan: Plan,
    hall: Hall,
    racks: Sequence[Rack],
    retired: dict[tuple[int, int], Rack],
    colors: dict[str, str],
) -> bytes:
    """Floor plan of a hall: rows x positions, one `rack` element per standing rack, scalable units outlined."""
    per_row = max(1, -(-hall.positions // max(1, hall.rows)))
    rows = max([hall.rows, *(r.row for r in racks)])
    per_row = max([per_row, *(r.position for r in racks)])
    cell_w, cell_h, gap, row_gap = 34.0, 44.0, 4.0, 26.0
    left, top = 56.0, 96.0
    grid_w = per_row * (cell_w + gap)
    width = max(620.0, left + grid_w + 170.0)

    by_pos = {(r.row, r.position): r for r in racks}
    by_name = {r.name: r for r in racks}
    pool_by_name = {p.name: p for p in plan.pools}
    row_kw: dict[int, float] = defaultdict(float)
    row_racks: Counter[int] = Counter()
    for r in racks:
        row_kw[r.row] += r.power_kw
        row_racks[r.row] += 1

    unexplained = max(0, hall.positions_used - hall.racks - len(retired))
    title = f"{hall.name}: floor plan in {plan.phase}"
    caption = (
        f"IT {_kw(hall.it_load_kw)} of {_kw(hall.power_capacity_kw)} kW ({_pct(hall.it_load_kw, hall.power_capacity_kw)},"
        f" headroom {_kw(hall.power_headroom_kw)} kW) · liquid {_kw(hall.liquid_load_kw)} / {_kw(hall.liquid_capacity_kw)} kW"
        f" · air {_kw(hall.air_load_kw)} / {_kw(hall.air_capacity_kw)} kW"
    )
    caption2 = (
        f"{hall.profile} · {rows} x {per_row} positions (rows x positions) · {hall.positions_used} of {hall.positions} positions used"
        f" · {hall.racks} racks · {sum(r.gpus for r in racks):,} GPUs"
        + (f" · {len(retired)} retired position(s)" if retired else "")
        + (f" · {unexplained} retired earlier" if unexplained else "")
    )
    legend_entries: list[tuple[str, str]] = []
    seen_pools = sorted({r.pool for r in racks if r.kind == "gpu" and r.pool}, key=lambda n: (n not in pool_by_name, n))
    legend_entries += [(colors.get(p, _OTHER_COLOR), f"GPU: {p}") for p in seen_pools]
    for kind, label in (("cpu", "CPU"), ("storage", "storage"), ("network", "network")):
        pools = sorted({r.pool for r in racks if r.kind == kind and r.pool})
        if any(r.kind == kind for r in racks):
            legend_entries.append((_KIND_COLOR[kind], f"{label}: {', '.join(pools)}" if pools else label))
    others = sorted({r.kind for r in racks if r.kind not in _KIND_COLOR and not (r.kind == "gpu" and r.pool in colors)})
    legend_entries += [(_OTHER_COLOR, k) for k in others]
    legend_entries.append(("#ffffff", "empty"))
    if retired:
        legend_entries.append((_RETIRED_COLOR, "retired"))

    grid_h = rows * (cell_h + row_gap)
    legend_y = top + grid_h + 8
    height = legend_y + Svg.legend_height([label for _, label in legend_entries], width - left - 20) + 14

    svg = Svg(width, height, title, caption + ". " + caption2)
    svg.text(left, 24, title, "t")
    svg.text(left, 44, caption, "s")
    svg.text(left, 60, caption2, "s")
    for pos in range(1, per_row + 1):
        svg.text(left + (pos - 1) * (cell_w + gap) + cell_w / 2, top - 20, str(pos), "m", anchor="middle")
    svg.text(left + grid_w + 8, top - 20, "IT load a row", "m")

    def cell_x(pos: int) -> float:
        return left + (pos - 1) * (cell_w + gap)

    def cell_y(row: int) -> float:
        return top + (row - 1) * (cell_h + row_gap)

    for row in range(1, rows + 1):
        y = cell_y(row)
        svg.text(left - 8, y + cell_h / 2 + 4, f"row {row}", "l", anchor="end")
        for pos in range(1, per_row + 1):
            x = cell_x(pos)
            rack = by_pos.get((row, pos))
            if rack is not None:
                tip = (
                    f"{rack.name} · {rack.kind} {rack.profile}"
                    + (f" · pool {rack.pool}" if rack.pool else "")
                    + (f" · {rack.scalable_unit}" if rack.scalable_unit else "")
                    + f" · {_kw(rack.power_kw)} kW {rack.cooling}"
                    + (f" · {rack.gpus} GPUs" if rack.gpus else "")
                    + f" · since {rack.phase}"
                )
                svg.rect(x, y, cell_w, cell_h, _rack_color(rack, colors), stroke="#ffffff", cls="rack", tip=tip)
            elif (row, pos) in retired:
                old = retired[(row, pos)]
                svg.rect(
                    x, y, cell_w, cell_h, _RETIRED_COLOR, stroke="#c08080", cls="retired", tip=f"{old.name}: retired"
                )
                svg.line(x + 4, y + 4, x + cell_w - 4, y + cell_h - 4, "#c08080")
                svg.line(x + cell_w - 4, y + 4, x + 4, y + cell_h - 4, "#c08080")
            else:
                svg.rect(x, y, cell_w, cell_h, "#ffffff", stroke=GRID, cls="empty", stroke_dasharray="3 2")
        svg.text(left + grid_w + 8, y + cell_h / 2 + 4, f"{_kw(row_kw[row])} kW · {row_racks[row]} racks", "l")

    prefix = f"{hall.name}-"
    for su in plan.scalable_units:
        if su.hall != hall.name:
            continue
        rows_of: dict[int, list[int]] = defaultdict(list)
        for name in su.racks:
            standing = by_name.get(name)
            if standing is not None:
                rows_of[standing.row].append(standing.position)
        for row, positions in sorted(rows_of.items()):
            for first, last in _runs(positions):
                x = cell_x(first) - 1.5
                w = (last - first + 1) * (cell_w + gap) - gap + 3
                y = cell_y(row) - 1.5
                svg.rect(x, y, w, cell_h + 3, "none", stroke=INK, cls="su", stroke_width=1.2)
                label = f"{_short(su.name, prefix)} {su.pool}"
                if len(label) * 5 > w:
                    label = _short(su.name, prefix)
                svg.text(x + 2, y - 3, label, "m")
    svg.legend(left, legend_y, legend_entries, width - left - 20)
    return svg.render()


# --------------------------------------------------------------------------- fabrics


def _common_prefix(names: Sequence[str]) -> str:
    """The longest common prefix ending at a `-`, so labels keep whole name parts."""
    if len(names) < 2:
        return ""
    first, last = min(names), max(names)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    cut = first.rfind("-", 0, i + 1)
    return first[: cut + 1] if cut >= 0 else ""


@dataclass(frozen=True, slots=True)
class _Box:
    label: str
    tip: str
    fill: str
    more: int = 0  # > 0: a summary box standing for this many switches


def _tier_lines(
    tier: str, count: int, switches: Sequence[Switch], rails: int
) -> tuple[list[list[_Box]], list[tuple[str, str]]]:
    """At most MAX_BOXES boxes for a tier, in lines; leaves grouped by rail, a line (or more) a rail."""
    names = [s.name for s in switches]
    if len(names) < count:  # a plan without switch names: number them
        names += [f"{tier}{i:03d}" for i in range(len(names) + 1, count + 1)]
    groups: dict[str, list[str]] = {"": names}
    legend: list[tuple[str, str]] = []
    fills = {"": _TIER_COLOR.get(tier, "#eeeeee")}
    if tier == "leaf" and rails > 1:
        matched = [_RAIL.search(n) for n in names]
        if all(matched):
            by_rail: dict[str, list[str]] = defaultdict(list)
            for n, m in zip(names, matched, strict=True):
                by_rail[m.group(1) if m else ""].append(n)
            groups = dict(sorted(by_rail.items(), key=lambda kv: int(kv[0])))
            fills = {rail: PALETTE[i % len(PALETTE)] for i, rail in enumerate(groups)}
            legend = [(fills[rail], f"rail {rail}: {len(members):,} leaves") for rail, members in groups.items()]
    budget = max(1, MAX_BOXES // len(groups))
    prefix = _common_prefix(names)
    lines: list[list[_Box]] = []
    for key, members in groups.items():
        shown = members if len(members) <= budget else members[: budget - 1]
        boxes = [_Box(_short(n, prefix)[-18:], n, fills[key]) for n in shown]
        if len(shown) < len(members):
            rest = len(members) - len(shown)
            what = f"rail {key} " if key else ""
            boxes.append(_Box(f"… {rest:,} more", f"{rest:,} more {what}{tier} switches", fills[key], more=rest))
        lines += [boxes[j : j + _PER_LINE] for j in range(0, len(boxes), _PER_LINE)]
    return lines, legend


def _per(cables: int, switches: int) -> str:
    value = cables / switches
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def fabric_svg(plan: Plan, fabric: Fabric, switches: Sequence[Switch]) -> bytes:
    """A fabric's tiers as rows of switch boxes (at most MAX_BOXES a tier), with cable counts between tiers."""
    box_w, box_h, gap, band = 86.0, 22.0, 6.0, 46.0
    left, top = 96.0, 82.0
    line_h = box_h + gap
    by_tier: dict[str, list[Switch]] = defaultdict(list)
    for s in switches:
        by_tier[s.tier].append(s)
    laid: list[tuple[str, int, list[list[_Box]]]] = []
    legend: list[tuple[str, str]] = []
    for tier, count in (("core", fabric.cores), ("spine", fabric.spines), ("leaf", fabric.leaves)):
        if count > 0:
            lines, rail_legend = _tier_lines(tier, count, by_tier.get(tier, []), fabric.rails)
            laid.append((tier, count, lines))
            legend += rail_legend
    widest = max([8, *(len(line) for _, _, lines in laid for line in lines)])
    grid_w = widest * (box_w + gap) - gap
    width = left + grid_w + 30

    pool = next((p for p in plan.pools if p.name == fabric.scope), None)
    title = f"{fabric.name}: {fabric.kind} fabric in {plan.phase}"
    sub = (
        f"{fabric.design}, {fabric.tiers} tier(s), {fabric.switch_model} (radix {fabric.radix})"
        f" · {fabric.switches:,} switches: leaf {fabric.leaves:,}, spine {fabric.spines:,}, core {fabric.cores:,}"
    )
    sub2 = (
        f"scope {fabric.scope} · {fabric.endpoint_ports:,} endpoint ports · {fabric.rails} rail(s)"
        f" · loopbacks {fabric.loopback_block}"
        + (f" · {fabric.power_kw:,.1f} kW" if fabric.power_kw is not None else "")
    )
    legend_h = Svg.legend_height([label for _, label in legend], grid_w)
    height = top + sum(len(lines) * line_h - gap + band for _, _, lines in laid) + 40 + legend_h + 12
    svg = Svg(width, height, title, sub + ". " + sub2)
    svg.text(left, 24, title, "t")
    svg.text(left, 44, sub, "s")
    svg.text(left, 60, sub2, "s")

    def extent(lines: list[list[_Box]]) -> tuple[float, float]:
        w = max(len(line) for line in lines) * (box_w + gap) - gap
        return left + (grid_w - w) / 2, left + (grid_w + w) / 2

    cables = {"core": fabric.spine_core_cables, "spine": fabric.leaf_spine_cables, "leaf": fabric.node_leaf_cables}
    below = {"core": "spine", "spine": "leaf", "leaf": "node"}
    y = top
    for k, (tier, count, lines) in enumerate(laid):
        svg.text(left - 10, y + 15, f"{tier} ×{count:,}", "l", anchor="end")
        svg.open("tier", data_tier=tier, data_count=str(count))
        for j, line in enumerate(lines):
            x0 = left + (grid_w - (len(line) * (box_w + gap) - gap)) / 2
            by = y + j * line_h
            for i, box in enumerate(line):
                bx = x0 + i * (box_w + gap)
                svg.rect(
                    bx,
                    by,
                    box_w,
                    box_h,
                    box.fill,
                    stroke=INK if box.more else MUTED,
                    cls="more" if box.more else "switch",
                    tip=box.tip,
                    rx=3,
                    stroke_dasharray="3 2" if box.more else None,
                )
                svg.text(bx + box_w / 2, by + 14.5, box.label, "m", anchor="middle")
        svg.close()
        y_bottom = y + len(lines) * line_h - gap
        # the links from this tier down to the next, drawn as one band labelled with the cable count
        a0, a1 = extent(lines)
        b0, b1 = extent(laid[k + 1][2]) if k + 1 < len(laid) else (left, left + grid_w)
        svg.polygon(
            [(a0, y_bottom + 2), (a1, y_bottom + 2), (b1, y_bottom + band - 2), (b0, y_bottom + band - 2)],
            "#eef2f7",
            stroke=GRID,
            cls="links",
        )
        svg.text(
            left + grid_w / 2,
            y_bottom + band / 2 + 4,
            f"{cables[tier]:,} {below[tier]}–{tier} cables ({_per(cables[tier], count)} down a {tier})",
            "l",
            anchor="middle",
        )
        y = y_bottom + band

    if pool is not None:
        ends = f"{fabric.endpoint_ports:,} node ports · pool {pool.name}: {pool.racks:,} racks, {pool.nodes:,} nodes, {pool.gpus:,} GPUs"
    else:
        ends = f"{fabric.endpoint_ports:,} endpoint ports in {fabric.scope}"
    svg.rect(left, y, grid_w, 30, "#f7f7f7", stroke=MUTED, cls="endpoints", rx=3)
    svg.text(left + grid_w / 2, y + 19, ends, "l", anchor="middle")
    svg.text(left - 10, y + 19, "nodes", "l", anchor="end")
    if legend:
        svg.legend(left, y + 40, legend, grid_w)
    return svg.render()
