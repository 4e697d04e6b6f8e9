"""Cabling: cable counts equal the Plan's Fabric counts, no port is used twice, and the fabric rules hold."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from functools import cache
from itertools import pairwise

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
    _Tree,
    _tree_cables,
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


def by_fabric(plan: Plan) -> dict[str, tuple[Fabric, list[Cable]]]:
    return {f.name: (f, list(cs)) for f, cs in cables_by_fabric(plan)}


@pytest.mark.parametrize("case", PLANS, ids=IDS)
def test_cable_counts_equal_the_fabric_counts(case: Case) -> None:
    plan, _ = case
    _assert_counts(cables_by_fabric(plan))


def test_cable_counts_at_500_mw() -> None:
    """The 500 MW phase has the shapes phase 1 lacks: 3-tier fat trees, Quantum-X800, 8-rail B200."""
    plans, _ = _plans("campus", None)
    plan = plans[-1]
    shapes = {(f.kind, f.design, f.tiers, f.switch_model) for f in plan.fabrics}
    assert ("compute", "fat-tree", 3, "q3400") in shapes
    _assert_counts(cables_by_fabric(plan))


def _assert_counts(fabrics: Iterable[tuple[Fabric, Iterable[Cable]]]) -> None:
    for f, cables in fabrics:
        got = Counter(c[1] for c in cables)
        assert (got[NODE_LEAF], got[LEAF_SPINE], got[SPINE_CORE]) == (
            f.node_leaf_cables,
            f.leaf_spine_cables,
            f.spine_core_cables,
        ), f.name


@pytest.mark.parametrize("case", PLANS, ids=IDS)
def test_no_port_is_used_twice(case: Case) -> None:
    plan, _ = case
    seen: set[tuple[str, str]] = set()
    for c in plan_cables(plan):
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
    for c in plan_cables(plan):
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
    plan, _ = case
    nodes = {n.name: n for n in plan.nodes}
    for f, cables in by_fabric(plan).values():
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
    plan, _ = case
    for f, cables in by_fabric(plan).values():
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
    for f, cables in by_fabric(plan).values():
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
    plan, _ = case
    assert list(plan_cables(plan)) == list(plan_cables(plan))


def test_switch_halls_place_leaves_in_their_unit_hall() -> None:
    plans, _ = _plans("campus", "phase-1")
    plan = plans[-1]
    halls = switch_halls(plan)
    assert set(halls) == {s.name for s in plan.switches}
    units = {u.name: u.hall for u in plan.scalable_units}
    nodes = {n.name: n for n in plan.nodes}
    for f, cables in cables_by_fabric(plan):
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
    plans, _ = _plans("tiny", None)
    plan = plans[-1]
    broken = tuple(replace(f, spines=3) if f.kind == "storage" else f for f in plan.fabrics)
    with pytest.raises(CablingError, match="lab1-storage"):
        list(plan_cables(replace(plan, fabrics=broken)))


# Cables of phase N that phase N+1 moves although both their devices remain: only where the fabric
# rules change how many links a switch has to each upper switch, and then only the links the rules
# take away from each pair (the test checks that number is the least the new counts force).
REPATCHED: dict[tuple[str, str, str], str] = {
    ("campus-phase-1", "infer-a-compute", SPINE_CORE): (
        "7 -> 9 scalable units: 28 -> 36 rail groups need 12 -> 24 cores per core group (72 -> 144 cores), "
        "so each spine's 24 uplinks go 1 (not 2) to each core and 12 of them move to the new cores"
    ),
}


def _phase_pairs() -> list[tuple[str, str, str]]:
    out = []
    for env in ("tiny", "campus"):
        plans, _ = _plans(env, None)
        out += [(env, a.phase, b.phase) for a, b in pairwise(plans)]
    return out


def _pair_links(cables: list[Cable]) -> Counter[tuple[str, str, str]]:
    return Counter((c[1], c[2], c[4]) for c in cables)


@pytest.mark.parametrize(("env", "before", "after"), _phase_pairs(), ids=lambda v: str(v))
def test_cables_stay_on_their_ports_in_the_next_phase(env: str, before: str, after: str) -> None:
    """Invariant 2: a cable whose two devices exist in phase N+1 keeps both its ports there.

    The only exceptions are listed in REPATCHED, with the fabric-rule change that forces them; even
    there, only the links the new counts take away from a switch pair move.
    """
    plans, _ = _plans(env, None)
    old = next(p for p in plans if p.phase == before)
    new = next(p for p in plans if p.phase == after)
    devices = {n.name for n in new.nodes} | {s.name for s in new.switches} | {r.name for r in new.racks}
    new_fabrics = {f.name: (f, cs) for f, cs in cables_by_fabric(new)}
    moved: dict[tuple[str, str, str], int] = {}
    for f, cables in cables_by_fabric(old):
        kept = [c for c in cables if c[2] in devices and c[4] in devices]
        if not kept:
            continue
        g, now_cables = new_fabrics[f.name]
        now = list(now_cables)
        present = set(now)
        gone = [c for c in kept if c not in present]
        for link in {c[1] for c in gone}:
            key = (f"{env}-{before}", f.name, link)
            lost = [c for c in gone if c[1] == link]
            moved[key] = len(lost)
            assert key in REPATCHED, f"{key}: {len(lost)} cables re-patched, e.g. {lost[0]}"
            assert (f.spines, f.cores) != (g.spines, g.cores), (
                f"{key}: re-patched but the fabric's counts did not change"
            )
            # the least re-patching the new counts allow: each switch pair loses only the links it no longer has
            was, has = _pair_links(kept), _pair_links(now)
            forced = sum(max(0, n - has[pair]) for pair, n in was.items() if pair[0] == link)
            assert len(lost) == forced, f"{key}: {len(lost)} cables re-patched where the rules force {forced}"
    listed = {k for k in REPATCHED if k[0] == f"{env}-{before}"}
    assert listed <= set(moved), f"stale exceptions: {sorted(listed - set(moved))}"


def _two_tier(leaves: int, spines: int, uplinks: int, radix: int) -> _Tree:
    f = Fabric(
        name="f", kind="storage", scope="h", switch_model="m", radix=radix, design="fat-tree", tiers=2,
        endpoint_ports=leaves * uplinks, rails=1, leaves=leaves, spines=spines, cores=0,
        node_leaf_cables=leaves * uplinks, leaf_spine_cables=leaves * uplinks, spine_core_cables=0,
        power_kw=None, loopback_block="10.0.0.0/24",
    )  # fmt: skip
    return _Tree(
        f, [f"leaf{i + 1}" for i in range(leaves)], [f"spine{i + 1}" for i in range(spines)], [], uplinks,
        [f"u{j + 1}" for j in range(uplinks)], [str(p + 1) for p in range(radix)], 400, 0, radix,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("before", "after"), [((2, 2), (5, 2)), ((5, 2), (8, 4)), ((8, 4), (10, 4)), ((10, 4), (12, 12))]
)
def test_a_two_tier_fabric_that_gains_spines_moves_only_the_links_it_must(
    before: tuple[int, int], after: tuple[int, int]
) -> None:
    """(leaves, spines), 12 uplinks a leaf, radix 32: growth that keeps the spines keeps every cable; spines
    multiplied move only the links each existing leaf-spine pair gives up."""
    old = list(_tree_cables(_two_tier(*before, 12, 32)))
    new = list(_tree_cables(_two_tier(*after, 12, 32)))
    assert len({(c[4], c[5]) for c in new}) == len(new)
    present = set(new)
    gone = [c for c in old if c not in present]
    was, has = _pair_links(old), _pair_links(new)
    assert len(gone) == sum(max(0, n - has[pair]) for pair, n in was.items())
    if before[1] == after[1]:
        assert not gone


def test_a_two_tier_fabric_whose_spines_do_not_multiply_keeps_the_first_link_of_each_pair() -> None:
    """3 -> 4 spines (4 -> 3 links a pair): the rules move at least 1 link a pair; the first link stays put."""
    old = list(_tree_cables(_two_tier(6, 3, 12, 32)))
    new = set(_tree_cables(_two_tier(8, 4, 12, 32)))
    first = [c for c in old if c[3] in {"u1", "u2", "u3"}]
    assert len(first) == 6 * 3 and all(c in new for c in first)
