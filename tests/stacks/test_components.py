"""Components refuse inconsistent arguments at construction, naming the input; the providers' diffs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kasbah.components.ledger import LedgerError, LedgerProvider, Record
from kasbah.components.mocked import run_mocked
from kasbah.components.nodes import GpuNodePool, NodeConfigs, NodeGroupProvider, NodePoolArgs, NodeRun, ServicePool
from kasbah.components.site import DataHall, DataHallArgs, ledger
from kasbah.runners.ansible import playbooks_dir
from tests.conftest import TINY, planned

PLAN = next(p for p in planned(TINY) if p.phase == "lab-1")


def _construct(build: Callable[[], Any]) -> None:
    def program() -> dict[str, Any]:
        build()
        return {}

    run_mocked(program, project="p", stack="s", config={})


def test_pools_belong_to_the_stack_that_owns_them() -> None:
    configs = NodeConfigs.of(PLAN, playbooks_dir())
    run = NodeRun("tree", "artifacts")
    mgmt = next(p for p in PLAN.pools if p.cluster is None)
    gpu = next(p for p in PLAN.pools if p.cluster)
    with pytest.raises(ValueError, match=rf"pool {mgmt.name} belongs to no cluster; management and storage pools"):
        _construct(lambda: GpuNodePool("x", NodePoolArgs(mgmt, configs, run)))
    with pytest.raises(ValueError, match=rf"pool {gpu.name} belongs to cluster lab; its cluster stack makes"):
        _construct(lambda: ServicePool("x", NodePoolArgs(gpu, configs, run)))


def test_a_data_hall_refuses_racks_of_another_hall() -> None:
    book = ledger([PLAN])
    hall = next(iter(book.halls.values()))
    stray = {"elsewhere-r01": {**next(iter(book.racks.values())), "hall": "dh99"}}
    with pytest.raises(ValueError, match=r"DataHall lab1: rack\(s\) elsewhere-r01 are in another hall"):
        _construct(lambda: DataHall("lab1", DataHallArgs(hall, stray)))


def test_a_record_needs_its_identity() -> None:
    with pytest.raises(LedgerError, match=r"rack record r1: missing hall, row, position"):
        _construct(lambda: Record("r1", "rack", {"index": 1}))
    with pytest.raises(LedgerError, match=r"unknown kind 'shelf'"):
        _construct(lambda: Record("r1", "shelf", {}))


def test_ledger_diff_replaces_on_identity_and_updates_the_rest() -> None:
    old = {"kind": "rack", "name": "r1", "hall": "h", "index": 3, "inband_cidr": "10.0.0.0/26", "state": "live"}
    p = LedgerProvider()
    assert p.diff("r1", old, {**old, "inband_cidr": "10.0.1.0/26"}).replaces == ["inband_cidr"]
    update = p.diff("r1", old, {**old, "state": "retired"})
    assert update.changes and not update.replaces
    assert not p.diff("r1", {**old, "__provider": "a"}, {**old, "__provider": "b"}).changes
    failures = p.check({}, {"kind": "rack", "name": "r1"}).failures
    assert [f.property for f in failures] == [
        "hall",
        "row",
        "position",
        "index",
        "oob_cidr",
        "inband_cidr",
        "storage_cidr",
        "rail_cidrs",
    ]


def test_node_group_diff_runs_only_on_configuration() -> None:
    old = {
        "pool": "p",
        "rack": "r",
        "hosts": ["a"],
        "config_sha256": "1",
        "tree": "/a",
        "phase": "x",
        "plan_sha256": "s",
    }
    p = NodeGroupProvider()
    moved = {**old, "tree": "/b", "phase": "y", "plan_sha256": "t", "artifacts": "/c", "extra_vars": {"t": "new"}}
    # the wave a rack is in moves as its pool grows; a group made before the rollout rules had a playbook
    moved.update(wave=7, playbook="site")
    assert not p.diff("id", old, moved).changes
    changed = p.diff("id", old, {**old, "config_sha256": "2"})
    assert changed.changes and not changed.replaces
    assert p.diff("id", old, {**old, "hosts": ["a", "b"]}).changes


def test_the_playbooks_digest_follows_roles_not_docs_or_tool_state(tmp_path: Path) -> None:
    from kasbah.resources import COLLECTION
    from kasbah.rollout import playbooks_digest

    root = tmp_path / "playbooks"
    collection = root / COLLECTION
    (collection / "roles" / "r" / "tasks").mkdir(parents=True)
    (collection / "plugins" / "filter").mkdir(parents=True)
    (root / "site.yml").write_text("---\n")
    (collection / "roles" / "r" / "tasks" / "main.yml").write_text("---\n")
    (collection / "plugins" / "filter" / "f.py").write_text("# a filter\n")
    before = playbooks_digest(root)
    (root / "README.md").write_text("docs\n")
    (collection / "README.md").write_text("docs\n")
    (collection / "galaxy.yml").write_text("version: 0.1.0\n")
    (root / ".ansible").mkdir()
    (root / ".ansible" / "cache.json").write_text("{}\n")
    playbooks_digest.cache_clear()
    assert playbooks_digest(root) == before
    for changed in (collection / "roles" / "r" / "tasks" / "main.yml", collection / "plugins" / "filter" / "f.py"):
        changed.write_text(changed.read_text() + "# changed\n")
        playbooks_digest.cache_clear()
        assert playbooks_digest(root) != before
        before = playbooks_digest(root)


def test_a_retired_rack_keeps_its_record_with_its_own_declared_reason() -> None:
    from dataclasses import replace

    from kasbah.planning.model import Retired

    first, second = planned(TINY)[:2]
    rack = next(r for r in second.racks if r.pool)
    without = tuple(r for r in second.racks if r.name != rack.name)
    declared = replace(second, racks=without, retired=(Retired("rack", rack.name, second.phase, "water damage"),))
    record = ledger([first, declared]).racks[rack.name]
    assert (record["state"], record["retired_in"], record["reason"]) == ("retired", second.phase, "water damage")
    assert ledger([first, replace(second, racks=without)]).racks[rack.name]["reason"] == "undeclared"


def test_a_failed_run_names_each_failed_host_and_its_task() -> None:
    """What a NodeGroup or ControlPlane raises when its playbook fails: the host, the task, the message."""
    from kasbah.runners.ansible import HostResult, RunResult, SliceResult

    bad = HostResult("cp1", "slice-0001", failed=True, failures=[("Run kubeadm init", "exit 1")])
    gone = HostResult("cp2", "slice-0001", unreachable=True)
    fine = HostResult("cp3", "slice-0001", ok=3)
    hosts = {h.host: h for h in (bad, gone, fine)}
    run = RunResult("site", [SliceResult("slice-0001", "failed", 2, 1.0, None, hosts)])
    assert not run.ok
    assert run.failure_detail() == "cp1: Run kubeadm init: exit 1\n  cp2: unreachable"
    timed_out = RunResult("site", [SliceResult("slice-0001", "timeout", None, 9.0, None, {}, error="no answer")])
    assert timed_out.failure_detail() == "no answer"
