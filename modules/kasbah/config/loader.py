"""Reads an environment directory into validated models, with every problem located by file and line."""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from kasbah.config.files import InputFileError, read_regular
from kasbah.config.issues import (
    SITE_DOC,
    ConfigError,
    ConfigIssue,
    Loc,
    LocatedIssue,
    yaml_path,
)
from kasbah.config.models import (
    PATTERN_HELP,
    Campus,
    Catalog,
    HardwareDocument,
    Phase,
    PhaseDocument,
    RackManifest,
    Site,
    SiteDocument,
)

SITE_FILE = "site.yaml"
PHASE_DIR = "phases"
HARDWARE_DIR = "hardware"  # one integrator's manifest a rack: hardware/<rack>.yaml

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
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


@dataclass(frozen=True)
class Environment:
    """A loaded environment: the campus description and where each part of it came from."""

    root: Path
    campus: Campus
    sources: dict[str, SourceDoc]

    @property
    def name(self) -> str:
        return self.root.name

    def locate(self, issue: ConfigIssue) -> LocatedIssue:
        return locate(self.sources, issue)


def locate(sources: dict[str, SourceDoc], issue: ConfigIssue) -> LocatedIssue:
    src = sources.get(issue.doc)
    if src is None:
        return LocatedIssue(Path(issue.doc), None, None, yaml_path(issue.path), issue.message, issue.fix)
    line, col = src.locate(issue.path)
    return LocatedIssue(src.file, line, col, yaml_path(issue.path), issue.message, issue.fix)


# --------------------------------------------------------------------------- YAML with positions


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


def _parse(file: Path, doc: str, issues: list[ConfigIssue]) -> tuple[Any, SourceDoc] | None:
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


# --------------------------------------------------------------------------- pydantic errors


