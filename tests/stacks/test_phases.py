"""Phase N+1 keeps every resource of phase N: same URN, nothing replaced, inputs changed only where the Plan grows on purpose."""

from __future__ import annotations

from itertools import pairwise

import pytest

from kasbah.components.ledger import LedgerProvider
from kasbah.components.nodes import UNDIFFED, NodeGroupProvider
from tests.stacks.conftest import ENVIRONMENTS, clusters, phases, run_of

RECORD = "pulumi-python:dynamic/ledger:Record"
NODE_GROUP = "pulumi-python:dynamic/nodes:NodeGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"
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
PAIRS = [(env, a, b) for env in ENVIRONMENTS for a, b in pairwise(phases(env))]


@pytest.mark.parametrize(("env", "before", "after"), PAIRS, ids=[f"{e}-{a}-to-{b}" for e, a, b in PAIRS])
def test_next_phase_replaces_nothing(env: str, before: str, after: str) -> None:
    updated: dict[str, list[str]] = {}
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
                # the racks of phase N are not reconfigured by phase N+1 (their configuration did not change)
                assert not NodeGroupProvider().diff("id", was.inputs, now.inputs).changes, urn
            elif was.type == RELEASE:
                for key in ("name", "chart", "namespace", "repositoryOpts"):
                    assert was.inputs.get(key) == now.inputs.get(key), f"{urn}: {key}"
            changed = sorted(
                k
                for k in was.public_inputs.keys() | now.public_inputs.keys()
                if was.public_inputs.get(k) != now.public_inputs.get(k)
                and not (was.type == NODE_GROUP and k in UNDIFFED)
                and not (was.type == RECORD and k == "phase" and was.inputs["kind"] == "site")
            )
            unexpected = [k for k in changed if (was.type, k) not in GROWS]
            assert not unexpected, f"{urn}: {unexpected} changed from {before} to {after}"
            if changed:
                updated.setdefault(was.type, []).append(urn)
    # updates are few: the site record and the objects that follow tenants' quotas and pool membership
    assert len(updated.get(RECORD, [])) <= 1
    assert sum(len(v) for v in updated.values()) <= 12
