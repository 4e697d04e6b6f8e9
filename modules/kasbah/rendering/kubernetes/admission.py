"""admission.yaml: the ValidatingAdmissionPolicy that keeps tenants' pods where the Plan puts them (CEL, in-tree).

One policy for every tenant namespace (those labelled `kasbah.io/tenant`, a label tenants cannot
edit: namespaces are cluster-scoped), with the tenants' pools as a CEL map, so it grows with
tenants, not pods. A tenant's pod:

- tolerates no taint but the GPU taint, the API server's default not-ready/unreachable ones, and
  its own tenant's dedicated-pool taint (never another tenant's, never all taints);
- selects nodes only by labels a kubelet cannot set on itself: not `kasbah.io/pool` or
  `kasbah.io/tenant`, and `node-restriction.kubernetes.io/pool` only for a pool the tenant may
  use (its own, the shared ones: what Kueue's flavours give it), in nodeSelector and in required
  node affinity alike;
- names no node (`nodeName` bypasses the scheduler and the taints) and no other scheduler;
- runs images from the site's registry only (containers, init and ephemeral containers);
- takes no `system-` priority class (it would preempt the platform).

A second policy keeps tenants' volumes where their jurisdictions allow: a claim names one of the storage classes
of its tenant's jurisdictions (storage.yaml), never none.

Pod Security `restricted` (on every tenant namespace) covers host namespaces, privilege and
volumes; this covers placement, which it does not. The CEL is evaluated in the tests on pods
that must pass and pods that must be refused (tests/rendering/test_admission.py).
"""

from __future__ import annotations

from kasbah.planning import labels as lb
from kasbah.planning.tenancy import ClusterView
from kasbah.rendering.kubernetes.objects import Obj, metadata
from kasbah.rendering.kubernetes.storage import tenant_classes

POLICY = "kasbah-tenant-pods"
VOLUMES = "kasbah-tenant-volumes"
ADMISSION = "admissionregistration.k8s.io/v1"
# taints the API server adds tolerations for (DefaultTolerationSeconds): a pod rides out a brief node outage
DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
SELF_SET = (lb.POOL, lb.TENANT)  # labels a kubelet registers itself: never a placement decision


def _list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f"'{i}'" for i in items) + "]"


def _has_chain(path: str) -> str:
    """`has(a.b) && has(a.b.c) ...` for a dotted path under `object`."""
    parts = path.split(".")
    return " && ".join(f"has({'.'.join(parts[: i + 1])})" for i in range(1, len(parts)))


