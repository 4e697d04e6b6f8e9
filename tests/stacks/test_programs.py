"""Every stack of every shipped phase under Pulumi's mocks: the graph, key properties, outputs."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from kasbah.planning.halls import hall_group
from kasbah.planning.labels import TENANT
from kasbah.planning.platform import BOOTSTRAP, GITOPS
from kasbah.planning.tenancy import cluster_view
from kasbah.rendering.phase import render_plans
from kasbah.verification.verify import cluster_manifests
from tests.conftest import CAMPUS, TINY, planned
from tests.stacks.conftest import ENVIRONMENTS, every_stack, hall_groups, run_of

RECORD = "pulumi-python:dynamic/ledger:Record"
NODE_GROUP = "pulumi-python:dynamic/nodes:NodeGroup"
STACKS = every_stack()
SITES = [s for s in STACKS if s[2] is None]
CLUSTERS = [s for s in STACKS if s[2]]


def ids(stacks: list[tuple[str, str, str | None]]) -> list[str]:
    return [f"{e}-{p}-{c or 'site'}" for e, p, c in stacks]


def plan_of(env: str, phase: str):  # type: ignore[no-untyped-def]
    return next(p for p in planned(ENVIRONMENTS[env]) if p.phase == phase)


def test_every_shipped_phase_has_a_site_stack_and_one_per_cluster() -> None:
    assert {(e, p) for e, p, c in STACKS if c is None} == {
        (e, p.phase) for e, d in (("campus", CAMPUS), ("tiny", TINY)) for p in planned(d)
    }
    campus_4 = [c for e, p, c in STACKS if e == "campus" and p == "phase-4" and c]
    assert len(campus_4) == len(plan_of("campus", "phase-4").clusters) == 14


@pytest.mark.parametrize(("env", "phase", "name"), SITES, ids=ids(SITES))
def test_site_graph(env: str, phase: str, name: None) -> None:
    run, plan = run_of(env, phase, name), plan_of(env, phase)
    counts = run.counts()
    records = run.of_type(RECORD)
    by_kind: dict[str, int] = {}
    for r in records:
        by_kind[r.inputs["kind"]] = by_kind.get(r.inputs["kind"], 0) + 1
    # every hall and rack of hall group 0, a record of every other hall group (their halls are their own stacks'),
    # every fabric and cluster block of the phase, and the site (no retirements shipped)
    mine = {h.name for h in plan.halls if hall_group(h.index) == 0}
    expected = {
        "site": 1,
        "hall": len(mine),
        "rack": sum(r.hall in mine for r in plan.racks),
        "fabric": len(plan.fabrics),
        "cluster": len(plan.clusters),
    }
    others = hall_groups(env, phase)
    assert by_kind == {**expected, **({"group": len(others)} if others else {})}
    assert counts["kasbah:site:DataHall"] == len(mine)
    service = [p for p in plan.pools if p.cluster is None]
    assert counts["kasbah:site:ServicePool"] == len(service)
    assert counts[NODE_GROUP] == sum(p.racks for p in service)
    # parents: racks and halls under their DataHall, node groups under their pool
    for r in records:
        expected = "kasbah:site:DataHall" if r.inputs["kind"] in ("hall", "rack") else "pulumi:pulumi:Stack"
        assert r.parent_type == expected, r.urn
    assert {g.parent_type for g in run.of_type(NODE_GROUP)} == {"kasbah:site:ServicePool"}
    # physical records are protected; nothing else in the site stack is
    assert run.protected == {r.urn for r in records}
    # stack outputs people and other stacks read
    out = run.outputs
    assert out["phase"] == phase and out["environment"] == env
    assert out["capacity"]["gpus"] == plan.gpus and out["capacity"]["nodes"] == len(plan.nodes)
    assert out["capacity"]["budget_mw"] == round(plan.power.budget_kw / 1000, 3)
    assert set(out["clusters"]) == {c.name for c in plan.clusters}
    assert out["inventory"].endswith(f"rendered/{env}/{phase}/inventory")
    assert set(out["halls"]) == mine
    assert set(out["hall_groups"]) == {f"hall-group-{g}" for g in others}
    in_groups = sum(g["racks"] for g in out["hall_groups"].values())
    assert sum(h["racks"] for h in out["halls"].values()) + in_groups == len(plan.racks)


def _rack_nodes(plan) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[str]] = {}
    for n in plan.nodes:
        out.setdefault(n.rack, []).append(n.name)
    return out


@pytest.mark.parametrize(("env", "phase", "name"), CLUSTERS, ids=ids(CLUSTERS))
def test_cluster_graph(env: str, phase: str, name: str) -> None:
    run, plan = run_of(env, phase, name), plan_of(env, phase)
    c = next(c for c in plan.clusters if c.name == name)
    view = cluster_view(plan, c)
    counts = run.counts()
    pools = [p for p in plan.pools if p.cluster == name]
    assert counts["kasbah:cluster:KubernetesCluster"] == 1
    assert counts["kasbah:cluster:GpuNodePool"] == len(pools)
    assert counts["pulumi:providers:kubernetes"] == 1
    # one node group a rack, naming exactly the rack's hosts; never a resource per node
    groups = run.of_type(NODE_GROUP)
    racks = _rack_nodes(plan)
    assert len(groups) == sum(p.racks for p in pools)
    for g in groups:
        assert g.inputs["hosts"] == sorted(racks[g.inputs["rack"]])
        assert g.parent_type == "kasbah:cluster:GpuNodePool"
    assert len(run.resources) < 1000
    # the platform's releases with the charts the environment pins, in the Plan
    releases = {r.inputs["name"]: r.inputs for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    planned_releases = {r.name: r for r in plan.releases if r.cluster == name}
    assert set(releases) == set(planned_releases)
    assert {"cilium", "kueue", "gpu-operator", "network-operator"} <= set(releases)
    for r in planned_releases.values():
        assert (releases[r.name]["chart"], releases[r.name]["version"]) == (r.chart, r.version)
    assert releases["gpu-operator"]["values"]["driver"] == {"enabled": False}
    # no tenant object: tenants' namespaces, quotas and queues are the GitOps controller's
    assert not [
        r for r in run.of_type("kubernetes:core/v1:Namespace") if TENANT in r.inputs["metadata"].get("labels", {})
    ]
    assert not run.of_type("kubernetes:kueue.x-k8s.io/v1beta1:ClusterQueue")
    # namespaces hold workloads: protected
    assert {r.urn for r in run.of_type("kubernetes:core/v1:Namespace")} <= run.protected
    out = run.outputs
    assert out["phase"] == phase and out["cluster"] == name
    assert out["capacity"]["gpus"] == c.gpus
    assert set(out["tenants"]) == {t.name for t in view.tenants}
    assert out["gitops"]["path"] == c.gitops_path
    assert run.secret_outputs == {"kubeconfig"}


def _identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    api = str(obj["apiVersion"])
    meta = obj["metadata"]
    return (api.split("/")[0] if "/" in api else "", obj["kind"], meta.get("namespace") or "", meta["name"])


@pytest.mark.parametrize(("env", "phase", "name"), CLUSTERS, ids=ids(CLUSTERS))
def test_every_object_has_exactly_one_owner(env: str, phase: str, name: str) -> None:
    """The stack applies the bootstrap's objects, the GitOps controller the tree's: together all, never one twice.

    Read from what each applier really gets: the stack's registered Kubernetes resources (under
    Pulumi's mocks) and the objects of the rendered tree's clusters/<name>/ kustomization (what
    the GitOps controller syncs from the published branch). No object a Helm release creates is in either.
    """
    run, plan = run_of(env, phase, name), plan_of(env, phase)
    rendered = render_plans(list(planned(ENVIRONMENTS[env]))[: _index(env, phase) + 1], env)
    files = dict(rendered.files)
    stack = [
        r.public_inputs
        for r in run.resources.values()
        if r.type.startswith("kubernetes:") and not r.type.startswith(("kubernetes:helm.sh/", "pulumi:providers:"))
    ]
    findings: list[Any] = []
    gitops = [o for _, o in cluster_manifests(files, name, findings, GITOPS)]
    bootstrap = [o for _, o in cluster_manifests(files, name, findings, BOOTSTRAP)]
    assert not findings
    stack_ids = [_identity(o) for o in stack]
    gitops_ids = [_identity(o) for o in gitops]
    assert len(set(stack_ids)) == len(stack_ids) and len(set(gitops_ids)) == len(gitops_ids)
    assert not set(stack_ids) & set(gitops_ids)  # nothing applied by two owners
    # the stack applies exactly the bootstrap part, as rendered
    assert sorted(stack_ids) == sorted(_identity(o) for o in bootstrap)
    for o in stack:
        assert o["metadata"]["annotations"]["kasbah.io/owner"] == BOOTSTRAP
    for o in gitops:
        assert o["metadata"]["annotations"]["kasbah.io/owner"] == GITOPS
    created = {("" if "/" not in a else a.split("/")[0], k, "", n) for r in plan.releases for a, k, n in r.creates}
    assert created and not created & (set(stack_ids) | set(gitops_ids))
    # every namespace of the Plan is applied, by the owner the Plan names
    by_owner = {BOOTSTRAP: set(stack_ids), GITOPS: set(gitops_ids)}
    for ns in (n for n in plan.namespaces if n.cluster == name):
        assert ("", "Namespace", "", ns.name) in by_owner[ns.owner], ns.name


def _index(env: str, phase: str) -> int:
    return [p.phase for p in planned(ENVIRONMENTS[env])].index(phase)


def test_labels_and_taints_reach_the_node_groups() -> None:
    """A pool's labels and taints are in its racks' configuration digest: change one, only that pool moves."""
    from dataclasses import replace
    from pathlib import Path

    from kasbah.components.nodes import NodeConfigs
    from kasbah.runners.ansible import playbooks_dir

    plan = plan_of("tiny", "lab-2")
    before = NodeConfigs.of(plan, playbooks_dir())
    pool = next(p for p in plan.pools if p.tenant)
    other = replace(plan, pools=tuple(replace(p, tenant=None) if p is pool else p for p in plan.pools))
    after = NodeConfigs.of(other, playbooks_dir())
    moved = {r for r in before.digests if before.digests[r] != after.digests[r]}
    assert moved == {r.name for r in plan.racks if r.pool == pool.name and r.name in before.digests}
    assert isinstance(playbooks_dir(), Path)


@pytest.mark.parametrize(("env", "phase", "name"), STACKS, ids=ids(STACKS))
def test_node_groups_roll_in_waves(env: str, phase: str, name: str | None) -> None:
    """Each pool's node groups are chained wave after wave: the engine runs wave k+1 only after every group of wave k.

    Pulumi's engine does not start a resource's step until the resources it depends on succeeded,
    and stops scheduling at the first failure (without --continue-on-error): a failing rack stops
    its pool's rollout there and leaves the later waves untouched.
    """
    run, plan = run_of(env, phase, name), plan_of(env, phase)
    by_rack = {g.inputs["rack"]: g for g in run.of_type(NODE_GROUP)}
    pools = [p for p in plan.pools if p.cluster == name]
    assert {g.inputs["pool"] for g in by_rack.values()} == {p.name for p in pools}
    units = {r.name: r.scalable_unit for r in plan.racks}
    for pool in pools:
        waves = [w for w in plan.waves if w.pool == pool.name]
        assert [w.index for w in waves] == list(range(len(waves)))
        racks = [r.name for r in plan.racks if r.pool == pool.name and r.nodes]
        assert sorted(r for w in waves for r in w.racks) == sorted(racks)  # every rack once
        for w in waves:
            assert 1 <= len(w.racks) <= pool.rollout_racks
            # striped: a wave takes one rack of a scalable unit while the pool has units to spread over
            if pool.rollout_racks <= len(pool.scalable_units):
                assert len({units[r] for r in w.racks}) == len(w.racks), w
            for r in w.racks:
                assert by_rack[r].inputs["wave"] == w.index
        assert all(not by_rack[r].dependencies for r in waves[0].racks)
        for before, after in pairwise(waves):
            wanted = {by_rack[r].urn for r in before.racks}
            for r in after.racks:
                assert by_rack[r].dependencies == wanted, (pool.name, after.index, r)
    # a management pool that hosts a control plane rolls one rack at a time
    for c in plan.clusters:
        seats = {n.pool for n in plan.nodes if n.name in c.control_plane}
        assert all(p.rollout_racks == 1 for p in plan.pools if p.name in seats)
