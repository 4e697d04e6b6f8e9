"""The Pulumi node group's provider, for real: create runs site.yml on the rack's containers through ansible-runner."""

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
        "playbook": "site",
        "skip_tags": UNREACHABLE_TAGS.split(","),
        "extra_vars": {},
        "phase": marker["phase"],
        "plan_sha256": marker["plan_sha256"],
        "tree": str(lab.tree),
        "artifacts": str(artifacts),
        "extra_inventories": [str(lab.overlay)],
        **extra,
    }


def _gpu_rack(lab: Lab) -> tuple[str, list[str]]:
    plan = next(p for p in planned(TINY) if p.phase == "lab-1")
    rack = next(r.name for r in plan.racks if r.pool == "gpu-a")
    return rack, sorted(n.name for n in plan.nodes if n.rack == rack)


def test_create_configures_the_rack_and_changes_nothing_on_a_converged_rack(converged: Lab, tmp_path: Path) -> None:
    rack, hosts = _gpu_rack(converged)
    provider = NodeGroupProvider()
    result = provider.create(_props(converged, rack, hosts, tmp_path))
    assert result.id == f"gpu-a/{rack}"
    outs = result.outs or {}
    assert outs["changed_tasks"] == 0 and outs["changed_hosts"] == []
    # only the rack's hosts ran
    ran = {
        json.loads(e.read_text()).get("event_data", {}).get("host")
        for e in (tmp_path / rack).rglob("job_events/*.json")
    }
    assert ran - {None} == set(hosts)


def test_a_tree_from_another_plan_is_refused_before_any_run(lab: Lab, tmp_path: Path) -> None:
    rack, hosts = _gpu_rack(lab)
    with pytest.raises(
        RuntimeError, match=r"rendered from another plan than this program's; fix: kasbah render lab-1 --out"
    ):
        NodeGroupProvider().create(_props(lab, rack, hosts, tmp_path, plan_sha256="f" * 64))
    assert not (tmp_path / rack).exists()
