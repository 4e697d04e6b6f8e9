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