def _field_model(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that holds the last element of `loc`, for listing allowed keys."""
    current: Any = model
    for part in loc[:-1]:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            current = info.annotation if info else None
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Strip Optional/Annotated so that the container or model type remains."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else args[0]
        else:
            return tp


def _pattern_help(err: Any) -> tuple[str, str]:
    pattern = str(err.get("ctx", {}).get("pattern", ""))
    return PATTERN_HELP.get(pattern, (f"of the form {pattern}", f"write a value matching {pattern}"))


def _fix_for(err: Any, root: type[BaseModel], loc: Loc) -> str:
    kind = err["type"]
    key = loc[-1] if loc else ""
    if kind == "missing":
        return f"add `{key}`"
    if kind == "extra_forbidden":
        holder = _field_model(root, loc)
        allowed = sorted(holder.model_fields) if holder else []
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        return f"{hint}remove or rename `{key}`; keys allowed here: {', '.join(allowed)}"
    if kind == "string_pattern_mismatch":
        return _pattern_help(err)[1]
    if kind == "string_type":
        return f'quote it, for example "{err.get("input")}" (YAML reads 1.30 as the number 1.3)'
    if kind in ("string_too_long", "string_too_short"):
        return "shorten or lengthen it to the limit given"
    if kind == "boolean_not_allowed":
        return "write the number or the text itself; quote text that YAML reads as a boolean, for example 'on'"
    if kind == "finite_number":
        return "give a finite number (YAML reads .inf and .nan as infinity and not-a-number)"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "give a whole number, without quotes or units"
    if kind in ("float_parsing", "float_type"):
        return "give a number, without quotes or units (MW, kW)"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "change the value to within the bound given"
    if kind == "enum":
        return "use one of the values listed"
    if kind in ("list_type", "too_short"):
        return "give a YAML list (lines starting with '- ') with at least the items required"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "give a mapping of keys to values here"
    if kind.startswith("ip_") and "address" in kind:
        return "give an IPv4 or IPv6 address, for example 10.72.1.2 (no prefix, no name)"
    if kind.startswith("ip_") or "network" in kind:
        return "give a network in CIDR form with its host bits zero, for example 10.0.0.0/12"
    return "correct the value"


def _is_key(part: str | int) -> bool:
    """Location parts that are YAML keys, not pydantic's names for union members or validators."""
    return isinstance(part, int) or (not any(c in part for c in "[](),") and part not in ("IPv4Network", "IPv6Network"))


def _short(value: Any) -> Any:
    """A given value as a message quotes it: long text cut, so that a refusal stays one readable line."""
    text = value if isinstance(value, str) else None
    if text is not None and len(text) > 80:
        return f"{text[:60]}… ({len(text):,} characters)"
    return value


def _message(err: Any, loc: Loc) -> str:
    kind = err["type"]
    key = loc[-1] if loc else ""
    given = _short(err.get("input"))
    if kind == "missing":
        return f"required key `{key}` is missing"
    if kind == "extra_forbidden":
        return f"unknown key `{key}`"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping of keys to values, got {_yaml_kind(given)}"
    if kind == "list_type":
        return f"expected a list, got {_yaml_kind(given)}"
    if kind == "string_type":
        return f"expected text, got {_yaml_kind(given)}"
    if kind.startswith("ip_") and "address" in kind:
        return f"`{given}` is not an IPv4 or IPv6 address"
    if kind.startswith("ip_") or "network" in kind:
        return f"`{given}` is not a valid IPv4 or IPv6 network in CIDR form (host bits must be zero)"
    ctx = err.get("ctx", {})
    if kind == "enum":
        return f"`{given}` is not one of: {ctx.get('expected', '')}"
    if kind == "string_pattern_mismatch":
        return f"`{given}` is not {_pattern_help(err)[0]}"
    if kind == "string_too_long":
        return f"`{given}` is longer than {ctx.get('max_length')} characters"
    bounds = {
        "greater_than": "above",
        "greater_than_equal": "at least",
        "less_than": "below",
        "less_than_equal": "at most",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        return f"`{given}` is out of range: it must be {bounds[kind]} {limit}"
    if kind == "boolean_not_allowed":
        return f"`{str(given).lower()}` is a boolean (YAML reads true/false and yes/no/on/off so), not a value of this field"
    if kind == "finite_number":
        return f"`{given}` is not a finite number"
    if kind in ("int_parsing", "int_type", "int_from_float", "float_parsing", "float_type"):
        return f"`{given}` is not {'a whole number' if kind.startswith('int') else 'a number'}"
    msg: str = err["msg"].removeprefix("Value error, ")
    return msg


def _yaml_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} `{value}`"


def _pydantic_issues(exc: ValidationError, doc: str, root: type[BaseModel]) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    seen: set[Loc] = set()
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(p for p in err["loc"] if _is_key(p))
        if loc in seen:
            continue  # an IPv4|IPv6 union reports each member for one value
        seen.add(loc)
        msg = _message(err, loc)
        fix = _fix_for(err, root, loc)
        if "; fix: " in msg:  # validators state the fix after the problem
            msg, fix = msg.split("; fix: ", 1)
        path = (*loc, "<key>") if err["type"] == "extra_forbidden" else loc
        out.append(ConfigIssue(doc, path, msg, fix))
    # a misspelt required key is one mistake: report the unknown key (with its did-you-mean),
    # not also the missing one it was meant to be
    meant = {
        (*i.path[:-2], i.fix.split("`")[1])
        for i in out
        if i.path[-1:] == ("<key>",) and i.fix.startswith("did you mean")
    }
    return [i for i in out if not (i.message.startswith("required key") and i.path in meant)]


# --------------------------------------------------------------------------- the environment


def load_environment(root: Path | str) -> Environment:
    """Load and validate `root/site.yaml` and every phase it lists; raise ConfigError with all problems."""
    root = Path(root)
    issues: list[ConfigIssue] = []
    sources: dict[str, SourceDoc] = {SITE_DOC: SourceDoc(root / SITE_FILE)}

    if not root.is_dir():
        raise ConfigError(
            [
                LocatedIssue(
                    root,
                    None,
                    None,
                    "",
                    "no such environment directory",
                    "give the path of a directory holding site.yaml, for example environments/campus",
                    scope="",
                )
            ]
        )

    parsed = _parse(root / SITE_FILE, SITE_DOC, issues)
    if parsed is None:
        raise ConfigError(
            [
                LocatedIssue(
                    root / SITE_FILE,
                    None,
                    None,
                    "",
                    "site.yaml is missing",
                    "create it; see environments/tiny/site.yaml for a small example",
                )
            ]
        )
    raw_site, sources[SITE_DOC] = parsed
    site_doc: SiteDocument | None = None
    if raw_site is not None:
        try:
            site_doc = SiteDocument.model_validate(raw_site)
        except ValidationError as exc:
            issues.extend(_pydantic_issues(exc, SITE_DOC, SiteDocument))

    phases: list[Phase] = []
    listed: list[str] = []
    if site_doc is not None:
        listed = site_doc.site.phases
    elif isinstance(raw_site, dict) and isinstance(raw_site.get("site"), dict):
        declared = raw_site["site"].get("phases")
        # only valid phase names become file paths
        if isinstance(declared, list) and all(isinstance(n, str) and _NAME.fullmatch(n) for n in declared):
            listed = declared
    if listed:
        for i, name in enumerate(listed):
            if name in listed[:i]:
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        ("site", "phases", i),
                        f"phase `{name}` is listed twice",
                        "list each phase once, in build order",
                    )
                )
                continue
            file = root / PHASE_DIR / f"{name}.yaml"
            got = _parse(file, name, issues)
            if got is None:
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        ("site", "phases", i),
                        f"phase `{name}` has no file {PHASE_DIR}/{name}.yaml",
                        f"create {file} or remove `{name}` from site.phases",
                    )
                )
                continue
            raw, sources[name] = got
            if raw is None:
                continue
            try:
                doc = PhaseDocument.model_validate(raw)
            except ValidationError as exc:
                issues.extend(_pydantic_issues(exc, name, PhaseDocument))
                continue
            if doc.phase.name != name:
                issues.append(
                    ConfigIssue(
                        name,
                        ("phase", "name"),
                        f"the file is {name}.yaml but names phase `{doc.phase.name}`",
                        f"set phase.name to `{name}` or rename the file",
                    )
                )
            phases.append(doc.phase)
    phase_dir = root / PHASE_DIR
    if phase_dir.is_dir():
        for extra in sorted(phase_dir.glob("*.yaml")):
            if extra.stem not in listed and listed:
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        ("site", "phases"),
                        f"{PHASE_DIR}/{extra.name} is not listed in site.phases",
                        f"add `{extra.stem}` to site.phases in build order, or delete the file",
                    )
                )

    hardware = _load_hardware(root / HARDWARE_DIR, sources, issues)

    if issues or site_doc is None:
        raise ConfigError(locate(sources, i) for i in issues)

    campus = Campus(site=site_doc.site, catalog=site_doc.catalog, phases=tuple(phases), hardware=hardware)
    env = Environment(root=root, campus=campus, sources=sources)
    # imported here: validation depends on the loaded models, the loader must not depend on planning
    from kasbah.config.validate import check_campus

    static = check_campus(campus)
    if static:
        raise ConfigError(env.locate(i) for i in static)
    return env


