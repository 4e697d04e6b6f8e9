"""Reads one YAML file of an environment, bounded, into plain values and where each path in it starts.

A regular UTF-8 file of bounded size with no control characters; YAML 1.2's core schema (no
YAML 1.1 booleans, octals or dates); one walk over the parser's events before anything is built
(`bounded_yaml`: no alias bombs, no endless nesting, no tags); duplicate and complex keys refused.
Every refusal is a `ConfigIssue` located through the file's `SourceDoc`.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kasbah.config.files import InputFileError, read_regular
from kasbah.config.issues import ConfigIssue, Loc

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class SourceDoc:
    """One YAML file and where each path in it starts (1-based line and column)."""

    file: Path
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Loc) -> tuple[int | None, int | None]:
        # A missing key points at its parent mapping; walk up until something is known.
        for end in range(len(path), -1, -1):
            pos = self.positions.get(path[:end])
            if pos is not None:
                return pos
        return None, None


# Limits on what one file may hold. The whole 500 MW campus environment is under 40 KB and its
# deepest YAML path is 7 levels, so each limit is far above any real environment and far below
# what would make reading a file slow or unbounded.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32  # nested lists and mappings
MAX_NODES = 200_000  # values in a file after aliases are expanded (a billion-laughs file has 10^9)
MAX_INT_DIGITS = 18  # no count, size or power figure of a campus needs 10^18

# YAML 1.2's core schema: `yes`, `on`, `0755`, `1:20` and `2026-01-01` stay text (YAML 1.1 and
# PyYAML's default make them booleans, octal or base-60 numbers and dates); the models turn
# text into a number only where a field takes one, and then say so when it is not one.
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9_]+(?:\.[0-9]*)?$")
_DIGITS = re.compile(rf"^[-+]?[0-9]{{{MAX_INT_DIGITS + 1},}}$")
# what YAML itself refuses in a stream (PyYAML raises a bare ReaderError on it)
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_STANDARD_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")}


class _CoreLoader(_Loader):  # type: ignore[misc,valid-type]
    yaml_implicit_resolvers: typing.ClassVar[dict[Any, Any]] = {}


for _tag, _regexp, _first in (
    ("bool", _BOOL, "tTfF"),
    ("int", _INT, "-+0123456789"),
    ("float", _FLOAT, "-+0123456789."),
    ("null", _NULL, ["~", "n", "N", ""]),
):
    _CoreLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", _regexp, list(_first))


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _read(file: Path, doc: str, source: SourceDoc, issues: list[ConfigIssue]) -> str | None:
    """The file's text, if it is a regular UTF-8 file of bounded size holding only printable characters.

    Checked before reading: a FIFO, a device (or a link to one) or a directory is refused rather than read.
    """

    def refuse(message: str, fix: str, at: tuple[int, int] | None = None) -> None:
        where: Loc = ()
        if at is not None:
            where = ("<syntax>",)
            source.positions[where] = at
        issues.append(ConfigIssue(doc, where, message, fix))

    try:
        data = read_regular(
            file,
            MAX_FILE_BYTES,
            "UTF-8 text file",
            too_large="an environment file holds a few kilobytes; split it or remove what does not belong",
        )
    except InputFileError as exc:
        refuse(exc.problem, exc.fix)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        refuse(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
            "save the file as UTF-8",
            (line, exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1),
        )
        return None
    text = text.removeprefix("\ufeff")
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        refuse(
            f"a control character (U+{ord(bad.group()):04X}) is in the file; YAML allows none, comments included",
            "delete it; inside a double-quoted string write it as an escape such as \\t",
            _line_col(text, bad.start()),
        )
        return None
    return text


def bounded_yaml(text: str | bytes, strict: bool = True) -> tuple[str, str, Any] | None:
    """The first reason this YAML stream would not be bounded to build, as (problem, fix, mark), or None.

    One walk over the parser's events, building nothing: nesting deeper than MAX_DEPTH, more than
    MAX_NODES values once aliases are expanded, an alias inside the value it names. `strict` (an
    environment) also refuses explicit tags, integers of more than MAX_INT_DIGITS digits and numbers
    with a leading zero. A syntax error is left to the caller's loader, which reports it in context.
    """
    sizes: dict[str, int] = {}  # an anchor's expanded size
    stack: list[list[Any]] = [[None, 0]]  # [anchor, values so far] per open collection
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                if event.anchor not in sizes:
                    if any(frame[0] == event.anchor for frame in stack):
                        return (
                            f"alias *{event.anchor} refers to the value that contains it",
                            "write the value out; a value cannot contain itself",
                            event.start_mark,
                        )
                    continue  # undefined: the loader says so
                stack[-1][1] += sizes[event.anchor]
            elif isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
                tag = event.tag
                if strict and tag is not None and tag != "!" and tag not in _STANDARD_TAGS:
                    return (
                        f"YAML tag `{tag.replace('tag:yaml.org,2002:', '!!')}` is not allowed here",
                        "use plain YAML values: no tags (!...), binary or Python objects",
                        event.start_mark,
                    )
                if isinstance(event, yaml.ScalarEvent):
                    if strict and not event.style and _LEADING_ZERO.match(event.value):
                        return (
                            f"`{event.value}` is a number with a leading zero (YAML 1.1 reads it as octal, YAML 1.2 as decimal)",
                            "write the number without its leading zeros, or quote it if it is text",
                            event.start_mark,
                        )
                    if strict and not event.style and _DIGITS.match(event.value):
                        return (
                            f"a number of {len(event.value.lstrip('+-'))} digits",
                            f"no figure of a campus has more than {MAX_INT_DIGITS} digits; correct the value",
                            event.start_mark,
                        )
                    if event.anchor is not None:
                        sizes[event.anchor] = 1
                    stack[-1][1] += 1
                else:
                    stack.append([event.anchor, 1])
                    if len(stack) - 1 > MAX_DEPTH:
                        return (
                            f"lists and mappings nested more than {MAX_DEPTH} deep",
                            "flatten the value; nothing kasbah reads or writes is that deep",
                            event.start_mark,
                        )
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, count = stack.pop()
                if anchor is not None:
                    sizes[anchor] = count
                stack[-1][1] += count
            else:
                continue
            if stack[-1][1] > MAX_NODES or stack[0][1] > MAX_NODES:
                return (
                    f"the file expands to more than {MAX_NODES:,} values (aliases included)",
                    "write fewer values; an alias of an alias multiplies what it repeats",
                    event.start_mark,
                )
    except yaml.YAMLError:
        return None
    return None


def _scan(text: str, doc: str, source: SourceDoc, issues: list[ConfigIssue]) -> bool:
    """Refuse, located, what `bounded_yaml` finds; True if the file passed."""
    found = bounded_yaml(text)
    if found is None:
        return True
    problem, fix, mark = found
    source.positions[("<syntax>",)] = (mark.line + 1, mark.column + 1)
    issues.append(ConfigIssue(doc, ("<syntax>",), problem, fix))
    return False


def parse(file: Path, doc: str, issues: list[ConfigIssue]) -> tuple[Any, SourceDoc] | None:
    """Parse one YAML file; record duplicate keys and syntax errors as issues. None if there is no such file."""
    source = SourceDoc(file)
    try:
        text = _read(file, doc, source, issues)
    except FileNotFoundError:
        return None
    if text is None or not _scan(text, doc, source, issues):
        return None, source
    try:
        node = yaml.compose(text, Loader=_CoreLoader)
    except yaml.MarkedYAMLError as exc:
        # PyYAML notices a missing ':' or an unclosed bracket on a later line; the construct it
        # was reading (the context) starts where the mistake is.
        marks = [m for m in (exc.context_mark, exc.problem_mark) if m is not None]
        where: Loc = ()
        problem = exc.problem or "invalid YAML"
        if marks:
            first = min(marks, key=lambda m: (m.line, m.column))
            source.positions[("<syntax>",)] = (first.line + 1, first.column + 1)
            where = ("<syntax>",)
            if exc.context and exc.problem_mark is not None and first is not exc.problem_mark:
                problem += f" (noticed at line {exc.problem_mark.line + 1}, {exc.context})"
        issues.append(
            ConfigIssue(
                doc,
                where,
                f"YAML syntax error: {problem}",
                "fix the YAML at this line: indentation, quotes, a missing ':' or a closing bracket",
            )
        )
        return None, source
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
        issues.append(
            ConfigIssue(
                doc,
                (),
                "the file holds nothing (it is empty, or only `---`, `null` or comments)",
                "see the shipped environments for what it must hold",
            )
        )
        return None, source
    before = len(issues)
    _walk(node, (), source, doc, issues)
    if len(issues) > before:
        return None, source
    try:
        return yaml.load(text, Loader=_CoreLoader), source
    except yaml.MarkedYAMLError as exc:  # a tag the scan let through that no constructor knows
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            source.positions[("<syntax>",)] = (mark.line + 1, mark.column + 1)
        issues.append(
            ConfigIssue(
                doc,
                ("<syntax>",),
                f"YAML value not allowed here: {exc.problem or exc}",
                "use plain YAML values: no tags (!...), binary or Python objects",
            )
        )
        return None, source


def _at_key(
    key: yaml.Node, path: Loc, source: SourceDoc, doc: str, issues: list[ConfigIssue], message: str, fix: str
) -> None:
    """An issue about a mapping key itself, located at the key."""
    source.positions[path] = (key.start_mark.line + 1, key.start_mark.column + 1)
    issues.append(ConfigIssue(doc, path, message, fix))


def _walk(node: yaml.Node, path: Loc, source: SourceDoc, doc: str, issues: list[ConfigIssue]) -> None:
    source.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                _at_key(
                    key_node,
                    (*path, "<complex-key>"),
                    source,
                    doc,
                    issues,
                    "a key that is a list or a mapping",
                    "keys are plain words; write `name: value`",
                )
                continue
            key = key_node.value
            child = (*path, key)
            if key in seen:
                _at_key(
                    key_node,
                    (*child, "<duplicate>"),
                    source,
                    doc,
                    issues,
                    f"key `{key}` appears twice in this mapping",
                    "keep one of them; YAML keeps only the last, silently",
                )
            seen.add(key)
            _walk(value_node, child, source, doc, issues)
            # extra keys are reported at the key itself
            source.positions.setdefault(
                (*child, "<key>"), (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            )
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), source, doc, issues)
