"""Phase stability: consecutive shipped phases only add; decommissions are declared and loud; changes fail."""

from __future__ import annotations

import copy
import ipaddress
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


def _grow_tiny(tmp_path: Path, *phases: dict[str, Any], clusters: int = 1) -> Path:
    """A copy of the tiny environment with extra phases appended (and room for more clusters)."""
    root = tmp_path / "tiny"
    shutil.copytree(TINY, root)
    site = yaml.safe_load((root / "site.yaml").read_text())
    if clusters > 1:
        a = site["site"]["addressing"]
        a["pods"]["cluster_prefix"] = a["services"]["cluster_prefix"] = 17
        a["reserve"]["scalable_units_per_hall"] = 8
        a["reserve"]["switches_per_fabric"] = 32
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


def test_dependent_decommissions_in_one_phase(tmp_path: Path) -> None:
    """A cluster with its control-plane pool, and a reseller with its customer, retire together."""
    root = _grow_tiny(
        tmp_path,
        {
            "name": "lab-3",
            "facility_budget_mw": 0.05,
            "pools": [
                {
                    "name": "mgmt-b",
                    "rack_profile": "lab-cpu",
                    "purpose": "management",
                    "placements": [{"hall": "lab1", "racks": 1}],
                },
                {
                    "name": "gpu-b",
                    "rack_profile": "lab-gpu",
                    "purpose": "training",
                    "cluster": "lab-b",
                    "placements": [{"hall": "lab1", "racks": 1}],
                },
            ],
            "clusters": [
                {
                    "name": "lab-b",
                    "kubernetes_version": "1.34",
                    "node_limit": 16,
                    "control_plane": {"pool": "mgmt-b", "replicas": 1},
                }
            ],
        },
        {
            "name": "lab-4",
            "facility_budget_mw": 0.05,
            "decommissions": [
                {"kind": "tenant", "name": "water-agency", "reason": "white-label contract ended"},
                {"kind": "tenant", "name": "telecom", "reason": "white-label contract ended"},
                {"kind": "tenant", "name": "ministry", "reason": "white-label contract ended"},
                {"kind": "cluster", "name": "lab", "reason": "merged into lab-b"},
                {"kind": "pool", "name": "mgmt", "reason": "merged into lab-b"},
                {"kind": "pool", "name": "gpu-a", "reason": "merged into lab-b"},
                {"kind": "pool", "name": "gpu-gov", "reason": "white-label contract ended"},
            ],
        },
        clusters=2,
    )
    plans = _dicts(root)
    d = diff_plans(plans[2], plans[3])
    assert d.stable, [str(v) for v in d.violations]
    assert {(r["kind"], r["name"]) for r in d.retired} == {
        ("tenant", "water-agency"),
        ("tenant", "telecom"),
        ("tenant", "ministry"),
        ("cluster", "lab"),
        ("pool", "mgmt"),
        ("pool", "gpu-a"),
        ("pool", "gpu-gov"),
    }
    assert [c["name"] for c in plans[3]["clusters"]] == ["lab-b"]


