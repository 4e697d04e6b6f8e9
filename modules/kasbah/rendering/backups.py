"""backups/<cluster>.yaml: what the site's backup tool backs up of each tenant, and where (site.backups.workloads).

One schedule a tenant of the cluster: its namespaces, the target (a directory of the campus's storage, in a
jurisdiction the tenant allows: the planner chose the first such target), how often and how many are kept. The
site's tool (Velero with one BackupStorageLocation a target, restic, its storage's snapshots) runs it; a tenant
offboarded to its data step leaves the file, and its last backups age out after `keep` schedules.
"""

from __future__ import annotations

import yaml

from kasbah.planning.model import Plan
from kasbah.planning.tenancy import tenant_namespace


def schedules(plan: Plan, cluster: str) -> list[dict[str, object]]:
    present = set(next(c.tenants for c in plan.clusters if c.name == cluster))
    return [
        {
            "tenant": b.tenant,
            "namespaces": [tenant_namespace(b.tenant)],
            "target": b.target,
            "jurisdiction": b.jurisdiction,
            "directory": b.directory(cluster),
            "every_minutes": b.every_minutes,
            "keep": b.keep,
        }
        for b in plan.workload_backups
        if b.tenant in present
    ]


def render_backups(plan: Plan) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for c in plan.clusters:
        rows = schedules(plan, c.name)
        if rows:
            head = (
                f"---\n# Rendered by kasbah from site.backups.workloads: every tenant of cluster {c.name} backed up to a "
                "target in its jurisdictions.\n"
            )
            out[f"{c.name}.yaml"] = (head + yaml.safe_dump({"schedules": rows}, sort_keys=False)).encode()
    return out
