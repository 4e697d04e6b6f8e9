"""metering/<cluster>.rules.yml: Prometheus recording rules of each tenant's use of a cluster, for the reseller.

From the metrics the platform exports: Kueue (a ClusterQueue a tenant, named `tenant_namespace(tenant)`, a
ResourceFlavor a pool, with `metrics.enableClusterQueueResources`), kube-state-metrics (namespaces' tenant label
and nodes' pool label, through `--metric-labels-allowlist`, see KSM_ALLOWLIST) and NVIDIA's DCGM exporter (its
pod mapping adds `namespace` and `Hostname`). The rules of a cluster run in that cluster's own Prometheus: its
source series carry no cluster label, so they are not filtered on one. Every series a rule records carries
`tenant`, `pool` where it has one, and `cluster`; `kasbah usage` integrates them over a month (`USAGE_QUERIES`),
from the store where the clusters' recorded series meet (federation, remote write) or from each Prometheus.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from kasbah.planning import labels as lb
from kasbah.planning.model import Plan
from kasbah.planning.tenancy import tenant_namespace

INTERVAL = "1m"
GPU = "nvidia.com/gpu"

# the recorded series
KUEUE_GPUS = "kasbah:tenant_pool_gpus:kueue_admitted"  # GPUs of admitted workloads
KUEUE_QUOTA = "kasbah:tenant_pool_gpus:kueue_nominal_quota"  # GPUs the tenant's queue may use without borrowing
ADMITTED = "kasbah:tenant_admitted_workloads:rate5m"  # workloads admitted a second
REQUESTED = "kasbah:tenant_pool_gpus:running_requests"  # GPUs requested by the tenant's running pods
UTILISATION = "kasbah:tenant_pool_gpu_utilisation:avg"  # DCGM_FI_DEV_GPU_UTIL averaged over the tenant's GPUs
RECORDED = (KUEUE_GPUS, KUEUE_QUOTA, ADMITTED, REQUESTED, UTILISATION)


def ksm_label(label: str) -> str:
    """The label kube-state-metrics gives a Kubernetes label (`label_` and every other character an underscore)."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


# kube-state-metrics must export these Kubernetes labels (its --metric-labels-allowlist)
KSM_ALLOWLIST = f"namespaces=[{lb.TENANT}],nodes=[{lb.RESTRICTED_POOL}]"
QUEUE_PREFIX = tenant_namespace("")  # a tenant's ClusterQueue is its namespace's name


def _tenant_of_queue(expr: str) -> str:
    return f'label_replace({expr}, "tenant", "$1", "cluster_queue", "{QUEUE_PREFIX}(.+)")'


def _pool_of_flavor(expr: str) -> str:
    return f'label_replace({expr}, "pool", "$1", "flavor", "(.+)")'


NAMESPACE_TENANT = (
    f'label_replace(kube_namespace_labels{{{ksm_label(lb.TENANT)}!=""}}, "tenant", "$1", "{ksm_label(lb.TENANT)}", '
    '"(.+)")'
)
NODE_POOL = (
    f'label_replace(kube_node_labels{{{ksm_label(lb.RESTRICTED_POOL)}!=""}}, "pool", "$1", '
    f'"{ksm_label(lb.RESTRICTED_POOL)}", "(.+)")'
)


def rules(plan: Plan, cluster: str) -> dict[str, Any]:
    """The rule file of one cluster."""
    queues = f'cluster_queue=~"{QUEUE_PREFIX}.+"'
    kueue = {
        KUEUE_GPUS: f'kueue_cluster_queue_resource_usage{{resource="{GPU}", {queues}}}',
        KUEUE_QUOTA: f'kueue_cluster_queue_nominal_quota{{resource="{GPU}", {queues}}}',
    }
    out: list[dict[str, Any]] = [
        {"record": name, "expr": f"sum by (tenant, pool) (\n  {_pool_of_flavor(_tenant_of_queue(series))}\n)"}
        for name, series in kueue.items()
    ]
    out.append(
        {
            "record": ADMITTED,
            "expr": f"sum by (tenant) (\n  {_tenant_of_queue(f'rate(kueue_admitted_workloads_total{{{queues}}}[5m])')}\n)",
        }
    )
    # times the Running phase (1 or 0) rather than filtering on it: a pod's series stays, at 0, while it is not running
    running = (
        'kube_pod_container_resource_requests{resource="nvidia_com_gpu"}'
        ' * on (namespace, pod) group_left () kube_pod_status_phase{phase="Running"}'
    )
    out.append(
        {
            "record": REQUESTED,
            "expr": f"sum by (tenant, pool) (\n  ({running})\n"
            f"  * on (namespace) group_left (tenant) {NAMESPACE_TENANT}\n"
            f"  * on (node) group_left (pool) {NODE_POOL}\n)",
        }
    )
    host_pool = f'label_replace({NODE_POOL}, "Hostname", "$1", "node", "(.+)")'
    out.append(
        {
            "record": UTILISATION,
            "expr": "avg by (tenant, pool) (\n"
            '  DCGM_FI_DEV_GPU_UTIL{namespace!=""}\n'
            f"  * on (namespace) group_left (tenant) {NAMESPACE_TENANT}\n"
            f"  * on (Hostname) group_left (pool) {host_pool}\n)",
        }
    )
    for r in out:
        r["labels"] = {"cluster": cluster}
    return {"groups": [{"name": f"kasbah-metering-{cluster}", "interval": INTERVAL, "rules": out}]}


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, as one writes them by hand."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def render_metering(plan: Plan) -> dict[str, bytes]:
    head = (
        "# Recording rules of tenants' use of the cluster (kasbah render): load them into the cluster's own Prometheus,\n"
        "# which scrapes its Kueue, kube-state-metrics and DCGM exporter (its series carry no cluster label; what the\n"
        "# rules record carries `cluster`). kube-state-metrics exports the labels they read\n"
        "# with --metric-labels-allowlist=" + KSM_ALLOWLIST + "\n"
        "# `kasbah usage` reads the recorded series.\n"
    )
    return {
        f"{c.name}.rules.yml": (
            "---\n" + head + yaml.dump(rules(plan, c.name), Dumper=_Dumper, sort_keys=False, width=1000)
        ).encode()
        for c in plan.clusters
    }


# What `kasbah usage` asks for a period of `{range}` ending at the query's time. The rules record a sample an
# INTERVAL (1m), so the samples themselves are integrated (no subquery: its lookback would count a series for
# minutes after it ended): GPU-hours = the sum of the minute samples / 60.
SAMPLES_AN_HOUR = 60
USAGE_QUERIES = {
    "gpu_hours": f"sum by (cluster, tenant, pool) (sum_over_time({KUEUE_GPUS}[{{range}}])) / {SAMPLES_AN_HOUR}",
    "gpu_hours_running": f"sum by (cluster, tenant, pool) (sum_over_time({REQUESTED}[{{range}}])) / {SAMPLES_AN_HOUR}",
    "quota_gpu_hours": f"sum by (cluster, tenant, pool) (sum_over_time({KUEUE_QUOTA}[{{range}}])) / {SAMPLES_AN_HOUR}",
    "utilisation": f"avg by (cluster, tenant, pool) (avg_over_time({UTILISATION}[{{range}}]))",
    # a rate a second, sampled a minute: x 60 seconds
    "admitted_workloads": f"sum by (cluster, tenant) (sum_over_time({ADMITTED}[{{range}}])) * 60",
}
