"""Hostile environments, generated: whatever a file holds, kasbah answers in seconds, without a
traceback, with every refusal located, and without touching its input.

Hypothesis draws each case from a fixed seed (`derandomize`), so a run is reproducible and a
failure prints the case that caused it. A case is a copy of environments/tiny with one to three
mutations, from the value level (a YAML value replaced by something a user, a template or an
attacker might write) to the byte level (a control character, an alias bomb, a FIFO where a file
should be). The golden cases in bad_input/ check the exact words; this checks the classes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kasbah.cli import main
from tests.conftest import TINY

CASES = int(os.environ.get("KASBAH_HOSTILE_CASES", "500"))
SECONDS = 5.0  # the tiny environment validates in about 0.3 s; a case over this is a hang
FILES = sorted(str(p.relative_to(TINY)) for p in TINY.rglob("*.yaml"))

# values a user, a template or an attacker might put where something else belongs
HOSTILE_VALUES: list[Any] = [
    None,
    "",
    " ",
    0,
    -1,
    1,
    2**31,
    2**63,
    4_000_000_000,
    10**18,
    0.5,
    -0.0,
    1e308,
    True,
    False,
    "yes",
    "on",
    "0755",
    "1:20",
    "2026-01-01",
    "x" * 5000,
    "../../etc/passwd",
    "a\u202eb",
    "ＡＢＣ",
    "10.0.0.0/8",
    "169.254.0.0/16",
    "127.0.0.1",
    "0.0.0.0/0",
    "::/0",
    "fe80::/10",
    "224.0.0.0/4",
    "not a network",
    [],
    [None],
    [[[]]],
    {},
    {"name": "x"},
    {"a": {"b": {"c": {}}}},
]

# text that replaces or joins a file's text
HOSTILE_TEXT: list[str] = [
    "",
    "---\n",
    "null\n",
    "~\n",
    "[]\n",
    "{}\n",
    "'just text'\n",
    "---\na: 1\n---\nb: 2\n",
    "\x07",
    "\x00",
    "\x1b[31m",
    "\ufeff",
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
    "self: &s [*s]\n",
    "deep: " + "[" * 200 + "]" * 200 + "\n",
    "deep: " + "{a: " * 100 + "1" + "}" * 100 + "\n",
    "big: " + "9" * 5000 + "\n",
    "bin: !!binary aGVsbG8=\n",
    "obj: !!python/object:os.system ['true']\n",
    "tag: !custom 1\n",
    "? [a, b]\n: c\n",
    "key: value\nkey: again\n",
    "\t- tab\n",
    "a: 'unclosed\n",
    "a: [1, 2\n",
    "<<: *nowhere\n",
]


def _paths(data: Any, limit: int = 5000) -> list[tuple[Any, ...]]:
    """YAML paths into `data`, each shared (aliased) value once: an earlier mutation may have left an
    alias bomb or a value that contains itself, which the harness must not expand either."""
    out: list[tuple[Any, ...]] = []
    seen: set[int] = set()
    todo: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while todo and len(out) < limit:
        node, path = todo.pop()
        out.append(path)
        if isinstance(node, dict | list) and id(node) not in seen:
            seen.add(id(node))
            items = node.items() if isinstance(node, dict) else enumerate(node)
            todo.extend((v, (*path, k)) for k, v in items)
    return out


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def _delete(data: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return None
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return data


@st.composite
def mutation(draw: st.DrawFn) -> tuple[str, str, Any]:
    """(file, kind, argument): one change to one file of the environment."""
    file = draw(st.sampled_from(FILES))
    kind = draw(
        st.sampled_from(
            [
                "value",
                "value",
                "scale",
                "scale",
                "delete",
                "insert-text",
                "replace-text",
                "truncate",
                "special-file",
                "duplicate-line",
            ]
        )
    )
    if kind in ("value", "delete"):
        return file, kind, (draw(st.integers(0, 10**6)), draw(st.sampled_from(HOSTILE_VALUES)))
    if kind == "scale":  # a number that is still a number, only absurd: the planner's and cabling's turn
        return file, kind, (draw(st.integers(0, 10**6)), draw(st.sampled_from([0, -1, 2, 7, 64, 1000, 10**6, 10**9])))
    if kind in ("insert-text", "replace-text"):
        return file, kind, (draw(st.integers(0, 10**6)), draw(st.sampled_from(HOSTILE_TEXT)))
    if kind == "special-file":
        return (
            file,
            kind,
            draw(st.sampled_from(["fifo", "dev-zero", "directory", "dangling-link", "loop-link", "huge"])),
        )
    return file, kind, draw(st.integers(0, 10**6))


def _apply(env: Path, file: str, kind: str, arg: Any) -> None:
    path = env / file
    if not path.is_file():
        return  # an earlier mutation made it something else
    text = path.read_text(encoding="utf-8", errors="replace")
    if kind in ("value", "delete", "scale"):
        index, value = arg
        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, ValueError):
            return  # an earlier mutation broke the file (for PyYAML too); it stays broken
        paths = sorted(_paths(data), key=repr)
        if kind == "scale":
            paths = [p for p in paths if isinstance(_get(data, p), int | float) and not isinstance(_get(data, p), bool)]
            if not paths:
                return
            where = paths[index % len(paths)]
            value = _get(data, where) * value
        else:
            where = paths[index % len(paths)]
        try:
            data = _delete(data, where) if kind == "delete" and where else _replace(data, where, value)
        except (KeyError, IndexError, TypeError):
            return  # a path through a value that changed shape (a list that is also its own item)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    elif kind == "insert-text":
        index, chunk = arg
        at = index % (len(text) + 1)
        path.write_text(text[:at] + chunk + text[at:], encoding="utf-8")
    elif kind == "replace-text":
        path.write_text(arg[1], encoding="utf-8")
    elif kind == "truncate":
        path.write_bytes(text.encode()[: arg % (len(text) + 1)])
    elif kind == "duplicate-line":
        lines = text.splitlines(keepends=True)
        i = arg % len(lines)
        path.write_text("".join(lines[: i + 1] + lines[i:]), encoding="utf-8")
    elif kind == "special-file":
        path.unlink()
        if arg == "fifo":
            os.mkfifo(path)
        elif arg == "dev-zero":
            path.symlink_to("/dev/zero")
        elif arg == "directory":
            path.mkdir()
        elif arg == "dangling-link":
            path.symlink_to(path.with_name("nowhere.yaml"))
        elif arg == "loop-link":
            path.symlink_to(path)
        elif arg == "huge":
            with path.open("w") as fh:
                fh.write("# padding\n" * 600_000)


class _HangError(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise _HangError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _kasbah(*argv: str) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _deadline(4 * SECONDS):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - start


def _fingerprint(env: Path) -> dict[str, str]:
    """What each entry of the environment is, without reading what is not a regular file."""
    out = {}
    for p in sorted(env.rglob("*")):
        if p.is_symlink():
            out[str(p)] = "link:" + str(p.readlink())
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = "dir" if p.is_dir() else "other"
    return out


# an issue's first line: `<file>[:line[:col]]: (<scope>) message` or `<file>:line[:col]: [path: ]message`
_LOCATED = re.compile(r"^(?P<file>/\S+?)(?::\d+(?::\d+)?: |: \((the whole file)\) |: (?=\S+: ))\S")


def _check_refusal(err: str, env: Path) -> None:
    lines = err.splitlines()
    assert lines, "exit 2 with nothing on stderr"
    head = re.match(r"^(\d+) problems? in the environment:$", lines[0])
    assert head, f"the refusal does not start with its count: {lines[0]!r}"
    count = int(head.group(1))
    assert count > 0, "a refusal with no problem in it"
    issues = [line for line in lines[1:] if not line.startswith("    ")]
    fixes = [line for line in lines[1:] if line.startswith("    fix: ")]
    assert len(issues) == count, f"{count} problems announced, {len(issues)} given"
    assert len(fixes) == count, f"a problem without its fix:\n{err}"
    for issue in issues:
        m = _LOCATED.match(issue)
        assert m, f"not located (file, then a line or `(the whole file)` or a YAML path): {issue!r}"
        assert m.group("file").startswith(str(env)), f"names a file outside the environment: {issue!r}"


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@settings(
    max_examples=CASES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(mutation(), min_size=1, max_size=3))
def test_hostile_environments(mutations: list[tuple[str, str, Any]]) -> None:
    with tempfile.TemporaryDirectory(prefix="kasbah-hostile-") as tmp:
        env = Path(tmp) / "env"
        shutil.copytree(TINY, env)
        for file, kind, arg in mutations:
            _apply(env, file, kind, arg)
        before = _fingerprint(env)

        code, _, err, seconds = _kasbah("validate", "-e", str(env))
        assert "Traceback" not in err and code != 3, f"a bug, not a refusal:\n{err}"
        assert code in (0, 1, 2), f"exit {code}:\n{err}"
        assert seconds < SECONDS, f"validate took {seconds:.1f} s"
        event(f"validate exit {code}")  # --hypothesis-show-statistics: how many cases got how far
        if code == 2:
            _check_refusal(err, env)
        else:
            code, out, err, seconds = _kasbah("plan", "-e", str(env), "--json", "--compact")
            assert code in (0, 1) and "Traceback" not in err, f"validate accepted what plan refuses:\n{err}"
            assert seconds < SECONDS, f"plan took {seconds:.1f} s"
            _strict_json(out)
            code, _, err, seconds = _kasbah("render", "-e", str(env), "-o", str(Path(tmp) / "out"))
            assert code in (0, 1) and "Traceback" not in err, f"validate accepted what render refuses:\n{err}"
            code, out, err, _ = _kasbah("diff", "-e", str(env), "--json", "lab-1", "lab-2")
            assert code in (0, 1, 2) and "Traceback" not in err, f"diff failed:\n{err}"
        assert _fingerprint(env) == before, "an input file was changed"


@pytest.mark.parametrize("special", ["fifo", "dev-zero", "directory", "huge"])
def test_a_phase_file_that_is_not_a_regular_file_is_refused_not_read(tmp_path: Path, special: str) -> None:
    env = tmp_path / "env"
    shutil.copytree(TINY, env)
    _apply(env, "phases/lab-2.yaml", "special-file", special)
    code, _, err, seconds = _kasbah("validate", "-e", str(env))
    assert code == 2 and seconds < SECONDS
    _check_refusal(err, env)
    expected = {
        "fifo": "it is a FIFO, not a regular file",
        "dev-zero": "it is a device, not a regular file",
        "directory": "it is a directory, not a regular file",
        "huge": "the file is larger than 4 MiB",
    }[special]
    assert f"phases/lab-2.yaml: (the whole file) {expected}" in err


def test_a_file_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    env = tmp_path / "env"
    shutil.copytree(TINY, env)
    (env / "phases" / "lab-2.yaml").write_bytes(b"---\nphase:\n  name: lab-\xff2\n")
    code, _, err, _ = _kasbah("validate", "-e", str(env))
    assert code == 2
    assert "phases/lab-2.yaml:3:13: not UTF-8 text: byte 0xff cannot be decoded" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("fifo", "it is a FIFO, not a regular file"),
        ("[" * 100_000 + "]" * 100_000, "not a plan JSON file"),
        ('{"format": 4, "phase": "x", "' + "9" * 5000 + '": 1}', "not a kasbah plan"),
        ("1" * 5000, "not a plan JSON file"),
    ],
    ids=["fifo", "deep", "long-key", "long-number"],
)
def test_a_hostile_plan_file_is_refused(tmp_path: Path, content: str, expected: str) -> None:
    plan = tmp_path / "old.json"
    if content == "fifo":
        os.mkfifo(plan)
    else:
        plan.write_text(content)
    code, _, err, seconds = _kasbah("diff", "-e", str(TINY), str(plan), "lab-2")
    assert code == 2 and seconds < SECONDS and "Traceback" not in err
    assert f"kasbah: {plan}" in err and expected in err


def test_a_plan_file_with_the_wrong_shapes_inside_is_refused(tmp_path: Path) -> None:
    code, out, _, _ = _kasbah("plan", "lab-1", "-e", str(TINY), "--json")
    data = json.loads(out)
    for key in data:
        if isinstance(data[key], list) and data[key]:
            data[key] = [None for _ in data[key]]  # every record of a list replaced by null
    plan = tmp_path / "edited.json"
    plan.write_text(json.dumps(data))
    code, _, err, _ = _kasbah("diff", "-e", str(TINY), str(plan), "lab-2")
    assert code == 2 and "Traceback" not in err
    assert f"{plan}: not a well-formed kasbah plan" in err
