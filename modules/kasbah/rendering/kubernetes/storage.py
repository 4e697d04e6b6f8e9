"""storage.yaml: one StorageClass a storage pool of the campus (site.storage), labelled with its jurisdiction.

Tenants' volumes come from these classes only, and only from the classes of their jurisdictions (the volumes
admission policy, admission.py). `reclaimPolicy: Delete`: a volume's data goes with its claim, so the data step
of an offboarding (its namespaces deleted) deletes the tenant's volumes too.
"""

from __future__ import annotations

from kasbah.planning import labels as lb
from kasbah.planning.tenancy import ClusterView
from kasbah.rendering.kubernetes.objects import Obj, metadata

JURISDICTION = f"{lb.DOMAIN}/jurisdiction"


def storage_classes(view: ClusterView) -> list[Obj]:
    out: list[Obj] = []
    for sc in view.plan.storage_classes:
        meta = metadata(sc.name)
        meta["labels"] = {**meta.get("labels", {}), JURISDICTION: sc.jurisdiction, lb.POOL: sc.pool}
        out.append(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": meta,
                "provisioner": sc.provisioner,
                "parameters": dict(sc.parameters),
                "reclaimPolicy": "Delete",
                "allowVolumeExpansion": True,
                "volumeBindingMode": "WaitForFirstConsumer",
            }
        )
    return out


def tenant_classes(view: ClusterView) -> dict[str, list[str]]:
    """Each tenant of the cluster: the storage classes in its jurisdictions."""
    return {
        t.name: [sc.name for sc in view.plan.storage_classes if sc.jurisdiction in t.jurisdictions]
        for t in view.tenants
    }
