"""Golden rendered trees: the tiny environment in full, campus phase 1 in full for the clusters, by digest elsewhere.

A case is a folder under golden/ holding `case.yaml` (environment, phase, and the path prefixes kept
in full) and `expected/` (those files, plus `digests.json` for every file of the tree). Regenerate
only with `pytest --update-goldens`, then review the diff.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from kasbah.config import load_environment
from kasbah.planning import plan_campus
from kasbah.rendering.phase import render_plans
from kasbah.rendering.tree import MARKER, Rendered
from tests.conftest import ENVIRONMENTS

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.yaml").is_file()) if GOLDEN.is_dir() else []


@cache
def _rendered(environment: str, phase: str) -> Rendered:
    env = load_environment(ENVIRONMENTS / environment)
    return render_plans(plan_campus(env.campus, env.name, upto=phase), env.name)


def _case(name: str) -> tuple[Rendered, tuple[str, ...]]:
    spec = yaml.safe_load((GOLDEN / name / "case.yaml").read_text())
    return _rendered(spec["environment"], spec["phase"]), tuple(spec["full"])


def _digests(files: dict[str, bytes]) -> dict[str, str]:
    return {p: hashlib.sha256(d).hexdigest() for p, d in files.items() if p != MARKER}


@pytest.mark.parametrize("name", CASES)
def test_golden_tree(name: str, update_goldens: bool) -> None:
    rendered, full = _case(name)
    expected = GOLDEN / name / "expected"
    kept = {p: d for p, d in rendered.files.items() if p.startswith(full)}
    digests = json.dumps(_digests(rendered.files), indent=1, sort_keys=True) + "\n"
    if update_goldens:
        shutil.rmtree(expected, ignore_errors=True)
        for p, d in kept.items():
            (expected / p).parent.mkdir(parents=True, exist_ok=True)
            (expected / p).write_bytes(d)
        (expected / "digests.json").write_text(digests)
        return
    problems = []
    old = {p.relative_to(expected).as_posix(): p.read_bytes() for p in expected.rglob("*") if p.is_file()}
    old_digests = old.pop("digests.json", b"{}").decode()
    for p in sorted(set(old) | set(kept)):
        a, b = old.get(p), kept.get(p)
        if a == b:
            continue
        if a is None or b is None:
            problems.append(f"{p}: {'new' if a is None else 'gone'}")
            continue
        diff = difflib.unified_diff(
            a.decode().splitlines(), b.decode().splitlines(), f"golden/{p}", f"rendered/{p}", lineterm="", n=2
        )
        problems.append("\n".join(list(diff)[:60]))
    if old_digests != digests:
        was, now = json.loads(old_digests), json.loads(digests)
        changed = sorted(p for p in set(was) | set(now) if was.get(p) != now.get(p))
        problems.append(f"{len(changed)} file(s) differ by digest: {', '.join(changed[:20])}")
    if problems:
        pytest.fail("\n\n".join(problems) + "\n(if intended: pytest --update-goldens, then review git diff)")


def test_the_golden_cases_cover_tiny_and_the_first_campus_phase() -> None:
    covered = {
        (c["environment"], c["phase"]) for c in (yaml.safe_load((GOLDEN / n / "case.yaml").read_text()) for n in CASES)
    }
    assert {("tiny", "lab-1"), ("tiny", "lab-2"), ("campus", "phase-1")} <= covered


def test_generated_yaml_passes_yamllint_with_the_trees_settings(tmp_path: Path) -> None:
    rendered, _ = _case("tiny-lab-2")
    for p, d in rendered.files.items():
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_bytes(d)
    done = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", str(tmp_path / ".yamllint"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
