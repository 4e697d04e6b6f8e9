"""Golden plans: every shipped phase is planned and compared with its folder under golden/.

A case is a folder holding `case.yaml` (environment, phase, and whether the golden keeps every
node) and `expected.json`. Regenerate only with `pytest --update-goldens`, then review the diff.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from kasbah.config import load_environment
from kasbah.planning import plan_campus, plan_to_dict
from kasbah.planning.export import section_digests, to_json
from tests.conftest import ENVIRONMENTS

GOLDEN = Path(__file__).parent / "golden"
LARGE = ("scalable_units", "racks", "nodes", "switches")
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.yaml").is_file())


@cache
def _planned(environment: str) -> dict[str, dict[str, Any]]:
    env = load_environment(ENVIRONMENTS / environment)
    return {p.phase: plan_to_dict(p) for p in plan_campus(env.campus, env.name)}


def _golden_view(data: dict[str, Any], full: bool) -> dict[str, Any]:
    if full:
        return data
    view = dict(data)
    digests = section_digests(data)
    for section in LARGE:
        items = data[section]
        view[section] = {
            "count": len(items),
            "sha256": digests[section],
            "first": items[0] if items else None,
            "last": items[-1] if items else None,
        }
    return view


def _shipped_phases() -> list[tuple[str, str]]:
    out = []
    for env_dir in sorted(p for p in ENVIRONMENTS.iterdir() if (p / "site.yaml").is_file()):
        site = yaml.safe_load((env_dir / "site.yaml").read_text())
        out += [(env_dir.name, phase) for phase in site["site"]["phases"]]
    return out


def test_every_shipped_phase_has_a_golden_case() -> None:
    covered = set()
    for case in CASES:
        spec = yaml.safe_load((GOLDEN / case / "case.yaml").read_text())
        covered.add((spec["environment"], spec["phase"]))
    missing = sorted(set(_shipped_phases()) - covered)
    assert not missing, f"add a folder under {GOLDEN} for each of: {missing}"


@pytest.mark.parametrize("case", CASES)
def test_golden_plan(case: str, update_goldens: bool) -> None:
    folder = GOLDEN / case
    spec = yaml.safe_load((folder / "case.yaml").read_text())
    actual = to_json(_golden_view(_planned(spec["environment"])[spec["phase"]], spec.get("full", False)))
    expected_file = folder / "expected.json"
    if update_goldens or not expected_file.exists():
        if not update_goldens:
            pytest.fail(f"{expected_file} is missing; run pytest --update-goldens and review it")
        expected_file.write_text(actual, encoding="utf-8")
        return
    expected = expected_file.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(expected.splitlines(), actual.splitlines(), "expected", "actual", lineterm="", n=2)
        shown = "\n".join(list(diff)[:80])
        pytest.fail(
            f"plan of {spec['environment']}/{spec['phase']} differs from {expected_file}:\n{shown}\n(if intended: pytest --update-goldens, then review git diff)"
        )


def test_golden_digests_name_the_changed_section() -> None:
    data = _planned("tiny")["lab-1"]
    before = section_digests(data)
    changed = json.loads(json.dumps(data))
    changed["nodes"][0]["oob_ip"] = "10.10.0.250"
    after = section_digests(changed)
    assert [s for s in before if before[s] != after[s]] == ["nodes"]
