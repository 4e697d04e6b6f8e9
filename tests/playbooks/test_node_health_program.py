"""The node_health role's program (templates/usr/local/libexec/kasbah/node-health.j2), without containers.

The template is rendered with a configuration like the role's, then run against stand-ins for nvidia-smi,
dcgmi, all_reduce_perf and systemctl on PATH and a made-up sysfs: what it concludes, what it writes.
"""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest

from kasbah.resources import roles
from tests.conftest import ROOT

TEMPLATE = roles(ROOT / "playbooks") / "node_health/templates/usr/local/libexec/kasbah/node-health.j2"

DCGM_4_PASS = {
    "DCGM Diagnostic": {
        "test_categories": [
            {
                "category": "Deployment",
                "tests": [
                    {
                        "name": "software",
                        "results": [
                            {"entity_group": "GPU", "entity_id": 0, "status": "Pass"},
                            {"entity_group": "GPU", "entity_id": 1, "status": "Pass"},
                        ],
                        "test_summary": {"status": "Pass"},
                    }
                ],
            },
            {
                "category": "Hardware",
                "tests": [
                    {
                        "name": "memory",
                        "results": [{"entity_group": "GPU", "entity_id": 0, "status": "Pass"}],
                        "test_summary": {"status": "Pass"},
                    },
                    {"name": "pcie", "results": [{"entity_group": "GPU", "entity_id": 0, "status": "Skip"}]},
                ],
            },
        ]
    },
    "metadata": {"version": "4.2.3"},
}
DCGM_3_FAIL = {
    "DCGM GPU Diagnostic": {
        "test_categories": [
            {
                "category": "Stress",
                "tests": [
                    {
                        "name": "SM Stress",
                        "results": [{"gpu_ids": "0", "status": "Fail"}, {"gpu_ids": "1", "status": "Pass"}],
                    },
                    {"name": "Targeted Power", "results": [{"gpu_ids": "0", "status": "Warn"}]},
                ],
            },
        ]
    }
}
NCCL_OUT = """# nThread 1 nGpus 2 minBytes 1073741824 maxBytes 8589934592 step: 2(factor) warmup iters: 5 iters: 20
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
  1073741824     268435456     float     sum      -1   4027.3  266.61  {bw}      0   4029.1  266.50  {bw}      0
# Out of bounds values : 0 OK
# Avg bus bandwidth    : {bw}
#
"""


def config(tmp: Path, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "node": "lab1-r01p03-n01",
        "pool": "gpu-a",
        "state_dir": str(tmp / "state" / "health"),
        "history": 30,
        "timeout": 60,
        "gpus": 2,
        "driver": "580.95.05",
        "dcgm": {"binary": str(tmp / "bin" / "dcgmi"), "level": 3},
        "nccl": {
            "binary": str(tmp / "bin" / "all_reduce_perf"),
            "optional": False,
            "args": ["-b", "1G", "-e", "8G", "-f", "2", "-g", "2"],
            "min_bus_bandwidth": 300.0,
        },
        "rdma_ports": 2,
        "services": ["containerd", "kubelet"],
        "mounts": [],
        "sysfs": str(tmp / "sys"),
    }
    base.update(changes)
    return base


def render(cfg: dict[str, Any], path: Path) -> Path:
    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps
    text = env.from_string(TEMPLATE.read_text()).render(
        ansible_managed="Ansible managed",
        node_health_node_name=cfg["node"],
        kasbah_pool=cfg["pool"],
        _node_health_config=cfg,
    )
    path.write_text(text)
    path.chmod(0o755)
    return path


def stub(directory: Path, name: str, stdout: str, code: int = 0) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / f"{name}.out"
    data.write_text(stdout)
    script = directory / name
    script.write_text(f"#!/bin/sh\ncat '{data}'\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def healthy_node(
    tmp: Path,
    gpus: int = 2,
    driver: str = "580.95.05",
    dcgm: dict[str, Any] | None = None,
    dcgm_code: int = 0,
    bandwidth: float = 450.2,
    active_ports: int = 2,
) -> None:
    bin_dir = tmp / "bin"
    rows = "".join(f"{i}, 00000000:{i + 0x18:02X}:00.0, NVIDIA B200, {driver}\n" for i in range(gpus))
    stub(bin_dir, "nvidia-smi", rows)
    stub(bin_dir, "dcgmi", json.dumps(dcgm if dcgm is not None else DCGM_4_PASS), dcgm_code)
    stub(bin_dir, "all_reduce_perf", NCCL_OUT.format(bw=bandwidth))
    stub(bin_dir, "systemctl", "active\n")
    for n in range(2):
        port = tmp / "sys" / "class" / "infiniband" / f"mlx5_{n}" / "ports" / "1"
        port.mkdir(parents=True, exist_ok=True)
        (port / "state").write_text("4: ACTIVE\n" if n < active_ports else "1: DOWN\n")


