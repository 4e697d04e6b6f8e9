"""Phase stability: consecutive shipped phases only add; decommissions are declared and loud; changes fail."""

from __future__ import annotations

import copy
import itertools
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from kasbah.config import load_environment
from kasbah.planning import diff_plans, plan_campus, plan_to_dict
from tests.conftest import CAMPUS, TINY


@cache
def _dicts(root: Path) -> list[dict[str, Any]]:
    env = load_environment(root)
    return [plan_to_dict(p) for p in plan_campus(env.campus, env.name)]


@pytest.mark.parametrize("root", [TINY, CAMPUS], ids=["tiny", "campus"])
def test_consecutive_shipped_phases_only_add(root: Path) -> None:
    plans = _dicts(root)
    assert len(plans) >= 2
    for old, new in itertools.pairwise(plans):
        d = diff_plans(old, new)
        assert d.stable, [str(v) for v in d.violations]
        assert not d.retired and not d.removed_by_decommission
        assert d.added["nodes"] and d.totals["gpus"][1] > d.totals["gpus"][0]
        assert d.totals["it_load_mw"][1] > d.totals["it_load_mw"][0]


def _grow_tiny(tmp_path: Path, *phases: dict[str, Any]) -> Path:
    """A copy of the tiny environment with extra phases appended."""
    root = tmp_path / "tiny"
    shutil.copytree(TINY, root)
    site = yaml.safe_load((root / "site.yaml").read_text())
    for phase in phases:
        site["site"]["phases"].append(phase["name"])
        (root / "phases" / f"{phase['name']}.yaml").write_text(yaml.safe_dump({"phase": phase}, sort_keys=False))
    (root / "site.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    return root


def test_declared_decommission_is_stable_and_loud(tmp_path: Path) -> None:
    root = _grow_tiny(
        tmp_path,
        {
            "name": "lab-3",
            "facility_budget_mw": 0.05,
            "decommissions": [{"kind": "pool", "name": "gpu-gov", "reason": "ministry moved to shared quota"}],
        },
        {
            "name": "lab-4",
            "facility_budget_mw": 0.05,
            "pools": [
                {
                    "name": "gpu-b",
                    "rack_profile": "lab-gpu",
                    "purpose": "training",
                    "cluster": "lab",
                    "placements": [{"hall": "lab1", "racks": 1}],
                }
            ],
        },
    )
    plans = _dicts(root)
    d = diff_plans(plans[1], plans[2])
    assert d.stable, [str(v) for v in d.violations]
    assert d.retired == [
        {
            "kind": "pool",
            "name": "gpu-gov",
            "phase": "lab-3",
            "reason": "ministry moved to shared quota",
        }
    ]
    assert d.removed_by_decommission["nodes"] == 2 and d.removed_by_decommission["racks"] == 1
    # the retired position and unit are never handed out again
    gov_rack = next(r for r in plans[1]["racks"] if r["pool"] == "gpu-gov")
    new_rack = next(r for r in plans[3]["racks"] if r["pool"] == "gpu-b")
    assert new_rack["index"] > gov_rack["index"] and new_rack["name"] != gov_rack["name"]
    assert new_rack["oob_cidr"] != gov_rack["oob_cidr"]
    assert diff_plans(plans[2], plans[3]).stable


def test_rack_decommission_removes_only_that_rack(tmp_path: Path) -> None:
    root = _grow_tiny(
        tmp_path,
        {
            "name": "lab-3",
            "facility_budget_mw": 0.05,
            "expansions": {"pools": [{"pool": "gpu-a", "placements": [{"hall": "lab1", "racks": 1}]}]},
        },
        {
            "name": "lab-4",
            "facility_budget_mw": 0.05,
            "decommissions": [{"kind": "rack", "name": "lab1-r01p03", "reason": "failed liquid manifold"}],
        },
    )
    plans = _dicts(root)
    d = diff_plans(plans[2], plans[3])
    assert d.stable, [str(v) for v in d.violations]
    assert d.removed_by_decommission["racks"] == 1 and d.removed_by_decommission["nodes"] == 2
    left = {r["name"] for r in plans[3]["racks"] if r["pool"] == "gpu-a"}
    assert left == {"lab1-r01p05"}


def test_changes_and_removals_without_decommission_are_violations() -> None:
    old, new = _dicts(TINY)
    tampered = copy.deepcopy(new)
    tampered["nodes"][0]["oob_ip"] = "10.10.0.99"
    tampered["nodes"][1]["cluster"] = "elsewhere"
    del tampered["racks"][-1]
    for p in tampered["pools"]:
        if p["name"] == "gpu-a":
            p["racks"] = 0
    d = diff_plans(old, tampered)
    found = {str(v) for v in d.violations}
    node0, node1 = old["nodes"][0]["name"], old["nodes"][1]["name"]
    assert f"node {node0}: oob_ip changed from '{old['nodes'][0]['oob_ip']}' to '10.10.0.99'" in found
    assert any(v.startswith(f"node {node1}: cluster changed") for v in found)
    assert "pool gpu-a: racks shrank from 1 to 0 without a decommission" in found
    assert not d.stable


def test_reversed_phases_are_unstable() -> None:
    old, new = _dicts(TINY)
    d = diff_plans(new, old)
    assert not d.stable
    assert any("removed without a decommission" in str(v) for v in d.violations)


def test_control_plane_assignment_is_not_a_change() -> None:
    """A management node taking a control-plane seat in a later phase is growth, not a change."""
    old, new = _dicts(TINY)
    before = copy.deepcopy(old)
    node = next(n for n in before["nodes"] if n["role"] == "control-plane")
    node["role"], node["cluster"] = "management", None
    assert diff_plans(before, new).stable
