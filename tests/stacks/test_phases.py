"""Phase N+1 keeps every resource of phase N: same URN, nothing replaced, inputs changed only where the Plan grows on purpose."""

from __future__ import annotations

from itertools import pairwise

import pytest

from kasbah.components import controlplane
from kasbah.components.ledger import LedgerProvider
from kasbah.components.nodes import UNDIFFED, NodeGroupProvider
from tests.stacks.conftest import ENVIRONMENTS, clusters, hall_groups, halls, phases, planned, run_of

RECORD = "pulumi-python:dynamic/ledger:Record"
NODE_GROUP = "pulumi-python:dynamic/nodes:NodeGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
# Inputs a later phase may update in place, and why.
GROWS = {
    (RECORD, "budget_kw"): "each phase raises the facility budget",
    (RECORD, "supply_kw"): "renewable supply grows with the phases",
    (RECORD, "decommissions"): "a phase may declare decommissions",
    (RELEASE, "values"): "a pool joins the cluster: operator tolerations and affinity",
    # the sync object follows the phase: the controller reads <environment>/<next phase>/clusters/<name>
    ("kubernetes:argoproj.io/v1alpha1:Application", "spec"): "the cluster's tree moves to the next phase's path",
    (
        "kubernetes:kustomize.toolkit.fluxcd.io/v1:Kustomization",
        "spec",
    ): "the cluster's tree moves to the next phase's path",
}


# A hall group's record in the site stack and in the group's stack follows the group as it grows.
GROUP_GROWS = {"halls", "racks", "it_load_kw", "blocks", "decommissions"}


def _without_versions(metadata: dict) -> dict:
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if not k.endswith("-version")}
    return {**metadata, "labels": labels}


PAIRS = [(env, a, b) for env in ENVIRONMENTS for a, b in pairwise(phases(env))]


@pytest.mark.parametrize(("env", "before", "after"), PAIRS, ids=[f"{e}-{a}-to-{b}" for e, a, b in PAIRS])
def test_next_phase_replaces_nothing(env: str, before: str, after: str) -> None:
    updated: dict[str, list[str]] = {}
    # a declared upgrade reaches its clusters' racks and control planes (and only those): rolled, never replaced
    plan = next(p for p in planned(ENVIRONMENTS[env]) if p.phase == after)
    upgraded = {u.cluster for u in plan.upgrades if u.phase == after}
    cluster_of = {n.name: n.cluster for n in plan.nodes}
    rolled: list[str] = []
    for name in [None, *clusters(env, before)]:
        old, new = run_of(env, before, name), run_of(env, after, name)
        assert set(old.resources) <= set(new.resources), f"{name or 'site'}: resources of {before} missing in {after}"
        assert old.protected <= new.protected
        for urn, was in old.resources.items():
            now = new.resources[urn]
            if was.type == RECORD:
                diff = LedgerProvider().diff("id", was.inputs, now.inputs)
                assert not diff.replaces, f"{urn}: would replace on {diff.replaces}"
            elif was.type == NODE_GROUP:
                # the racks of phase N are not reconfigured by phase N+1 (their configuration did not change),
                # but for the racks of an upgraded cluster, which roll (an update, never a replacement)
                diff = NodeGroupProvider().diff("id", was.inputs, now.inputs)
                upgrading = bool({cluster_of.get(h) for h in was.inputs["hosts"]} & upgraded)
                assert diff.changes == upgrading and not diff.replaces, urn
                if upgrading:
                    rolled.append(urn)
                    continue
            elif was.type == controlplane.TOKEN:
                # a control plane is read again only when it moves (a declared upgrade), not because the phase did
                upgrading = was.inputs["cluster"] in upgraded
                diff = controlplane.ControlPlaneProvider().diff("id", was.inputs, now.inputs)
                assert diff.changes == upgrading and not diff.replaces, urn
                if upgrading:
                    assert was.inputs["version"] != now.inputs["version"], urn
                    rolled.append(urn)
                    continue
            elif was.type == RELEASE:
                for key in ("name", "chart", "namespace", "repositoryOpts"):
                    assert was.inputs.get(key) == now.inputs.get(key), f"{urn}: {key}"
            changed = sorted(
                k
                for k in was.public_inputs.keys() | now.public_inputs.keys()
                if was.public_inputs.get(k) != now.public_inputs.get(k)
                and not (was.type == NODE_GROUP and k in UNDIFFED)
                and not (was.type == controlplane.TOKEN and k in controlplane.UNDIFFED)
                and not (was.type == RECORD and k == "phase" and was.inputs["kind"] == "site")
                and not (was.type == RECORD and k in GROUP_GROWS and was.inputs["kind"] == "group")
            )
            if name in upgraded and was.type == NAMESPACE and changed == ["metadata"]:
                # the pod-security labels name the cluster's minor ("…-version: v1.35"): they follow an upgrade
                assert _without_versions(was.public_inputs["metadata"]) == _without_versions(
                    now.public_inputs["metadata"]
                ), urn
                rolled.append(urn)
                continue
            unexpected = [k for k in changed if (was.type, k) not in GROWS]
            assert not unexpected, f"{urn}: {unexpected} changed from {before} to {after}"
            if changed:
                updated.setdefault(was.type, []).append(urn)
    # an upgrade rolls every rack of its clusters and their control planes
    if upgraded:
        assert {r.split("::")[-1].split("-control-plane")[0] for r in rolled if "ControlPlane" in r} == upgraded
    # updates are few: the site record and the objects that follow tenants' quotas and pool membership
    assert len(updated.get(RECORD, [])) <= 1
    assert sum(len(v) for v in updated.values()) <= 12


@pytest.mark.parametrize(("env", "before", "after"), PAIRS, ids=[f"{e}-{a}-to-{b}" for e, a, b in PAIRS])
def test_next_phase_keeps_every_hall_stack_resource(env: str, before: str, after: str) -> None:
    """A hall group's stack keeps its halls, racks and record from phase to phase: none replaced, racks unchanged."""
    assert set(hall_groups(env, before)) <= set(hall_groups(env, after))
    for group in hall_groups(env, before):
        old, new = halls(env, before, group), halls(env, after, group)
        assert set(old.resources) <= set(new.resources), f"hall group {group}: resources of {before} missing"
        assert old.protected <= new.protected
        for urn, was in old.resources.items():
            now = new.resources[urn]
            if was.type != RECORD:
                assert was.public_inputs == now.public_inputs, urn
                continue
            diff = LedgerProvider().diff("id", was.inputs, now.inputs)
            assert not diff.replaces, f"{urn}: would replace on {diff.replaces}"
            grows = GROUP_GROWS if was.inputs["kind"] == "group" else set()
            a, b = was.public_inputs, now.public_inputs
            changed = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
            assert changed <= grows, f"{urn}: {sorted(changed - grows)} changed from {before} to {after}"
