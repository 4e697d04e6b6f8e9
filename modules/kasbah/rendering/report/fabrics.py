"""fabrics/<fabric>.svg: a fabric's tiers as rows of switch boxes (a bounded number a tier), with cables between tiers."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from kasbah.planning.model import Fabric, Plan, Switch
from kasbah.rendering.report.units import common_prefix, unprefixed
from kasbah.rendering.svg import GRID, INK, MUTED, PALETTE, Svg

MAX_BOXES = 40  # switches drawn per fabric tier; the rest are summarised so files stay small at 500 MW
_PER_LINE = 16

_TIER_COLOR = {"core": "#d9d2e9", "spine": "#d0e0f0", "leaf": "#e6f0d8"}
_RAIL = re.compile(r"-r(\d+)-leaf\d+$")


def fabric_path(fabric: str) -> str:
    return f"fabrics/{fabric}.svg"


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
    prefix = common_prefix(names)
    lines: list[list[_Box]] = []
    for key, members in groups.items():
        shown = members if len(members) <= budget else members[: budget - 1]
        boxes = [_Box(unprefixed(n, prefix)[-18:], n, fills[key]) for n in shown]
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
