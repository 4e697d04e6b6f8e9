"""`kasbah configure` without containers: slice selection, batch sizes and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kasbah.rendering.inventory import render_inventory
from kasbah.runners.ansible import ConfigureError, RunOptions, SliceRef, read_slices, run_slices, slice_matches
from tests.conftest import CAMPUS, ROOT, TINY, planned

KASBAH = [sys.executable, "-m", "kasbah.cli"]


def configure(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KASBAH, "configure", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tiny_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tiny") / "tree"
    subprocess.run([*KASBAH, "render", "lab-1", "-e", str(TINY), "--out", str(tree)], cwd=ROOT, check=True)
    return tree


def inventory_only(tmp_path: Path, env: Path, phase_index: int, max_hosts: int = 2000) -> Path:
    for rel, data in render_inventory(planned(env)[phase_index], max_hosts).items():
        path = tmp_path / "inventory" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return tmp_path


PART = SliceRef(
    "slice-0001",
    Path("x.json"),
    ("dh01-r01p03-n01", "dh01-r01p03-n02"),
    frozenset({"rack_dh01_r01p03", "pool_gb200_a", "gpu"}),
    (2,),
)


@pytest.mark.parametrize(
    ("limit", "matches"),
    [
        (None, True),
        ("all", True),
        ("dh01-r01p03-n01", True),
        ("dh01-r01p03-*", True),
        ("pool_gb200_a", True),
        ("pool_other", False),
        ("pool_other,gpu", True),
        ("pool_other:dh01-r01p03-n02", True),
        ("~dh01-r01p0[3]", True),
        ("~dh02", False),
        ("!gpu", True),  # exclusions only: Ansible decides
        ("gpu:&pool_other", True),
    ],
)
def test_a_limit_selects_the_slices_it_can_match(limit: str | None, matches: bool) -> None:
    assert slice_matches(PART, limit) is matches


def test_slices_read_from_the_index_carry_hosts_groups_and_racks(tmp_path: Path) -> None:
    tree = inventory_only(tmp_path, CAMPUS, 0)
    parts = read_slices(tree)
    index = json.loads((tree / "inventory" / "index.json").read_text())
    assert [p.name for p in parts] == [s["name"] for s in index["slices"]]
    assert [len(p.hosts) for p in parts] == [s["hosts"] for s in index["slices"]]
    assert sum(len(p.hosts) for p in parts) == len(planned(CAMPUS)[0].nodes)
    # GB200 NVL72 racks hold 18 compute trays: one rack is one NVLink domain and one upgrade batch
    assert 18 in {n for p in parts for n in p.rack_sizes}


def test_rolling_upgrade_needs_one_rack_size(tmp_path: Path) -> None:
    tree = inventory_only(tmp_path, CAMPUS, 0)
    with pytest.raises(ConfigureError, match=r"rolling_upgrade_batch"):
        run_slices(tree, RunOptions(playbook="rolling-upgrade"), tmp_path / "runs")


def test_configure_refuses_a_missing_tree(tmp_path: Path) -> None:
    proc = configure(str(tmp_path / "nowhere"), "-e", str(TINY))
    assert proc.returncode == 2
    assert "no rendered tree there" in proc.stderr and "kasbah render" in proc.stderr


def test_configure_refuses_a_stale_tree(tiny_tree: Path, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    subprocess.run(["cp", "-a", str(tiny_tree), str(stale)], check=True)
    marker = json.loads((stale / "kasbah.json").read_text())
    marker["plan_sha256"] = "0" * 64
    (stale / "kasbah.json").write_text(json.dumps(marker))
    proc = configure(str(stale), "-e", str(TINY))
    assert proc.returncode == 2
    assert "different plan" in proc.stderr and "render it again" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-i", "/nonexistent/overlay.yml"), "no such inventory file"),
        (("--limit", "pool_nothing_here"), "matches no host or group"),
        (("--parallel", "0"), "at least 1 slice"),
    ],
)
def test_configure_says_what_is_wrong(tiny_tree: Path, args: tuple[str, ...], message: str) -> None:
    proc = configure(str(tiny_tree), "-e", str(TINY), *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr


def test_configure_json_prints_the_run_summary(tiny_tree: Path, tmp_path: Path) -> None:
    """`--json`: what summary.json holds, on stdout instead of the slices' table."""
    proc = configure(
        str(tiny_tree), "-e", str(TINY), "-p", "decommission", "-l", "lab1-r01p03-n01",
        "-x", "decommission_confirm=lab1-r01p03-n02", "--artifacts", str(tmp_path / "runs"), "--json",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result == json.loads((tmp_path / "runs" / "summary.json").read_text())
    assert result["playbook"] == "decommission" and result["ok"] is False


def test_decommission_stops_unless_the_confirmation_names_the_selected_hosts(tiny_tree: Path, tmp_path: Path) -> None:
    # the check runs on the controller before any host is contacted, so no node is needed
    proc = configure(
        str(tiny_tree),
        "-e",
        str(TINY),
        "-p",
        "decommission",
        "-l",
        "lab1-r01p03-n01",
        "-x",
        "decommission_confirm=lab1-r01p03-n02",
        "--artifacts",
        str(tmp_path / "runs"),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "runs" / "summary.json").read_text())
    failures = [f for s in summary["slices"] for h in s["hosts"].values() for f in h["failures"]]
    assert (
        failures
        and "decommission_confirm must list exactly the selected hosts (lab1-r01p03-n01)" in failures[0]["message"]
    )