def run(tmp: Path, cfg: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    program = render(cfg, tmp / "node-health")
    env = {"PATH": f"{tmp / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    proc = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, env=env, timeout=60)
    envelope = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, envelope, proc.stderr


def checks(envelope: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in envelope["result"]["checks"]}


def test_a_healthy_gpu_node_passes_and_records_its_result(tmp_path: Path) -> None:
    healthy_node(tmp_path)
    code, envelope, err = run(tmp_path, config(tmp_path))
    assert code == 0, err
    result = envelope["result"]
    assert list(result) == ["node", "pool", "time", "passed", "checks"]
    assert result["passed"] and result["node"] == "lab1-r01p03-n01" and result["pool"] == "gpu-a"
    assert list(checks(envelope)) == [
        "gpu_count",
        "gpu_driver",
        "dcgm_diag_r3",
        "nccl_all_reduce",
        "rdma_ports",
        "service:containerd",
        "service:kubelet",
    ]
    assert "450.2 GB/s" in checks(envelope)["nccl_all_reduce"]["detail"]
    assert "2 tests ran" in checks(envelope)["dcgm_diag_r3"]["detail"]  # the skipped pcie test does not count
    written = Path(envelope["file"]).read_bytes()
    assert hashlib.sha256(written).hexdigest() == envelope["sha256"]
    assert json.loads(written) == result
    assert (Path(envelope["file"]).parent / "latest.json").read_bytes() == written
    assert oct(Path(envelope["file"]).stat().st_mode & 0o777) == "0o644"


def test_a_gpu_node_without_its_gpus_fails_saying_why(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    stub(tmp_path / "bin", "systemctl", "active\n")
    code, envelope, err = run(tmp_path, config(tmp_path))
    assert code == 1, err
    found = checks(envelope)
    assert not envelope["result"]["passed"]
    assert "nvidia-smi not found" in found["gpu_count"]["detail"] and "2 GPUs" in found["gpu_count"]["detail"]
    assert "580.95.05" in found["gpu_driver"]["detail"]
    assert "not installed" in found["dcgm_diag_r3"]["detail"]
    assert not found["nccl_all_reduce"]["passed"] and "node_health_nccl_optional" in found["nccl_all_reduce"]["detail"]
    assert not found["rdma_ports"]["passed"] and "2 rails" in found["rdma_ports"]["detail"]
    assert found["service:containerd"]["passed"]


def test_an_optional_nccl_check_passes_without_the_binary(tmp_path: Path) -> None:
    healthy_node(tmp_path)
    (tmp_path / "bin" / "all_reduce_perf").unlink()
    cfg = config(tmp_path)
    cfg["nccl"]["optional"] = True
    code, envelope, _ = run(tmp_path, cfg)
    assert code == 0
    assert checks(envelope)["nccl_all_reduce"]["detail"].startswith("skipped:")


@pytest.mark.parametrize(
    ("node", "failing", "words"),
    [
        ({"gpus": 1}, "gpu_count", "1 GPUs visible"),
        ({"driver": "570.86.15"}, "gpu_driver", "pins 580.95.05"),
        ({"dcgm": DCGM_3_FAIL, "dcgm_code": 226}, "dcgm_diag_r3", "failed: SM Stress; warnings: Targeted Power"),
        ({"bandwidth": 41.7}, "nccl_all_reduce", "41.7 GB/s (at least 300 required)"),
        ({"active_ports": 1}, "rdma_ports", "1 of 2 RDMA ports active"),
    ],
)
def test_each_gpu_check_fails_on_its_own_fault(tmp_path: Path, node: dict[str, Any], failing: str, words: str) -> None:
    healthy_node(tmp_path, **node)
    code, envelope, err = run(tmp_path, config(tmp_path))
    assert code == 1, err
    failed = {name for name, c in checks(envelope).items() if not c["passed"]}
    assert failed == {failing}
    assert words in checks(envelope)[failing]["detail"]


def test_a_node_without_gpus_runs_only_the_other_checks(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    stub(tmp_path / "bin", "systemctl", "inactive\n", 3)
    cfg = config(tmp_path, gpus=0, rdma_ports=0, services=["containerd"], mounts=[str(tmp_path / "not-a-mount"), "/"])
    code, envelope, _ = run(tmp_path, cfg)
    assert code == 1
    assert {n: c["passed"] for n, c in checks(envelope).items()} == {
        "service:containerd": False,
        f"mount:{tmp_path / 'not-a-mount'}": False,
        "mount:/": True,
    }
    assert checks(envelope)["service:containerd"]["detail"] == "inactive"


def test_old_results_are_pruned_to_the_history(tmp_path: Path) -> None:
    healthy_node(tmp_path)
    state = tmp_path / "state" / "health"
    state.mkdir(parents=True)
    for day in range(1, 6):
        (state / f"202001{day:02d}T000000Z.json").write_text("{}")
    code, envelope, _ = run(tmp_path, config(tmp_path, history=3))
    assert code == 0
    kept = sorted(p.name for p in state.glob("*.json") if p.name != "latest.json")
    assert kept == ["20200104T000000Z.json", "20200105T000000Z.json", Path(envelope["file"]).name]
