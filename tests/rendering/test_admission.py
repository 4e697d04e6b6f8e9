"""The tenant pods' admission policy, evaluated: its CEL (cel-python) on pods that must pass and pods it must refuse.

The policy is read from the rendered tree of lab-2 (the ministry has a dedicated pool, gpu-gov; the
operator only the shared gpu-a) and evaluated as the API server does: the variables in order, then
every validation; a pod is admitted when all hold.
"""

from __future__ import annotations

from typing import Any

import celpy
import pytest
import yaml

from kasbah.planning import labels as lb
from kasbah.rendering.phase import render_plans
from tests.conftest import TINY, planned

REGISTRY = "registry.kasbah-lab.kasbah.internal"


def _policy() -> dict[str, Any]:
    plans = planned(TINY)
    files = render_plans(list(plans[:2]), TINY.name).files
    docs = [d for d in yaml.safe_load_all(files["clusters/lab/admission.yaml"]) if d]
    return next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicy")


POLICY = _policy()


def refusals(pod: dict[str, Any], tenant: str, operation: str = "CREATE") -> list[str]:
    """The messages of the validations `pod` fails in `tenant`'s namespace (empty: admitted)."""
    env = celpy.Environment()
    activation: dict[str, Any] = {
        "object": celpy.json_to_cel(pod),
        "namespaceObject": celpy.json_to_cel({"metadata": {"name": f"tenant-{tenant}", "labels": {lb.TENANT: tenant}}}),
        "request": celpy.json_to_cel({"operation": operation}),
    }
    variables: dict[str, Any] = {}
    for v in POLICY["spec"]["variables"]:
        activation["variables"] = celpy.json_to_cel({}) if not variables else celpy.celtypes.MapType(variables)
        variables[celpy.celtypes.StringType(v["name"])] = env.program(env.compile(v["expression"])).evaluate(activation)
    activation["variables"] = celpy.celtypes.MapType(variables)
    out = []
    for check in POLICY["spec"]["validations"]:
        result = env.program(env.compile(check["expression"])).evaluate(activation)
        if isinstance(result, celpy.CELEvalError) or not bool(result):
            out.append(check["message"])
    return out


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "train", "image": f"{REGISTRY}/ministry/trainer:1.0"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": base}


GPU = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
OWN = {"key": lb.TENANT, "operator": "Equal", "value": "ministry", "effect": "NoSchedule"}
NOT_READY = {
    "key": "node.kubernetes.io/not-ready",
    "operator": "Exists",
    "effect": "NoExecute",
    "tolerationSeconds": 300,
}


