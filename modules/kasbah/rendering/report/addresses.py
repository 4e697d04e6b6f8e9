"""addresses.svg: each network's address space, what the phase allocated of its supernet and used of that.

Two bars a network, both to the same width: the supernet with the allocated share filled, and the
allocation with the used share filled; a share too small to see still gets a hairline. The numbers
are the Plan's (`Plan.addresses`), one row a network whatever the campus size.
"""

from __future__ import annotations

from ipaddress import ip_network

from kasbah.planning.model import AddressUsage, Plan
from kasbah.rendering.report.units import as_pct
from kasbah.rendering.svg import GRID, INK, MUTED, Svg

ADDRESSES = "addresses.svg"

_ALLOCATED = "#4e79a7"
_USED = "#59a14f"
_TRACK = "#eeeeee"


def _share(part: int, whole: int, width: float) -> float:
    """The bar length of part/whole; never zero for a non-zero part, so a small share stays visible."""
    if whole <= 0 or part <= 0:
        return 0.0
    return max(1.0, width * min(part, whole) / whole)


def address_size(usage: AddressUsage) -> int:
    """How many addresses the network's supernet holds."""
    return ip_network(usage.supernet).num_addresses


def addresses_svg(plan: Plan) -> bytes:
    """One row a network: the supernet with its allocated share, and the allocation with its used share."""
    left, label_w, bar_w, right = 20.0, 150.0, 420.0, 300.0
    top, row_h, bar_h = 96.0, 50.0, 13.0
    width = left + label_w + bar_w + right
    height = top + row_h * max(1, len(plan.addresses)) + 36.0
    bar_x = left + label_w
    title = f"{plan.site}: address space in {plan.phase}"
    sub = "A row a network: allocated of the supernet (blue), used of the allocation (green)."
    svg = Svg(width, height, title, f"{sub} {len(plan.addresses)} network(s).")
    svg.text(left, 24, title, "t")
    svg.text(left, 44, sub, "s")
    svg.text(left, 60, "Allocation: what the phase carved out (blocks of racks, fabrics or clusters).", "s")
    for i, a in enumerate(plan.addresses):
        size = address_size(a)
        y = top + i * row_h
        svg.open(
            "network",
            data_network=a.network,
            data_supernet=a.supernet,
            data_size=str(size),
            data_blocks=str(a.blocks),
            data_allocated=str(a.allocated),
            data_used=str(a.used),
        )
        svg.text(left, y + 11, a.network, "l")
        svg.text(left, y + 24, a.supernet, "v")
        svg.text(left, y + 36, f"{a.blocks:,} x {a.block}", "v")
        for j, (part, whole, color, what) in enumerate(
            (
                (a.allocated, size, _ALLOCATED, f"allocated {a.allocated:,} of {size:,} in {a.supernet}"),
                (a.used, a.allocated, _USED, f"used {a.used:,} of {a.allocated:,} allocated"),
            )
        ):
            by = y + j * (bar_h + 5)
            svg.rect(bar_x, by, bar_w, bar_h, _TRACK, stroke=GRID, cls="track")
            length = _share(part, whole, bar_w)
            if length:
                svg.rect(bar_x, by, length, bar_h, color, cls="allocated" if j == 0 else "used", tip=what)
            svg.text(bar_x + bar_w + 8, by + 10, f"{what} ({as_pct(part, whole)})", "v")
        svg.close()
    y = top + row_h * max(1, len(plan.addresses))
    svg.line(bar_x, top - 8, bar_x, y - 8, INK)
    svg.legend(
        left, y + 4, [(_ALLOCATED, "allocated of the supernet"), (_USED, "used of the allocation")], width - 2 * left
    )
    svg.text(bar_x + bar_w, top - 12, "100%", "v", anchor="end", fill=MUTED)
    return svg.render()
