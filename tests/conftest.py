"""Shared fixtures: shipped environments, and the explicit flag that regenerates golden files."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kasbah.config.models import Catalog
    from kasbah.planning.model import Plan

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ROOT / "environments"
TINY = ENVIRONMENTS / "tiny"
CAMPUS = ENVIRONMENTS / "campus"
# A skip whose reason starts so is about the system under test (a cluster that already has what a test
# would show missing), not about this machine; every other skip fails a CI run (CI=true), where
# .ci/run has installed everything the tests need.
NOT_APPLICABLE = "does not apply here: "


def needs(*tools: str, root: bool = False, installs: str = "them") -> pytest.MarkDecorator:
    """Skip, with the reason, where a test's programs (or root, for network namespaces) are missing."""
    import os
    import shutil

    absent = [t for t in tools if not shutil.which(t)]
    if root and os.geteuid() != 0:
        reason: str | None = "needs root for network namespaces"
    else:
        reason = f"not installed: {', '.join(absent)} (.ci/run installs {installs})" if absent else None
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite golden files from the current output instead of comparing with them",
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI, a test that skipped because something is missing is a failure of .ci/run."""
    import os

    if os.environ.get("CI", "").lower() not in ("true", "1"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    wrong = []
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not reason.removeprefix("Skipped: ").startswith(NOT_APPLICABLE):
            wrong.append(f"{report.nodeid}: {reason}")
    if wrong:
        print(f"\nCI=true: {len(wrong)} test(s) skipped that CI must run; install what they need in .ci/run:")
        print("\n".join(f"  {w}" for w in wrong))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def run_kasbah(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the kasbah command in this process; (exit code, stdout, stderr) of this run only."""
    from kasbah.cli import main

    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@cache
def planned(env_dir: Path) -> tuple[Plan, ...]:
    """Every phase of a shipped environment, planned once per test session."""
    from kasbah.config import load_environment
    from kasbah.planning import plan_campus

    env = load_environment(env_dir)
    return tuple(plan_campus(env.campus, env.name))


@cache
def catalog(env_dir: Path) -> Catalog:
    from kasbah.config import load_environment

    return load_environment(env_dir).campus.catalog
