"""jsonschema-rs errors in kasbah's words, each at the path of the value it is about.

An error names its kind, the value's path and the keyword's place in the schema the pre-pass
wrote; the node that keyword sits in carries what the message needs under `x-kasbah-*` keys.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote

import jsonschema_rs

from kasbah.verification.schema.kubernetes import (
    Found,
    Path,
    format_problem,
    got,
    name_list,
    path_text,
    pattern_words,
    show,
)
from kasbah.verification.schema.spine import duplicates

__all__ = ["ENUM", "FORMAT", "KNOWN", "MARK", "PATTERN", "Reader", "unknown_field"]

MARK = "x-kasbah"  # int-or-string | quantity | unknown: which words a type error gets
KNOWN = "x-kasbah-known"  # on an unknown-field node: the declared fields
ENUM = "x-kasbah-enum"
PATTERN = "x-kasbah-pattern"
FORMAT = "x-kasbah-format"  # int32/int64, written as bounds


_Kind = jsonschema_rs.ValidationErrorKind


class Reader:
    """jsonschema-rs errors in kasbah's words, each at the path of the value it is about."""

    def __init__(self, document: Callable[[str], Mapping[str, Any]]) -> None:
        self._document = document  # the schema the pre-pass wrote, by its URI
        self._nodes: dict[str, Mapping[str, Any]] = {}

    def read(self, errors: Iterable[jsonschema_rs.ValidationError], obj: Any) -> Found:
        """The errors' issues; obj is the object as given (values are shown as they were written)."""
        located = []
        typed: set[tuple[Path, str]] = set()
        for error in errors:
            path, value = _locate(obj, error.instance_path, error.instance)
            at, _, keyword = (error.absolute_keyword_location or "").rpartition("/")
            located.append((error, path, value, at, keyword))
            if isinstance(error.kind, _Kind.Type):
                typed.add((path, at))
        out: Found = []
        for error, path, value, at, keyword in located:
            # once the type is wrong, the node's other keywords would only repeat the same mistake
            if (path, at) in typed and not isinstance(error.kind, _Kind.Type):
                continue
            out.extend(self._words(error, path, value, self._node(at), keyword, obj))
        return out

    def _node(self, at: str) -> Mapping[str, Any]:
        found = self._nodes.get(at)
        if found is None:
            uri, _, pointer = at.partition("#")
            node: Any = self._document(uri)
            for part in pointer.split("/")[1:]:
                key = unquote(part).replace("~1", "/").replace("~0", "~")
                node = node[int(key)] if isinstance(node, list) else node.get(key, {})
            found = self._nodes[at] = node if isinstance(node, Mapping) else {}
        return found

    def _words(self, error: Any, path: Path, value: Any, node: Mapping[str, Any], keyword: str, obj: Any) -> Found:
        kind = error.kind
        if isinstance(kind, _Kind.Type):
            return [(path, _type_words(node, value, path))]
        if isinstance(kind, _Kind.FalseSchema):
            return [(path, "required field is null")]
        if isinstance(kind, _Kind.Required):
            return [((*path, kind.property), "required field is missing")]
        if isinstance(kind, _Kind.Enum):
            return [] if value is None else [(path, f"{show(value)} is not one of: {node.get(ENUM)}")]
        if isinstance(kind, _Kind.Pattern):
            return [(path, f"{show(value)} {node.get(PATTERN) or pattern_words(kind.pattern)}")]
        if isinstance(kind, _Kind.Format):
            problem = format_problem(kind.format.removeprefix("k8s-"), value)
            return [] if problem is None else [(path, problem)]  # a YAML date passes, as it did
        if isinstance(kind, _Kind.UniqueItems) and isinstance(value, list | tuple):
            return duplicates(value, None, path)
        if isinstance(kind, _Kind.AnyOf | _Kind.OneOfNotValid | _Kind.OneOfMultipleValid):
            return [] if value is None else [(path, self._junctor_words(error, node, keyword, value, obj))]
        if isinstance(kind, _Kind.Not):
            return [(path, f"{show(value)} matches a schema it must not match")]
        limit = node.get(keyword, getattr(kind, "limit", None))
        if isinstance(kind, _Kind.Minimum | _Kind.Maximum) and FORMAT in node:
            problem = format_problem(str(node[FORMAT]), value)
            if problem is not None:
                return [(path, problem)]
        size = len(value) if isinstance(value, str | list | tuple | Mapping) else 0
        words = {
            "minimum": f"must be at least {limit} (got {value})",
            "exclusiveMinimum": f"must be greater than {limit} (got {value})",
            "maximum": f"must be at most {limit} (got {value})",
            "exclusiveMaximum": f"must be less than {limit} (got {value})",
            "multipleOf": f"must be a multiple of {limit} (got {value})",
            "minLength": f"{show(value)} is shorter than {limit} character(s)",
            "maxLength": f"{show(value)} is longer than {limit} characters ({size})",
            "minItems": f"must have at least {limit} item(s) (has {size})",
            "maxItems": f"must have at most {limit} items (has {size})",
            "minProperties": f"must have at least {limit} field(s) (has {size})",
            "maxProperties": f"must have at most {limit} fields (has {size})",
        }
        return [(path, words.get(keyword, str(error.message)))]

    def _junctor_words(self, error: Any, node: Mapping[str, Any], keyword: str, value: Any, obj: Any) -> str:
        info = node.get(f"x-kasbah-{keyword}") or {}
        count = len(node.get(keyword) or ())
        required: list[list[str]] | None = info.get("required")
        if required is not None:
            choices = [" + ".join(names) for names in required]
            if isinstance(value, Mapping):
                present = [
                    c
                    for c, names in zip(choices, required, strict=True)
                    if all(value.get(n) is not None for n in names)
                ]
            else:
                present = choices
            if present:
                return f"set only one of {name_list(choices)} (found {', '.join(present)})"
            return f"set {'exactly' if keyword == 'oneOf' else 'at least'} one of: {name_list(choices)}"
        if isinstance(error.kind, _Kind.OneOfMultipleValid):
            return f"{show(value)} matches more than one of the {count} alternatives"
        if info.get("types"):
            return f"expected {info['types']}, {got(value)}"
        trials = [self.read(branch, obj) for branch in error.kind.context]
        first = min(trials, key=len) if trials else []
        detail = "; ".join(f"{path_text(p) or 'value'}: {m}" for p, m in first[:2])
        return f"matches none of the {count} allowed forms (closest: {detail})"


