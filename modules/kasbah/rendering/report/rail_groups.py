"""rail-groups/<fabric>.svg: one rail group of a compute fabric, drawn with its links, cable by cable counted.

The group is the fabric's first: rail 1 of its first scalable unit, the leaves `<unit>-r1-leaf<i>`.
Drawn: the racks whose nodes' rail-1 NICs land on those leaves, the leaves, the spines the leaves
reach, and the cables up to the cores as one band. A line is a pair of devices, as thick as the
cables between them, each saying its count; the counts are the Plan's cabling (`planning.cabling`),
so they add up to exactly the cables the cabling plan lays for the group. One unit, one rail: a few
dozen boxes at any campus size.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kasbah.planning.cabling import LEAF_SPINE, NODE_LEAF, SPINE_CORE, Cable, cables_by_fabric
from kasbah.planning.model import Fabric, Plan
from kasbah.rendering.report.units import common_prefix, unprefixed
from kasbah.rendering.svg import MUTED, PALETTE, Svg

_GROUP = re.compile(r"^(.*-r\d+)-leaf\d+$")
_COLORS = {"rack": "#c9b08a", "leaf": "#e6f0d8", "spine": "#d0e0f0", "core": "#d9d2e9"}


def rail_group_path(fabric: str) -> str:
    return f"rail-groups/{fabric}.svg"


@dataclass(frozen=True, slots=True)
class RailGroup:
    """One rail group of a compute fabric and its cables, by pair of devices."""

    name: str  # `<unit>-r<rail>`, the leaves' common name
    leaves: tuple[str, ...]
    spines: tuple[str, ...]  # the spines its leaves reach, in the Plan's order
    racks: tuple[str, ...]  # the racks whose nodes its leaves take, in the Plan's order
    node_leaf: tuple[tuple[str, str, int], ...]  # (rack, leaf, cables)
    leaf_spine: tuple[tuple[str, str, int], ...]  # (leaf, spine, cables)
    spine_core: int  # cables from its spines to the cores
    cores: int  # cores those reach
    shared: bool  # its spines also take leaves of other groups


def rail_groups(plan: Plan) -> dict[str, RailGroup]:
    """The first rail group of every compute fabric that has leaves, by fabric name, from the Plan's cabling."""
    leaves: dict[str, list[str]] = defaultdict(list)
    order: dict[str, int] = {}
    for i, s in enumerate(plan.switches):
        order[s.name] = i
        if s.tier == "leaf":
            leaves[s.fabric].append(s.name)
    racks = {r.name: i for i, r in enumerate(plan.racks)}
    rack_of = {n.name: n.rack for n in plan.nodes if n.rail_ips}
    out: dict[str, RailGroup] = {}
    for f, cables in cables_by_fabric(plan):
        if f.kind != "compute" or not leaves[f.name]:
            continue
        first = _GROUP.match(leaves[f.name][0])
        if first is None:
            continue
        name = first.group(1)
        members = [n for n in leaves[f.name] if n.startswith(f"{name}-leaf")]
        out[f.name] = _group(name, members, cables, rack_of, order, racks)
    return out


def _group(
    name: str,
    members: Sequence[str],
    cables: Iterable[Cable],
    rack_of: dict[str, str],
    order: dict[str, int],
    rack_order: dict[str, int],
) -> RailGroup:
    mine = set(members)
    node_leaf: Counter[tuple[str, str]] = Counter()
    leaf_spine: Counter[tuple[str, str]] = Counter()
    others: set[str] = set()
    up: Counter[str] = Counter()
    cores_of: dict[str, set[str]] = defaultdict(set)
    for _, link, a, _, b, _, _ in cables:
        if link == NODE_LEAF:
            if b in mine:
                node_leaf[(rack_of.get(a, a), b)] += 1
        elif link == LEAF_SPINE:
            if a in mine:
                leaf_spine[(a, b)] += 1
            else:
                others.add(b)
        elif link == SPINE_CORE:
            up[a] += 1
            cores_of[a].add(b)
    spines = sorted({s for _, s in leaf_spine}, key=lambda s: (order.get(s, 0), s))
    racks = sorted({r for r, _ in node_leaf}, key=lambda r: (rack_order.get(r, 0), r))
    leaf_rank = {leaf: i for i, leaf in enumerate(members)}
    spine_rank = {s: i for i, s in enumerate(spines)}
    rack_rank = {r: i for i, r in enumerate(racks)}
    return RailGroup(
        name=name,
        leaves=tuple(members),
        spines=tuple(spines),
        racks=tuple(racks),
        node_leaf=tuple(
            (r, leaf, n) for (r, leaf), n in sorted(node_leaf.items(), key=lambda kv: (rack_rank[kv[0][0]], kv[0][1]))
        ),
        leaf_spine=tuple(
            (leaf, s, n)
            for (leaf, s), n in sorted(leaf_spine.items(), key=lambda kv: (leaf_rank[kv[0][0]], spine_rank[kv[0][1]]))
        ),
        spine_core=sum(up[s] for s in spines),
        cores=len(set().union(*(cores_of[s] for s in spines))) if spines else 0,
        shared=bool(others & set(spines)),
    )


def _centred(count: int, box_w: float, gap: float, left: float, plot_w: float) -> list[float]:
    row = count * (box_w + gap) - gap
    x0 = left + (plot_w - row) / 2
    return [x0 + i * (box_w + gap) for i in range(count)]


def _link_width(cables: int) -> float:
    return min(4.0, 0.8 + 0.4 * cables)


