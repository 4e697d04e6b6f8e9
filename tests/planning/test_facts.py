"""Facts the Plan decides once and every projection reads: tenancy per cluster, tenants' egress, the API endpoint, ports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kasbah.planning import ports
from kasbah.planning.tenancy import PLATFORM_NAMESPACES, SYSTEM_NAMESPACE, cluster_view, tenant_namespace
from kasbah.rendering.inventory import host_vars
from kasbah.rendering.kubernetes import helm_values
from kasbah.rendering.phase import render_plans
from tests.conftest import CAMPUS, TINY, planned

PHASES = [(env, p.phase) for env in (TINY, CAMPUS) for p in planned(env)]


def _plan(env: Path, phase: str):  # type: ignore[no-untyped-def]
    return next(p for p in planned(env) if p.phase == phase)


@pytest.mark.parametrize(("env", "phase"), PHASES, ids=[f"{e.name}-{p}" for e, p in PHASES])
def test_a_cluster_holds_the_tenants_its_grants_give_gpus_and_their_namespaces(env: Path, phase: str) -> None:
    plan = _plan(env, phase)
    for c in plan.clusters:
        granted = {g.tenant for g in plan.grants if g.cluster == c.name and g.gpus}
        assert set(c.tenants) == granted
        # in the Plan's tenant order (commissioning order), so manifests never reorder
        assert list(c.tenants) == [t.name for t in plan.tenants if t.name in granted]
        mine = [ns for ns in plan.namespaces if ns.cluster == c.name]
        assert plan.gitops is not None
        assert [ns.name for ns in mine] == [
            SYSTEM_NAMESPACE,
            *PLATFORM_NAMESPACES,
            plan.gitops.namespace,
            *(tenant_namespace(t) for t in c.tenants),
        ]
        # the stack applies the system and platform namespaces (the releases install into them), GitOps the tenants'
        assert {ns.name for ns in mine if ns.owner == "gitops"} == {tenant_namespace(t) for t in c.tenants}
        assert {ns.name: ns.tenant for ns in mine if ns.zone == "tenant"} == {tenant_namespace(t): t for t in c.tenants}
        # a dedicated pool is its tenant's grant, and lends nothing
        for p in plan.pools:
            if p.tenant and p.cluster == c.name and p.gpus:
                (g,) = [g for g in plan.grants if g.pool == p.name]
                assert (g.tenant, g.gpus, g.dedicated) == (p.tenant, p.gpus, True)


@pytest.mark.parametrize(("env", "phase"), PHASES, ids=[f"{e.name}-{p}" for e, p in PHASES])
def test_a_tenant_reaches_exactly_its_jurisdictions_destinations(env: Path, phase: str) -> None:
    plan = _plan(env, phase)
    for t in plan.tenants:
        allowed = [e for e in plan.egress if e.jurisdiction in t.jurisdictions]
        assert plan.tenant_egress(t) == tuple(allowed)
        assert t.egress == tuple(e.key for e in allowed)


@pytest.mark.parametrize(("env", "phase"), PHASES, ids=[f"{e.name}-{p}" for e, p in PHASES])
def test_the_api_endpoint_is_one_fact_every_projection_reads(env: Path, phase: str) -> None:
    """kubeadm, the inventory, Cilium's values, the host firewall and the policies all read Cluster.api_*."""
    plan = _plan(env, phase)
    files = render_plans([p for p in planned(env) if p.phase_index <= plan.phase_index], env.name).files
    hv = host_vars(plan)
    api_flow = next(f for f in plan.host_flows if f.name == "kube-apiserver")
    assert api_flow.ports == (str(ports.KUBE_APISERVER),)
    for c in plan.clusters:
        assert c.api_endpoint == f"{c.api_host}:{c.api_port}" and c.api_port == ports.KUBE_APISERVER
        init = list(yaml.safe_load_all(files[f"bootstrap/{c.name}/kubeadm-init.yaml"]))
        assert init[1]["controlPlaneEndpoint"] == c.api_endpoint
        assert {v["kasbah_api_endpoint"] for v in hv.values() if v.get("kasbah_cluster") == c.name} == {c.api_endpoint}
        cilium = helm_values(cluster_view(plan, c))["cilium"]
        assert (cilium["k8sServiceHost"], cilium["k8sServicePort"]) == (c.api_host, c.api_port)
        policies = files[f"clusters/{c.name}/network-policies/kueue-system.yaml"].decode()
        assert f"port: {c.api_port}" in policies
