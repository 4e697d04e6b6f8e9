"""namespaces.yaml of both trees: the Plan's namespaces with their zone, Pod Security level and tenant labels."""

from __future__ import annotations

from kasbah.planning import labels as lb
from kasbah.planning import platform
from kasbah.planning.platform import GITOPS
from kasbah.planning.tenancy import TENANT, ClusterView
from kasbah.rendering.kubernetes.objects import Obj, gitops_of, metadata

ZONE = "kasbah.io/zone"


def namespaces(view: ClusterView, owner: str) -> list[Obj]:
    """The Plan's namespaces of the cluster that `owner` applies, with zone, Pod Security level and tenant labels.

    A tenant's namespace carries the controller's keep annotation: the controller never prunes it
    (its workloads and volumes leave by a declared decommission, not by a sync).
    """
    tenants = {t.name: t for t in view.tenants}
    keep = platform.controller_of(gitops_of(view).controller).keep if owner == GITOPS else None
    out = []
    for ns in view.namespaces:
        if ns.owner != owner:
            continue
        extra = {ZONE: ns.zone}
        if ns.zone == TENANT and ns.tenant:
            t = tenants[ns.tenant]
            extra.update({lb.TENANT: t.name, f"{lb.DOMAIN}/tenant-kind": t.kind})
            if t.reseller:
                extra[f"{lb.DOMAIN}/reseller"] = t.reseller
            for j in t.jurisdictions:
                extra[f"jurisdiction.{lb.DOMAIN}/{j}"] = "allowed"
        obj = _namespace(ns.name, ns.pod_security, view.version, extra)
        if keep and ns.zone == TENANT:
            obj["metadata"].setdefault("annotations", {})[keep[0]] = keep[1]
        out.append(obj)
    return out


def _namespace(name: str, level: str, version: str, extra: dict[str, str]) -> Obj:
    meta = metadata(name, wave=-2)
    meta["labels"].update(
        {
            "pod-security.kubernetes.io/enforce": level,
            "pod-security.kubernetes.io/enforce-version": version,
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
            **extra,
        }
    )
    meta["labels"] = dict(sorted(meta["labels"].items()))
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
