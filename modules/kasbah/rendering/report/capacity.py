"""capacity.svg: IT and facility load, budget, supply and GPUs of every phase up to the rendered one."""

from __future__ import annotations

from collections.abc import Sequence

from kasbah.planning.model import Plan
from kasbah.rendering.report.units import as_power
from kasbah.rendering.svg import GRID, INK, Svg, nice_ticks, tick_label

CAPACITY = "capacity.svg"


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
        f"{plan.phase}: IT {as_power(plan.power.it_load_kw)} x PUE {plan.power.pue:g} = facility {as_power(plan.power.facility_load_kw)};"
        f" {plan.gpus:,} GPUs",
        "s",
    )
    svg.text(
        left,
        60,
        f"facility budget {as_power(plan.power.budget_kw)}, renewable supply {as_power(supply)}",
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
            svg.rect(x, y, bar, top1 + panel_h - y, color, cls="bar", tip=f"{p.phase}: {what} {as_power(kw)}")
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
        svg.text(left + 4, ys - 4, f"renewable supply {as_power(supply)}", "v")
    entries = [
        (it_color, "IT load"),
        (fac_color, "facility (IT x PUE)"),
        (budget_color, "phase budget (dashed)"),
        (supply_color, "renewable supply" if supply_on_scale else f"supply {as_power(supply)}, off scale"),
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
