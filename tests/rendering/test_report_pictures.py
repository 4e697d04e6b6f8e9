"""The report's pictures of halls across phases, racks, rail groups and address space: the Plan's facts, drawn."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from collections import Counter
from ipaddress import ip_network
from pathlib import Path

import pytest

from kasbah.planning.cabling import LEAF_SPINE, NODE_LEAF, SPINE_CORE, cables_by_fabric
from kasbah.planning.model import Plan
from kasbah.rendering.report import (
    ADDRESSES,
    HALL_POWER,
    RACKS,
    addresses_svg,
    hall_power_svg,
    racks_svg,
    rail_group_path,
    render_report,
)
from tests.conftest import CAMPUS, TINY
from tests.rendering.test_report import CASES, IDS, SVG, _classed, _plans, _report, _svg

NEW = (HALL_POWER, RACKS, ADDRESSES)


def _compute(plan: Plan) -> list[str]:
    return [f.name for f in plan.fabrics if f.kind == "compute" and f.leaves]


@pytest.mark.parametrize(("root", "upto"), CASES, ids=IDS)
def test_each_new_picture_is_there_well_formed_deterministic_and_in_the_readme(root: Path, upto: str | None) -> None:
    plans = _plans(root, upto)
    files = _report(root, upto)
    again = render_report(plans)
    readme = files["README.md"].decode()
    names = [*NEW, *(rail_group_path(f) for f in _compute(plans[-1]))]
    assert len(names) > len(NEW)
    for name in names:
        svg = _svg(files[name])  # well-formed, the SVG namespace
        assert (svg.findtext(f"{SVG}title") or "").strip(), name
        assert again[name] == files[name], f"{name} differs between two renders"
        assert f"]({name})" in readme, f"README does not link {name}"
    for caption in ("IT load of each hall", "One rack of each profile", "Each network's supernet"):
        assert caption in readme


@pytest.mark.parametrize(("root", "upto"), [(TINY, None), (CAMPUS, "phase-2")], ids=["tiny", "campus-phase-2"])
def test_hall_power_has_a_bar_a_hall_and_phase_with_the_plans_load(root: Path, upto: str | None) -> None:
    plans = _plans(root, upto)
    assert len(plans) >= 2
    svg = _svg(render_report(plans)[HALL_POWER])
    rows = {g.get("data-hall"): g for g in _classed(svg, "hall")}
    expected = {h.name for p in plans for h in p.halls}
    assert set(rows) == expected
    for p in plans:
        for h in p.halls:
            bars = {b.get("data-phase"): b for b in _classed(rows[h.name], "bar")}
            assert float(bars[p.phase].get("data-kw", "nan")) == pytest.approx(h.it_load_kw, abs=0.01)
    bars = sum(len(_classed(g, "bar")) for g in rows.values())
    assert bars == sum(len(p.halls) for p in plans)
    assert len(_classed(svg, "capacity")) == len(expected)


def test_hall_power_of_one_phase_shows_that_phase_only() -> None:
    plans = _plans(TINY)
    svg = _svg(render_report(plans[:1])[HALL_POWER])
    assert {b.get("data-phase") for b in _classed(svg, "bar")} == {plans[0].phase}


@pytest.mark.parametrize(("root", "upto"), CASES, ids=IDS)
def test_rack_elevations_draw_the_first_rack_of_each_profile_slot_by_slot(root: Path, upto: str | None) -> None:
    plan = _plans(root, upto)[-1]
    svg = _svg(_report(root, upto)[RACKS])
    elevations = {g.get("data-profile"): g for g in _classed(svg, "elevation")}
    first: dict[str, str] = {}
    for r in plan.racks:
        first.setdefault(r.profile, r.name)
    assert list(elevations) == list(first)
    racks = {r.name: r for r in plan.racks}
    for profile, g in elevations.items():
        rack = racks[first[profile]]
        assert g.get("data-rack") == rack.name
        nodes = sorted((n for n in plan.nodes if n.rack == rack.name), key=lambda n: n.slot)
        slots = _classed(g, "slot")
        assert [s.get("data-node") for s in slots] == [n.name for n in nodes]
        assert sum(int(s.get("data-gpus", "0")) for s in slots) == rack.gpus


def _group_cables(plan: Plan, fabric: str) -> tuple[str, Counter[str], set[str], set[str]]:
    """The first rail group's name, its cables by link (counted here from the cabling plan), its leaves and spines."""
    leaves = [s.name for s in plan.switches if s.fabric == fabric and s.tier == "leaf"]
    match = re.match(r"^(.*-r\d+)-leaf\d+$", leaves[0])
    assert match, leaves[0]
    group = match.group(1)
    mine = {n for n in leaves if n.startswith(f"{group}-leaf")}
    cables = next(list(c) for f, c in cables_by_fabric(plan) if f.name == fabric)
    counts: Counter[str] = Counter()
    spines = {b for _, link, a, _, b, _, _ in cables if link == LEAF_SPINE and a in mine}
    for _, link, a, _, b, _, _ in cables:
        if (
            (link == NODE_LEAF and b in mine)
            or (link == LEAF_SPINE and a in mine)
            or (link == SPINE_CORE and a in spines)
        ):
            counts[link] += 1
    return group, counts, mine, spines


