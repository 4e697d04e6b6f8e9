"""A fleet of Debian 12 containers for the tiny environment, and `kasbah configure` runs over it.

The containers and runs are shared by the whole session (starting the fleet and converging it
takes minutes); tests read what the runs recorded and what the containers now hold. Without a
Docker daemon or mmdebstrap the tests skip, saying so; under CI (CI=true) they fail instead,
because .ci/run installs and starts both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, TINY

KASBAH = [sys.executable, "-m", "kasbah.cli"]
PHASE = "lab-1"
# Tasks that need a repository this machine cannot reach (NVIDIA's, DOCA's, pkgs.k8s.io) or a
# live API server: the real runs skip them, the check-mode rehearsal runs them.
UNREACHABLE_TAGS = "vendor,cluster"
# Filled by the check-mode rehearsal; printed at the end of the session.
CHECK_ONLY: list[str] = []


def docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return "the docker client is not installed"
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is not installed (Debian package mmdebstrap)"
    probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"no Docker daemon answers ({probe.stderr.strip()[:200]})"
    return None


def require_docker() -> None:
    problem = docker_problem()
    if problem is None:
        return
    message = (
        f"needs a Docker daemon and mmdebstrap for the node containers: {problem} (.ci/run installs and starts them)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Run:
    """One `kasbah configure` run: exit code, output and its summary.json."""

    args: list[str]
    code: int
    output: str
    summary: dict[str, Any]

    def hosts(self) -> dict[str, dict[str, Any]]:
        return {h: r for s in self.summary["slices"] for h, r in s["hosts"].items()}

    def changed(self) -> dict[str, list[str]]:
        return {h: r["changed_tasks"] for h, r in self.hosts().items() if r["changed_tasks"]}

    def failures(self) -> dict[str, list[dict[str, str]]]:
        return {h: r["failures"] for h, r in self.hosts().items() if r["failures"]}


@dataclass
class Lab:
    tree: Path
    overlay: Path
    containers: dict[str, str]
    work: Path
    runs: dict[str, Run] = field(default_factory=dict)

    def configure(self, name: str, *extra: str) -> Run:
        artifacts = self.work / "runs" / name
        if artifacts.exists():
            shutil.rmtree(artifacts)
        args = [
            *KASBAH,
            "configure",
            str(self.tree),
            "-e",
            str(TINY),
            "-i",
            str(self.overlay),
            "--artifacts",
            str(artifacts),
            *extra,
        ]
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        summary_path = artifacts / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"slices": []}
        run = Run(args, proc.returncode, proc.stdout + proc.stderr, summary)
        self.runs[name] = run
        return run

    def sh(self, host: str, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "exec", self.containers[host], "sh", "-c", command], capture_output=True, text=True, timeout=120
        )


def render_lab(work: Path) -> Path:
    """The tiny environment's PHASE rendered into `work`/tree by the kasbah command."""
    tree = work / "tree"
    subprocess.run([*KASBAH, "render", PHASE, "-e", str(TINY), "--out", str(tree)], cwd=ROOT, check=True)
    return tree


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_docker()
    from tests.nodes import fleet

    work = tmp_path_factory.mktemp("lab")
    tree = render_lab(work)
    prefix = f"kasbah-test-{os.getpid()}"
    started = fleet.up(tree, prefix, work)
    try:
        yield Lab(tree, started.overlay, started.hosts, work)
    finally:
        fleet.down(prefix)


@pytest.fixture(scope="session")
def converged(lab: Lab) -> Lab:
    """The site playbook run twice for real (the second run must change nothing)."""
    first = lab.configure("converge", "--skip-tags", UNREACHABLE_TAGS)
    assert first.code == 0, first.output
    lab.configure("again", "--skip-tags", UNREACHABLE_TAGS)
    return lab


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say which tasks ran in check mode only, from the rehearsal run's notices."""
    if CHECK_ONLY:
        terminalreporter.section("node tasks exercised in check mode only (package source unreachable here)")
        terminalreporter.write_line(f"skipped in the real runs: tasks tagged {UNREACHABLE_TAGS}")
        for line in CHECK_ONLY:
            terminalreporter.write_line(line)
