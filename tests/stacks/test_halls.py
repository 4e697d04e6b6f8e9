"""Hall stacks (`stacks/halls`): every hall group but the first in a stack of its own, nothing deployed moved."""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi
import pytest

from kasbah.components.ledger import LedgerProvider
from kasbah.components.mocked import MockedRun, run_mocked
from kasbah.components.programs import halls_program
from kasbah.planning.halls import HALLS_PER_STACK, hall_group
from tests.stacks.conftest import ENVIRONMENTS, every_hall_stack, hall_groups, halls, phases, planned, site

RECORD = "pulumi-python:dynamic/ledger:Record"
HALL_STACKS = every_hall_stack()
# The site stack's resources at the phases its stacks are deployed at (stacks/site/Pulumi.campus.yaml, Pulumi.tiny.yaml):
# (count, sha256 of the sorted URNs joined by "\n"), recorded at commit 18df73d, before hall stacks existed, with
# run_mocked(site_program, project="kasbah-site", stack=<env>, config={"environment": "environments/<env>",
# "phase": <phase>}). The same URNs after the split: not one deployed resource is renamed, moved or replaced.
DEPLOYED_URNS = {
    ("campus", "phase-1"): (372, "330ba3c4563cce56d167bbf334bae7329066db5eb2f27d4e39ac46c29545d694"),
    ("tiny", "lab-1"): (13, "6b6c57c282b08ec2a6794a08efdafd73341eb923bf3f9aeec8358f1087be8f07"),
    ("tiny", "lab-2"): (15, "0e65c6599631b63cea57fcc8271a314385e1850efe763a55f1e009bd39d66be7"),
}


def plan_of(env: str, phase: str):  # type: ignore[no-untyped-def]
    return next(p for p in planned(ENVIRONMENTS[env]) if p.phase == phase)


def _records(run: MockedRun, kind: str) -> dict[str, dict[str, Any]]:
    return {r.name: r.public_inputs for r in run.of_type(RECORD) if r.inputs["kind"] == kind}


def test_halls_per_stack_is_pinned() -> None:
    """Changing it would move halls, and their protected records, from one stack to another."""
    assert HALLS_PER_STACK == 8
    assert [hall_group(i) for i in (0, 7, 8, 15, 16, 35)] == [0, 0, 1, 1, 2, 4]
    with pytest.raises(ValueError, match="indexes start at 0"):
        hall_group(-1)


@pytest.mark.parametrize(("env", "phase"), sorted(DEPLOYED_URNS), ids=[f"{e}-{p}" for e, p in sorted(DEPLOYED_URNS)])
def test_the_deployed_site_stacks_keep_every_urn(env: str, phase: str) -> None:
    run = site(env, phase)
    urns = sorted(run.resources)
    assert (len(urns), hashlib.sha256("\n".join(urns).encode()).hexdigest()) == DEPLOYED_URNS[(env, phase)]
    # every hall they hold is in hall group 0, so no hall stack exists at these phases
    assert hall_groups(env, phase) == []


def test_shipped_site_stacks_are_at_a_phase_whose_urns_are_pinned() -> None:
    from tests.stacks.test_stack_configs import SITES

    for env, cfg in SITES.items():
        assert (env, cfg["phase"]) in DEPLOYED_URNS, f"record the URNs of the site stack {env} at {cfg['phase']}"


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_every_hall_and_rack_is_in_exactly_one_stack(env: str) -> None:
    for phase in phases(env):
        plan, at_site = plan_of(env, phase), site(env, phase)
        held = {"hall": list(_records(at_site, "hall")), "rack": list(_records(at_site, "rack"))}
        groups = _records(at_site, "group")
        assert set(groups) == {f"hall-group-{g}" for g in hall_groups(env, phase)}
        for g in hall_groups(env, phase):
            run = halls(env, phase, g)
            held["hall"] += list(_records(run, "hall"))
            held["rack"] += list(_records(run, "rack"))
            # the site stack's record of the group is the group stack's own, field for field
            assert _records(run, "group") == {f"hall-group-{g}": groups[f"hall-group-{g}"]}
        assert sorted(held["hall"]) == sorted(h.name for h in plan.halls), phase
        assert sorted(held["rack"]) == sorted(r.name for r in plan.racks), phase


