"""The layer contracts (pyproject.toml, `[tool.importlinter]`) hold, and they catch what they promise to.

`make lint` runs `lint-imports` on the package; here each contract is shown to fail on a copy of the
package with one seeded import, so a contract that has quietly stopped matching anything is caught.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def run(package_parent: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "pyproject.toml"
    if not config.exists():
        shutil.copy(ROOT / "pyproject.toml", config)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],  # reads the pyproject.toml in its working directory
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(package_parent)},
        timeout=120,
    )


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    proc = run(ROOT / "modules", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("planning/model.py", "import pulumi", "Only the components"),
        ("planning/ipam.py", "import pathlib", "Planning does no I/O"),
        ("planning/tenancy.py", "import subprocess", "Planning does no I/O"),
        ("rendering/report/readme.py", "from kasbah.verification import verify", "One-way layers"),
        ("config/models.py", "from kasbah.planning import model", "One-way layers"),
        ("verification/verify.py", "import kubernetes", "The Kubernetes client lives in kube"),
        ("rendering/tree.py", "from kasbah.runners import ansible", "One-way layers"),
        ("config/loader.py", "import jinja2", "The model and its validation know nothing"),
    ],
)
def test_each_contract_catches_a_seeded_import(tmp_path: Path, module: str, line: str, contract: str) -> None:
    parent = tmp_path / "src"
    shutil.copytree(ROOT / "modules" / "kasbah", parent / "kasbah", ignore=shutil.ignore_patterns("__pycache__"))
    target = parent / "kasbah" / module
    text = target.read_text()
    # after the module's docstring and `from __future__`, where an import belongs
    head, sep, rest = text.partition("from __future__ import annotations\n")
    assert sep, f"{module} has no `from __future__ import annotations` to anchor the seeded import"
    target.write_text(f"{head}{sep}{line}  # seeded\n{rest}")
    proc = run(parent, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    _, found, details = proc.stdout.partition("Broken contracts\n----------------\n")
    assert found, proc.stdout
    # the detail section: each broken contract's name, underlined, then the offending import chains
    lines = details.splitlines()
    names = [line for line, under in itertools.pairwise(lines) if set(under) == {"-"}]
    assert [n for n in names if n.startswith(contract)], f"{contract!r} not among the broken: {names}"
    assert module.replace("/", ".").removesuffix(".py") in details
