"""Tenancy changes between construction phases (tenancy.yaml): onboarding, quota changes and offboarding in order
(access, workloads, data), with the stability rules of phases, shown by `kasbah diff` and proven by `kasbah verify`."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from kasbah.config import ConfigError, load_environment
from kasbah.planning import diff_plans, plan_environment, plan_to_dict
from kasbah.planning.model import Plan
from kasbah.rendering.phase import render_plans
from kasbah.verification.verify import verify_files
from tests.conftest import TINY, run_kasbah

SHIPPED = yaml.safe_load((TINY / "tenancy.yaml").read_text())["changes"]
OFFBOARD = [
    {
        "name": f"water-agency-{step}",
        "after": "lab-2",
        "offboard": [{"tenant": "water-agency", "step": step, "reason": "contract ended 2026-11-30"}],
    }
    for step in ("access", "workloads", "data")
]


def _env(tmp_path: Path, changes: list[dict[str, Any]]) -> Path:
    env = tmp_path / "tiny"
    shutil.copytree(TINY, env)
    (env / "tenancy.yaml").write_text("---\n" + yaml.safe_dump({"changes": changes}, sort_keys=False))
    return env


def _plan(env: Path, target: str) -> Plan:
    return plan_environment(load_environment(env), target)[-1]


def _objects(files: dict[str, bytes], path: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(files[path]) if d]


def test_a_tenant_onboarded_without_a_phase_is_in_the_phase_plan_and_its_tree() -> None:
    built, now = _plan(TINY, "lab-2@built"), _plan(TINY, "lab-2")
    assert (built.phase, built.revision, now.phase, now.revision) == ("lab-2", "", "lab-2", "water-agency-onboarding")
    tenants = {t.name: t for t in now.tenants}
    assert "water-agency" not in {t.name for t in built.tenants}
    assert (tenants["water-agency"].since, tenants["water-agency"].reseller) == ("water-agency-onboarding", "telecom")
    assert tenants["operator"].gpu_quota == 1  # lowered by the same change
    grants = {(g.tenant, g.pool): g.gpus for g in now.grants if not g.dedicated}
    assert grants == {("ministry", "gpu-a"): 2, ("operator", "gpu-a"): 1, ("water-agency", "gpu-a"): 1}
    # the operator keeps where its workloads run; nothing renumbered: the other tenants' grants are as built
    assert {k: v for k, v in grants.items() if k[0] == "ministry"} == {
        (g.tenant, g.pool): g.gpus for g in built.grants if g.tenant == "ministry" and not g.dedicated
    }
    assert "tenant-water-agency" in {ns.name for ns in now.namespaces if ns.cluster == "lab"}
    d = diff_plans(plan_to_dict(built), plan_to_dict(now))
    assert d.stable, d.violations
    assert [(t["action"], t["tenant"]) for t in d.tenancy] == [("onboard", "water-agency"), ("quota", "operator")]


def test_offboarding_removes_access_then_workloads_then_data_each_recorded(tmp_path: Path) -> None:
    env = _env(tmp_path, SHIPPED + OFFBOARD)
    plans = {c: _plan(env, c) for c in ("water-agency-onboarding", *(o["name"] for o in OFFBOARD))}
    trees = {c: dict(render_plans(list(plan_environment(load_environment(env), c)), "tiny").files) for c in plans}
    for c, plan in plans.items():
        result = verify_files(trees[c], plan, None)
        assert result.ok, (c, result.findings[:3])

    def bindings(files: dict[str, bytes]) -> set[tuple[str, str]]:
        return {
            (o["metadata"]["namespace"], o["metadata"]["name"])
            for o in _objects(files, "clusters/lab/rbac.yaml")
            if o["kind"] == "RoleBinding"
        }

    def issuer_tenants(plan: Plan) -> tuple[str, ...]:
        return next(i.tenants for i in plan.issuers if i.name == "telecom-id")

    def queue(files: dict[str, bytes]) -> dict[str, Any]:
        return next(
            o["spec"]
            for o in _objects(files, "clusters/lab/kueue/kueue.yaml")
            if o["kind"] == "ClusterQueue" and o["metadata"]["name"] == "tenant-water-agency"
        )

    def quota(files: dict[str, bytes]) -> dict[str, str]:
        return next(
            o["spec"]["hard"]
            for o in _objects(files, "clusters/lab/quotas.yaml")
            if o["kind"] == "ResourceQuota" and o["metadata"]["namespace"] == "tenant-water-agency"
        )

    onboarded, access, workloads, data = (trees[c] for c in plans)
    assert ("tenant-water-agency", "tenant-developers") in bindings(onboarded)
    assert "water-agency" in issuer_tenants(plans["water-agency-onboarding"])
    # 1. access: no binding of it or its reseller, its issuer no longer maps its tokens; its workloads still run
    assert not {b for b in bindings(access) if b[0] == "tenant-water-agency"}
    assert "water-agency" not in issuer_tenants(plans["water-agency-access"])
    assert b"water-agency" not in access["bootstrap/lab/authentication.yaml"]
    assert "stopPolicy" not in queue(access) and "pods" not in quota(access)
    # 2. workloads: its queue holds and drains (Kueue evicts what runs), no pod of it starts again
    assert queue(workloads)["stopPolicy"] == "HoldAndDrain" and quota(workloads)["pods"] == "0"
    # 3. data: its namespace leaves the tree (the GitOps controller prunes it, and what it holds); its name is retired
    assert b"tenant-water-agency" not in b"".join(data[p] for p in data if p.startswith("clusters/"))
    gone = plans["water-agency-data"]
    assert "water-agency" not in {t.name for t in gone.tenants}
    assert ("tenant", "water-agency", "lab-2", "contract ended 2026-11-30") in {
        (r.kind, r.name, r.phase, r.reason) for r in gone.retired
    }
    assert [(r.change, r.action) for r in gone.tenancy if r.tenant == "water-agency"] == [
        ("water-agency-onboarding", "onboard"),
        ("water-agency-access", "offboard-access"),
        ("water-agency-workloads", "offboard-workloads"),
        ("water-agency-data", "offboard-data"),
    ]
    # each step is a stable change from the one before; the whole offboarding too
    steps = list(plans.values())
    for a, b in itertools.pairwise(steps):
        assert diff_plans(plan_to_dict(a), plan_to_dict(b)).stable
    d = diff_plans(plan_to_dict(steps[0]), plan_to_dict(gone))
    assert d.stable and [r["name"] for r in d.retired] == ["water-agency"]


def test_diff_and_plan_take_tenancy_changes_as_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(tmp_path, SHIPPED + OFFBOARD[:1])
    code, out, err = run_kasbah(capsys, "diff", "-e", str(env), "water-agency-onboarding", "lab-2")
    assert code == 0, err
    assert "offboard-access water-agency (water-agency-access, after lab-2): contract ended 2026-11-30" in out
    code, out, err = run_kasbah(capsys, "plan", "-e", str(env), "lab-2@built", "--json")
    assert code == 0 and '"revision": ""' in out
    code, _, err = run_kasbah(capsys, "plan", "-e", str(env), "nothing-like-it")
    assert code == 2 and "no phase `nothing-like-it`" in err and "tenancy changes: water-agency-onboarding" in err


def test_a_retired_tenants_name_is_never_reused(tmp_path: Path) -> None:
    again = {
        "name": "water-agency-again",
        "after": "lab-2",
        "onboard": [dict(SHIPPED[0]["onboard"][0], gpu_quota=0)],
    }
    env = _env(tmp_path, SHIPPED + OFFBOARD + [again])
    with pytest.raises(ConfigError) as exc:
        plan_environment(load_environment(env))
    assert (
        "tenant `water-agency` was already commissioned in water-agency-onboarding; names are never reused"
        in exc.value.render()
    )