def rail_group_svg(plan: Plan, fabric: Fabric, group: RailGroup) -> bytes:
    """Racks, leaves and spines of the group as rows of boxes, a line a linked pair, the core uplinks as a band."""
    widest = max(len(group.spines), len(group.leaves), len(group.racks), 1)
    gap, box_h, band = 4.0, 24.0, 90.0
    left, right = 90.0, 30.0
    plot_w = max(860.0, widest * (14.0 + gap))
    box_w = min(96.0, (plot_w - gap * (widest - 1)) / widest)
    width = left + plot_w + right
    top = 84.0
    core_y = top
    spine_y = core_y + (70.0 if group.spine_core else 0.0)
    leaf_y = spine_y + (box_h + band if group.spines else 0.0)
    rack_y = leaf_y + box_h + band
    height = rack_y + box_h + 44.0

    nodes = sum(n for _, _, n in group.node_leaf)
    ups = sum(n for _, _, n in group.leaf_spine)
    title = f"{fabric.name}: rail group {group.name} in {plan.phase}"
    sub = (
        f"{len(group.racks)} rack(s), {nodes:,} node–leaf cables · {len(group.leaves)} leaves ·"
        f" {ups:,} leaf–spine cables to {len(group.spines)} spines"
        + (f" · {group.spine_core:,} spine–core cables to {group.cores:,} cores" if group.spine_core else "")
    )
    sub2 = (
        f"{fabric.design}, {fabric.tiers} tier(s), {fabric.rails} rail(s), {fabric.switch_model};"
        f" the fabric has {fabric.leaves:,} leaves, {fabric.spines:,} spines, {fabric.cores:,} cores"
        + ("; these spines also take other groups' leaves" if group.shared else "")
    )
    svg = Svg(width, height, title, f"{sub}. {sub2}. A line a pair of devices, labelled with its cables.")
    svg.text(left, 24, title, "t")
    svg.text(left, 44, sub, "s")
    svg.text(left, 60, sub2, "s")

    spine_x = dict(zip(group.spines, _centred(len(group.spines), box_w, gap, left, plot_w), strict=True))
    leaf_x = dict(zip(group.leaves, _centred(len(group.leaves), box_w, gap, left, plot_w), strict=True))
    rack_x = dict(zip(group.racks, _centred(len(group.racks), box_w, gap, left, plot_w), strict=True))
    leaf_color = {leaf: PALETTE[i % len(PALETTE)] for i, leaf in enumerate(group.leaves)}

    if group.spine_core:
        svg.rect(
            left,
            core_y,
            plot_w,
            30,
            _COLORS["core"],
            stroke=MUTED,
            cls="uplinks",
            rx=3,
            tip=f"{group.spine_core:,} cables from the group's spines to {group.cores:,} cores",
            data_tier=SPINE_CORE,
            data_cables=str(group.spine_core),
        )
        svg.text(
            left + plot_w / 2,
            core_y + 19,
            f"{group.cores:,} cores · {group.spine_core:,} spine–core cables from these spines",
            "l",
            anchor="middle",
        )
        svg.text(left - 10, core_y + 19, "cores", "l", anchor="end")

    # links first, boxes over them
    # each tier's links from the lower box's top to the upper box's bottom, coloured by the leaf; a leaf takes
    # whole racks, so a rack's count is written once above it
    tiers = (
        (
            LEAF_SPINE,
            [(leaf_x[a], spine_x[b], leaf_color[a], n) for a, b, n in group.leaf_spine],
            leaf_y,
            spine_y,
            False,
        ),
        (NODE_LEAF, [(rack_x[a], leaf_x[b], leaf_color[b], n) for a, b, n in group.node_leaf], rack_y, leaf_y, True),
    )
    for tier, links, low_y, high_y, counted in tiers:
        svg.open("links", data_tier=tier)
        for x_low, x_high, color, n in links:
            x1 = x_low + box_w / 2
            svg.line(
                x1,
                low_y,
                x_high + box_w / 2,
                high_y + box_h,
                color,
                class_="link",
                stroke_width=_link_width(n),
                stroke_opacity=0.7,
                data_cables=str(n),
            )
            if counted:
                svg.text(x1 + 3, low_y - 4, f"×{n}", "m")
        svg.close()
    if group.leaf_spine and len(group.leaf_spine) <= 64:
        counts = sorted({n for _, _, n in group.leaf_spine})
        label = " or ".join(f"×{c}" for c in counts)
        svg.text(left + plot_w + 4, leaf_y - band / 2, label, "m", anchor="end")

    rows: list[tuple[str, Sequence[str], dict[str, float], float]] = [
        ("spine", group.spines, spine_x, spine_y),
        ("leaf", group.leaves, leaf_x, leaf_y),
        ("rack", group.racks, rack_x, rack_y),
    ]
    for tier, names, xs, y in rows:
        if not names:
            continue
        prefix = common_prefix(names)
        svg.text(left - 10, y + 16, f"{tier}s" if len(names) > 1 else tier, "l", anchor="end")
        svg.open("tier", data_tier=tier, data_count=str(len(names)))
        for name in names:
            x = xs[name]
            fill = leaf_color[name] if tier == "leaf" else _COLORS[tier]
            svg.rect(x, y, box_w, box_h, fill, stroke=MUTED, cls=tier, tip=name, rx=3)
            label = unprefixed(name, prefix)
            if len(label) * 5 <= box_w:
                svg.text(x + box_w / 2, y + 15, label, "m", anchor="middle")
        svg.close()
    svg.text(
        left,
        rack_y + box_h + 22,
        "Line width grows with the cables of a pair; hover a box for its name.",
        "v",
        fill=MUTED,
    )
    return svg.render()
