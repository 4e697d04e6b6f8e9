"""The Pulumi node group's provider, for real, on the rack's containers through ansible-runner.

Create commissions a rack (`commission.yml`: the node stack, then the burn-in gate, which refuses a
GPU node that did not pass); update reconfigures it as one rolling batch (`rolling_upgrade.yml`:
drain, configure, health checks that fail the run, uncordon). The drain, uncordon and the gate's
taint are Kubernetes calls (tag `cluster`), which the containers have no API server for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kasbah.components.nodes import NodeGroupProvider
from tests.conftest import TINY, planned
from tests.playbooks.conftest import UNREACHABLE_TAGS, Lab

pytestmark = pytest.mark.nodes


def _props(lab: Lab, rack: str, hosts: list[str], artifacts: Path, **extra: Any) -> dict[str, Any]:
    marker = json.loads((lab.tree / "kasbah.json").read_text())
    return {
        "pool": "gpu-a",
        "rack": rack,
        "hosts": hosts,
        "config_sha256": "0" * 64,
        "wave": 0,
        "skip_tags": UNREACHABLE_TAGS.split(","),
        "extra_vars": {},
        "phase": marker["phase"],
        "plan_sha256": marker["plan_sha256"],
        "tree": str(lab.tree),
        "artifacts": str(artifacts),
        "extra_inventories": [str(lab.overlay)],
        **extra,
    }


def _rack(lab: Lab, pool: str = "gpu-a") -> tuple[str, list[str]]:
    plan = next(p for p in planned(TINY) if p.phase == "lab-1")
    rack = next(r.name for r in plan.racks if r.pool == pool)
    return rack, sorted(n.name for n in plan.nodes if n.rack == rack)


def _gpu_rack(lab: Lab) -> tuple[str, list[str]]:
    return _rack(lab, "gpu-a")


def _health(lab: Lab, tmp_path: Path, **values: Any) -> str:
    """An inventory layered last: the checks the containers can pass (containerd; no kubelet without kubeadm)."""
    path = tmp_path / "health.yml"
    path.write_text(json.dumps({"all": {"vars": {"node_health_services": ["containerd"], **values}}}))
    return str(path)


def _tasks(artifacts: Path) -> list[str]:
    return [
        json.loads(e.read_text()).get("event_data", {}).get("task", "")
        for e in sorted(artifacts.rglob("job_events/*.json"))
        if json.loads(e.read_text()).get("event") == "playbook_on_task_start"
    ]


def test_create_commissions_the_rack_and_changes_nothing_on_a_converged_rack(converged: Lab, tmp_path: Path) -> None:
    rack, hosts = _rack(converged, "mgmt")
    provider = NodeGroupProvider()
    props = _props(converged, rack, hosts, tmp_path, pool="mgmt")  # no GPU: the burn-in play has no host here
    result = provider.create(props)
    assert result.id == f"mgmt/{rack}"
    outs = result.outs or {}
    assert outs["changed_tasks"] == 0 and outs["changed_hosts"] == []
    # only the rack's hosts ran
    ran = {
        json.loads(e.read_text()).get("event_data", {}).get("host")
        for e in (tmp_path / rack).rglob("job_events/*.json")
    }
    assert ran - {None} == set(hosts)


def test_a_new_gpu_rack_that_fails_burn_in_is_not_commissioned(converged: Lab, tmp_path: Path) -> None:
    """The containers have no GPUs: the burn-in gate's checks fail, the node keeps its taint and create fails."""
    rack, hosts = _gpu_rack(converged)
    props = _props(converged, rack, hosts, tmp_path)
    props["extra_inventories"].append(_health(converged, tmp_path))
    with pytest.raises(RuntimeError, match=rf"(?s)rack {rack}: commission.yml failed .*did not pass burn-in"):
        NodeGroupProvider().create(props)
    assert "Fail a node that did not pass (burn_in_require_pass)" in _tasks(tmp_path / rack)


def test_update_reconfigures_the_rack_as_one_gated_batch(converged: Lab, tmp_path: Path) -> None:
    rack, hosts = _rack(converged, "mgmt")
    props = _props(converged, rack, hosts, tmp_path, pool="mgmt")
    props["extra_inventories"].append(_health(converged, tmp_path))
    result = NodeGroupProvider().update(f"mgmt/{rack}", props, {**props, "config_sha256": "1" * 64})
    # what moved is the health checks' own settings (this test's inventory), on the rack's hosts only
    assert set((result.outs or {})["changed_hosts"]) <= set(hosts)
    tasks = _tasks(tmp_path / rack)
    assert "Check the batch size" in tasks and "Run the health checks" in tasks
    for host in hosts:
        latest = converged.sh(host, "cat /var/lib/kasbah/health/latest.json")
        assert latest.returncode == 0 and json.loads(latest.stdout)["passed"] is True, latest.stdout


def test_a_rack_that_fails_its_health_checks_fails_the_update(converged: Lab, tmp_path: Path) -> None:
    """A failed check fails every host of the batch, so the play ends before its uncordon and the engine starts no later wave."""
    rack, hosts = _rack(converged, "mgmt")
    props = _props(converged, rack, hosts, tmp_path, pool="mgmt")
    props["extra_inventories"].append(_health(converged, tmp_path, node_health_mounts=["/srv/kasbah-missing"]))
    with pytest.raises(RuntimeError, match=rf"(?s)rack {rack}: rolling_upgrade.yml failed .*health checks failed"):
        NodeGroupProvider().update(f"mgmt/{rack}", props, {**props, "config_sha256": "2" * 64})
    failed = {
        (e["event_data"].get("host"), e["event_data"].get("task"))
        for e in (json.loads(p.read_text()) for p in (tmp_path / rack).rglob("job_events/*.json"))
        if e.get("event") == "runner_on_failed"
    }
    assert failed == {(h, "Fail on a failed check") for h in hosts}  # the batch failed at its health gate


def test_a_tree_from_another_plan_is_refused_before_any_run(lab: Lab, tmp_path: Path) -> None:
    rack, hosts = _gpu_rack(lab)
    with pytest.raises(
        RuntimeError, match=r"rendered from another plan than this program's; fix: kasbah render lab-1 --out"
    ):
        NodeGroupProvider().create(_props(lab, rack, hosts, tmp_path, plan_sha256="f" * 64))
    assert not (tmp_path / rack).exists()