def _affinity(key: str, values: list[str], operator: str = "In") -> dict[str, Any]:
    term = {"matchExpressions": [{"key": key, "operator": operator, "values": values}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


ADMITTED: dict[str, tuple[str, dict[str, Any]]] = {
    "plain": ("ministry", pod()),
    # what Kueue makes of a workload admitted to the dedicated flavour: its node labels and tolerations
    "kueue-dedicated": (
        "ministry",
        pod(nodeSelector={lb.RESTRICTED_POOL: "gpu-gov"}, tolerations=[GPU, OWN, NOT_READY]),
    ),
    "kueue-shared": ("ministry", pod(nodeSelector={lb.RESTRICTED_POOL: "gpu-a"}, tolerations=[GPU])),
    "affinity-own": ("ministry", pod(affinity=_affinity(lb.RESTRICTED_POOL, ["gpu-gov", "gpu-a"]))),
    "topology": ("operator", pod(nodeSelector={lb.RACK: "lab1-r01p03", lb.RESTRICTED_POOL: "gpu-a"})),
    "init-from-registry": (
        "ministry",
        pod(initContainers=[{"name": "fetch", "image": f"{REGISTRY}/tools/fetch:2"}]),
    ),
    "scheduled-update": ("ministry", pod(nodeName="lab1-r01p04-n01")),  # the binding sets it; an update keeps it
}

REFUSED: dict[str, tuple[str, dict[str, Any], str]] = {
    "other-tenants-taint": (
        "operator",
        pod(tolerations=[{**OWN}]),
        "tolerates only the GPU taint",
    ),
    "every-taint": ("ministry", pod(tolerations=[{"operator": "Exists"}]), "tolerates only the GPU taint"),
    "tenant-taint-wildcard": (
        "ministry",
        pod(tolerations=[{"key": lb.TENANT, "operator": "Exists"}]),
        "tolerates only the GPU taint",
    ),
    "burn-in-taint": ("ministry", pod(tolerations=[{"key": lb.BURN_IN, "operator": "Exists"}]), "tolerates only"),
    "cordoned-nodes": (
        "ministry",
        pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]),
        "tolerates only",
    ),
    "other-tenants-pool": ("operator", pod(nodeSelector={lb.RESTRICTED_POOL: "gpu-gov"}), "selects a pool"),
    "self-set-label": ("ministry", pod(nodeSelector={lb.POOL: "gpu-gov"}), "labels a node sets on itself"),
    "affinity-other-pool": ("operator", pod(affinity=_affinity(lb.RESTRICTED_POOL, ["gpu-a", "gpu-gov"])), "affinity"),
    "affinity-not-in": ("operator", pod(affinity=_affinity(lb.RESTRICTED_POOL, ["gpu-a"], "NotIn")), "affinity"),
    "affinity-self-set": ("ministry", pod(affinity=_affinity(lb.TENANT, ["ministry"])), "affinity"),
    "node-name": ("ministry", pod(nodeName="lab1-r01p04-n01"), "names no node"),
    "own-scheduler": ("ministry", pod(schedulerName="greedy"), "default scheduler"),
    "system-priority": ("ministry", pod(priorityClassName="system-node-critical"), "system priority"),
    "public-image": ("ministry", pod(containers=[{"name": "x", "image": "docker.io/library/ubuntu"}]), "registry"),
    "lookalike-registry": (
        "ministry",
        pod(containers=[{"name": "x", "image": f"{REGISTRY}.evil.example/x"}]),
        "registry",
    ),
    "init-public-image": ("ministry", pod(initContainers=[{"name": "x", "image": "ghcr.io/x/y"}]), "registry"),
    "ephemeral-public-image": (
        "ministry",
        pod(ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
        "registry",
    ),
}


@pytest.mark.parametrize("case", sorted(ADMITTED))
def test_legitimate_pods_are_admitted(case: str) -> None:
    tenant, p = ADMITTED[case]
    operation = "UPDATE" if case == "scheduled-update" else "CREATE"
    assert refusals(p, tenant, operation) == []


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_each_seeded_cross_tenant_placement_is_refused(case: str) -> None:
    tenant, p, why = REFUSED[case]
    messages = refusals(p, tenant)
    assert len(messages) == 1 and why in messages[0], messages


def test_a_tenant_the_policy_does_not_know_may_select_no_pool() -> None:
    assert refusals(pod(nodeSelector={lb.RESTRICTED_POOL: "gpu-a"}), "stranger") != []


def test_kueue_flavours_select_on_the_restricted_pool_label() -> None:
    plans = planned(TINY)
    files = render_plans(list(plans[:2]), TINY.name).files
    flavours = [
        d for d in yaml.safe_load_all(files["clusters/lab/kueue/kueue.yaml"]) if d and d["kind"] == "ResourceFlavor"
    ]
    assert flavours and all(set(f["spec"]["nodeLabels"]) == {lb.RESTRICTED_POOL} for f in flavours)


def test_the_policy_grows_with_tenants_not_pods() -> None:
    spec = POLICY["spec"]
    placement = next(v for v in spec["variables"] if v["name"] == "placement")["expression"]
    assert placement == "{'ministry': ['gpu-gov', 'gpu-a'], 'operator': ['gpu-a'], 'water-agency': ['gpu-a']}"
    assert spec["failurePolicy"] == "Fail"  # an error in the policy refuses the pod, never admits it