def admission(view: ClusterView) -> list[Obj]:
    registry = view.plan.registry
    pools = {t.name: [p.name for p in view.tenant_pools(t.name)] for t in view.tenants}
    pool_map = "{" + ", ".join(f"'{t}': {_list(ps)}" for t, ps in sorted(pools.items())) + "}"
    allowed_keys = _list((lb.GPU_TAINT.key, *DEFAULT_TOLERATIONS))
    self_set = _list(SELF_SET)
    affinity = "object.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    validations = [
        {
            "expression": (
                "!has(object.spec.tolerations) || object.spec.tolerations.all(t, has(t.key) && ("
                f"t.key in {allowed_keys} || (t.key == '{lb.TENANT}' && has(t.value) && t.value == variables.tenant"
                " && (!has(t.operator) || t.operator == 'Equal'))))"
            ),
            "message": "a tenant's pod tolerates only the GPU taint and its own dedicated pools' taint",
            "reason": "Forbidden",
        },
        {
            "expression": f"!has(object.spec.nodeSelector) || object.spec.nodeSelector.all(k, !(k in {self_set}))",
            "message": f"nodes are selected by {lb.RESTRICTED_POOL}, never by labels a node sets on itself",
            "reason": "Forbidden",
        },
        {
            "expression": (
                f"!has(object.spec.nodeSelector) || !('{lb.RESTRICTED_POOL}' in object.spec.nodeSelector) || "
                f"object.spec.nodeSelector['{lb.RESTRICTED_POOL}'] in variables.pools"
            ),
            "message": "the pod selects a pool that is not its tenant's (its own or a shared one)",
            "reason": "Forbidden",
        },
        {
            "expression": (
                f"!({_has_chain(affinity)}) || {affinity}.nodeSelectorTerms.all(term, "
                "!has(term.matchExpressions) || term.matchExpressions.all(e, "
                f"!(e.key in {self_set}) && (e.key != '{lb.RESTRICTED_POOL}' || "
                "(e.operator == 'In' && e.values.all(v, v in variables.pools)))))"
            ),
            "message": "the pod's node affinity reaches a pool that is not its tenant's, or a label a node sets itself",
            "reason": "Forbidden",
        },
        {
            "expression": "request.operation != 'CREATE' || !has(object.spec.nodeName)",
            "message": "a tenant's pod names no node (that would skip the scheduler and the pools' taints)",
            "reason": "Forbidden",
        },
        {
            "expression": "!has(object.spec.schedulerName) || object.spec.schedulerName == 'default-scheduler'",
            "message": "a tenant's pod is placed by the default scheduler",
            "reason": "Forbidden",
        },
        {
            "expression": "!has(object.spec.priorityClassName) || !object.spec.priorityClassName.startsWith('system-')",
            "message": "the system priority classes are the platform's",
            "reason": "Forbidden",
        },
    ]
    if registry:
        validations.append(
            {
                "expression": f"variables.containers.all(c, c.image.startsWith('{registry}/'))",
                "message": f"a tenant's images come from the site's registry ({registry}/...)",
                "reason": "Forbidden",
            }
        )
    policy = _tenant_policy(
        POLICY,
        ["pods", "pods/ephemeralcontainers"],
        "placement",
        pool_map,
        "pools",
        [
            {
                "name": "containers",
                "expression": (
                    "object.spec.containers"
                    " + (has(object.spec.initContainers) ? object.spec.initContainers : [])"
                    " + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : [])"
                ),
            }
        ],
        validations,
    )
    out = [policy, _binding(POLICY)]
    if view.plan.storage_classes:
        out += volumes(view)
    return out


def _tenant_policy(
    name: str,
    resources: list[str],
    table: str,
    table_map: str,
    mine: str,
    extra: list[Obj],
    validations: list[Obj],
) -> Obj:
    """A Deny policy on tenant namespaces' `resources` (core v1, create and update): `variables.tenant` from the
    namespace's label, the per-tenant `table` (a CEL map literal) and the tenant's own entry of it as `mine`."""
    return {
        "apiVersion": ADMISSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": metadata(name),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "namespaceSelector": {"matchExpressions": [{"key": lb.TENANT, "operator": "Exists"}]},
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": resources,
                    }
                ],
            },
            "variables": [
                {"name": "tenant", "expression": f"namespaceObject.metadata.labels['{lb.TENANT}']"},
                {"name": table, "expression": table_map},
                {
                    "name": mine,
                    "expression": f"variables.tenant in variables.{table} ? variables.{table}[variables.tenant] : []",
                },
                *extra,
            ],
            "validations": validations,
        },
    }


def _binding(name: str) -> Obj:
    return {
        "apiVersion": ADMISSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": metadata(name),
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }


def volumes(view: ClusterView) -> list[Obj]:
    """A tenant's volume claims name a storage class of its jurisdictions (storage.yaml): never none (a default
    class could lie anywhere) and never another's."""
    classes = tenant_classes(view)
    class_map = "{" + ", ".join(f"'{t}': {_list(cs)}" for t, cs in sorted(classes.items())) + "}"
    policy = _tenant_policy(
        VOLUMES,
        ["persistentvolumeclaims"],
        "residency",
        class_map,
        "classes",
        [],
        [
            {
                "expression": "has(object.spec.storageClassName) && object.spec.storageClassName in variables.classes",
                "message": "a tenant's volume names a storage class of its jurisdictions",
                "reason": "Forbidden",
            }
        ],
    )
    return [policy, _binding(VOLUMES)]
