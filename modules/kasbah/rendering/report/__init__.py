"""The human report of a phase: a README of its numbers and SVG pictures of capacity, halls, racks, fabrics, addresses.

A module a file or directory of the report (`report/` of a rendered tree):

    README.md                 readme       the numbers, in tables, linking every picture
    capacity.svg              capacity     power and GPUs of every phase up to this one
    hall-power.svg            hall_power   each hall's IT load in every phase, against its capacity
    racks.svg                 racks        the elevation of one rack of each profile
    addresses.svg             addresses    each network's address space: allocated, used
    halls/<hall>.svg          halls        a floor plan a hall
    fabrics/<fabric>.svg      fabrics      a fabric's tiers and the cables between them
    rail-groups/<fabric>.svg  rail_groups  one rail group of a compute fabric, with its links
                              units        how numbers and names are written, everywhere

Every picture is deterministic SVG (`rendering.svg`) of bounded size at campus scale: racks are drawn
one element each on floor plans, switches and nodes never are (a tier is summarised past MAX_BOXES,
a fabric's links are drawn for one rail group, a rack's slots for one rack a profile).

`readme` is the function here, as before the package (its module: `kasbah.rendering.report.readme`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from kasbah.planning.model import Plan, Rack, Switch
from kasbah.rendering.report.addresses import ADDRESSES, addresses_svg
from kasbah.rendering.report.capacity import CAPACITY, capacity_svg
from kasbah.rendering.report.fabrics import MAX_BOXES, fabric_path, fabric_svg
from kasbah.rendering.report.hall_power import HALL_POWER, hall_power_svg
from kasbah.rendering.report.halls import hall_path, hall_svg, pool_colors, retired_positions
from kasbah.rendering.report.racks import RACKS, racks_svg
from kasbah.rendering.report.rail_groups import rail_group_path, rail_group_svg, rail_groups
from kasbah.rendering.report.readme import README, readme
from kasbah.rendering.templates import TEMPLATES

__all__ = [
    "ADDRESSES",
    "CAPACITY",
    "HALL_POWER",
    "MAX_BOXES",
    "RACKS",
    "README",
    "addresses_svg",
    "capacity_svg",
    "fabric_path",
    "fabric_svg",
    "hall_path",
    "hall_power_svg",
    "hall_svg",
    "racks_svg",
    "rail_group_path",
    "rail_group_svg",
    "readme",
    "render_report",
    "templates_dir",
]


def templates_dir() -> Path:
    return TEMPLATES


def render_report(plans: Sequence[Plan]) -> dict[str, bytes]:
    """The report of plans[-1] (the phase being rendered); earlier plans give the history.

    Keys are paths relative to the report directory: "README.md", "capacity.svg", "hall-power.svg",
    "racks.svg", "addresses.svg", "halls/<hall>.svg", "fabrics/<fabric>.svg" (one a fabric, by its
    name, e.g. "fabrics/train-a-compute.svg") and "rail-groups/<fabric>.svg" (one a compute fabric).
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
    retired = retired_positions(plans)
    colors = pool_colors(plan)

    groups = rail_groups(plan)

    files: dict[str, bytes] = {
        CAPACITY: capacity_svg(plans),
        HALL_POWER: hall_power_svg(plans),
        RACKS: racks_svg(plan),
        ADDRESSES: addresses_svg(plan),
    }
    for hall in plan.halls:
        files[hall_path(hall.name)] = hall_svg(plan, hall, racks_by_hall[hall.name], retired.get(hall.name, {}), colors)
    for fabric in plan.fabrics:
        files[fabric_path(fabric.name)] = fabric_svg(plan, fabric, switches_by_fabric[fabric.name])
    for fabric in plan.fabrics:
        if fabric.name in groups:
            files[rail_group_path(fabric.name)] = rail_group_svg(plan, fabric, groups[fabric.name])
    files[README] = readme(plans, racks_by_hall, groups)
    return dict(sorted(files.items()))
