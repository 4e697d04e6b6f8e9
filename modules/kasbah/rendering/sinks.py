"""Where logs and telemetry leave each cluster for (site.sinks): the only paths of tenants' data out of a cluster.

- `metering/<cluster>.remote-write.yml`: the `remote_write` section of the cluster's Prometheus. Each telemetry
  sink receives the metering rules' recorded series (`kasbah:*`) only: a platform sink all of them, a tenant's
  sink only the series of the tenants that name it.
- `logging/<cluster>.vector.yaml`: the configuration of the cluster's log collector (Vector, its
  `kubernetes_logs` source on every node): each log sink receives the pods' logs, a platform sink every
  namespace's, a tenant's sink only its tenants' namespaces.

The residency proof (`kasbah verify`) reads the sinks' URLs in these files like every other endpoint: each must be
a declared sink, in a jurisdiction every tenant whose data it receives allows.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from kasbah.planning.model import Cluster, Plan, Sink
from kasbah.planning.tenancy import tenant_namespace
from kasbah.rendering.metering import RECORDED

HEAD = "---\n# Rendered by kasbah from site.sinks: where {what} leave cluster {cluster} for; nothing else leaves.\n"


def _served(sink: Sink, cluster: Cluster) -> tuple[str, ...] | None:
    """The cluster's tenants whose data the sink receives; None: every tenant's (a platform sink)."""
    if sink.scope == "platform":
        return None
    return tuple(t for t in cluster.tenants if t in sink.tenants)


def remote_write(plan: Plan, cluster: Cluster) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    recorded = "|".join(re.escape(name) for name in RECORDED)
    for sink in plan.sinks:
        if sink.kind != "telemetry":
            continue
        served = _served(sink, cluster)
        if served == ():
            continue
        relabel: list[dict[str, Any]] = [{"source_labels": ["__name__"], "regex": recorded, "action": "keep"}]
        if served is not None:
            relabel.append({"source_labels": ["tenant"], "regex": "|".join(served), "action": "keep"})
        out.append({"name": sink.name, "url": sink.url, "write_relabel_configs": relabel})
    return {"remote_write": out}


def vector(plan: Plan, cluster: Cluster) -> dict[str, Any]:
    transforms: dict[str, Any] = {}
    sinks: dict[str, Any] = {}
    for sink in plan.sinks:
        if sink.kind != "logs":
            continue
        served = _served(sink, cluster)
        if served == ():
            continue
        inputs = ["pods"]
        if served is not None:
            route = f"to_{sink.name.replace('-', '_')}"
            namespaces = ", ".join(f'"{tenant_namespace(t)}"' for t in served)
            transforms[route] = {
                "type": "filter",
                "inputs": ["pods"],
                "condition": f"includes([{namespaces}], .kubernetes.pod_namespace)",
            }
            inputs = [route]
        sinks[sink.name.replace("-", "_")] = {
            "type": "http",
            "inputs": inputs,
            "uri": sink.url,
            "encoding": {"codec": "json"},
        }
    return {"sources": {"pods": {"type": "kubernetes_logs"}}, "transforms": transforms, "sinks": sinks}


def render_sinks(plan: Plan) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(metering/ files, logging/ files): one remote-write section and one collector configuration a cluster,
    for the clusters some sink receives data from."""
    metering: dict[str, bytes] = {}
    logging: dict[str, bytes] = {}
    for c in plan.clusters:
        rw = remote_write(plan, c)
        if rw["remote_write"]:
            text = HEAD.format(what="usage series", cluster=c.name) + yaml.safe_dump(rw, sort_keys=False, width=1000)
            metering[f"{c.name}.remote-write.yml"] = text.encode()
        vc = vector(plan, c)
        if vc["sinks"]:
            text = HEAD.format(what="pods' logs", cluster=c.name) + yaml.safe_dump(vc, sort_keys=False, width=1000)
            logging[f"{c.name}.vector.yaml"] = text.encode()
    return metering, logging
