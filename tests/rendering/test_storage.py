"""Storage pools as StorageClasses, and the admission policy that keeps tenants' volumes in their jurisdictions
(its CEL evaluated with cel-python, as the API server evaluates it)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import celpy

from kasbah.planning import labels as lb
from kasbah.planning.tenancy import cluster_view
from kasbah.rendering.kubernetes.admission import VOLUMES, admission
from kasbah.rendering.kubernetes.storage import JURISDICTION, storage_classes
from tests.conftest import CAMPUS, TINY, planned


def test_every_storage_pool_is_a_class_of_every_cluster_in_the_campus_jurisdiction() -> None:
    plan = planned(CAMPUS)[0]
    pools = [p.name for p in plan.pools if p.purpose == "storage"]
    assert pools and [sc.pool for sc in plan.storage_classes] == pools
    for c in plan.clusters:
        classes = storage_classes(cluster_view(plan, c))
        assert [o["metadata"]["name"] for o in classes] == pools
        for o in classes:
            assert o["metadata"]["labels"][JURISDICTION] == plan.jurisdiction == "ma"
            assert o["parameters"] == {"pool": o["metadata"]["name"]}  # `{pool}` filled in
            # the claim's data goes with it: an offboarding's data step deletes the tenant's volumes
            assert o["reclaimPolicy"] == "Delete"
    assert planned(TINY)[0].storage_classes == ()  # the lab declares no site.storage and has no storage pool


def _refused(policy: dict[str, Any], claim: dict[str, Any], tenant: str) -> list[str]:
    env = celpy.Environment()
    activation: dict[str, Any] = {
        "object": celpy.json_to_cel(claim),
        "namespaceObject": celpy.json_to_cel({"metadata": {"name": f"tenant-{tenant}", "labels": {lb.TENANT: tenant}}}),
    }
    variables: dict[Any, Any] = {}
    for v in policy["spec"]["variables"]:
        activation["variables"] = celpy.celtypes.MapType(variables)
        variables[celpy.celtypes.StringType(v["name"])] = env.program(env.compile(v["expression"])).evaluate(activation)
    activation["variables"] = celpy.celtypes.MapType(variables)
    out = []
    for check in policy["spec"]["validations"]:
        result = env.program(env.compile(check["expression"])).evaluate(activation)
        if isinstance(result, celpy.CELEvalError) or not bool(result):
            out.append(check["message"])
    return out


def _claim(storage_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Ti"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}, "spec": spec}


def test_a_tenants_volume_comes_from_a_class_of_its_jurisdictions_only() -> None:
    plan = planned(CAMPUS)[0]
    # one pool's class in the EU (as a second site's pool would be): the ministry (ma) may not use it
    eu = replace(plan.storage_classes[1], jurisdiction="eu")
    plan = replace(plan, storage_classes=(plan.storage_classes[0], eu, *plan.storage_classes[2:]))
    cloud = next(c for c in plan.clusters if c.name == "cloud-1")
    policy = next(
        o
        for o in admission(cluster_view(plan, cloud))
        if o["kind"] == "ValidatingAdmissionPolicy" and o["metadata"]["name"] == VOLUMES
    )
    ma, other = plan.storage_classes[0].name, eu.name
    message = "a tenant's volume names a storage class of its jurisdictions"
    assert _refused(policy, _claim(ma), "ministry-digital") == []
    assert _refused(policy, _claim(other), "ministry-digital") == [message]
    assert _refused(policy, _claim(None), "ministry-digital") == [message]  # a default class could lie anywhere
    assert _refused(policy, _claim(other), "atlas-bank") == []  # its data may be in the EU
    assert _refused(policy, _claim(ma), "a-tenant-the-plan-does-not-know") == [message]
