"""Every stack of every shipped phase under Pulumi's mocks: the graph, key properties, outputs."""

from __future__ import annotations

import pytest

from kasbah.components.cluster import is_default_deny
from kasbah.planning.labels import TENANT
from kasbah.planning.tenancy import cluster_view, tenant_namespace
from tests.conftest import CAMPUS, TINY, planned
from tests.stacks.conftest import ENVIRONMENTS, every_stack, run_of

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
    # every hall, rack, fabric and cluster block of the phase, and the site (no retirements shipped)
    assert by_kind == {
        "site": 1,
        "hall": len(plan.halls),
        "rack": len(plan.racks),
        "fabric": len(plan.fabrics),
        "cluster": len(plan.clusters),
    }
    assert counts["kasbah:site:DataHall"] == len(plan.halls)
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
    assert sum(h["racks"] for h in out["halls"].values()) == len(plan.racks)


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
    assert counts.get("kasbah:cluster:Tenant", 0) == len(view.tenants)
    assert counts["kasbah:cluster:ZeroTrustPolicy"] == 1
    assert counts["pulumi:providers:kubernetes"] == 1
    # one node group a rack, naming exactly the rack's hosts; never a resource per node
    groups = run.of_type(NODE_GROUP)
    racks = _rack_nodes(plan)
    assert len(groups) == sum(p.racks for p in pools)
    for g in groups:
        assert g.inputs["hosts"] == sorted(racks[g.inputs["rack"]])
        assert g.parent_type == "kasbah:cluster:GpuNodePool"
    assert len(run.resources) < 1000
    # operators from the rendered values, pinned
    releases = {r.inputs["name"]: r.inputs for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    assert {"cilium", "kueue", "gpu-operator", "network-operator"} <= set(releases)
    assert all(r["version"] for r in releases.values())
    assert releases["gpu-operator"]["values"]["driver"] == {"enabled": False}
    # default-deny in every tenant namespace, under the zero-trust component
    denies = {
        r.inputs["metadata"]["namespace"]: r
        for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if is_default_deny(r.inputs)
    }
    tenant_ns = [
        r.inputs["metadata"]["name"]
        for r in run.of_type("kubernetes:core/v1:Namespace")
        if TENANT in r.inputs["metadata"].get("labels", {})
    ]
    assert sorted(tenant_ns) == sorted(tenant_namespace(t.name) for t in view.tenants)
    for ns in tenant_ns:
        assert ns in denies and denies[ns].parent_type == "kasbah:cluster:ZeroTrustPolicy"
    # quotas: each tenant's ClusterQueue holds its GPUs in this cluster
    for q in run.of_type("kubernetes:kueue.x-k8s.io/v1beta1:ClusterQueue"):
        tenant = q.inputs["metadata"]["name"].removeprefix("tenant-")
        nominal = sum(
            res["nominalQuota"]
            for group in q.inputs["spec"]["resourceGroups"]
            for flavor in group["flavors"]
            for res in flavor["resources"]
        )
        assert nominal == view.tenant_gpus(tenant)
        assert q.parent_type == "kasbah:cluster:Tenant"
    # namespaces hold tenants' data: protected
    assert {r.urn for r in run.of_type("kubernetes:core/v1:Namespace")} <= run.protected
    out = run.outputs
    assert out["phase"] == phase and out["cluster"] == name
    assert out["capacity"]["gpus"] == c.gpus
    assert set(out["tenants"]) == {t.name for t in view.tenants}
    assert run.secret_outputs == {"kubeconfig"}


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
