"""kasbah as users install it: a wheel built from the project, in a clean venv outside the checkout.

The wheel must carry the templates, the node playbooks and their collection (found through
`kasbah.resources`), plan, render and verify the shipped examples (tiny, and the campus's phase 1)
with the core dependencies alone, and name the extra a command needs when it is missing. Building and installing take about 20 s (PyPI or pip's cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import CAMPUS, ROOT, TINY

SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "modules", "templates", "playbooks")


def _run(*argv: str | Path, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "KASBAH_"))}
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `kasbah` command of a clean venv holding only the wheel and its core dependencies."""
    work = tmp_path_factory.mktemp("package")
    source = work / "source"  # a copy: building in the checkout would leave build/ behind
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            skip = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ansible")
            shutil.copytree(ROOT / name, source / name, ignore=skip)
        else:
            shutil.copy2(ROOT / name, source / name)
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", source, cwd=work)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (work / "dist").glob("kasbah-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "kasbah/data/playbooks/site.yml" in names
    assert "kasbah/data/playbooks/collections/ansible_collections/kasbah/campus/galaxy.yml" in names
    assert "kasbah/data/playbooks/collections/ansible_collections/kasbah/campus/roles/kubelet/tasks/main.yml" in names
    assert "kasbah/data/templates/bootstrap/join.yaml.j2" in names
    assert not [n for n in names if n.startswith("tests/")]
    made = _run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    assert made.returncode == 0, made.stderr
    pip = _run(work / "venv/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel, cwd=work)
    assert pip.returncode == 0, pip.stderr[-2000:]
    return work / "venv/bin/kasbah"


@pytest.mark.parametrize(("shipped", "phase"), [(TINY, "lab-2"), (CAMPUS, "phase-1")], ids=["tiny", "campus"])
def test_the_wheel_plans_renders_and_verifies_outside_the_checkout(
    installed: Path, tmp_path: Path, shipped: Path, phase: str
) -> None:
    env = tmp_path / shipped.name
    shutil.copytree(shipped, env)
    venv = installed.parent.parent
    heavy = _run(venv / "bin/python", "-c", "import pulumi", cwd=tmp_path)
    assert heavy.returncode != 0, "the core install pulled in Pulumi: it belongs to the `pulumi` extra"
    for argv in (
        ("validate", "-e", env),
        ("plan", phase, "-e", env, "--json", "-o", tmp_path / "plan.json"),
        ("render", phase, "-e", env, "-o", tmp_path / "tree"),
        ("verify", tmp_path / "tree", "-e", env),
    ):
        done = _run(installed, *argv, cwd=tmp_path)
        assert done.returncode == 0, f"kasbah {argv[0]}: {done.stdout[-1000:]}{done.stderr[-2000:]}"
    # the templates came from the wheel, not from a checkout
    assert [p.name for p in (tmp_path / "tree/clusters").iterdir() if (p / "kustomization.yaml").is_file()]
    assert (tmp_path / "tree/provisioning").is_dir()


@pytest.mark.parametrize(
    ("argv", "extra"),
    [(("configure", "lab-2"), "ansible"), (("preview", "lab-2", "--kubeconfig", "/dev/null"), "cluster")],
    ids=["configure", "preview"],
)
def test_a_command_names_the_extra_it_needs(installed: Path, tmp_path: Path, argv: tuple[str, ...], extra: str) -> None:
    command = argv[0]
    done = _run(installed, *argv, "-e", TINY, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"`kasbah {command}` needs the `{extra}` extra" in done.stderr
    assert f"pip install 'kasbah[{extra}]'" in done.stderr
