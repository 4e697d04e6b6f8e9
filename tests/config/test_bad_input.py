"""Bad input: every case under bad_input/ breaks a copy of environments/tiny and checks what
`kasbah validate` says about it, byte for byte.

A case is a folder holding `case.yaml` (a description and a list of edits to the copy) and
`expected.txt` (`exit: N`, then the exact stderr, with the copy's path written as `<env>`).
Adding a case means adding a folder; run `pytest tests/config --update-goldens` to write its
`expected.txt`, then read it: the golden is only as good as the review it got.

Edits (paths are YAML paths as lists; integers index sequences, other items are mapping keys):
    - {file: site.yaml, set: [site, pue], value: 0.5}       set a value; a new key or index
                                                            len(list) appends
    - {file: site.yaml, delete: [site, pue]}                remove a key or list item
    - {file: site.yaml, rename: [site, pue], to: peu}       rename a key, keeping its place
    - {file: phases/lab-3.yaml, text: "..."}                replace or create the whole file
`set`, `delete` and `rename` load the file with PyYAML and dump it with sort_keys=False, so
the copy loses its comments and line numbers refer to the dumped file.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from kasbah.cli import main
from kasbah.config import ConfigError, load_environment
from tests.conftest import TINY

CASES_DIR = Path(__file__).resolve().parent / "bad_input"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir())
ENV_TOKEN = "<env>"


# --------------------------------------------------------------------------- applying edits


class CaseFileError(Exception):
    """A case.yaml that does not say what it means: a bug in the test data, not in kasbah."""


def _step(node: Any, key: Any, path: list[Any]) -> Any:
    if isinstance(node, dict):
        if key not in node:
            raise CaseFileError(f"no key {key!r} at {path}; keys: {list(node)}")
        return node[key]
    if isinstance(node, list):
        if not isinstance(key, int) or not 0 <= key < len(node):
            raise CaseFileError(f"no index {key!r} at {path}; the list has {len(node)} items")
        return node[key]
    raise CaseFileError(f"{path} is a {type(node).__name__}, not a mapping or a list")


def _parent(data: Any, path: list[Any]) -> tuple[Any, Any]:
    """The container holding the last element of `path`, and that element."""
    if not path:
        raise CaseFileError("an empty YAML path; use `text` to replace a whole file")
    node = data
    for i, key in enumerate(path[:-1]):
        node = _step(node, key, path[: i + 1])
    return node, path[-1]


def _set(data: Any, path: list[Any], value: Any) -> None:
    node, key = _parent(data, path)
    if isinstance(node, dict):
        node[key] = value
    elif isinstance(node, list) and isinstance(key, int) and 0 <= key <= len(node):
        if key == len(node):
            node.append(value)
        else:
            node[key] = value
    else:
        raise CaseFileError(f"cannot set {path}: {key!r} is not a key or index of its parent")


def _delete(data: Any, path: list[Any]) -> None:
    node, key = _parent(data, path)
    _step(node, key, path)  # refuses a path that is not there: a typo in the case
    del node[key]


def _rename(data: Any, path: list[Any], new: Any) -> None:
    node, key = _parent(data, path)
    if not isinstance(node, dict) or key not in node:
        raise CaseFileError(f"cannot rename {path}: no such mapping key")
    if new in node:
        raise CaseFileError(f"cannot rename {path} to {new!r}: that key exists")
    items = [(new if k == key else k, v) for k, v in node.items()]
    node.clear()
    node.update(items)


def apply_edits(env: Path, edits: list[dict[str, Any]]) -> None:
    for n, edit in enumerate(edits):
        edit = dict(edit)
        file = env / edit.pop("file")
        ops = {"set", "delete", "rename", "text"} & set(edit)
        if len(ops) != 1:
            raise CaseFileError(f"edit {n}: give exactly one of set, delete, rename, text: {edit}")
        op = ops.pop()
        if op == "text":
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(edit["text"], encoding="utf-8")
            continue
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        path = list(edit[op])
        if op == "set":
            if "value" not in edit:
                raise CaseFileError(f"edit {n}: `set` needs a `value`")
            _set(data, path, edit["value"])
        elif op == "delete":
            _delete(data, path)
        else:
            if "to" not in edit:
                raise CaseFileError(f"edit {n}: `rename` needs `to`")
            _rename(data, path, edit["to"])
        file.write_text(
            yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000),
            encoding="utf-8",
        )


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` and its bytes."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def _golden_diff(expected: str, actual: str, name: str) -> str:
    lines = difflib.unified_diff(
        expected.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        fromfile=f"{name}/expected.txt",
        tofile=f"{name} (actual)",
    )
    return "".join(lines)


# --------------------------------------------------------------------------- the golden cases


def test_cases_are_complete() -> None:
    assert CASES, f"no cases under {CASES_DIR}"
    missing = [p.name for p in CASES if not (p / "case.yaml").is_file()]
    assert not missing, f"case folders without case.yaml: {missing}"


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_bad_input(case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], update_goldens: bool) -> None:
    spec = yaml.safe_load((case / "case.yaml").read_text(encoding="utf-8"))
    assert isinstance(spec, dict) and spec.get("description"), "case.yaml needs a description"
    assert set(spec) <= {"description", "edits"}, f"unknown keys in case.yaml: {set(spec)}"
    edits = spec.get("edits") or []
    assert edits, "case.yaml needs at least one edit"

    env = tmp_path / "env"
    shutil.copytree(TINY, env)
    apply_edits(env, edits)
    before = snapshot(env)

    code = main(["validate", "-e", str(env)])
    captured = capsys.readouterr()

    actual = f"exit: {code}\n" + captured.err.replace(str(env), ENV_TOKEN)
    golden = case / "expected.txt"
    if update_goldens:
        golden.write_text(actual, encoding="utf-8")
    elif not golden.is_file():
        pytest.fail(f"{golden} is missing; write it with --update-goldens, then read it")
    else:
        expected = golden.read_text(encoding="utf-8")
        if actual != expected:
            pytest.fail(
                f"stderr of `kasbah validate` differs from {case.name}/expected.txt "
                "(if the change is intended: --update-goldens, then review):\n"
                + _golden_diff(expected, actual, case.name),
                pytrace=False,
            )

    assert snapshot(env) == before, "kasbah validate changed, added or removed files"
    assert code == 2, f"exit {code}, expected 2 (invalid environment)"
    assert captured.out == "", "nothing on stdout when the environment is invalid"


# --------------------------------------------------------------------------- direct tests


def test_load_environment_no_such_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nosuch"
    with pytest.raises(ConfigError) as exc:
        load_environment(missing)
    [issue] = exc.value.issues
    assert issue.file == missing
    assert issue.message == "no such environment directory"
    assert "site.yaml" in issue.fix
    assert str(missing) in str(exc.value)


def test_load_environment_without_site_yaml(tmp_path: Path) -> None:
    (tmp_path / "phases").mkdir()
    shutil.copy(TINY / "phases" / "lab-1.yaml", tmp_path / "phases" / "lab-1.yaml")
    with pytest.raises(ConfigError) as exc:
        load_environment(tmp_path)
    [issue] = exc.value.issues
    assert issue.file == tmp_path / "site.yaml"
    assert issue.message == "site.yaml is missing"
    assert "environments/tiny/site.yaml" in issue.fix


def test_cli_validate_no_such_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", "-e", str(tmp_path / "nosuch")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{tmp_path / 'nosuch'}: no such environment directory" in err


def test_cli_plan_unknown_phase(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "nosuch", "-e", str(TINY)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err == (
        "kasbah: no phase `nosuch` in this environment (phases: lab-1, lab-2; tenancy changes: "
        "water-agency-onboarding; `<phase>@built`: a phase without its tenancy changes)\n"
    )
