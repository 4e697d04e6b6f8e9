"""Validates rendered Kubernetes objects against the upstream OpenAPI and CRD schemas, as the API server would."""

from __future__ import annotations

import binascii
import difflib
import functools
import importlib.util
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeAlias

__all__ = [
    "SchemaIssue",
    "SchemaValidator",
    "UnsupportedKubernetesVersionError",
    "supported_kubernetes_versions",
]


@dataclass(frozen=True, slots=True)
class SchemaIssue:
    """One way an object would be refused (or silently changed) by the API server."""

    source: str
    kind: str
    name: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        what = f"{self.kind or '?'}/{self.name}" if self.name else (self.kind or "object")
        at = f" at {self.path}" if self.path else ""
        return f"{where}{what}{at}: {self.message}"


class UnsupportedKubernetesVersionError(ValueError):
    """The requested Kubernetes minor version has no upstream schema here."""


# --------------------------------------------------------------------------------------------
# Paths and messages. A path is a linked list of (parent, key) so that descending into an
# object costs one small tuple; the dotted text is only built for objects that have an issue.

_Path: TypeAlias = "tuple[_Path, str | int] | None"
_Sink: TypeAlias = list[tuple[_Path, str]]
_Check: TypeAlias = Callable[[Any, _Path, _Sink], None]

_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_SHOWN_CHARS = 60
_LISTED_NAMES = 12


def _path_text(path: _Path) -> str:
    keys: list[str | int] = []
    while path is not None:
        path, key = path
        keys.append(key)
    text = ""
    for key in reversed(keys):
        if isinstance(key, int):
            text += f"[{key}]"
        elif _PLAIN_KEY.match(key):
            text += f".{key}" if text else key
        else:
            text += f"[{json.dumps(key)}]"
    return text


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str | date):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _show(value: Any) -> str:
    """A short, truncated rendering of a value for a message."""
    if isinstance(value, Mapping):
        keys = ", ".join(str(k) for k in list(value)[:5])
        more = ", …" if len(value) > 5 else ""
        return f"{{{keys}{more}}}"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, date):
        value = value.isoformat()
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _got(value: Any) -> str:
    return f"got {_type_name(value)} {_show(value)}" if value is not None else "got null"


def _name_list(names: Iterable[str]) -> str:
    items = [str(n) for n in names]
    shown = ", ".join(items[:_LISTED_NAMES])
    return shown + (f", … ({len(items)} in all)" if len(items) > _LISTED_NAMES else "")


# --------------------------------------------------------------------------------------------
# Value checks shared by the compiler and the metadata rules.

_QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_RE: Final = re.compile(_QUANTITY)
_DNS1123_LABEL_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL_RE: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME_RE: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_RFC3339_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID_RE: Final = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_ANNOTATIONS_MAX_BYTES = 256 * 1024

# Friendlier words for patterns that recur across upstream schemas.
_PATTERN_WORDS: Final = {
    _QUANTITY: "is not a valid quantity (examples: 500m, 4, 1.5, 16Gi, 2Ti)",
    _DNS1123_SUBDOMAIN_RE.pattern: "must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')",
    _DNS1123_LABEL_RE.pattern: "must be a DNS-1123 label (lowercase letters, digits and '-')",
}


def _dns_subdomain_problem(value: str) -> str | None:
    if len(value) > 253:
        return f"must be no more than 253 characters (has {len(value)})"
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        return "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
    return None


def _dns_label_problem(value: str) -> str | None:
    if len(value) > 63:
        return f"must be no more than 63 characters (has {len(value)})"
    if not _DNS1123_LABEL_RE.match(value):
        return "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"
    return None


def _dns1035_label_problem(value: str) -> str | None:
    if len(value) > 63:
        return f"must be no more than 63 characters (has {len(value)})"
    if not _DNS1035_LABEL_RE.match(value):
        return "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter"
    return None


def _path_segment_problem(value: str) -> str | None:
    if value in (".", ".."):
        return f"may not be {value!r}"
    for bad in ("/", "%"):
        if bad in value:
            return f"may not contain {bad!r}"
    return None


def _qualified_name_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "prefix before '/' must not be empty"
    if slash and (problem := _dns_subdomain_problem(prefix)) is not None:
        return f"prefix {prefix!r} {problem}"
    if not name:
        return "name part must not be empty"
    if len(name) > 63:
        return f"name part must be no more than 63 characters (has {len(name)})"
    if not _QUALIFIED_NAME_RE.match(name):
        return "name part must consist of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
    return None


