"""racks.svg: the elevation of one rack of each profile standing in the phase, side by side.

The rack drawn is the profile's first in the Plan's order. Its slots are its nodes in slot order,
slot 1 at the top, with their GPUs and NICs; under them the rack's management ports that are not
a node's BMC (switch trays, power shelves, DPU BMCs). Not to U scale: the catalog gives ports and
power, not heights. A column a profile, at most MAX_SLOTS slots a column, whatever the campus size.
"""

from __future__ import annotations

from collections import defaultdict

from kasbah.planning.model import Node, Plan, Rack, RackPorts
from kasbah.rendering.report.units import as_kw, unprefixed
from kasbah.rendering.svg import GRID, INK, MUTED, Svg

RACKS = "racks.svg"
MAX_SLOTS = 48  # slots drawn a rack; past that one summary slot stands for the rest

_SLOT = {"gpu": "#a0cbe8", "cpu": "#e8d9bd", "storage": "#c4dbe8", "network": "#bbbbbb"}
_MANAGEMENT = "#eeeeee"


def rack_per_profile(plan: Plan) -> list[Rack]:
    """The first rack of every profile in the Plan, in the order the profiles first appear."""
    first: dict[str, Rack] = {}
    for r in plan.racks:
        first.setdefault(r.profile, r)
    return list(first.values())


def racks_svg(plan: Plan) -> bytes:
    """One elevation a rack profile: the rack's nodes by slot, its other management ports, its power and cooling."""
    racks = rack_per_profile(plan)
    wanted = {r.name for r in racks}
    nodes: dict[str, list[Node]] = defaultdict(list)
    for n in plan.nodes:
        if n.rack in wanted:
            nodes[n.rack].append(n)
    ports = {p.name: p for p in plan.rack_ports}
    col_w, gap, slot_h, left, top = 190.0, 26.0, 18.0, 20.0, 96.0
    tallest = max([1, *(min(len(nodes[r.name]), MAX_SLOTS + 1) + 1 for r in racks)])
    frame_h = tallest * slot_h + 16
    width = max(640.0, left * 2 + len(racks) * (col_w + gap) - gap)
    height = top + 34 + frame_h + 84
    title = f"{plan.site}: rack elevations in {plan.phase}"
    sub = f"{len(racks)} rack profile(s), one rack each (the profile's first); slots in slot order, slot 1 at the top"
    svg = Svg(width, height, title, sub + ". Not to U scale: the catalog gives ports and power, not heights.")
    svg.text(left, 24, title, "t")
    svg.text(left, 44, sub, "s")
    svg.text(left, 60, "Not to U scale: the catalog gives ports and power, not heights.", "s")
    for i, rack in enumerate(racks):
        x = left + i * (col_w + gap)
        _elevation(svg, rack, nodes[rack.name], ports.get(rack.profile), x, top, col_w, slot_h, frame_h)
    return svg.render()


def _elevation(
    svg: Svg,
    rack: Rack,
    nodes: list[Node],
    ports: RackPorts | None,
    x: float,
    top: float,
    col_w: float,
    slot_h: float,
    frame_h: float,
) -> None:
    nodes = sorted(nodes, key=lambda n: n.slot)
    svg.open("elevation", data_profile=rack.profile, data_rack=rack.name, data_nodes=str(len(nodes)))
    svg.text(x, top, rack.profile, "l", font_weight="bold")
    svg.text(x, top + 13, f"{rack.kind} · {rack.name}", "v")
    fy = top + 24
    svg.rect(x, fy, col_w, frame_h, "#fafafa", stroke=INK, cls="frame", stroke_width=1.5, rx=2)
    sx, sw = x + 8, col_w - 16
    y = fy + 8
    shown = nodes if len(nodes) <= MAX_SLOTS + 1 else nodes[:MAX_SLOTS]
    nics = ""
    if ports is not None and (ports.compute_nics_per_node or ports.storage_nics_per_node):
        parts = []
        if ports.compute_nics_per_node:
            parts.append(f"{ports.compute_nics_per_node} x {ports.compute_nic_gbps}G compute")
        if ports.storage_nics_per_node:
            parts.append(f"{ports.storage_nics_per_node} x {ports.storage_nic_gbps}G storage")
        nics = ", ".join(parts)
    prefix = f"{rack.name}-"
    for n in shown:
        label = f"{n.slot} {unprefixed(n.name, prefix)} · " + (f"{n.gpus} GPU" if n.gpus else n.role)
        tip = (
            f"{n.name}: slot {n.slot}, {n.role}"
            + (f", {n.gpus} GPUs" if n.gpus else "")
            + (f"; {nics}" if nics else "")
        )
        svg.rect(
            sx,
            y,
            sw,
            slot_h - 2,
            _SLOT.get(rack.kind, _MANAGEMENT),
            stroke=MUTED,
            cls="slot",
            tip=tip,
            data_node=n.name,
            data_slot=str(n.slot),
            data_gpus=str(n.gpus),
        )
        svg.text(sx + 4, y + slot_h - 6, label[:34], "m")
        y += slot_h
    if len(shown) < len(nodes):
        rest = nodes[len(shown) :]
        svg.rect(
            sx,
            y,
            sw,
            slot_h - 2,
            "#ffffff",
            stroke=INK,
            cls="more",
            stroke_dasharray="3 2",
            tip=f"{len(rest)} more nodes, slots {rest[0].slot}-{rest[-1].slot}",
        )
        svg.text(sx + 4, y + slot_h - 6, f"… {len(rest)} more nodes", "m")
        y += slot_h
    extra = (ports.oob_ports - len(nodes)) if ports is not None else 0
    if extra > 0:
        svg.rect(
            sx,
            y,
            sw,
            slot_h - 2,
            _MANAGEMENT,
            stroke=GRID,
            cls="management",
            tip=f"{extra} management ports besides the nodes' BMCs",
        )
        svg.text(sx + 4, y + slot_h - 6, f"{extra} other management ports", "m")
        y += slot_h
    if not nodes:
        svg.text(sx + 4, y + slot_h - 6, "no nodes", "m")
    facts = [
        f"{as_kw(rack.power_kw)} kW, {rack.cooling}, {len(rack.feeds)} feed(s)",
        f"{rack.nodes} node(s), {rack.gpus} GPUs, {rack.weight_kg:,.0f} kg",
    ]
    if ports is not None and ports.compute_nics_per_node:
        facts.append(f"compute NICs a node: {ports.compute_nics_per_node} x {ports.compute_nic_gbps}G")
    if ports is not None and ports.storage_nics_per_node:
        facts.append(f"storage NICs a node: {ports.storage_nics_per_node} x {ports.storage_nic_gbps}G")
    domains = {n.nvlink_domain for n in nodes if n.nvlink_domain}
    if len(domains) == 1 and len(nodes) > 1:
        facts.append(f"one NVLink domain: {next(iter(domains))}")
    for j, line in enumerate(facts):
        svg.text(x, fy + frame_h + 14 + j * 12, line, "v")
    svg.close()
