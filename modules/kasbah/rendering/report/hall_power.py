"""hall-power.svg: each hall's IT load in every phase up to the rendered one, against its power capacity.

A row a hall (in the order halls were commissioned), a bar a phase in which the hall stands, and a
tick at the hall's capacity in the rendered phase (the last it had, for a hall retired since). Sized
by halls x phases: a few hundred bars for a 500 MW campus, never a rack or a node.
"""

from __future__ import annotations

from collections.abc import Sequence

from kasbah.planning.model import Hall, Plan
from kasbah.rendering.report.units import as_kw, as_pct, as_power
from kasbah.rendering.svg import GRID, INK, PALETTE, Svg, nice_ticks, tick_label

HALL_POWER = "hall-power.svg"

_CAPACITY = "#e15759"


def hall_loads(plans: Sequence[Plan]) -> list[tuple[str, list[tuple[str, Hall]]]]:
    """Every hall of the plans, first commissioned first, with (phase, the hall in that phase) where it stands."""
    order: dict[str, list[tuple[str, Hall]]] = {}
    for p in plans:
        for h in sorted(p.halls, key=lambda h: h.index):
            order.setdefault(h.name, []).append((p.phase, h))
    return list(order.items())


def hall_power_svg(plans: Sequence[Plan]) -> bytes:
    """IT load a hall and phase as horizontal bars, the hall's capacity as a tick, one row a hall."""
    plan = plans[-1]
    halls = hall_loads(plans)
    colors = {p.phase: PALETTE[i % len(PALETTE)] for i, p in enumerate(plans)}
    bar_h = 7.0 if len(plans) > 1 else 10.0
    row_h = bar_h * len(plans) + 10.0
    left, plot_w, right = 70.0, 520.0, 210.0
    top = 96.0
    width = left + plot_w + right
    scale = max([1.0, *(max(h.it_load_kw, h.power_capacity_kw) for _, seen in halls for _, h in seen)])
    mw = scale >= 1000
    unit, div = ("MW", 1000.0) if mw else ("kW", 1.0)
    ticks = nice_ticks(scale * 1.04 / div)
    ticks_top = ticks[-1]
    legend = [(colors[p.phase], f"IT load in {p.phase}") for p in plans] + [(_CAPACITY, "hall capacity")]
    legend_y = top + row_h * max(1, len(halls)) + 24
    height = legend_y + Svg.legend_height([label for _, label in legend], width - left - 20) + 10

    def x_of(kw: float) -> float:
        return left + plot_w * (kw / div) / ticks_top

    title = f"{plan.site}: IT load per hall, by phase up to {plan.phase}"
    it = sum(h.it_load_kw for h in plan.halls)
    capacity = sum(h.power_capacity_kw for h in plan.halls)
    sub = (
        f"{len(plan.halls)} hall(s) in {plan.phase}: IT {as_power(it)} of {as_power(capacity)} hall capacity"
        f" ({as_pct(it, capacity)}); a bar a phase, capacity ticked"
    )
    svg = Svg(width, height, title, f"{sub}. {len(halls)} hall(s) over {len(plans)} phase(s).")
    svg.text(left, 24, title, "t")
    svg.text(left, 44, sub, "s")
    svg.text(left, 60, "Loads and capacities with redundancy applied, as the planner checks them.", "s")
    bottom = top + row_h * max(1, len(halls)) - 6
    svg.text(left, top - 18, f"IT load ({unit})", "l")
    for t in ticks:
        x = left + plot_w * t / ticks_top
        svg.line(x, top - 6, x, bottom, GRID)
        svg.text(x, bottom + 12, tick_label(t), "v", anchor="middle")
    svg.line(left, top - 6, left, bottom, INK)
    for i, (name, seen) in enumerate(halls):
        y = top + i * row_h
        last = seen[-1][1]
        svg.open("hall", data_hall=name)
        svg.text(left - 6, y + row_h / 2 - 2, name, "l", anchor="end")
        by_phase = dict(seen)
        for j, p in enumerate(plans):
            h = by_phase.get(p.phase)
            if h is None:
                continue
            w = x_of(h.it_load_kw) - left
            tip = f"{name} in {p.phase}: IT {as_kw(h.it_load_kw)} of {as_kw(h.power_capacity_kw)} kW"
            svg.rect(
                left,
                y + j * bar_h,
                w,
                bar_h - 1,
                colors[p.phase],
                cls="bar",
                tip=tip,
                data_phase=p.phase,
                data_kw=h.it_load_kw,
            )
        cx = x_of(last.power_capacity_kw)
        svg.line(cx, y - 2, cx, y + bar_h * len(plans) + 1, _CAPACITY, stroke_width=2, class_="capacity")
        svg.text(
            left + plot_w + 8,
            y + row_h / 2 - 2,
            f"{as_kw(last.it_load_kw)} / {as_kw(last.power_capacity_kw)} kW"
            f" ({as_pct(last.it_load_kw, last.power_capacity_kw)})"
            + ("" if seen[-1][0] == plan.phase else f", until {seen[-1][0]}"),
            "v",
        )
        svg.close()
    svg.legend(left, legend_y, legend, width - left - 20)
    return svg.render()
