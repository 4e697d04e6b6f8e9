"""`kasbah review`: the pull request summary, golden-tested on edited copies of the repository."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from kasbah.review import CODE
from tests.cluster.conftest import kasbah
from tests.conftest import ROOT

GOLDEN = Path(__file__).parent / "golden"


def checkout(dest: Path) -> Path:
    """The parts of the repository a review reads: environments, stack configs, and the code."""
    for rel in ("environments/tiny", "stacks", *CODE):
        src = ROOT / rel
        if src.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(src, dest / rel, ignore=ignore, dirs_exist_ok=True)
        elif src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def base_without_lab_2_and_a_smaller_quota(base: Path) -> None:
    """The head grows the ministry's quota in lab-1 and adds phase lab-2 (its rack's manifest; its stack config moves on)
    and the tenancy change on top of it."""
    (base / "environments/tiny/phases/lab-2.yaml").unlink()
    (base / "environments/tiny/tenancy.yaml").unlink()
    (base / "environments/tiny/hardware/lab1-r01p04.yaml").unlink()
    edit(base / "environments/tiny/site.yaml", "phases: [lab-1, lab-2]", "phases: [lab-1]")
    edit(base / "environments/tiny/phases/lab-1.yaml", "      gpu_quota: 2", "      gpu_quota: 1")


def base_without_the_tenancy_change(base: Path) -> None:
    """The head onboards a tenant on top of lab-2 and lowers the operator's quota: no construction, a stable change."""
    (base / "environments/tiny/tenancy.yaml").unlink()


def base_with_another_oob_block(base: Path) -> None:
    """The head renumbers the out-of-band network: every rack's block moves, which is not stable."""
    edit(base / "environments/tiny/site.yaml", "oob: {supernet: 10.10.0.0/22", "oob: {supernet: 10.10.4.0/22")


def base_with_other_code(base: Path) -> None:
    """Only a playbook differs: every stack is previewed, no rendered file changes."""
    (base / "playbooks" / "site.yml").write_text((base / "playbooks" / "site.yml").read_text() + "# old\n")


def base_that_does_not_load(base: Path) -> None:
    """A base the head's code cannot load proves nothing: the review is not stable."""
    edit(base / "environments/tiny/site.yaml", "phases: [lab-1, lab-2]", "phases: [lab-1, lab-2, lab-9]")


CASES: dict[str, tuple[Callable[[Path], None], int]] = {
    "base-does-not-load": (base_that_does_not_load, 1),
    "quota-and-new-phase": (base_without_lab_2_and_a_smaller_quota, 0),
    "renumbered-oob": (base_with_another_oob_block, 1),
    "tenant-onboarded": (base_without_the_tenancy_change, 0),
    "code-only": (base_with_other_code, 0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_review_markdown_is_golden(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], update_goldens: bool
) -> None:
    change, expected_code = CASES[case]
    head = checkout(tmp_path / "head")
    base = checkout(tmp_path / "base")
    change(base)
    out, affected = tmp_path / "review.md", tmp_path / "affected.json"
    code, _, err = kasbah(
        capsys,
        "review",
        "--base",
        str(base),
        "--head",
        str(head),
        "-e",
        "tiny",
        "-o",
        str(out),
        "--affected",
        str(affected),
    )
    assert code == expected_code, err
    text = out.read_text()
    golden = GOLDEN / f"{case}.md"
    if update_goldens:
        golden.write_text(text)
    assert text == golden.read_text(), f"review of {case} differs from {golden}; regenerate with --update-goldens"
    stacks = json.loads(affected.read_text())
    assert all(set(s) == {"project", "stack", "dir", "why", "nodes"} for s in stacks)
    # the campus stacks never move with a tiny-only change, unless the code moved
    campus = [s for s in stacks if s["stack"].startswith("campus")]
    assert bool(campus) == (case == "code-only")


def test_review_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--json`: each phase's verdict, plan diff and changed files, and the affected stacks as --affected writes them."""
    head = checkout(tmp_path / "head")
    base = checkout(tmp_path / "base")
    base_with_another_oob_block(base)
    affected = tmp_path / "affected.json"
    code, out, err = kasbah(
        capsys, "review", "--base", str(base), "--head", str(head), "-e", "tiny", "--affected", str(affected), "--json"
    )
    assert code == 1, err
    review = json.loads(out)
    assert review["stable"] is False and review["removed_phases"] == [] and review["code_changed"] == []
    assert [(p["environment"], p["phase"], p["new"]) for p in review["phases"]] == [
        ("tiny", "lab-1", False),
        ("tiny", "lab-2", False),
    ]
    assert all(not p["stable"] and p["diff"]["violations"] and p["changed_files"] for p in review["phases"])
    assert review["affected"] == json.loads(affected.read_text())


def test_review_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = kasbah(capsys, "review", "--base", str(tmp_path))
    assert code == 2 and "not a kasbah checkout" in err and "git worktree add" in err
    head = checkout(tmp_path / "head")
    code, _, err = kasbah(capsys, "review", "--base", str(head), "--head", str(head), "-e", "nope")
    assert code == 2 and "--environment nope" in err


def test_a_hall_stack_is_affected_like_its_site_stack_and_configures_no_racks(tmp_path: Path) -> None:
    from kasbah.review import review

    head = checkout(tmp_path / "head")
    base = checkout(tmp_path / "base")
    base_without_lab_2_and_a_smaller_quota(base)  # lab-1's rendered files differ
    config = (
        "---\nconfig:\n  kasbah:environment: environments/tiny\n  kasbah:phase: lab-1\n  kasbah:hallGroup: 1\n"
        "  kasbah:siteStack: organization/kasbah-site/tiny\n"
    )
    for root in (head, base):
        (root / "stacks/halls/Pulumi.tiny-halls-1.yaml").write_text(config)
    stacks = {(s.project, s.name): s for s in review(base, head, ["tiny"]).stacks}
    halls, site = stacks[("halls", "tiny-halls-1")], stacks[("site", "tiny")]
    assert halls.why == site.why and halls.why and halls.directory == "stacks/halls"
    assert halls.nodes == "" and halls.cluster is None  # ledger records only: no rack is configured