@pytest.mark.parametrize(("env", "phase", "group"), HALL_STACKS, ids=[f"{e}-{p}-halls-{g}" for e, p, g in HALL_STACKS])
def test_hall_stack_graph(env: str, phase: str, group: int) -> None:
    run, plan = halls(env, phase, group), plan_of(env, phase)
    mine = [h for h in plan.halls if hall_group(h.index) == group]
    racks = [r for r in plan.racks if r.hall in {h.name for h in mine}]
    assert 1 <= len(mine) <= HALLS_PER_STACK
    assert run.counts() == {"kasbah:site:DataHall": len(mine), RECORD: 1 + len(mine) + len(racks)}
    for r in run.of_type(RECORD):
        assert r.parent_type == ("pulumi:pulumi:Stack" if r.inputs["kind"] == "group" else "kasbah:site:DataHall")
    assert run.protected == {r.urn for r in run.of_type(RECORD)}
    (record,) = _records(run, "group").values()
    assert record["group"] == group and record["racks"] == len(racks)
    assert record["halls"] == {h.name: h.index for h in mine}
    assert record["it_load_kw"] == pytest.approx(sum(r.power_kw for r in racks), abs=0.01)
    out = run.outputs
    assert (out["environment"], out["phase"], out["hall_group"]) == (env, phase, group)
    assert out["record"] == site(env, phase).outputs["hall_groups"][f"hall-group-{group}"]["sha256"]
    assert {h: v["racks"] for h, v in out["halls"].items()} == {h.name: h.racks for h in mine}


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_no_stack_holds_more_than_3000_resources(env: str) -> None:
    """Issue 18: every stack at or under about 3,000 resources at 500 MW (cluster stacks: test_cluster_graph)."""
    for phase in phases(env):
        sizes = {"site": len(site(env, phase).resources)}
        sizes |= {f"halls-{g}": len(halls(env, phase, g).resources) for g in hall_groups(env, phase)}
        assert max(sizes.values()) <= 3000, (phase, sizes)


def test_campus_at_500_mw_is_five_ledger_stacks() -> None:
    assert hall_groups("campus", "phase-4") == [1, 2, 3, 4]
    assert len(plan_of("campus", "phase-4").halls) == 36  # 4 groups of 8 and one of 4


def _halls(config: dict[str, Any], site_outputs: dict[str, Any] | None = None) -> MockedRun:
    return run_mocked(
        halls_program,
        project="kasbah-halls",
        stack="bad",
        config={"environment": "environments/campus", "siteStack": "o/kasbah-site/campus", **config},
        stack_outputs={"o/kasbah-site/campus": site_outputs or site("campus", "phase-2").outputs},
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"phase": "phase-2"}, r"kasbah:hallGroup \(a number, 1 and up\) and kasbah:siteStack must be set"),
        ({"phase": "phase-2", "hallGroup": "one"}, r"kasbah:hallGroup \(a number, 1 and up\)"),
        ({"phase": "phase-2", "hallGroup": 0}, r"kasbah:hallGroup = 0: campus phase-2 has no hall group 0 .*: 1\)"),
        ({"phase": "phase-1", "hallGroup": 1}, r"hall group 1 .*only group 0, the site stack"),
    ],
)
def test_bad_hall_stack_config_names_the_key_and_the_fix(config: dict[str, Any], message: str) -> None:
    with pytest.raises(pulumi.RunError, match=message):
        _halls(config)


def test_a_hall_stack_waits_for_the_site_stack_of_its_phase_and_group_record() -> None:
    behind = {**site("campus", "phase-3").outputs, "phase": "phase-2"}
    with pytest.raises(pulumi.RunError, match=r"is at 'phase-2', this stack at 'phase-3'; fix: run the site stack"):
        _halls({"phase": "phase-3", "hallGroup": 1}, behind)
    other = {**site("campus", "phase-2").outputs, "hall_groups": {}}
    with pytest.raises(pulumi.RunError, match=r"holds no record of hall-group-1 .*fix: run the site stack's pulumi up"):
        _halls({"phase": "phase-2", "hallGroup": 1}, other)
    ours = halls("campus", "phase-2", 1).outputs
    assert ours["record"] == site("campus", "phase-2").outputs["hall_groups"]["hall-group-1"]["sha256"]


def test_a_group_record_that_changes_only_grows() -> None:
    """Phase 2 to 3: hall group 1 gains halls; its record (identity: the group number) is updated, not replaced."""
    old = _records(halls("campus", "phase-2", 1), "group")["hall-group-1"]
    new = _records(halls("campus", "phase-3", 1), "group")["hall-group-1"]
    assert set(old["halls"]) < set(new["halls"])
    assert not LedgerProvider().diff("id", {"kind": "group", **old}, {"kind": "group", **new}).replaces
