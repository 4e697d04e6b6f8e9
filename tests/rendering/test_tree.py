"""The rendered tree: deterministic, swapped in whole, never replacing good output with a failed one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kasbah.cli import main
from kasbah.rendering import tree
from kasbah.rendering.phase import render_plans
from kasbah.rendering.tree import MARKER, RenderError, read_marker, write_tree
from tests.conftest import CAMPUS, TINY, planned


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_render_is_deterministic_across_processes_and_runs(tmp_path: Path) -> None:
    plans = list(planned(TINY))
    first = render_plans(plans, "tiny").files
    again = render_plans(list(planned(TINY)), "tiny").files
    assert first == again
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["render", "lab-2", "-e", str(TINY), "-o", str(a)]) == 0
    assert main(["render", "lab-2", "-e", str(TINY), "-o", str(b)]) == 0
    assert _snapshot(a) == _snapshot(b) == first


def test_marker_lists_every_file_with_its_digest(tmp_path: Path) -> None:
    rendered = render_plans(list(planned(TINY)), "tiny")
    write_tree(tmp_path / "out", rendered.files)
    marker = read_marker(tmp_path / "out")
    assert marker["phase"] == "lab-2" and marker["environment"] == "tiny"
    assert set(marker["files"]) == set(rendered.files) - {MARKER}
    assert [c["name"] for c in marker["clusters"]] == [c.name for c in rendered.plan.clusters]


def test_rendering_again_replaces_the_whole_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["render", "lab-1", "-e", str(TINY), "-o", str(out)]) == 0
    stale = out / "clusters" / "lab" / "left-over.yaml"
    stale.write_text("from an earlier render\n")
    assert main(["render", "lab-2", "-e", str(TINY), "-o", str(out)]) == 0
    assert not stale.exists()
    assert read_marker(out)["phase"] == "lab-2"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary trees left behind"


def test_a_failure_while_writing_keeps_the_previous_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert main(["render", "lab-1", "-e", str(TINY), "-o", str(out)]) == 0
    before = _snapshot(out)
    real = Path.write_bytes
    calls = {"n": 0}

    def failing(self: Path, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    rendered = render_plans(list(planned(TINY)), "tiny")
    with pytest.raises(RenderError, match="No space left on device; the previous tree, if any, is unchanged"):
        write_tree(out, rendered.files)
    monkeypatch.undo()
    assert _snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_fallback_swap_works_where_exchange_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    assert main(["render", "lab-1", "-e", str(TINY), "-o", str(out)]) == 0
    assert main(["render", "lab-2", "-e", str(TINY), "-o", str(out)]) == 0
    assert read_marker(out)["phase"] == "lab-2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refuses_to_replace_a_directory_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    precious = tmp_path / "work"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine\n")
    assert main(["render", "lab-1", "-e", str(TINY), "-o", str(precious)]) == 2
    assert "not a kasbah render" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "mine\n"
    plain = tmp_path / "file"
    plain.write_text("x")
    with pytest.raises(RenderError, match="not a directory"):
        write_tree(plain, {"a": b""})


def test_a_symlink_or_an_unwritable_place_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "real"
    assert main(["render", "lab-1", "-e", str(TINY), "-o", str(real)]) == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    assert main(["render", "lab-2", "-e", str(TINY), "-o", str(link)]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and read_marker(real)["phase"] == "lab-1"
    assert main(["render", "lab-1", "-e", str(TINY), "-o", "/proc/kasbah-out"]) == 2
    assert "cannot write /proc/kasbah-out" in capsys.readouterr().err


def test_an_empty_directory_is_fine(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["render", "lab-1", "-e", str(TINY), "-o", str(out)]) == 0
    assert (out / MARKER).is_file()


def test_bad_input_renders_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["render", "no-such-phase", "-e", str(TINY), "-o", str(out)]) == 2
    assert "no-such-phase" in capsys.readouterr().err
    assert not out.exists()
    env = tmp_path / "env"
    env.mkdir()
    for p in TINY.rglob("*"):
        if p.is_file():
            (env / p.relative_to(TINY)).parent.mkdir(parents=True, exist_ok=True)
            (env / p.relative_to(TINY)).write_bytes(p.read_bytes())
    site = env / "site.yaml"
    site.write_text(site.read_text().replace("pue: 1.3", "pue: high"))
    assert main(["render", "lab-1", "-e", str(env), "-o", str(out)]) == 2
    assert "site.yaml" in capsys.readouterr().err
    assert not out.exists()


def test_marker_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="not a rendered tree"):
        read_marker(tmp_path)
    (tmp_path / MARKER).write_text("{")
    with pytest.raises(RenderError, match="unreadable"):
        read_marker(tmp_path)
    (tmp_path / MARKER).write_text(json.dumps({"format": 99}))
    with pytest.raises(RenderError, match="format 99"):
        read_marker(tmp_path)


@pytest.mark.parametrize("phase", ["phase-1", "phase-4"])
def test_campus_phases_render(phase: str) -> None:
    plans = list(planned(CAMPUS))
    upto = [p.phase for p in plans].index(phase) + 1
    rendered = render_plans(plans[:upto], "campus")
    for c in rendered.plan.clusters:
        assert f"clusters/{c.name}/kustomization.yaml" in rendered.files
    for path in rendered.files:
        parts = path.split("/")
        assert not path.startswith("/") and ".." not in parts and "" not in parts, path
