"""The rendered metering rules, run by Prometheus's own rule engine (`promtool test rules`, Debian's prometheus)
on synthetic series of Kueue, kube-state-metrics and the DCGM exporter."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kasbah.rendering.metering import (
    ADMITTED,
    KUEUE_GPUS,
    KUEUE_QUOTA,
    REQUESTED,
    UTILISATION,
    ksm_label,
    render_metering,
)
from tests.conftest import TINY, needs, planned

pytestmark = needs("promtool", installs="Debian's prometheus")

TENANT, POOL = ksm_label("kasbah.io/tenant"), ksm_label("node-restriction.kubernetes.io/pool")


def _promtool(tmp_path: Path, series: list[dict[str, str]], tests: list[dict[str, Any]]) -> str:
    plan = planned(TINY)[0]
    (tmp_path / "lab.rules.yml").write_bytes(render_metering(plan)["lab.rules.yml"])
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["lab.rules.yml"],
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}],
            },
            sort_keys=False,
        )
    )
    proc = subprocess.run(
        [shutil.which("promtool") or "promtool", "test", "rules", "test.yml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _expect(expr: str, at: str, *samples: tuple[dict[str, str], float]) -> dict[str, Any]:
    return {
        "expr": expr,
        "eval_time": at,
        "exp_samples": [
            {"labels": expr + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}", "value": value}
            for labels, value in samples
        ],
    }


def test_kueue_usage_and_quota_are_recorded_by_tenant_and_pool(tmp_path: Path) -> None:
    q = "kueue_cluster_queue_resource_usage"
    n = "kueue_cluster_queue_nominal_quota"
    series = [
        {
            "series": f'{q}{{cluster_queue="tenant-ministry",flavor="gpu-a",resource="nvidia.com/gpu"}}',
            "values": "2x10",
        },
        {
            "series": f'{q}{{cluster_queue="tenant-operator",flavor="gpu-a",resource="nvidia.com/gpu"}}',
            "values": "0x10",
        },
        # not a tenant's queue, and not GPUs: no tenant's usage
        {"series": f'{q}{{cluster_queue="batch",flavor="gpu-a",resource="nvidia.com/gpu"}}', "values": "9x10"},
        {"series": f'{q}{{cluster_queue="tenant-ministry",flavor="gpu-a",resource="cpu"}}', "values": "64x10"},
        {
            "series": f'{n}{{cluster_queue="tenant-ministry",flavor="gpu-a",resource="nvidia.com/gpu"}}',
            "values": "2x10",
        },
    ]
    out = _promtool(
        tmp_path,
        series,
        [
            _expect(
                KUEUE_GPUS,
                "5m",
                ({"cluster": "lab", "tenant": "ministry", "pool": "gpu-a"}, 2),
                ({"cluster": "lab", "tenant": "operator", "pool": "gpu-a"}, 0),
            ),
            _expect(KUEUE_QUOTA, "5m", ({"cluster": "lab", "tenant": "ministry", "pool": "gpu-a"}, 2)),
        ],
    )
    assert "SUCCESS" in out


def test_admitted_workloads_are_a_rate_by_tenant(tmp_path: Path) -> None:
    series = [
        # 6 admissions a minute: 0.1 a second
        {"series": 'kueue_admitted_workloads_total{cluster_queue="tenant-ministry"}', "values": "0+6x20"},
        {"series": 'kueue_admitted_workloads_total{cluster_queue="batch"}', "values": "0+60x20"},
    ]
    _promtool(tmp_path, series, [_expect(ADMITTED, "10m", ({"cluster": "lab", "tenant": "ministry"}, 0.1))])


def test_running_pods_gpu_requests_join_the_namespace_tenant_and_the_node_pool(tmp_path: Path) -> None:
    req = 'kube_pod_container_resource_requests{resource="nvidia_com_gpu",unit="integer"'
    series = [
        {"series": f'{req},namespace="tenant-ministry",pod="train-0",container="c",node="n1"}}', "values": "2x10"},
        {"series": f'{req},namespace="tenant-ministry",pod="train-1",container="c",node="n2"}}', "values": "1x10"},
        # pending: requests no GPU yet
        {"series": f'{req},namespace="tenant-ministry",pod="wait-0",container="c",node="n1"}}', "values": "4x10"},
        # a platform pod: no tenant
        {"series": f'{req},namespace="gpu-operator",pod="validator",container="c",node="n1"}}', "values": "1x10"},
        {
            "series": 'kube_pod_status_phase{namespace="tenant-ministry",pod="train-0",phase="Running"}',
            "values": "1x10",
        },
        {
            "series": 'kube_pod_status_phase{namespace="tenant-ministry",pod="train-1",phase="Running"}',
            "values": "1x10",
        },
        {"series": 'kube_pod_status_phase{namespace="tenant-ministry",pod="wait-0",phase="Running"}', "values": "0x10"},
        {"series": 'kube_pod_status_phase{namespace="gpu-operator",pod="validator",phase="Running"}', "values": "1x10"},
        {"series": f'kube_namespace_labels{{namespace="tenant-ministry",{TENANT}="ministry"}}', "values": "1x10"},
        {"series": 'kube_namespace_labels{namespace="gpu-operator"}', "values": "1x10"},
        {"series": f'kube_node_labels{{node="n1",{POOL}="gpu-a"}}', "values": "1x10"},
        {"series": f'kube_node_labels{{node="n2",{POOL}="gpu-gov"}}', "values": "1x10"},
    ]
    _promtool(
        tmp_path,
        series,
        [
            _expect(
                REQUESTED,
                "5m",
                ({"cluster": "lab", "tenant": "ministry", "pool": "gpu-a"}, 2),
                ({"cluster": "lab", "tenant": "ministry", "pool": "gpu-gov"}, 1),
            )
        ],
    )


def test_gpu_utilisation_is_averaged_over_the_tenants_gpus_by_pool(tmp_path: Path) -> None:
    util = "DCGM_FI_DEV_GPU_UTIL"
    series = [
        {"series": f'{util}{{gpu="0",Hostname="n1",namespace="tenant-ministry",pod="train-0"}}', "values": "50x10"},
        {"series": f'{util}{{gpu="1",Hostname="n1",namespace="tenant-ministry",pod="train-0"}}', "values": "70x10"},
        {"series": f'{util}{{gpu="2",Hostname="n1",namespace="gpu-operator",pod="validator"}}', "values": "100x10"},
        # an idle GPU no pod holds: no tenant's
        {"series": f'{util}{{gpu="3",Hostname="n1"}}', "values": "0x10"},
        {"series": f'kube_namespace_labels{{namespace="tenant-ministry",{TENANT}="ministry"}}', "values": "1x10"},
        {"series": f'kube_node_labels{{node="n1",{POOL}="gpu-a"}}', "values": "1x10"},
    ]
    _promtool(
        tmp_path,
        series,
        [_expect(UTILISATION, "5m", ({"cluster": "lab", "tenant": "ministry", "pool": "gpu-a"}, 60))],
    )


def test_a_wrong_expectation_fails_promtool(tmp_path: Path) -> None:
    """The harness can fail: promtool compares the recorded values, it does not just load the rules."""
    series = [
        {"series": 'kueue_cluster_queue_resource_usage{cluster_queue="tenant-ministry",flavor="gpu-a",'
         'resource="nvidia.com/gpu"}', "values": "2x10"},
    ]  # fmt: skip
    with pytest.raises(AssertionError, match="FAILED"):
        _promtool(
            tmp_path,
            series,
            [_expect(KUEUE_GPUS, "5m", ({"cluster": "lab", "tenant": "ministry", "pool": "gpu-a"}, 3))],
        )