def _format_problem(fmt: str, value: Any) -> str | None:
    """The API server's check for the formats it enforces; unknown formats are accepted."""
    if fmt in ("int32", "int64"):
        if isinstance(value, int) and not isinstance(value, bool):
            low, high = _INT32 if fmt == "int32" else _INT64
            if not low <= value <= high:
                return f"{value} does not fit in {fmt} ({low}..{high})"
        return None
    if isinstance(value, date):
        return None
    if not isinstance(value, str):
        return None
    problem: str | None = None
    if fmt == "date-time":
        problem = None if _RFC3339_RE.match(value) else "is not an RFC 3339 date-time (e.g. 2025-01-31T12:00:00Z)"
    elif fmt == "date":
        problem = None if _DATE_RE.match(value) else "is not a date (YYYY-MM-DD)"
    elif fmt == "uuid":
        problem = None if _UUID_RE.match(value) else "is not a UUID"
    elif fmt == "byte":
        try:
            binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError):
            problem = "is not valid base64 (encode the value, or use stringData)"
    elif fmt in ("ipv4", "ipv6"):
        try:
            address = ipaddress.ip_address(value)
            if address.version != int(fmt[-1]):
                problem = f"is not an {fmt.upper()} address"
        except ValueError:
            problem = f"is not an {fmt.upper()} address"
    elif fmt == "cidr":
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            problem = "is not a CIDR (e.g. 10.0.0.0/8)"
    return None if problem is None else f"{_show(value)} {problem}"


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an upstream (RE2/ECMA) pattern; Python wants inline flags such as (?i) up front."""
    flags = 0
    inline = re.compile(r"\(\?([imsx]+)\)")
    for found in inline.findall(pattern):
        for letter in found:
            flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}[letter]
    return re.compile(inline.sub("", pattern), flags)


# --------------------------------------------------------------------------------------------
# The compiler: turns a schema node into one closure, once, so that validating an object is a
# walk over the object, not over the schema. Three modes: CORE follows the upstream OpenAPI
# document literally (the strict variant already says additionalProperties: false);
# STRUCTURAL is a CRD schema where undeclared fields are unknown (pruned or, with strict field
# validation, rejected); VALUE is inside anyOf/oneOf/allOf/not, which in a structural schema
# only constrain values and never declare fields.

_CORE, _STRUCTURAL, _VALUE = 0, 1, 2

_INT_OR_STRING_DEF = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_OBJECT_META_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_EMBEDDED_IMPLICIT = frozenset({"apiVersion", "kind", "metadata"})

# Keywords that only document or that the API server does not evaluate from the schema.
_IGNORED_KEYWORDS = frozenset(
    {
        "description",
        "default",
        "example",
        "title",
        "externalDocs",
        "$schema",
        "$id",
        "x-kubernetes-group-version-kind",
        "x-kubernetes-patch-strategy",
        "x-kubernetes-patch-merge-key",
        "x-kubernetes-map-type",
        "x-kubernetes-unions",
        "x-kubernetes-list-map-keys",
    }
)


# The exact-type test first: rendered objects are plain dicts, lists and strings, and an
# isinstance() against the Mapping ABC costs several times more.
def _is_int(value: Any) -> bool:
    kind = type(value)
    return kind is int or (kind is not bool and isinstance(value, int))


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is float or (kind is not bool and isinstance(value, int | float))


def _is_string(value: Any) -> bool:
    # YAML loaders turn unquoted timestamps into dates; kubectl sends them as strings.
    return type(value) is str or isinstance(value, str | date)


def _is_object(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _is_array(value: Any) -> bool:
    return type(value) is list or isinstance(value, list | tuple)


_TYPE_TESTS: Final[dict[str, Callable[[Any], bool]]] = {
    "string": _is_string,
    "integer": _is_int,
    "number": _is_number,
    "boolean": lambda v: v is True or v is False,
    "object": _is_object,
    "array": _is_array,
}


def _no_check(value: Any, path: _Path, out: _Sink) -> None:
    return None


def _int_or_string(value: Any, path: _Path, out: _Sink) -> None:
    if value is not None and not _is_int(value) and not _is_string(value):
        out.append((path, f"expected an integer or a string, {_got(value)}"))


def _quantity(value: Any, path: _Path, out: _Sink) -> None:
    if value is None or _is_number(value):
        return
    if isinstance(value, str):
        if not _QUANTITY_RE.match(value):
            out.append((path, f"{_show(value)} {_PATTERN_WORDS[_QUANTITY]}"))
        return
    out.append((path, f"expected a quantity (string or number), {_got(value)}"))


def _required_names(branch: Mapping[str, Any]) -> list[str] | None:
    """For junctor branches of the form {required: [x]} (optionally with empty property stubs)."""
    if set(branch) - {"required", "properties"}:
        return None
    required = branch.get("required")
    if not isinstance(required, list) or any(branch.get("properties", {}).get(name, {}) for name in required):
        return None
    return [str(name) for name in required]


class _Compiler:
    def __init__(self, definitions: Mapping[str, Any]) -> None:
        self._definitions = definitions
        # Keyed by id(); the node is kept alongside so that its id cannot be reused while cached.
        self._memo: dict[tuple[int, int], tuple[Mapping[str, Any], _Check]] = {}
        self._refs: dict[str, _Check] = {}

    def definition(self, name: str) -> _Check:
        if name in self._refs:
            return self._refs[name]
        if name == _INT_OR_STRING_DEF:
            self._refs[name] = _int_or_string
            return _int_or_string
        if name == _QUANTITY_DEF:
            self._refs[name] = _quantity
            return _quantity
        # Recursive definitions (JSONSchemaProps) call through a cell filled after compiling.
        cell: list[_Check] = []

        def forward(value: Any, path: _Path, out: _Sink) -> None:
            cell[0](value, path, out)

        self._refs[name] = forward
        compiled = self.compile(self._definitions[name], _CORE)
        cell.append(compiled)
        self._refs[name] = compiled
        return compiled

    def compile(self, node: Mapping[str, Any], mode: int) -> _Check:
        key = (id(node), mode)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = (node, self._build(node, mode))
        return found[1]

    def _build(self, node: Mapping[str, Any], mode: int) -> _Check:
        checks: list[_Check] = []
        int_or_string = bool(node.get("x-kubernetes-int-or-string"))
        raw_type = node.get("type")
        types = [raw_type] if isinstance(raw_type, str) else list(raw_type or [])
        nullable = "null" in types or bool(node.get("nullable"))
        types = [t for t in types if t != "null"]
        if int_or_string:
            types = ["integer", "string"]

        type_check = self._type_check(types, nullable)
        if type_check is not None:
            checks.append(type_check)
        ref = node.get("$ref")
        if isinstance(ref, str):
            checks.append(self.definition(ref.rsplit("/", 1)[-1]))
        checks.extend(self._value_checks(node))
        object_check = self._object_check(node, mode, types)
        if object_check is not None:
            checks.append(object_check)
        array_check = self._array_check(node, mode)
        if array_check is not None:
            checks.append(array_check)
        checks.extend(self._junctor_checks(node, int_or_string))

        # Unknown vendor extensions (x-…) carry no validation; an unknown JSON Schema keyword would
        # silently weaken the check, so it stops compilation instead.
        unknown = {k for k in node if not k.startswith("x-")} - _IGNORED_KEYWORDS - _HANDLED_KEYWORDS
        if unknown:
            raise ValueError(f"schema keyword(s) not supported by kasbah's validator: {sorted(unknown)}")
        # Object and array nodes are most of a manifest: one call instead of a type check plus a chain.
        if object_check is not None and checks == [type_check, object_check] and types == ["object"]:
            built = _typed(object_check, _is_object, "object", nullable)
        elif array_check is not None and checks == [type_check, array_check] and types == ["array"]:
            built = _typed(array_check, _is_array, "array", nullable)
        else:
            built = self._chain(checks, typed=type_check is not None)
        cel = _cel_check(node.get("x-kubernetes-validations"))
        return built if cel is None else _after_structure(built, cel)

    @staticmethod
    def _chain(checks: Sequence[_Check], *, typed: bool) -> _Check:
        if not checks:
            return _no_check
        if len(checks) == 1:
            return checks[0]
        first, rest = checks[0], tuple(checks[1:])
        if typed:
            # Once the type is wrong, the other keywords would only repeat the same mistake.
            def chained_typed(value: Any, path: _Path, out: _Sink) -> None:
                before = len(out)
                first(value, path, out)
                if len(out) != before:
                    return
                for check in rest:
                    check(value, path, out)

            return chained_typed

        def chained(value: Any, path: _Path, out: _Sink) -> None:
            first(value, path, out)
            for check in rest:
                check(value, path, out)

        return chained

    @staticmethod
    def _type_check(types: list[str], nullable: bool) -> _Check | None:
        if not types:
            return None
        tests = tuple(_TYPE_TESTS[t] for t in types)
        expected = " or ".join(types)
        if len(tests) == 1:
            test = tests[0]

            def one_type(value: Any, path: _Path, out: _Sink) -> None:
                if not test(value) and not (value is None and nullable):
                    out.append((path, f"expected {expected}, {_got(value)}"))

            return one_type

        def any_type(value: Any, path: _Path, out: _Sink) -> None:
            if not any(test(value) for test in tests) and not (value is None and nullable):
                out.append((path, f"expected {expected}, {_got(value)}"))

        return any_type

    @staticmethod
    def _value_checks(node: Mapping[str, Any]) -> list[_Check]:
        checks: list[_Check] = []
        if "enum" in node:
            allowed = [v.isoformat() if isinstance(v, date) else v for v in node["enum"]]
            # Keyed by (is-bool, value) so that true never passes for 1, nor 1 for true.
            allowed_keys = frozenset((isinstance(v, bool), v) for v in allowed if not isinstance(v, dict | list))
            words = _name_list(v if isinstance(v, str) else json.dumps(v) for v in allowed)

            def enum(value: Any, path: _Path, out: _Sink) -> None:
                if value is None:
                    return
                if isinstance(value, date):
                    value = value.isoformat()
                if isinstance(value, Mapping | list | tuple) or (isinstance(value, bool), value) not in allowed_keys:
                    out.append((path, f"{_show(value)} is not one of: {words}"))

            checks.append(enum)
        if "pattern" in node:
            pattern = str(node["pattern"])
            regex = _compile_pattern(pattern)
            shown = pattern if len(pattern) <= 80 else pattern[:79] + "…"
            words = _PATTERN_WORDS.get(pattern, f"does not match the pattern {shown}")
            if pattern.startswith("^(?:(?:25[0-5]"):
                words = "is not a valid IPv4 or IPv6 CIDR (e.g. 10.0.0.0/8, fd00::/8)"

            def matches(value: Any, path: _Path, out: _Sink) -> None:
                if isinstance(value, str) and not regex.search(value):
                    out.append((path, f"{_show(value)} {words}"))

            checks.append(matches)
        if "format" in node:
            fmt = str(node["format"])

            def formatted(value: Any, path: _Path, out: _Sink) -> None:
                problem = _format_problem(fmt, value)
                if problem is not None:
                    out.append((path, problem))

            checks.append(formatted)
        checks.extend(_Compiler._bound_checks(node))
        return checks

    @staticmethod
    def _bound_checks(node: Mapping[str, Any]) -> list[_Check]:
        checks: list[_Check] = []
        minimum, maximum = node.get("minimum"), node.get("maximum")
        exclusive_min, exclusive_max = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
        if minimum is not None or maximum is not None or exclusive_min is not None or exclusive_max is not None:
            # OpenAPI v3.0 (CRDs): exclusive* are booleans; JSON Schema 2020-12: numbers.
            if isinstance(exclusive_min, bool):
                low, low_open = minimum, exclusive_min
            else:
                low, low_open = (exclusive_min, True) if exclusive_min is not None else (minimum, False)
            if isinstance(exclusive_max, bool):
                high, high_open = maximum, exclusive_max
            else:
                high, high_open = (exclusive_max, True) if exclusive_max is not None else (maximum, False)

            def bounded(value: Any, path: _Path, out: _Sink) -> None:
                if not _is_number(value):
                    return
                if low is not None and (value < low or (low_open and value == low)):
                    out.append((path, f"must be {'greater than' if low_open else 'at least'} {low} (got {value})"))
                if high is not None and (value > high or (high_open and value == high)):
                    out.append((path, f"must be {'less than' if high_open else 'at most'} {high} (got {value})"))

            checks.append(bounded)
        if "multipleOf" in node:
            step = node["multipleOf"]

            def multiple(value: Any, path: _Path, out: _Sink) -> None:
                if _is_number(value) and value % step != 0:
                    out.append((path, f"must be a multiple of {step} (got {value})"))

            checks.append(multiple)
        min_length, max_length = node.get("minLength"), node.get("maxLength")
        if min_length is not None or max_length is not None:

            def length(value: Any, path: _Path, out: _Sink) -> None:
                if not isinstance(value, str):
                    return
                if min_length is not None and len(value) < min_length:
                    out.append((path, f"{_show(value)} is shorter than {min_length} character(s)"))
                if max_length is not None and len(value) > max_length:
                    out.append((path, f"{_show(value)} is longer than {max_length} characters ({len(value)})"))

            checks.append(length)
        min_items, max_items = node.get("minItems"), node.get("maxItems")
        if min_items is not None or max_items is not None:

            def items_count(value: Any, path: _Path, out: _Sink) -> None:
                if not isinstance(value, list | tuple):
                    return
                if min_items is not None and len(value) < min_items:
                    out.append((path, f"must have at least {min_items} item(s) (has {len(value)})"))
                if max_items is not None and len(value) > max_items:
                    out.append((path, f"must have at most {max_items} items (has {len(value)})"))

            checks.append(items_count)
        min_props, max_props = node.get("minProperties"), node.get("maxProperties")
        if min_props is not None or max_props is not None:

            def props_count(value: Any, path: _Path, out: _Sink) -> None:
                if not isinstance(value, Mapping):
                    return
                if min_props is not None and len(value) < min_props:
                    out.append((path, f"must have at least {min_props} field(s) (has {len(value)})"))
                if max_props is not None and len(value) > max_props:
                    out.append((path, f"must have at most {max_props} fields (has {len(value)})"))

            checks.append(props_count)
        return checks

    def _object_check(self, node: Mapping[str, Any], mode: int, types: list[str]) -> _Check | None:
        properties: Mapping[str, Any] = node.get("properties") or {}
        additional = node.get("additionalProperties")
        required = tuple(str(r) for r in node.get("required") or ())
        preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(node.get("x-kubernetes-embedded-resource"))
        is_object = "object" in types or bool(properties) or additional is not None or bool(required)
        if not is_object and not embedded:
            return None
        props = {name: self.compile(sub, mode) for name, sub in properties.items()}
        if embedded and mode != _VALUE:
            # The API server treats apiVersion, kind and metadata as declared on embedded objects.
            props.setdefault("apiVersion", self.compile({"type": "string"}, _CORE))
            props.setdefault("kind", self.compile({"type": "string"}, _CORE))
            props.setdefault("metadata", self.definition(_OBJECT_META_DEF))
        extra: _Check | None = None
        reject_unknown = False
        if isinstance(additional, Mapping):
            extra = self.compile(additional, mode)
        elif additional is False or (additional is None and mode == _STRUCTURAL and not preserve):
            reject_unknown = True
        known = sorted(props)

        def unknown_field(key: str) -> str:
            if not known:
                return f"unknown field {json.dumps(key)}: this object takes no fields here"
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
            if close:
                return f"unknown field {json.dumps(key)} (did you mean {json.dumps(close[0])}?)"
            return f"unknown field {json.dumps(key)}; allowed fields: {_name_list(known)}"

        def check_object(value: Any, path: _Path, out: _Sink) -> None:
            if type(value) is not dict and not isinstance(value, Mapping):
                return
            for name in required:
                if value.get(name) is None:
                    state = "is null" if name in value else "is missing"
                    out.append(((path, name), f"required field {state}"))
            for raw_key, sub in value.items():
                key = raw_key if isinstance(raw_key, str) else str(raw_key)
                if sub is None:
                    # The API server drops null fields (CRDs) or reads them as unset (built-in types).
                    continue
                check = props.get(key)
                if check is not None:
                    check(sub, (path, key), out)
                elif extra is not None:
                    extra(sub, (path, key), out)
                elif reject_unknown:
                    out.append(((path, key), unknown_field(key)))
            if embedded and mode != _VALUE:
                for name in ("apiVersion", "kind"):
                    if not value.get(name):
                        out.append(
                            ((path, name), "required field is missing (embedded objects need apiVersion and kind)")
                        )

        return check_object

    def _array_check(self, node: Mapping[str, Any], mode: int) -> _Check | None:
        items = node.get("items")
        list_type = node.get("x-kubernetes-list-type")
        checks: list[_Check] = []
        if isinstance(items, Mapping):
            item_check = self.compile(items, mode)

            def check_items(value: Any, path: _Path, out: _Sink) -> None:
                if type(value) is list or isinstance(value, tuple):
                    for index, item in enumerate(value):
                        item_check(item, (path, index), out)

            checks.append(check_items)
        # Built-in list types keep their own (looser) uniqueness rules in Go; CRD lists are
        # checked by the API server from these markers.
        if mode == _STRUCTURAL and list_type in ("set", "map"):
            map_keys = tuple(str(k) for k in node.get("x-kubernetes-list-map-keys") or ())
            checks.append(_unique_items(map_keys if list_type == "map" else None))
        if node.get("uniqueItems"):
            checks.append(_unique_items(None))
        return self._chain(checks, typed=False) if checks else None

    def _junctor_checks(self, node: Mapping[str, Any], int_or_string: bool) -> list[_Check]:
        checks: list[_Check] = []
        for keyword in ("anyOf", "oneOf"):
            branches = node.get(keyword)
            if not branches:
                continue
            if int_or_string and keyword == "anyOf" and all(set(b) == {"type"} for b in branches):
                continue  # the int-or-string type check already says it better
            compiled = [self.compile(branch, _VALUE) for branch in branches]
            names = [_required_names(branch) for branch in branches]
            checks.append(_junctor(keyword, compiled, names, branches))
        for branch in node.get("allOf") or ():
            checks.append(self.compile(branch, _VALUE))
        if "not" in node:
            negated = self.compile(node["not"], _VALUE)

            def check_not(value: Any, path: _Path, out: _Sink) -> None:
                trial: _Sink = []
                negated(value, path, trial)
                if not trial:
                    out.append((path, f"{_show(value)} matches a schema it must not match"))

            checks.append(check_not)
        return checks


_HANDLED_KEYWORDS = frozenset(
    {
        "$ref",
        "type",
        "nullable",
        "enum",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "uniqueItems",
        "properties",
        "additionalProperties",
        "required",
        "items",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-list-type",
    }
)


# ---------------------------------------------------------------------------- CEL rules


@functools.cache
def _cel_program(rule: str) -> Any:
    """A compiled CEL rule (cel-python); None where it does not compile here (reported, never passed over)."""
    import celpy  # imported on first use: only the CRDs that carry rules need it
    from celpy.celparser import CELParseError

    env = celpy.Environment()
    try:
        return env.program(env.compile(rule))
    except CELParseError:
        return None


def _cel_check(rules: Any) -> _Check | None:
    """The CRD's `x-kubernetes-validations`, evaluated as the API server does on create.

    A rule that mentions `oldSelf` is a transition rule, which the API server evaluates on update
    only: a new object passes it. Each other rule is evaluated with `self` bound to the value; a rule
    that is false is reported with its message, one that cannot be evaluated with why.
    """
    if not isinstance(rules, list):
        return None
    compiled = []
    for r in rules:
        rule = str(r.get("rule", "")) if isinstance(r, dict) else ""
        if not rule or re.search(r"\boldSelf\b", rule):
            continue
        message = str(r.get("message") or f"failed rule: {rule}")
        compiled.append((rule, message, _cel_program(rule)))
    if not compiled:
        return None

    def check(value: Any, path: _Path, out: _Sink) -> None:
        from celpy.adapter import json_to_cel
        from celpy.celtypes import BoolType
        from celpy.evaluation import CELEvalError

        bound = {"self": json_to_cel(value)}
        for rule, message, program in compiled:
            if program is None:
                out.append((path, f"CEL rule `{rule}` does not compile with cel-python; the check cannot be made"))
                continue
            try:
                result = program.evaluate(bound)
            except CELEvalError as exc:
                out.append((path, f"CEL rule `{rule}` cannot be evaluated: {exc.args[0] if exc.args else exc}"))
                continue
            if isinstance(result, CELEvalError):
                out.append(
                    (path, f"CEL rule `{rule}` cannot be evaluated: {result.args[0] if result.args else result}")
                )
            elif result is not True and not (isinstance(result, BoolType) and bool(result)):
                out.append((path, f"{message} (CEL: {rule})"))

    return check


def _after_structure(structural: _Check, cel: _Check) -> _Check:
    """CEL runs only on a value the structural schema accepted, as in the API server."""

    def check(value: Any, path: _Path, out: _Sink) -> None:
        before = len(out)
        structural(value, path, out)
        if len(out) == before:
            cel(value, path, out)

    return check


def _typed(check: _Check, test: Callable[[Any], bool], expected: str, nullable: bool) -> _Check:
    """The type test and the structure check of an object or array node in one call."""

    def typed(value: Any, path: _Path, out: _Sink) -> None:
        if test(value):
            check(value, path, out)
        elif not (value is None and nullable):
            out.append((path, f"expected {expected}, {_got(value)}"))

    return typed


def _freeze(value: Any) -> Any:
    if type(value) is str or value is None:
        return value
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return (type(value).__name__, value) if isinstance(value, bool) else value


def _unique_items(map_keys: tuple[str, ...] | None) -> _Check:
    def unique(value: Any, path: _Path, out: _Sink) -> None:
        if not isinstance(value, list | tuple):
            return
        seen: dict[Any, int] = {}
        for index, item in enumerate(value):
            keyed = bool(map_keys) and isinstance(item, Mapping)
            identity = tuple(_freeze(item.get(k)) for k in map_keys or ()) if keyed else _freeze(item)
            if identity not in seen:
                seen[identity] = index
                continue
            shown = ", ".join(f"{k}={_show(item.get(k))}" for k in map_keys or ()) if keyed else _show(item)
            out.append(((path, index), f"duplicate entry {shown} (first at [{seen[identity]}])"))

    return unique


def _junctor(
    keyword: str, branches: list[_Check], names: list[list[str] | None], raw: Sequence[Mapping[str, Any]]
) -> _Check:
    field_choice = all(n is not None for n in names)
    choices = [" + ".join(n) for n in names if n is not None]
    type_choice = all(set(b) <= {"type", "format"} and "type" in b for b in raw)
    types = " or ".join(str(b["type"]) for b in raw) if type_choice else ""

    required_sets = [tuple(n) for n in names if n is not None]

    def check(value: Any, path: _Path, out: _Sink) -> None:
        if value is None:
            return
        if field_choice and isinstance(value, Mapping):
            # Branches that only require fields: answer from the keys, without running them.
            present = [
                c for c, req in zip(choices, required_sets, strict=True) if all(value.get(n) is not None for n in req)
            ]
            if len(present) == 1 or (present and keyword == "anyOf"):
                return
            if present:
                out.append((path, f"set only one of {_name_list(choices)} (found {', '.join(present)})"))
            else:
                out.append(
                    (path, f"set {'exactly' if keyword == 'oneOf' else 'at least'} one of: {_name_list(choices)}")
                )
            return
        trials: list[_Sink] = []
        matched = 0
        for branch in branches:
            trial: _Sink = []
            branch(value, path, trial)
            trials.append(trial)
            matched += not trial
            if matched and keyword == "anyOf":
                return
        if matched == 1 or (matched and keyword == "anyOf"):
            return
        if matched > 1:
            if field_choice:
                present = [c for c, t in zip(choices, trials, strict=True) if not t]
                out.append((path, f"set only one of {_name_list(choices)} (found {', '.join(present)})"))
            else:
                out.append((path, f"{_show(value)} matches more than one of the {len(branches)} alternatives"))
            return
        if field_choice:
            out.append((path, f"set {'exactly' if keyword == 'oneOf' else 'at least'} one of: {_name_list(choices)}"))
        elif type_choice:
            out.append((path, f"expected {types}, {_got(value)}"))
        else:
            first = min(trials, key=len)
            detail = "; ".join(f"{_path_text(p) or 'value'}: {m}" for p, m in first[:2])
            out.append((path, f"matches none of the {len(branches)} allowed forms (closest: {detail})"))

    return check


# --------------------------------------------------------------------------------------------
# Where the upstream schemas live, and which kinds are cluster-scoped.

_CRD_PACKAGE = "kasbah.verification"
_SCHEMA_DIR_RE = re.compile(r"^v(\d+)\.(\d+)\.\d+-local-strict$")

# Built-in kinds that are not namespaced (kubectl api-resources --namespaced=false); every
# other built-in kind with object metadata is namespaced.
_CLUSTER_SCOPED: Final = frozenset(
    {
        ("", "ComponentStatus"),
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("authentication.k8s.io", "SelfSubjectReview"),
        ("authentication.k8s.io", "TokenReview"),
        ("authorization.k8s.io", "SelfSubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectRulesReview"),
        ("authorization.k8s.io", "SubjectAccessReview"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("internal.apiserver.k8s.io", "StorageVersion"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("node.k8s.io", "RuntimeClass"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("resource.k8s.io", "DeviceClass"),
        ("resource.k8s.io", "DeviceTaintRule"),
        ("resource.k8s.io", "ResourceClass"),
        ("resource.k8s.io", "ResourceSlice"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("storagemigration.k8s.io", "StorageVersionMigration"),
    }
)

# Name rules that differ from the default DNS-1123 subdomain (k8s.io/kubernetes pkg/apis/*/validation).
_NameRule: TypeAlias = Callable[[str], "str | None"]
_NAME_RULES: Final[dict[tuple[str, str], _NameRule]] = {
    ("", "Namespace"): _dns_label_problem,
    ("", "Service"): _dns1035_label_problem,
    ("rbac.authorization.k8s.io", "Role"): _path_segment_problem,
    ("rbac.authorization.k8s.io", "ClusterRole"): _path_segment_problem,
    ("rbac.authorization.k8s.io", "RoleBinding"): _path_segment_problem,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _path_segment_problem,
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"): _path_segment_problem,
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"): _path_segment_problem,
}
_NAME_MAX_LENGTH: Final = {("batch", "CronJob"): 52}


def _kubernetes_validate_schema_root() -> Path:
    # find_spec locates the data without importing kubernetes_validate (and its jsonschema).
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("kubernetes-validate is not installed; it provides the upstream Kubernetes schemas")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


@functools.cache
def supported_kubernetes_versions() -> tuple[str, ...]:
    """The Kubernetes minor versions ("1.33", …) with an upstream strict schema installed."""
    found = []
    for entry in _kubernetes_validate_schema_root().iterdir():
        match = _SCHEMA_DIR_RE.match(entry.name)
        if match:
            found.append((int(match[1]), int(match[2])))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def _minor_version(version: str) -> str:
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$", version.strip())
    supported = supported_kubernetes_versions()
    if match is None or f"{int(match[1])}.{int(match[2])}" not in supported:
        raise UnsupportedKubernetesVersionError(
            f"Kubernetes version {version!r} is not supported; supported versions: {', '.join(supported)} "
            "(the upstream schemas come from the installed kubernetes-validate package)"
        )
    return f"{int(match[1])}.{int(match[2])}"


@dataclass(frozen=True)
class _CustomResource:
    group: str
    kind: str
    scope: str
    versions: Mapping[str, Mapping[str, Any]]
    plural: str


@functools.cache
def _custom_resources() -> tuple[_CustomResource, ...]:
    loaded = []
    for entry in sorted((resources.files(_CRD_PACKAGE) / "crds").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text(encoding="utf-8"))
        versions = {v["name"]: v["schema"] for v in data["versions"]}
        plural = entry.name.split(".", 1)[0]  # files are named <plural>.<group>.json, like the CRDs
        loaded.append(_CustomResource(data["group"], data["kind"], data["scope"], versions, plural))
    return tuple(loaded)


def _without_rules(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_rules(n) for n in node]
    if not isinstance(node, dict):
        return node
    return {k: _without_rules(v) for k, v in node.items() if k != "x-kubernetes-validations"}


# CEL validation rules in CRDs: beta and on by default from Kubernetes 1.25 (GA in 1.29); an older
# API server refuses a CRD that carries them
CRD_RULES_SINCE = (1, 25)


def custom_resource_definitions(with_rules: bool = True) -> list[dict[str, Any]]:
    """The vendored CRDs as `apiextensions.k8s.io/v1` objects, for clusters that have no operators.

    Their schemas are the ones `kasbah verify` checks against (descriptions and defaults dropped,
    CEL rules kept where the source had them, see `crds/SOURCES.md`). On a real cluster the CRDs come with the Helm charts; these
    are for kind and test clusters, where `kasbah apply --crds` installs them.
    """
    out = []
    for cr in _custom_resources():
        names = {"plural": cr.plural, "singular": cr.kind.lower(), "kind": cr.kind, "listKind": f"{cr.kind}List"}
        versions = [
            {
                "name": name,
                "served": True,
                "storage": i == 0,
                "schema": {"openAPIV3Schema": schema if with_rules else _without_rules(schema)},
            }
            for i, (name, schema) in enumerate(cr.versions.items())
        ]
        out.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{cr.plural}.{cr.group}"},
                "spec": {"group": cr.group, "names": names, "scope": cr.scope, "versions": versions},
            }
        )
    return out


@dataclass(frozen=True)
class _KindSchema:
    group: str
    version: str
    kind: str
    namespaced: bool
    check: _Check


class _Catalog:
    """Every schema known for one Kubernetes minor version, compiled lazily and kept."""

    def __init__(self, minor: str) -> None:
        self.minor = minor
        path = _kubernetes_validate_schema_root() / f"v{minor}.0-local-strict" / "_definitions.json"
        self._definitions: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))["$defs"]
        self._compiler = _Compiler(self._definitions)
        self._builtin: dict[tuple[str, str, str], str] = {}
        self._persisted: set[tuple[str, str, str]] = set()
        for name, definition in self._definitions.items():
            has_meta = definition.get("properties", {}).get("metadata", {}).get("$ref", "").endswith(_OBJECT_META_DEF)
            for gvk in definition.get("x-kubernetes-group-version-kind", ()):
                key = (gvk["group"], gvk["version"], gvk["kind"])
                self._builtin.setdefault(key, name)
                if has_meta:
                    self._persisted.add(key)
        self._custom: dict[tuple[str, str, str], tuple[_CustomResource, Mapping[str, Any]]] = {}
        for resource in _custom_resources():
            for version, schema in resource.versions.items():
                self._custom[(resource.group, version, resource.kind)] = (resource, schema)
        self._compiled: dict[tuple[str, str, str], _KindSchema] = {}

    def lookup(self, group: str, version: str, kind: str) -> _KindSchema | None:
        key = (group, version, kind)
        found = self._compiled.get(key)
        if found is not None:
            return found
        if key in self._builtin:
            check = self._compiler.definition(self._builtin[key])
            found = _KindSchema(group, version, kind, (group, kind) not in _CLUSTER_SCOPED, check)
        elif key in self._custom:
            resource, schema = self._custom[key]
            found = _KindSchema(group, version, kind, resource.scope == "Namespaced", self._compile_custom(schema))
        else:
            return None
        self._compiled[key] = found
        return found

    def _compile_custom(self, schema: Mapping[str, Any]) -> _Check:
        properties = dict(schema.get("properties") or {})
        # The API server validates a custom resource's metadata as ObjectMeta, whatever the CRD says.
        properties["metadata"] = {"$ref": f"#/$defs/{_OBJECT_META_DEF}"}
        return self._compiler.compile({**schema, "properties": properties}, _STRUCTURAL)

    def served(self) -> list[tuple[str, str, str]]:
        return sorted(self._persisted | set(self._custom))

    def unknown_kind_message(self, group: str, version: str, kind: str) -> str:
        api_version = f"{group}/{version}" if group else version
        head = f"no schema for {api_version} {kind} in Kubernetes {self.minor}"
        served = self.served()
        same_kind = [f"{g}/{v}" if g else v for g, v, k in served if k == kind and g == group]
        if same_kind:
            return f"{head}; {kind} is served at {_name_list(same_kind)}"
        in_group = [f"{v} {k}" for g, v, k in served if g == group]
        if in_group:
            return f"{head}; known in {group or 'the core group'}: {_name_list(in_group)}"
        elsewhere = [f"{g}/{v}" if g else v for g, v, k in served if k == kind]
        if elsewhere:
            return f"{head}; {kind} exists at {_name_list(elsewhere)}"
        groups = sorted({g or "core (v1)" for g, _, _ in served})
        return f"{head}; known API groups: {', '.join(groups)}"


@functools.cache
def _catalog(minor: str) -> _Catalog:
    return _Catalog(minor)


# --------------------------------------------------------------------------------------------
# The public validator.


class SchemaValidator:
    """Validates Kubernetes objects (plain dicts) for one Kubernetes minor version.

    Schemas are compiled on first use per (apiVersion, kind) and shared by every validator for
    the same version, so one instance can check thousands of objects cheaply.
    """

    def __init__(self, kubernetes_version: str) -> None:
        self.kubernetes_version = _minor_version(kubernetes_version)
        self._catalog = _catalog(self.kubernetes_version)

    def known_kinds(self) -> list[str]:
        """Every "apiVersion Kind" this validator has a schema for, sorted."""
        return [f"{g}/{v} {k}" if g else f"{v} {k}" for g, v, k in self._catalog.served()]

    def validate_all(self, objects: Iterable[Mapping[str, Any]], source: str = "") -> list[SchemaIssue]:
        """Issues of several objects (for example the documents of one file), in order."""
        issues: list[SchemaIssue] = []
        for obj in objects:
            issues.extend(self.validate(obj, source))
        return issues

    def validate(self, obj: Mapping[str, Any], source: str = "") -> list[SchemaIssue]:
        """Every issue found in one object; an empty list means the API server would accept it."""
        if not isinstance(obj, Mapping):
            return [SchemaIssue(source, "", "", "", f"expected a Kubernetes object (a mapping), {_got(obj)}")]
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        metadata = obj.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        kind_text = kind if isinstance(kind, str) else ""
        name_text = name if isinstance(name, str) else ""

        def issue(path: str, message: str) -> SchemaIssue:
            return SchemaIssue(source, kind_text, name_text, path, message)

        if not isinstance(api_version, str) or not api_version:
            return [issue("apiVersion", _missing_or_wrong(api_version, "apps/v1"))]
        if not isinstance(kind, str) or not kind:
            return [issue("kind", _missing_or_wrong(kind, "Deployment"))]
        group, _, version = api_version.rpartition("/")
        if api_version == "v1" and kind == "List":
            return self._validate_list(obj, source)
        schema = self._catalog.lookup(group, version, kind)
        if schema is None:
            return [issue("apiVersion", self._catalog.unknown_kind_message(group, version, kind))]
        sink: _Sink = []
        schema.check(obj, None, sink)
        if isinstance(metadata, Mapping) or metadata is None:
            _check_metadata(metadata or {}, schema, sink)
        return [issue(_path_text(path), message) for path, message in sink]

    def _validate_list(self, obj: Mapping[str, Any], source: str) -> list[SchemaIssue]:
        items = obj.get("items")
        if not isinstance(items, list):
            return [SchemaIssue(source, "List", "", "items", f"expected array, {_got(items)}")]
        issues: list[SchemaIssue] = []
        for index, item in enumerate(items):
            for found in self.validate(item, source):
                path = f"items[{index}]" + (f".{found.path}" if found.path and found.path[0] != "[" else found.path)
                issues.append(SchemaIssue(source, found.kind, found.name, path, found.message))
        return issues


def _missing_or_wrong(value: Any, example: str) -> str:
    if value is None:
        return f"required field is missing (e.g. {example})"
    return f"expected a non-empty string such as {example}, {_got(value)}"


def _check_metadata(metadata: Mapping[str, Any], schema: _KindSchema, out: _Sink) -> None:
    """ObjectMeta rules the OpenAPI schema cannot express (apimachinery ValidateObjectMeta)."""
    root: _Path = (None, "metadata")
    name = metadata.get("name")
    if name is None:
        out.append(((root, "name"), "required field is missing (apply and GitOps need a fixed name)"))
    elif isinstance(name, str):
        rule = _NAME_RULES.get((schema.group, schema.kind), _dns_subdomain_problem)
        problem = rule(name) if name else "must not be empty"
        max_length = _NAME_MAX_LENGTH.get((schema.group, schema.kind))
        if problem is None and max_length is not None and len(name) > max_length:
            problem = f"must be no more than {max_length} characters for a {schema.kind} (has {len(name)})"
        if problem is not None:
            out.append(((root, "name"), f"{_show(name)} {problem}"))
    namespace = metadata.get("namespace")
    if schema.namespaced:
        if namespace is None or namespace == "":
            out.append(
                (
                    (root, "namespace"),
                    f"{schema.kind} is namespaced; set metadata.namespace "
                    "(otherwise it lands in whatever namespace the applying client defaults to)",
                )
            )
        elif isinstance(namespace, str) and (problem := _dns_label_problem(namespace)) is not None:
            out.append(((root, "namespace"), f"{_show(namespace)} {problem}"))
    elif namespace not in (None, ""):
        out.append(
            ((root, "namespace"), f"{schema.kind} is cluster-scoped and takes no namespace; remove {_show(namespace)}")
        )
    for field in ("labels", "annotations"):
        entries = metadata.get(field)
        if not isinstance(entries, Mapping):
            continue
        where: _Path = (root, field)
        total = 0
        for key, value in entries.items():
            key_text = str(key)
            problem = _qualified_name_problem(key_text.lower() if field == "annotations" else key_text)
            if problem is not None:
                out.append(((where, key_text), f"invalid {field[:-1]} key {_show(key_text)}: {problem}"))
            if field == "labels" and isinstance(value, str):
                if len(value) > 63:
                    out.append(((where, key_text), f"label value {_show(value)} is longer than 63 characters"))
                elif not _LABEL_VALUE_RE.match(value):
                    out.append(
                        (
                            (where, key_text),
                            f"label value {_show(value)} must be empty or alphanumerics, '-', '_' or '.', "
                            "starting and ending with an alphanumeric",
                        )
                    )
            total += len(key_text) + (len(value) if isinstance(value, str) else 0)
        if field == "annotations" and total > _ANNOTATIONS_MAX_BYTES:
            out.append((where, f"annotations total {total} bytes, more than the 256 KiB the API server accepts"))
