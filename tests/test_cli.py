"""The `kasbah` command as users run it: exit codes, tables, JSON, atomic output."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kasbah.cli import EXIT_INTERNAL, EXIT_INVALID, EXIT_OK, EXIT_UNSTABLE
from kasbah.config import load_environment
from kasbah.planning import plan_phase, plan_to_dict
from tests.conftest import CAMPUS, ROOT, TINY
from tests.conftest import run_kasbah as run


def test_validate_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "-e", str(TINY))
    assert code == EXIT_OK
    assert "2 phase(s) valid and stable" in out and "lab-2: 6 nodes, 8 GPUs" in out


def test_plan_table_shows_what_engineers_look_for(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "phase-1", "-e", str(CAMPUS))
    assert code == EXIT_OK
    for text in (
        "phase-1 (phase 1 of 4)",
        "21,312",
        "5,488",
        "facility load",
        "headroom",
        "liquid cap.",
        "train-a-compute",
        "rail-groups",
        "train-1",
        "10.128.0.0/13",
        "health-agency",
        "of supernet",
    ):
        assert text in out, text


def test_plan_json_is_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "lab-2", "-e", str(TINY), "--json")
    assert code == EXIT_OK
    env = load_environment(TINY)
    assert json.loads(out) == json.loads(json.dumps(plan_to_dict(plan_phase(env.campus, "lab-2", "tiny"))))


def test_plan_defaults_to_the_first_phase(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "-e", str(TINY), "--json", "--compact")
    assert code == EXIT_OK and json.loads(out)["phase"] == "lab-1"


def test_output_is_atomic_and_kept_on_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "plans" / "lab-1.json"
    assert run(capsys, "plan", "lab-1", "-e", str(TINY), "-o", str(target))[0] == EXIT_OK
    good = target.read_text()
    broken = tmp_path / "broken"
    shutil.copytree(TINY, broken)
    (broken / "phases" / "lab-1.yaml").write_text("phase: {name: lab-1, facility_budget_mw: -1}\n")
    code, _, err = run(capsys, "plan", "lab-1", "-e", str(broken), "-o", str(target))
    assert code == EXIT_INVALID and "facility_budget_mw" in err
    assert target.read_text() == good
    assert [p.name for p in target.parent.iterdir()] == ["lab-1.json"]  # no temporary left behind


def test_diff_between_phases(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", "lab-1", "lab-2", "-e", str(TINY))
    assert code == EXIT_OK
    assert "stable" in out and "+ 1 pools: gpu-gov" in out


def test_diff_against_a_saved_plan_fails_loudly_when_things_disappear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "lab-2.json"
    run(capsys, "plan", "lab-2", "-e", str(TINY), "-o", str(saved))
    code, out, err = run(capsys, "diff", str(saved), "lab-1", "-e", str(TINY))
    assert code == EXIT_UNSTABLE
    assert "NOT STABLE" in err and "removed without a decommission" in err
    code, out, _ = run(capsys, "diff", str(saved), "lab-1", "-e", str(TINY), "--json")
    data = json.loads(out)
    assert code == EXIT_UNSTABLE and not data["stable"] and data["violations"]


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not a plan JSON file"), ('{"a": 1}', "not a kasbah plan")],
)
def test_diff_refuses_bad_plan_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, _, err = run(capsys, "diff", str(bad), "lab-1", "-e", str(TINY))
    assert code == EXIT_INVALID and message in err


def test_unknown_phase(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "phase-9", "-e", str(TINY))
    assert code == EXIT_INVALID and "no phase `phase-9`" in err and "lab-1, lab-2" in err
    code, _, err = run(capsys, "diff", "lab-1", "phase-9", "-e", str(TINY))
    assert code == EXIT_INVALID and "no phase `phase-9`" in err


def test_environment_from_variable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KASBAH_ENV", str(TINY))
    assert run(capsys, "validate")[0] == EXIT_OK


def test_installed_entry_point_runs_the_default_environment() -> None:
    """`kasbah plan` from the repository root plans the shipped campus (the README's first command)."""
    exe = Path(sys.executable).with_name("kasbah")
    if not exe.exists():
        pytest.skip(f"the kasbah entry point is not installed next to {sys.executable}; run `make test`")
    done = subprocess.run([str(exe), "plan"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "kasbah-campus" not in done.stderr and "phase-1 (phase 1 of 4)" in done.stdout


def test_output_file_is_readable_like_any_other(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "plan.json"
    umask = os.umask(0o022)
    try:
        assert run(capsys, "plan", "lab-1", "-e", str(TINY), "-o", str(target))[0] == EXIT_OK
    finally:
        os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_bug_is_not_reported_as_instability(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("kasbah.cli.common.plan_environment", boom)
    code, _, err = run(capsys, "plan", "lab-1", "-e", str(TINY))
    assert code == EXIT_INTERNAL and "internal error" in err and "simulated bug" in err


def test_provision_moves_a_bounded_number_of_nodes_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    """`kasbah provision --in-flight` defaults to the provisioner's own bound, and refuses nothing to move."""
    from kasbah.cli import build_parser
    from kasbah.runners.ironic import IN_FLIGHT

    args = build_parser().parse_args(["provision", "lab-1", "-e", str(TINY)])
    assert args.in_flight == IN_FLIGHT
    code, _, err = run(capsys, "provision", "lab-1", "-e", str(TINY), "--in-flight", "0")
    assert code == EXIT_INVALID and "--in-flight 0" in err and "at least 1" in err


def test_every_command_that_prints_a_result_offers_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """validate, render and verify print machine-readable results too (plan, diff, preview... already did)."""
    code, out, _ = run(capsys, "validate", "-e", str(TINY), "--json")
    report = json.loads(out)
    assert code == EXIT_OK and report["ok"] is True
    assert [p["phase"] for p in report["phases"]] == ["lab-1", "lab-2"] and report["phases"][1]["gpus"] == 8

    tree = tmp_path / "tree"
    code, out, _ = run(capsys, "render", "lab-2", "-e", str(TINY), "-o", str(tree), "--json")
    written = json.loads(out)
    assert code == EXIT_OK and written["out"] == str(tree) and written["files"] == sum(written["by_directory"].values())

    code, out, _ = run(capsys, "verify", str(tree), "-e", str(TINY), "--json", "--matrix")
    verdict = json.loads(out)
    assert code == EXIT_OK and verdict["ok"] is True and verdict["findings"] == []
    (lab,) = verdict["clusters"]
    assert lab["proven"] == {"standard": True, "cilium": True} and lab["violations"] == []
    assert "tenant-ministry" in lab["matrix"]["cilium"]["rows"]

    # a failing verification is JSON too, with its findings
    (tree / "clusters/lab/network-policies/default.yaml").unlink()
    code, out, _ = run(capsys, "verify", str(tree), "-e", str(TINY), "--json")
    verdict = json.loads(out)
    assert code == EXIT_UNSTABLE and verdict["ok"] is False
    assert any(f["check"] == "tree" and "does not exist" in f["message"] for f in verdict["findings"])


def test_every_command_but_kind_config_takes_json_and_every_environment_command_the_shared_e() -> None:
    """The parser's shared parents give `--json` (and `-e`) one spelling; kind-config and image vars print their
    artifact (YAML, JSON) themselves; image capture reads a tar, not an environment."""
    import argparse

    from kasbah.cli import build_parser

    def commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return {prefix.strip(): parser}
        return {k: v for name, p in subs[0].choices.items() for k, v in commands(p, f"{prefix} {name}").items()}

    options = {name: {o for a in p._actions for o in a.option_strings} for name, p in commands(build_parser()).items()}
    assert {"image list", "image vars", "image capture", "plan"} <= set(options)
    assert {name for name, opts in options.items() if "--json" not in opts} == {"kind-config", "image vars"}
    assert {name for name, opts in options.items() if not {"-e", "--environment"} <= opts} == {"image capture"}


def test_a_refusal_under_json_is_json_and_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / "env"
    shutil.copytree(TINY, env)
    (env / "phases" / "lab-2.yaml").write_text("---\nphase:\n  name: lab-2\n  facility_budget_mw: yes\n")
    for command in (("validate",), ("plan", "lab-2"), ("render", "lab-2", "-o", str(tmp_path / "t"))):
        code, out, err = run(capsys, *command, "-e", str(env), "--json")
        assert code == EXIT_INVALID and "problem" in err
        (problem, *_) = json.loads(out)["problems"]
        assert problem["file"].endswith("phases/lab-2.yaml") and problem["line"] == 4
        assert problem["yaml_path"] == "phase.facility_budget_mw" and problem["fix"]