def _type_words(node: Mapping[str, Any], value: Any, path: Path) -> str:
    mark = node.get(MARK)
    if mark == "unknown":
        return unknown_field(str(path[-1]) if path else "", node.get(KNOWN) or [])
    if mark == "int-or-string":
        return f"expected an integer or a string, {got(value)}"
    if mark == "quantity":
        return f"expected a quantity (string or number), {got(value)}"
    types = node.get("type")
    expected = " or ".join(t for t in ([types] if isinstance(types, str) else types or ()) if t != "null")
    return f"expected {expected}, {got(value)}"


def unknown_field(key: str, known: list[str]) -> str:
    if not known:
        return f"unknown field {json.dumps(key)}: this object takes no fields here"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    if close:
        return f"unknown field {json.dumps(key)} (did you mean {json.dumps(close[0])}?)"
    return f"unknown field {json.dumps(key)}; allowed fields: {name_list(known)}"


def _locate(obj: Any, raw: Iterable[str | int], fallback: Any) -> tuple[Path, Any]:
    """The path of an error's value (a key that looks like a number stays a key) and the value as written."""
    path: list[str | int] = []
    value = obj
    for step in raw:
        if isinstance(value, Mapping):
            key = str(step)
            if key not in value:  # a key that is not a string, in a YAML-loaded object
                key_of = {str(k): k for k in value}
                if key not in key_of:
                    return tuple(raw), fallback
                value = value[key_of[key]]
            else:
                value = value[key]
            path.append(key)
        elif isinstance(value, list | tuple) and isinstance(step, int) and 0 <= step < len(value):
            value = value[step]
            path.append(step)
        else:
            return tuple(raw), fallback
    return tuple(path), value
