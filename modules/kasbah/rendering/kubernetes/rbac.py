"""rbac.yaml: the tenants' developer role and bindings; tenants run workloads but never edit policy, quota or RBAC."""

from __future__ import annotations

from kasbah.planning.identity import ADMIN_GROUP, ADMIN_OWNER, RESELLER_ROLE, TENANT_ROLES, tenant_group
from kasbah.planning.tenancy import ClusterView, tenant_namespace
from kasbah.rendering.kubernetes.objects import Obj, metadata

DEVELOPER_ROLE = "kasbah:tenant-developer"

_DEVELOPER_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("",),
        ("pods", "pods/log", "pods/exec", "services", "configmaps", "secrets", "persistentvolumeclaims"),
        ("get", "list", "watch", "create", "update", "patch", "delete"),
    ),
    (("",), ("events", "serviceaccounts", "resourcequotas", "limitranges"), ("get", "list", "watch")),
    (
        ("apps",),
        ("deployments", "statefulsets", "replicasets"),
        ("get", "list", "watch", "create", "update", "patch", "delete"),
    ),
    (("batch",), ("jobs", "cronjobs"), ("get", "list", "watch", "create", "update", "patch", "delete")),
    (("jobset.x-k8s.io",), ("jobsets",), ("get", "list", "watch", "create", "update", "patch", "delete")),
    (
        ("resource.k8s.io",),
        ("resourceclaims", "resourceclaimtemplates"),
        ("get", "list", "watch", "create", "update", "patch", "delete"),
    ),
    (("kueue.x-k8s.io",), ("workloads", "localqueues"), ("get", "list", "watch")),
    (("resource.nvidia.com",), ("computedomains",), ("get", "list", "watch")),
    (("networking.k8s.io",), ("networkpolicies",), ("get", "list", "watch")),
)


def rbac(view: ClusterView) -> list[Obj]:
    """Tenants run workloads but never edit policy, quota or RBAC: those stay with the platform."""
    role: Obj = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(DEVELOPER_ROLE),
        "rules": [{"apiGroups": list(g), "resources": list(r), "verbs": list(v)} for g, r, v in _DEVELOPER_RULES],
    }
    # every group is one an issuer mints only for its owner (planning/identity.py)
    admins = tenant_group(ADMIN_OWNER, ADMIN_GROUP)
    out = [role, _cluster_binding("kasbah:platform-admins", "cluster-admin", admins)]
    developers, viewers = TENANT_ROLES
    for t in view.tenants:
        if not t.has_access:
            continue  # offboarding: its users (and its reseller's) reach none of its namespaces any more
        ns = tenant_namespace(t.name)
        out.append(_binding("tenant-developers", ns, "ClusterRole", DEVELOPER_ROLE, tenant_group(t.name, developers)))
        out.append(_binding("tenant-viewers", ns, "ClusterRole", "view", tenant_group(t.name, viewers)))
        if t.reseller:
            # the white-label reseller supports its customers: it sees, it does not change
            group = tenant_group(t.reseller, RESELLER_ROLE)
            out.append(_binding(f"reseller-{t.reseller}", ns, "ClusterRole", "view", group))
    return out


def _subject(group: str) -> Obj:
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": group}


def _binding(name: str, namespace: str, kind: str, role: str, group: str) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(name, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [_subject(group)],
    }


def _cluster_binding(name: str, role: str, group: str) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [_subject(group)],
    }
