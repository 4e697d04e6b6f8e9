"""Where logs and usage series leave the clusters for: the declared sinks only, a tenant's sink its data alone."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kasbah.rendering.endpoints import role_defaults
from kasbah.rendering.metering import RECORDED
from kasbah.rendering.phase import render_plans
from kasbah.rendering.sinks import remote_write, render_sinks, vector
from kasbah.resources import roles
from kasbah.verification.residency import check_residency
from tests.conftest import CAMPUS, TINY, needs, planned


def test_a_tenants_own_log_sink_receives_its_namespaces_only() -> None:
    plan = planned(TINY)[0]
    config = vector(plan, plan.clusters[0])
    assert config["sources"] == {"pods": {"type": "kubernetes_logs"}}
    assert config["sinks"]["lab_logs"]["inputs"] == ["pods"]  # the platform's: every namespace
    soc = config["sinks"]["ministry_soc"]
    assert soc["uri"] == "https://soc.digital.gov.example/ingest" and soc["inputs"] == ["to_ministry_soc"]
    assert config["transforms"]["to_ministry_soc"]["condition"] == (
        'includes(["tenant-ministry"], .kubernetes.pod_namespace)'
    )


def test_usage_series_go_to_the_telemetry_sinks_a_tenants_only_to_its_own() -> None:
    plan = planned(CAMPUS)[0]
    by_cluster = {c.name: remote_write(plan, c)["remote_write"] for c in plan.clusters}
    for entries in by_cluster.values():
        for entry in entries:
            keep = entry["write_relabel_configs"][0]
            assert keep["source_labels"] == ["__name__"] and set(keep["regex"].split("|")) == set(RECORDED)
    cloud = {e["name"]: e for e in by_cluster["cloud-1"]}
    assert cloud["campus-metrics"]["url"] == "https://metrics.kasbah-campus.kasbah.internal/api/v1/write"
    assert len(cloud["campus-metrics"]["write_relabel_configs"]) == 1  # every tenant's series
    billing = cloud["telecom-billing"]["write_relabel_configs"][1]
    assert billing == {"source_labels": ["tenant"], "regex": "ministry-digital|atlas-bank", "action": "keep"}
    # a cluster where none of the billing sink's tenants runs sends it nothing
    assert "telecom-billing" not in {e["name"] for e in by_cluster["train-1"]}


@needs("promtool", installs="Debian's prometheus")
def test_the_remote_write_section_is_a_valid_prometheus_configuration(tmp_path: Path) -> None:
    metering, _ = render_sinks(planned(CAMPUS)[0])
    section = yaml.safe_load(metering["cloud-1.remote-write.yml"])
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({"global": {"scrape_interval": "1m"}, **section}))
    proc = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "config", "prometheus.yml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_tenant_sink_outside_its_tenants_jurisdictions_is_a_residency_finding() -> None:
    plans = planned(TINY)
    files = dict(render_plans(list(plans[:1]), "tiny").files)
    plan = plans[0]
    moved = replace(plan, sinks=tuple(replace(k, jurisdiction="eu") if k.scope == "tenant" else k for k in plan.sinks))
    findings = check_residency(files, moved, role_defaults(roles())).findings
    assert [(w, m) for w, m in findings if "sink ministry-soc" in m] == [
        (
            "logging/lab.vector.yaml: sinks.ministry_soc.uri",
            "https://soc.digital.gov.example/ingest (sink ministry-soc) lies in eu, outside the jurisdictions of "
            "ministry (ma)",
        )
    ]


@pytest.mark.parametrize("env", [TINY, CAMPUS], ids=["tiny", "campus"])
def test_every_sink_a_tenant_names_is_rendered_where_it_runs(env: Path) -> None:
    plan = planned(env)[-1]
    metering, logging = render_sinks(plan)
    text = b"".join([*metering.values(), *logging.values()]).decode()
    for sink in plan.sinks:
        if sink.scope == "platform" or any(set(c.tenants) & set(sink.tenants) for c in plan.clusters):
            assert sink.url in text, sink.name