@pytest.mark.parametrize(("root", "upto"), CASES, ids=IDS)
def test_a_rail_group_has_as_many_links_as_the_cabling_lays(root: Path, upto: str | None) -> None:
    plan = _plans(root, upto)[-1]
    files = _report(root, upto)
    for fabric in _compute(plan):
        group, counts, leaves, spines = _group_cables(plan, fabric)
        svg = _svg(files[rail_group_path(fabric)])
        assert group in (svg.findtext(f"{SVG}title") or "")
        drawn: Counter[str] = Counter()
        for g in _classed(svg, "links"):
            drawn[g.get("data-tier", "")] += sum(int(e.get("data-cables", "0")) for e in _classed(g, "link"))
        for band in _classed(svg, "uplinks"):
            drawn[band.get("data-tier", "")] += int(band.get("data-cables", "0"))
        assert +drawn == +counts, fabric
        assert counts[NODE_LEAF] and counts[LEAF_SPINE], fabric
        tiers = {g.get("data-tier"): int(g.get("data-count", "0")) for g in _classed(svg, "tier")}
        assert tiers["spine"] == len(spines), fabric
        assert tiers["leaf"] == len(leaves) == len(_classed(svg, "leaf")), fabric
        assert {(e.findtext(f"{SVG}title") or "") for e in _classed(svg, "leaf")} == leaves


@pytest.mark.parametrize(("root", "upto"), CASES, ids=IDS)
def test_address_space_shows_the_plans_allocations(root: Path, upto: str | None) -> None:
    plan = _plans(root, upto)[-1]
    svg = _svg(_report(root, upto)[ADDRESSES])
    rows = {g.get("data-network"): g for g in _classed(svg, "network")}
    assert list(rows) == [a.network for a in plan.addresses]
    for a in plan.addresses:
        g = rows[a.network]
        size = ip_network(a.supernet).num_addresses
        assert (g.get("data-supernet"), g.get("data-size")) == (a.supernet, str(size))
        assert (g.get("data-allocated"), g.get("data-used"), g.get("data-blocks")) == (
            str(a.allocated),
            str(a.used),
            str(a.blocks),
        )
        text = " ".join(t.text or "" for t in g.iter(f"{SVG}text"))
        assert f"allocated {a.allocated:,} of {size:,}" in text and f"used {a.used:,} of {a.allocated:,}" in text


def test_names_in_the_new_pictures_are_escaped() -> None:
    plans = list(_plans(TINY))
    plan = plans[-1]
    odd = "a<b>&\"c'"
    hall = dataclasses.replace(plan.halls[0], name=odd)
    racks = tuple(dataclasses.replace(r, profile=odd) if i == 0 else r for i, r in enumerate(plan.racks))
    addresses = (dataclasses.replace(plan.addresses[0], network=odd), *plan.addresses[1:])
    plan = dataclasses.replace(plan, halls=(hall, *plan.halls[1:]), racks=racks, addresses=addresses)
    for data in (hall_power_svg([*plans[:-1], plan]), racks_svg(plan), addresses_svg(plan)):
        root = ET.fromstring(data)
        assert odd in {t.text for t in root.iter(f"{SVG}text")} | {e.get("data-hall") for e in root.iter()} | {
            e.get("data-profile") for e in root.iter()
        }
