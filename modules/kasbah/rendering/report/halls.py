"""halls/<hall>.svg: the floor plan of each hall, one element a standing rack, scalable units outlined."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from kasbah.planning.model import Hall, Plan, Rack
from kasbah.rendering.report.units import as_kw, as_pct, unprefixed
from kasbah.rendering.svg import GRID, INK, PALETTE, Svg

_KIND_COLOR = {"network": "#5a5a5a", "cpu": "#c9b08a", "storage": "#8db3c7"}
_OTHER_COLOR = "#bbbbbb"
_RETIRED_COLOR = "#f3e3e3"


def hall_path(hall: str) -> str:
    return f"halls/{hall}.svg"


def retired_positions(plans: Sequence[Plan]) -> dict[str, dict[tuple[int, int], Rack]]:
    """Floor positions that held a rack in an earlier phase and hold none now (positions are never reused)."""
    live = {(r.hall, r.row, r.position) for r in plans[-1].racks}
    out: dict[str, dict[tuple[int, int], Rack]] = defaultdict(dict)
    for p in plans[:-1]:
        for r in p.racks:
            if (r.hall, r.row, r.position) not in live:
                out[r.hall][(r.row, r.position)] = r
    return out


def pool_colors(plan: Plan) -> dict[str, str]:
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
        f"IT {as_kw(hall.it_load_kw)} of {as_kw(hall.power_capacity_kw)} kW ({as_pct(hall.it_load_kw, hall.power_capacity_kw)},"
        f" headroom {as_kw(hall.power_headroom_kw)} kW) · liquid {as_kw(hall.liquid_load_kw)} / {as_kw(hall.liquid_capacity_kw)} kW"
        f" · air {as_kw(hall.air_load_kw)} / {as_kw(hall.air_capacity_kw)} kW"
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
                    + f" · {as_kw(rack.power_kw)} kW {rack.cooling}"
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
        svg.text(left + grid_w + 8, y + cell_h / 2 + 4, f"{as_kw(row_kw[row])} kW · {row_racks[row]} racks", "l")

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
                label = f"{unprefixed(su.name, prefix)} {su.pool}"
                if len(label) * 5 > w:
                    label = unprefixed(su.name, prefix)
                svg.text(x + 2, y - 3, label, "m")
    svg.legend(left, legend_y, legend_entries, width - left - 20)
    return svg.render()
