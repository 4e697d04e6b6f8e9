"""quotas.yaml: each tenant namespace's GPU quota (no node ports, no load balancers) and container defaults."""

from __future__ import annotations

from kasbah.planning.tenancy import ClusterView, tenant_namespace
from kasbah.rendering.kubernetes.objects import GPU, Obj, metadata


def quotas(view: ClusterView) -> list[Obj]:
    out: list[Obj] = []
    for t in view.tenants:
        ns = tenant_namespace(t.name)
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": metadata("tenant-quota", ns),
                "spec": {
                    "hard": {
                        f"requests.{GPU}": str(view.tenant_gpus(t.name)),
                        # no node ports or load balancers: tenants are reached through the platform's ingress
                        "services.nodeports": "0",
                        "services.loadbalancers": "0",
                        # offboarding drained its workloads: no pod of it starts again
                        **({} if t.runs_workloads else {"pods": "0"}),
                    }
                },
            }
        )
        out.append(
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": metadata("container-defaults", ns),
                "spec": {
                    "limits": [
                        {
                            "type": "Container",
                            "default": {"cpu": "1", "memory": "2Gi"},
                            "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
                        }
                    ]
                },
            }
        )
    return out