def hardware_doc(rack_file: str) -> str:
    """The document name of a hardware manifest (how issues and the Plan name it)."""
    return f"{HARDWARE_DIR}/{rack_file}"


def _load_hardware(folder: Path, sources: dict[str, SourceDoc], issues: list[ConfigIssue]) -> tuple[RackManifest, ...]:
    """Every `hardware/<rack>.yaml`, in name order; a manifest's file name is its rack."""
    if not folder.is_dir():
        return ()
    out: list[RackManifest] = []
    for file in sorted(folder.iterdir()):
        doc = hardware_doc(file.name)
        if file.suffix != ".yaml" or not file.is_file():
            sources[doc] = SourceDoc(file)
            issues.append(
                ConfigIssue(
                    doc,
                    (),
                    "not a hardware manifest (only <rack>.yaml files belong here)",
                    "remove it or rename it to <rack>.yaml",
                )
            )
            continue
        got = _parse(file, doc, issues)
        if got is None:
            continue
        raw, sources[doc] = got
        if raw is None:
            continue
        try:
            manifest = HardwareDocument.model_validate(raw).hardware
        except ValidationError as exc:
            issues.extend(_pydantic_issues(exc, doc, HardwareDocument))
            continue
        if manifest.rack != file.stem:
            issues.append(
                ConfigIssue(
                    doc,
                    ("hardware", "rack"),
                    f"the file is {file.name} but describes rack `{manifest.rack}`",
                    f"name the file {manifest.rack}.yaml, or set hardware.rack to `{file.stem}`",
                )
            )
            continue
        out.append(manifest)
    return tuple(out)


__all__ = ["Campus", "Catalog", "Environment", "Site", "load_environment"]