def test_compute_fabric_shrinks_with_a_retired_rack(tmp_path: Path) -> None:
    root = _grow_tiny(
        tmp_path,
        {
            "name": "lab-3",
            "facility_budget_mw": 0.05,
            "decommissions": [{"kind": "rack", "name": "lab1-r01p03", "reason": "failed manifold"}],
        },
    )
    site = yaml.safe_load((root / "site.yaml").read_text())
    site["catalog"]["rack_profiles"][0]["scalable_unit_racks"] = 2  # lab-gpu: two racks a unit
    (root / "site.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    for phase in ("lab-1", "lab-2"):
        doc = yaml.safe_load((root / "phases" / f"{phase}.yaml").read_text())
        for pool in doc["phase"]["pools"]:
            if pool["rack_profile"] == "lab-gpu":
                pool["placements"][0]["racks"] = 2
        (root / "phases" / f"{phase}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    plans = _dicts(root)
    before = next(f for f in plans[1]["fabrics"] if f["name"] == "gpu-a-compute")
    after = next(f for f in plans[2]["fabrics"] if f["name"] == "gpu-a-compute")
    assert before["endpoint_ports"] == 8 and after["endpoint_ports"] == after["node_leaf_cables"] == 4
    assert diff_plans(plans[1], plans[2]).stable


def test_an_unused_catalog_profile_changes_nothing(tmp_path: Path) -> None:
    """Addresses come from reservations, never from what the catalog happens to hold."""
    root = tmp_path / "campus"
    shutil.copytree(CAMPUS, root)
    site = yaml.safe_load((root / "site.yaml").read_text())
    # 100 out-of-band ports need three 48-port switches a rack, more than any shipped profile
    extra = dict(site["catalog"]["rack_profiles"][3], name="cpu-dense", nodes=16, oob_ports_extra=84)
    site["catalog"]["rack_profiles"].append(extra)
    (root / "site.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    env = load_environment(root)
    with_extra = plan_to_dict(plan_campus(env.campus, "campus", upto="phase-1")[-1])
    assert diff_plans(_dicts(CAMPUS)[0], with_extra).stable
    assert with_extra["switches"] == _dicts(CAMPUS)[0]["switches"]


def test_the_fabric_rules_re_patching_is_reported_not_hidden() -> None:
    """Campus phase 1 -> 2: infer-a grows from 72 to 144 cores, so spine-core cables move (tests/planning/test_cabling.py
    REPATCHED); the diff names them, and stays stable because the fabric's size forced them."""
    old, new = _dicts(CAMPUS)[:2]
    d = diff_plans(old, new)
    assert d.stable
    assert set(d.repatched) == {"infer-a-compute"} and set(d.repatched["infer-a-compute"]) == {"spine-core"}
    assert d.repatched["infer-a-compute"]["spine-core"] > 0
    assert d.repatched_examples[0].startswith("infer-a-compute spine-core infer-a-spine001:")
    assert d.as_dict()["repatched_cables"] == d.repatched


def test_a_cable_that_moves_while_its_fabric_keeps_its_size_is_a_violation(tmp_path: Path) -> None:
    """A catalog edit (a second storage NIC a lab GPU node) re-lays the storage fabric under racks that stayed."""
    root = tmp_path / "tiny"
    shutil.copytree(TINY, root)
    site = yaml.safe_load((root / "site.yaml").read_text())
    gpu = next(p for p in site["catalog"]["rack_profiles"] if p["name"] == "lab-gpu")
    gpu["storage_nics_per_node"] = 2
    (root / "site.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    env = load_environment(root)
    edited = plan_to_dict(plan_campus(env.campus, env.name, upto="lab-1")[-1])
    d = diff_plans(_dicts(TINY)[0], edited)
    found = [str(v) for v in d.violations]
    assert "rack profile lab-gpu: storage_nics_per_node changed from 1 to 2" in found
    moved = [v for v in found if v.startswith("cable ")]
    assert moved and all("although the fabric kept its size" in v for v in moved)
    assert any(":storage1: lab1-storage node-leaf moves from lab1-su02-storage-leaf1:" in v for v in moved), moved
    assert not d.stable


def test_a_plan_file_that_cannot_be_cabled_is_not_compared_silently() -> None:
    old, new = _dicts(TINY)
    broken = copy.deepcopy(new)
    storage = next(f for f in broken["fabrics"] if f["kind"] == "storage")
    storage["leaves"] += 1  # a hand edit: the fabric's counts and its switches disagree
    d = diff_plans(old, broken)
    assert any(v.kind == "cables" and "not compared: a side cannot be cabled" in v.what for v in d.violations)


def test_a_saved_plan_reads_back_as_the_same_plan() -> None:
    from kasbah.planning.export import plan_from_dict

    env = load_environment(CAMPUS)
    for plan in plan_campus(env.campus, env.name, upto="phase-2"):
        assert plan_from_dict(plan_to_dict(plan)) == plan


UPGRADE_PHASE = {
    "name": "lab-3",
    "description": "Kubernetes 1.34 on the lab cluster, and one more GPU rack.",
    "facility_budget_mw": 0.05,
    "expansions": {"pools": [{"pool": "gpu-a", "placements": [{"hall": "lab1", "racks": 1}]}]},
    "upgrades": [{"cluster": "lab", "kubernetes_version": "1.34"}],
}


def test_a_declared_upgrade_is_stable_and_shown_as_an_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kasbah.cli import main

    root = _grow_tiny(tmp_path, UPGRADE_PHASE)
    old, new = _dicts(root)[1:]
    d = diff_plans(old, new)
    assert d.stable, [str(v) for v in d.violations]
    assert d.upgrades == [{"cluster": "lab", "from": "1.33", "to": "1.34", "phase": "lab-3"}]
    (cluster,) = new["clusters"]
    assert (cluster["kubernetes_version"], cluster["commissioned_version"]) == ("1.34", "1.33")
    # the upgrade is history from then on: the next diff does not show it again
    assert diff_plans(new, new).upgrades == []
    assert main(["diff", "lab-2", "lab-3", "-e", str(root)]) == 0
    shown = capsys.readouterr().out
    assert "UPGRADE" in shown and "cluster lab: Kubernetes 1.33 → 1.34 (phase lab-3)" in shown


def test_an_in_place_version_edit_is_refused(tmp_path: Path) -> None:
    root = _grow_tiny(tmp_path)
    phase = yaml.safe_load((root / "phases" / "lab-1.yaml").read_text())
    phase["phase"]["clusters"][0]["kubernetes_version"] = "1.34"
    (root / "phases" / "lab-1.yaml").write_text(yaml.safe_dump(phase, sort_keys=False))
    for old, new in zip(_dicts(TINY), _dicts(root), strict=True):  # the same phase, before and after the edit
        d = diff_plans(old, new)
        (v,) = [v for v in d.violations if v.kind == "clusters"]
        assert v.name == "lab" and "from '1.33' to '1.34' without a declared upgrade" in v.what
        assert "declare `upgrades:" in v.what
    # a declared upgrade in a later phase does not excuse editing the commissioned version
    grown = _grow_tiny(tmp_path / "grown", UPGRADE_PHASE)
    edited = _grow_tiny(tmp_path / "edited", {**UPGRADE_PHASE, "upgrades": []})
    phase["phase"]["clusters"][0]["kubernetes_version"] = "1.34"
    (edited / "phases" / "lab-1.yaml").write_text(yaml.safe_dump(phase, sort_keys=False))
    d = diff_plans(_dicts(grown)[-1], _dicts(edited)[-1])
    assert [v.name for v in d.violations if v.kind == "clusters"] == ["lab"]


def test_the_api_has_a_virtual_ip_of_its_own() -> None:
    from kasbah.planning.hostnet import records

    env = load_environment(CAMPUS)
    plan = plan_campus(env.campus, env.name)[-1]
    inband = {n.inband_ip for n in plan.nodes}
    vips = [c.api_vip for c in plan.clusters]
    assert all(vips) and len(set(vips)) == len(vips) and not inband & set(vips)
    by_name = {r.name: r for r in records(plan)}
    racks = {r.name: r for r in plan.racks}
    nodes = {n.name: n for n in plan.nodes}
    for c in plan.clusters:
        assert by_name[c.api_host].address == c.api_vip  # one name, one address: the VIP
        first = racks[nodes[c.control_plane[0]].rack]
        assert ipaddress.ip_address(c.api_vip) in ipaddress.ip_network(first.inband_cidr)
    assert len({c.api_vrrp_id for c in plan.clusters}) == len(plan.clusters)


def test_a_format_3_plan_still_compares() -> None:
    old, new = _dicts(TINY)[:2]
    legacy = copy.deepcopy(old)
    legacy["format"] = 3
    legacy.pop("upgrades")
    for c in legacy["clusters"]:
        for key in ("api_vip", "api_vrrp_id", "commissioned_version"):
            c.pop(key)
    d = diff_plans(legacy, new)
    assert d.stable, [str(v) for v in d.violations]
