"""The policy pack across hall stacks: the site's budget and numbering see every hall group through its record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import PolicyResource

from kasbah.components import policies as pol
from tests.stacks.conftest import every_hall_stack, export_state, halls, policy_resources, site, validate

STACKS = [s for s in every_hall_stack() if s[1] in ("phase-2", "phase-4")]


def _with(resources: list[PolicyResource], urn: str, **props: Any) -> list[PolicyResource]:
    return [
        PolicyResource(r.resource_type, {**r.props, **props}, r.urn, r.name, r.opts, None, None, [], {})
        if r.urn == urn
        else r
        for r in resources
    ]


def _record(resources: list[PolicyResource], kind: str, name: str | None = None) -> PolicyResource:
    return next(
        r for r in resources
        if r.resource_type == pol.RECORD and r.props["kind"] == kind and (name is None or r.props["name"] == name)
    )  # fmt: skip


def _racks(resources: list[PolicyResource]) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type == pol.RECORD and r.props["kind"] == "rack" and r.props.get("pool")]


@pytest.mark.parametrize(("env", "phase", "group"), STACKS, ids=[f"{e}-{p}-halls-{g}" for e, p, g in STACKS])
def test_hall_stacks_pass_every_policy(env: str, phase: str, group: int) -> None:
    resources = policy_resources(halls(env, phase, group))
    for policy in pol.POLICIES:
        assert validate(policy, resources) in ([], ["<not applicable>"]), policy.name


def test_the_site_budget_counts_the_other_hall_groups() -> None:
    resources = policy_resources(site("campus", "phase-4"))
    assert validate(pol.power, resources) == []
    group = _record(resources, "group", "hall-group-4")
    found = validate(pol.power, _with(resources, group.urn, it_load_kw=float(group.props["it_load_kw"]) + 300_000))
    assert len(found) == 2 and "exceeds the budget of" in found[0] and "exceeds the supply of" in found[1], found
    # without the group records, the site's own racks fit easily: the records are what the budget sees
    alone = [r for r in resources if not (r.resource_type == pol.RECORD and r.props["kind"] == "group")]
    site_kw = float(_record(resources, "site").props["budget_kw"])
    assert validate(pol.power, _with(alone, _record(alone, "site").urn, budget_kw=site_kw / 4)) == []


def test_a_hall_stack_whose_record_does_not_add_up_is_refused() -> None:
    resources = policy_resources(halls("campus", "phase-4", 2))
    rack = _racks(resources)[0]
    hot = _with(resources, rack.urn, power_kw=float(rack.props["power_kw"]) + 50)
    (found,) = validate(pol.power, hot)
    assert found.startswith("hall-group-2 says it_load_kw ") and "the site stack's budget and numbering" in found
    moved = _with(resources, rack.urn, inband_cidr="10.250.0.0/26")
    (found,) = validate(pol.numbering, moved)
    assert found.startswith("hall-group-2 says blocks ")
    # a hall from another group: in the wrong stack, and not in the record
    hall = _record(resources, "hall")
    (wrong, record) = validate(pol.numbering, _with(resources, hall.urn, index=3))
    assert wrong.startswith(f"hall {hall.props['name']} (index 3) is hall group 0's, not this stack's (hall group 2)")
    assert record.startswith("hall-group-2 says halls ")


def test_hall_indexes_and_blocks_are_not_shared_across_hall_groups() -> None:
    resources = policy_resources(site("campus", "phase-4"))
    assert validate(pol.numbering, resources) == []
    group = _record(resources, "group", "hall-group-3")
    dh01 = _record(resources, "hall", "dh01")
    halls_of = {**group.props["halls"], "dh99": dh01.props["index"]}
    found = validate(pol.numbering, _with(resources, group.urn, halls=halls_of))
    assert found == [
        "hall-group-3: hall dh99 (index 0) is hall group 0's",
        "hall-group-3: hall dh99 reuses index 0 of hall/dh01; fix: allocate a new one",
    ]
    rack = _racks(resources)[0]
    blocks = {
        **group.props["blocks"],
        "inband_cidr": [*group.props["blocks"]["inband_cidr"], rack.props["inband_cidr"]],
    }
    (found,) = validate(pol.numbering, _with(resources, group.urn, blocks=blocks))
    # reported on whichever of the two sorts later; both groups and the block are named
    assert " overlaps hall group " in found and found.endswith("; fix: allocate a new one"), found
    assert "hall group 3's" in found and "hall group 0's" in found and rack.props["inband_cidr"] in found


def test_a_hall_stack_refuses_removal_and_renumbering_against_its_deployed_state(tmp_path: Path) -> None:
    state = export_state(policy_resources(halls("campus", "phase-2", 1)), tmp_path / "state.json")
    nxt = policy_resources(halls("campus", "phase-3", 1))
    assert validate(pol.numbering, nxt, {"deployedState": state}) == []
    rack = _racks(nxt)[0]
    group = _record(nxt, "group")
    removed = [r for r in nxt if r.urn != rack.urn]
    found = validate(pol.numbering, removed, {"deployedState": state})
    gone = f"rack/{rack.props['name']} would be removed from the ledger without a declared decommission; "
    assert any(f.startswith(gone) for f in found), found
    declared = _with(removed, group.urn, decommissions=[f"pool/{rack.props['pool']}"])
    assert not [f for f in validate(pol.numbering, declared, {"deployedState": state}) if "would be removed" in f]
    # the site stack's record of a group never loses a hall
    site_state = export_state(policy_resources(site("campus", "phase-3")), tmp_path / "site.json")
    at_site = policy_resources(site("campus", "phase-4"))
    assert validate(pol.numbering, at_site, {"deployedState": site_state}) == []
    record = _record(at_site, "group", "hall-group-2")
    fewer = {k: v for k, v in record.props["halls"].items() if k != "dh17"}
    found = validate(pol.numbering, _with(at_site, record.urn, halls=fewer), {"deployedState": site_state})
    assert "group/hall-group-2 would lose hall(s) dh17; fix: a hall never leaves its group" in found
