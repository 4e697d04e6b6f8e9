"""The policy pack on real programs (no violations) and on seeded violations (each one refused)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import PolicyResource

from kasbah.components import policies as pol
from tests.stacks.conftest import clusters, every_stack, export_state, policy_resources, run_of, validate

STACKS = [s for s in every_stack() if s[1] in ("phase-1", "phase-4", "lab-1", "lab-2")]


def _with(resources: list[PolicyResource], urn: str, **props: Any) -> list[PolicyResource]:
    out = []
    for r in resources:
        if r.urn == urn:
            r = PolicyResource(r.resource_type, {**r.props, **props}, r.urn, r.name, r.opts, None, None, [], {})
        out.append(r)
    return out


def _record(resources: list[PolicyResource], kind: str, name: str | None = None) -> PolicyResource:
    return next(
        r for r in resources
        if r.resource_type == pol.RECORD and r.props["kind"] == kind and (name is None or r.props["name"] == name)
    )  # fmt: skip


@pytest.mark.parametrize(("env", "phase", "name"), STACKS, ids=[f"{e}-{p}-{c or 'site'}" for e, p, c in STACKS])
def test_shipped_stacks_pass_every_policy(env: str, phase: str, name: str | None) -> None:
    resources = policy_resources(run_of(env, phase, name))
    for policy in pol.POLICIES:
        assert validate(policy, resources) in ([], ["<not applicable>"]), policy.name


def test_a_stack_object_the_gitops_controller_owns_is_refused() -> None:
    resources = policy_resources(run_of("tiny", "lab-2", "lab"))
    ns = next(
        r for r in resources
        if r.resource_type == "kubernetes:core/v1:Namespace" and r.props["metadata"]["name"] == "kueue-system"
    )  # fmt: skip
    meta = {**ns.props["metadata"], "annotations": {"kasbah.io/owner": "gitops"}}
    assert validate(pol.one_owner, _with(resources, ns.urn, metadata=meta)) == [
        "Namespace kueue-system says kasbah.io/owner: 'gitops'; a stack applies only what the bootstrap owns "
        "(bootstrap/<cluster>/platform/), the GitOps controller applies the rest; fix: create it from the "
        "rendered platform files, or leave it to GitOps"
    ]
    # an object without the annotation (a hand-made one) is refused the same way
    bare = {k: v for k, v in ns.props["metadata"].items() if k != "annotations"}
    found = validate(pol.one_owner, _with(resources, ns.urn, metadata=bare))
    assert len(found) == 1 and "kasbah.io/owner: None" in found[0]


def test_power_over_budget_and_over_hall_capacity_is_refused() -> None:
    resources = policy_resources(run_of("campus", "phase-1", None))
    site = _record(resources, "site")
    over = _with(resources, site.urn, budget_kw=40_000.0)
    found = validate(pol.power, over)
    assert len(found) == 1 and "exceeds the budget of 40.00 MW" in found[0], found
    rack = _record(resources, "rack")
    hot = _with(resources, rack.urn, power_kw=20_000.0)
    found = validate(pol.power, hot)
    assert any(f.startswith(f"hall {rack.props['hall']}: racks draw") for f in found), found


def test_an_unprotected_record_is_refused() -> None:
    resources = policy_resources(run_of("tiny", "lab-1", None), protect=False)
    found = validate(pol.protected, resources)
    assert len(found) == sum(r.resource_type == pol.RECORD for r in resources) > 0
    assert found[0].endswith("is not protected; fix: create it with kasbah.components.ledger.Record")


def test_renumbering_and_removal_are_refused_against_the_deployed_state(tmp_path: Path) -> None:
    deployed = policy_resources(run_of("campus", "phase-1", None))
    state = export_state(deployed, tmp_path / "state.json")
    nxt = policy_resources(run_of("campus", "phase-2", None))
    # the real next phase is clean against phase 1 as deployed
    assert validate(pol.numbering, nxt, {"deployedState": state}) == []
    rack = next(r for r in nxt if r.resource_type == pol.RECORD and r.props["kind"] == "rack" and r.props.get("pool"))
    renumbered = _with(nxt, rack.urn, inband_cidr="10.250.0.0/26")
    found = validate(pol.numbering, renumbered, {"deployedState": state})
    assert found == [
        f"rack/{rack.props['name']} would be renumbered (inband_cidr: {rack.props['inband_cidr']} -> 10.250.0.0/26); "
        "fix: keep allocations stable; a new allocation is a new record"
    ]
    removed = [r for r in nxt if r.urn != rack.urn]
    found = validate(pol.numbering, removed, {"deployedState": state})
    assert found == [
        f"rack/{rack.props['name']} would be removed from the ledger without a declared decommission; "
        "fix: restore it, or declare the decommission in the phase (and keep its record)"
    ]
    # declared: the site record lists the decommission of the rack's pool
    site = _record(removed, "site")
    declared = _with(removed, site.urn, decommissions=[f"pool/{rack.props['pool']}"])
    assert validate(pol.numbering, declared, {"deployedState": state}) == []


def test_reused_blocks_and_undeclared_retirements_are_refused() -> None:
    resources = policy_resources(run_of("campus", "phase-1", None))
    racks = [
        r for r in resources if r.resource_type == pol.RECORD and r.props["kind"] == "rack" and r.props.get("pool")
    ]
    a, b = racks[0], racks[1]
    found = validate(pol.numbering, _with(resources, b.urn, inband_cidr=a.props["inband_cidr"]))
    assert found == [
        f"rack/{max(a.props['name'], b.props['name'])} reuses {a.props['inband_cidr']} of "
        f"rack/{min(a.props['name'], b.props['name'])}; fix: allocate a new one"
    ]
    gone = _with(resources, a.urn, state="retired", reason="undeclared", retired_in="")
    assert validate(pol.numbering, gone) == [
        f"rack/{a.props['name']} left the Plan without a declared decommission; fix: declare it in the phase"
    ]


def test_an_unreadable_deployed_state_says_how_to_make_one(tmp_path: Path) -> None:
    resources = policy_resources(run_of("tiny", "lab-1", None))
    with pytest.raises(ValueError, match="fix: pulumi stack export --file"):
        validate(pol.numbering, resources, {"deployedState": str(tmp_path / "missing.json")})


def test_cluster_stacks_have_no_ledger_to_check() -> None:
    resources = policy_resources(run_of("tiny", "lab-1", clusters("tiny", "lab-1")[0]))
    assert validate(pol.power, resources) == ["<not applicable>"]
    assert validate(pol.numbering, resources) == ["<not applicable>"]


def _deployed_groups(resources: list[PolicyResource], path: Path, digest: Any = None, drop: str = "") -> str:
    groups = [r for r in resources if r.resource_type == pol.NODE_GROUP and r.props["rack"] != drop]
    out = []
    for r in groups:
        props = dict(r.props)
        props["config_sha256"] = digest(props) if digest else props["config_sha256"]
        out.append({"urn": r.urn, "type": r.resource_type, "inputs": props, "outputs": props})
    path.write_text(json.dumps({"version": 3, "deployment": {"resources": out}}))
    return str(path)


def test_a_role_edit_says_how_many_racks_and_waves_before_it_runs(tmp_path: Path) -> None:
    """What `pulumi preview --policy-pack` prints (advisory) for train-1 of phase 1 against its deployed state."""
    resources = policy_resources(run_of("campus", "phase-1", "train-1"))
    assert validate(pol.rollout, resources) == ["<not applicable>"]  # nothing deployed to compare with
    same = _deployed_groups(resources, tmp_path / "same.json")
    assert validate(pol.rollout, resources, {"deployedState": same}) == []
    # every rack's digest moved (an edit to a role): the whole cluster, wave by wave
    edited = _deployed_groups(resources, tmp_path / "edited.json", digest=lambda p: "0" * 64)
    assert validate(pol.rollout, resources, {"deployedState": edited}) == [
        "224 racks will be reconfigured in 16 waves (train-a: 128 in 16 waves of up to 8, "
        "train-b: 96 in 12 waves of up to 8; pools side by side)"
    ]
    # one rack's variables moved, and a rack the deployed stack does not have yet
    one = next(r.props["rack"] for r in resources if r.resource_type == pol.NODE_GROUP)
    other = next(r.props["rack"] for r in resources if r.resource_type == pol.NODE_GROUP and r.props["rack"] != one)
    mixed = _deployed_groups(
        resources,
        tmp_path / "mixed.json",
        digest=lambda p: "0" * 64 if p["rack"] == one else p["config_sha256"],
        drop=other,
    )
    (found,) = validate(pol.rollout, resources, {"deployedState": mixed})
    assert found.startswith("1 rack will be reconfigured in 1 wave (")
    assert found.endswith("; 1 new rack commissioned and burned in")
