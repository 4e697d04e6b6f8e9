"""Cabling: cable counts equal the Plan's Fabric counts, no port is used twice, and the fabric rules hold."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from functools import cache

import pytest

from kasbah.config import load_environment
from kasbah.config.models import Catalog
from kasbah.planning import plan_campus
from kasbah.planning.cabling import (
    LEAF_SPINE,
    NODE_LEAF,
    SPINE_CORE,
    Cable,
    CablingError,
    cables_by_fabric,
    plan_cables,
    port_labels,
    switch_halls,
)
from kasbah.planning.model import Fabric, Plan
from tests.conftest import CAMPUS, TINY

Case = tuple[Plan, Catalog]


@cache
def _plans(env: str, upto: str | None) -> tuple[list[Plan], Catalog]:
    e = load_environment(TINY if env == "tiny" else CAMPUS)
    return plan_campus(e.campus, e.name, upto=upto), e.campus.catalog


def cases() -> list[tuple[str, Case]]:
    tiny, tiny_catalog = _plans("tiny", None)
    campus, campus_catalog = _plans("campus", "phase-1")
    return [(f"tiny-{p.phase}", (p, tiny_catalog)) for p in tiny] + [
        (f"campus-{p.phase}", (p, campus_catalog)) for p in campus
    ]


CASES = cases()
IDS = [name for name, _ in CASES]
PLANS = [case for _, case in CASES]


def by_fabric(plan: Plan, catalog: Catalog) -> dict[str, tuple[Fabric, list[Cable]]]:
    return {f.name: (f, list(cs)) for f, cs in cables_by_fabric(plan, catalog)}


@pytest.mark.parametrize("case", PLANS, ids=IDS)
def test_cable_counts_equal_the_fabric_counts(case: Case) -> None:
    plan, catalog = case
    for f, cables in by_fabric(plan, catalog).values():
        got = Counter(c[1] for c in cables)
        assert (got[NODE_LEAF], got[LEAF_SPINE], got[SPINE_CORE]) == (
            f.node_leaf_cables,
            f.leaf_spine_cables,
            f.spine_core_cables,
        ), f.name


def test_cable_counts_at_500_mw() -> None:
    """The 500 MW phase has the shapes phase 1 lacks: 3-tier fat trees, Quantum-X800, 8-rail B200."""
    plans, catalog = _plans("campus", None)
    plan = plans[-1]
    shapes = {(f.kind, f.design, f.tiers, f.switch_model) for f in plan.fabrics}
    assert ("compute", "fat-tree", 3, "q3400") in shapes
    for f, cables in cables_by_fabric(plan, catalog):
        got = Counter(c[1] for c in cables)
        assert (got[NODE_LEAF], got[LEAF_SPINE], got[SPINE_CORE]) == (
            f.node_leaf_cables,
            f.leaf_spine_cables,
            f.spine_core_cables,
        ), f.name


@pytest.mark.parametrize("case", PLANS, ids=IDS)
def test_no_port_is_used_twice(case: Case) -> None:
    plan, catalog = case
    seen: set[tuple[str, str]] = set()
    for c in plan_cables(plan, catalog):
        for end in ((c[2], c[3]), (c[4], c[5])):
            assert end not in seen, f"{end} used twice ({c})"
            seen.add(end)


@pytest.mark.parametrize("case", PLANS, ids=IDS)
def test_every_switch_port_exists_on_its_model(case: Case) -> None:
    plan, catalog = case
    models = {m.name: m for m in catalog.switch_models}
    switches = {s.name: s for s in plan.switches}
    fabrics = {f.name: f for f in plan.fabrics}
    labels: dict[tuple[str, int], set[str]] = {}
    for c in plan_cables(plan, catalog):
        for device, port in ((c[2], c[3]), (c[4], c[5])):
            s = switches.get(device)
            if s is None:
                continue
            m = models[s.model]
            if fabrics[s.fabric].kind == "oob" and s.tier == "leaf":
                assert 1 <= int(port) <= m.ports + m.uplink_ports, (device, port)
            else:
                key = (m.name, c[6])
                if key not in labels:
                    labels[key] = set(port_labels(m, c[6]))
                assert port in labels[key], (device, port)


@pytest.mark.parametrize("case", PLANS, ids=IDS)
def test_compute_is_rail_optimised(case: Case) -> None:
    """NIC i of every node of a scalable unit lands on a leaf of rail i of that unit, and only there."""
    plan, catalog = case
    nodes = {n.name: n for n in plan.nodes}
    for f, cables in by_fabric(plan, catalog).values():
        if f.kind != "compute":
            continue
        leaf_owner: dict[str, set[tuple[str, str]]] = defaultdict(set)
        per_node: Counter[str] = Counter()
        for c in cables:
            if c[1] == NODE_LEAF:
                leaf_owner[c[4]].add((nodes[c[2]].scalable_unit, c[3]))
                per_node[c[2]] += 1
        assert all(len(owners) == 1 for owners in leaf_owner.values()), f.name
        assert set(per_node.values()) == {f.rails}, f.name
        for leaf in leaf_owner:
            assert any(s.name == leaf and s.tier == "leaf" and s.fabric == f.name for s in plan.switches)


@pytest.mark.parametrize("case", PLANS, ids=IDS)
def test_leaves_are_non_blocking_and_uplinks_spread_evenly(case: Case) -> None:
    plan, catalog = case
    for f, cables in by_fabric(plan, catalog).values():
        if not f.spines:
            continue
        down: Counter[str] = Counter()
        up: Counter[str] = Counter()
        pair: Counter[tuple[str, str]] = Counter()
        spine_down: Counter[str] = Counter()
        for c in cables:
            if c[1] == NODE_LEAF:
                down[c[4]] += c[6]
            elif c[1] == LEAF_SPINE:
                up[c[2]] += c[6]
                pair[(c[2], c[4])] += 1
                spine_down[c[4]] += 1
        assert len(up) == f.leaves, f.name
        assert len(set(up.values())) == 1, f"{f.name}: leaves with different uplink bandwidth"
        # in bandwidth: an OOB leaf's 48 x 1G face its 4 x 100G uplinks
        assert all(down[leaf] <= up[leaf] for leaf in up), f"{f.name}: a leaf is oversubscribed"
        assert len(set(pair.values())) == 1, f"{f.name}: a leaf's uplinks are not spread evenly"
        if not f.cores:
            assert len(spine_down) == f.spines and len(set(spine_down.values())) == 1, f.name


@pytest.mark.parametrize("case", PLANS, ids=IDS)
def test_storage_and_oob_reach_every_node(case: Case) -> None:
    plan, catalog = case
    profiles = {p.name: p for p in catalog.rack_profiles}
    racks = {r.name: r for r in plan.racks}
    storage: Counter[str] = Counter()
    bmc: Counter[str] = Counter()
    for f, cables in by_fabric(plan, catalog).values():
        for c in cables:
            if c[1] == NODE_LEAF and f.kind == "storage":
                storage[c[2]] += 1
            elif c[1] == NODE_LEAF and f.kind == "oob" and c[3] == "bmc":
                bmc[c[2]] += 1
    for n in plan.nodes:
        assert storage[n.name] == profiles[racks[n.rack].profile].storage_nics_per_node, n.name
        assert bmc[n.name] == 1, n.name


@pytest.mark.parametrize("case", PLANS, ids=IDS)
def test_cabling_is_deterministic(case: Case) -> None:
    plan, catalog = case
    assert list(plan_cables(plan, catalog)) == list(plan_cables(plan, catalog))


def test_switch_halls_place_leaves_in_their_unit_hall() -> None:
    plans, catalog = _plans("campus", "phase-1")
    plan = plans[-1]
    halls = switch_halls(plan, catalog)
    assert set(halls) == {s.name for s in plan.switches}
    units = {u.name: u.hall for u in plan.scalable_units}
    nodes = {n.name: n for n in plan.nodes}
    for f, cables in cables_by_fabric(plan, catalog):
        for c in cables:
            if c[1] == NODE_LEAF and c[2] in nodes:
                assert halls[c[4]] == units[nodes[c[2]].scalable_unit] == nodes[c[2]].hall, f.name


def test_breakout_ports_are_named_by_physical_port_and_lane() -> None:
    _, catalog = _plans("campus", "phase-1")
    sn5600 = next(m for m in catalog.switch_models if m.name == "sn5600")
    labels = port_labels(sn5600, 400)
    assert labels[:3] == ["1/1", "1/2", "2/1"] and len(labels) == 128
    assert port_labels(sn5600, 800)[:2] == ["1", "2"]


def test_a_plan_whose_fabric_and_switches_disagree_is_refused() -> None:
    plans, catalog = _plans("tiny", None)
    plan = plans[-1]
    broken = tuple(replace(f, spines=3) if f.kind == "storage" else f for f in plan.fabrics)
    with pytest.raises(CablingError, match="lab1-storage"):
        list(plan_cables(replace(plan, fabrics=broken), catalog))
