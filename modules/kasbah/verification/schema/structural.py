"""Kubernetes schemas as plain JSON Schema for jsonschema-rs, and its errors back in kasbah's words.

The pre-pass rewrites a schema node once: `x-kubernetes-int-or-string` and `format: int-or-string`
become a type union, IntOrString and Quantity their own small schemas, `nullable` a null type, the
int32/int64 formats bounds, the formats the API server enforces named formats checked by kasbah's
rules (other formats are dropped, as the API server accepts them), a null field passes (the API
server drops it) unless it is required, and in a CRD (a structural schema) an undeclared field is
refused unless `x-kubernetes-preserve-unknown-fields` keeps it. Inside anyOf/oneOf/allOf/not a
structural schema only constrains values (it declares no fields). What plain JSON Schema cannot say
(list-map keys, embedded resources, CEL rules) goes to the spine. Each node keeps the words its
messages need under `x-kasbah-*` keys, which the engine ignores; an error is read back through the
node its keyword sits in.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Final

import jsonschema_rs

from kasbah.verification.schema.cel import cel_check
from kasbah.verification.schema.errors import ENUM, FORMAT, KNOWN, MARK, PATTERN, Reader
from kasbah.verification.schema.kubernetes import (
    INT_RANGES,
    QUANTITY,
    QUANTITY_WORDS,
    STRING_FORMATS,
    Found,
    format_problem,
    name_list,
    pattern_words,
    plain_json,
)
from kasbah.verification.schema.spine import Spine, run_spine

__all__ = ["CORE", "OBJECT_META_DEF", "STRUCTURAL", "Compiled", "Engine"]

# CORE follows the upstream OpenAPI document literally (the strict variant already says
# additionalProperties: false); STRUCTURAL is a CRD schema, where undeclared fields are unknown;
# VALUE is inside anyOf/oneOf/allOf/not, which only constrain values and never declare fields.
CORE, STRUCTURAL, VALUE = 0, 1, 2

DEFS: Final = "urn:kasbah:kubernetes:"  # + a definition's name: its rewritten schema
INT_OR_STRING_DEF: Final = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY_DEF: Final = "io.k8s.apimachinery.pkg.api.resource.Quantity"
OBJECT_META_DEF: Final = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

_NULL: Final = {"type": "null"}
_JUNCTORS = frozenset({"anyOf", "oneOf", "allOf", "not"})

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
_COPIED_KEYWORDS = (
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "uniqueItems",
)
_HANDLED_KEYWORDS = frozenset(
    {
        *_COPIED_KEYWORDS,
        *_JUNCTORS,
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
        "properties",
        "additionalProperties",
        "required",
        "items",
    }
)


class Rewriter:
    """The pre-pass: one Kubernetes schema node to plain JSON Schema (and its spine, in a CRD)."""

    def __init__(self, definitions: Mapping[str, Any]) -> None:
        self._definitions = definitions

    def definition(self, name: str) -> dict[str, Any]:
        if name == INT_OR_STRING_DEF:
            return {"type": ["integer", "string", "null"], MARK: "int-or-string"}
        if name == QUANTITY_DEF:
            return {
                "type": ["string", "number", "null"],
                "pattern": QUANTITY,
                PATTERN: QUANTITY_WORDS,
                MARK: "quantity",
            }
        return self.node(self._definitions[name], CORE, None)

    def node(self, node: Mapping[str, Any], mode: int, spine: Spine | None) -> dict[str, Any]:
        """The node rewritten; spine is given exactly where a CRD's fields are declared (STRUCTURAL)."""
        unknown = {k for k in node if not k.startswith("x-")} - _IGNORED_KEYWORDS - _HANDLED_KEYWORDS
        if unknown:
            raise ValueError(f"schema keyword(s) not supported by kasbah's validator: {sorted(unknown)}")
        out: dict[str, Any] = {}
        raw_type = node.get("type")
        types = [raw_type] if isinstance(raw_type, str) else [str(t) for t in raw_type or ()]
        nullable = "null" in types or bool(node.get("nullable"))
        types = [t for t in types if t != "null"]
        int_or_string = bool(node.get("x-kubernetes-int-or-string")) or node.get("format") == "int-or-string"
        if int_or_string:
            types = ["integer", "string"]
        if types:
            out["type"] = [*types, "null"] if nullable else types
        ref = node.get("$ref")
        if isinstance(ref, str):
            out["$ref"] = DEFS + ref.rsplit("/", 1)[-1]
        _values(node, out)
        self._object(node, mode, spine, types, out)
        self._array(node, mode, spine, out)
        self._junctors(node, int_or_string, out)
        cel = cel_check(node.get("x-kubernetes-validations"))
        if cel is not None:
            if spine is None:
                raise ValueError("x-kubernetes-validations are only supported on a CRD's declared fields")
            spine.cel = cel
        return out

    def _object(
        self, node: Mapping[str, Any], mode: int, spine: Spine | None, types: list[str], out: dict[str, Any]
    ) -> None:
        properties: Mapping[str, Any] = node.get("properties") or {}
        additional = node.get("additionalProperties")
        required = [str(r) for r in node.get("required") or ()]
        embedded = bool(node.get("x-kubernetes-embedded-resource")) and mode != VALUE
        if not ("object" in types or properties or additional is not None or required or embedded):
            return
        props: dict[str, dict[str, Any]] = {}
        for name, sub in properties.items():
            child = Spine() if spine is not None else None
            props[name] = self.node(sub, mode, child)
            if spine is not None and child is not None and not child.empty():
                spine.properties[name] = child
        if embedded:
            if spine is None:
                raise ValueError("x-kubernetes-embedded-resource is only supported on a CRD's declared fields")
            # The API server treats apiVersion, kind and metadata as declared on embedded objects.
            spine.embedded = True
            props.setdefault("apiVersion", {"type": ["string"]})
            props.setdefault("kind", {"type": ["string"]})
            props.setdefault("metadata", {"$ref": DEFS + OBJECT_META_DEF})
        extra: dict[str, Any] | None = None
        if isinstance(additional, Mapping):
            child = Spine() if spine is not None else None
            extra = self._nullable(self.node(additional, mode, child))
            if spine is not None and child is not None and not child.empty():
                spine.additional, spine.declared = child, frozenset(props)
        elif additional is False or (
            additional is None and mode == STRUCTURAL and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            extra = {"type": "null", MARK: "unknown", KNOWN: sorted(props)}
        for name, sub in props.items():
            props[name] = {"if": _NULL, "then": False, "else": sub} if name in required else self._nullable(sub)
        for name in required:
            if name not in props:
                props[name] = {"if": _NULL, "then": False} | ({"else": extra} if extra is not None else {})
        if props:
            out["properties"] = props
        if extra is not None:
            out["additionalProperties"] = extra
        if required:
            out["required"] = required

    def _array(self, node: Mapping[str, Any], mode: int, spine: Spine | None, out: dict[str, Any]) -> None:
        items = node.get("items")
        if isinstance(items, Mapping):
            child = Spine() if spine is not None else None
            out["items"] = self.node(items, mode, child)
            if spine is not None and child is not None and not child.empty():
                spine.items = child
        # Built-in list types keep their own (looser) uniqueness rules in Go; CRD lists are
        # checked by the API server from these markers.
        list_type = node.get("x-kubernetes-list-type")
        if spine is not None and list_type in ("set", "map"):
            keys = (node.get("x-kubernetes-list-map-keys") or ()) if list_type == "map" else ()
            spine.list_keys = tuple(str(k) for k in keys)

    def _junctors(self, node: Mapping[str, Any], int_or_string: bool, out: dict[str, Any]) -> None:
        for keyword in ("anyOf", "oneOf"):
            branches = node.get(keyword)
            if not branches:
                continue
            if int_or_string and keyword == "anyOf" and all(set(b) == {"type"} for b in branches):
                continue  # the int-or-string type says it better
            out[keyword] = [self.node(branch, VALUE, None) for branch in branches]
            names = [_required_names(branch) for branch in branches]
            type_choice = all(set(b) <= {"type", "format"} and "type" in b for b in branches)
            out[f"x-kasbah-{keyword}"] = {
                "required": names if all(n is not None for n in names) else None,
                "types": " or ".join(str(b["type"]) for b in branches) if type_choice else None,
            }
        if node.get("allOf"):
            out["allOf"] = [*out.get("allOf", ()), *(self.node(b, VALUE, None) for b in node["allOf"])]
        if "not" in node:
            out["not"] = self.node(node["not"], VALUE, None)

    def _nullable(self, sub: dict[str, Any]) -> dict[str, Any]:
        """sub, passing null as the API server does for a field; the cheap way when sub already does."""
        return sub if self._accepts_null(sub) else {"if": _NULL, "else": sub}

    def _accepts_null(self, sub: Mapping[str, Any]) -> bool:
        if _JUNCTORS & set(sub) or "enum" in sub:
            return False
        if "type" in sub and "null" not in sub["type"]:
            return False
        ref = sub.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix(DEFS)
            if name in (INT_OR_STRING_DEF, QUANTITY_DEF):
                return True
            target = self._definitions.get(name, {})
            target_types = target.get("type")
            return (
                not (_JUNCTORS | {"enum", "$ref"}) & set(target)
                and isinstance(target_types, list)
                and "null" in target_types
            )
        return True


def _values(node: Mapping[str, Any], out: dict[str, Any]) -> None:
    if "enum" in node:
        allowed = [v.isoformat() if isinstance(v, date) else v for v in node["enum"]]
        out["enum"] = allowed
        out[ENUM] = name_list(v if isinstance(v, str) else json.dumps(v) for v in allowed)
    if "pattern" in node:
        out["pattern"] = str(node["pattern"])
        out[PATTERN] = pattern_words(out["pattern"])
    # OpenAPI v3.0 (CRDs): exclusive* are booleans beside minimum/maximum; JSON Schema 2020-12: numbers.
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(node.get(exclusive), bool):
            if node.get(bound) is not None:
                out[exclusive if node[exclusive] else bound] = node[bound]
        else:
            for key in (bound, exclusive):
                if node.get(key) is not None:
                    out[key] = node[key]
    fmt = node.get("format")
    if fmt in INT_RANGES:
        low, high = INT_RANGES[fmt]
        bounds = {"minimum": low, "maximum": high, FORMAT: fmt}
        if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & set(out):
            out["allOf"] = [bounds]
        else:
            out.update(bounds)
    elif fmt in STRING_FORMATS:
        out["format"] = f"k8s-{fmt}"
    for key in _COPIED_KEYWORDS:
        if key in node:
            out[key] = node[key]


def _required_names(branch: Mapping[str, Any]) -> list[str] | None:
    """For junctor branches of the form {required: [x]} (optionally with empty property stubs)."""
    if set(branch) - {"required", "properties"}:
        return None
    required = branch.get("required")
    if not isinstance(required, list) or any(branch.get("properties", {}).get(name, {}) for name in required):
        return None
    return [str(name) for name in required]


def _format_ok(fmt: str, value: Any) -> bool:
    return format_problem(fmt, value) is None


_FORMATS: Final[dict[str, Callable[..., bool]]] = {
    f"k8s-{fmt}": functools.partial(_format_ok, fmt) for fmt in STRING_FORMATS
}
_uris = itertools.count()


class Engine:
    """The definitions of one Kubernetes version, each rewritten on first use, and validators compiled from them."""

    def __init__(self, definitions: Mapping[str, Any]) -> None:
        self.rewriter = Rewriter(definitions)
        self._rewritten: dict[str, dict[str, Any]] = {}
        self._roots: dict[str, dict[str, Any]] = {}
        # a $ref to DEFS + name is fetched from document() as the validator is compiled
        self._registry = jsonschema_rs.Registry([], retriever=self.document)

    def document(self, uri: str) -> dict[str, Any]:
        """The rewritten schema a validator was compiled from, by its URI."""
        if uri.startswith(DEFS):
            name = uri.removeprefix(DEFS)
            found = self._rewritten.get(name)
            if found is None:
                found = self._rewritten[name] = self.rewriter.definition(name)
            return found
        return self._roots.get(uri, {})

    def definition(self, name: str) -> Compiled:
        return self._compile({"$ref": DEFS + name}, Spine())

    def structural(self, schema: Mapping[str, Any]) -> Compiled:
        """A CRD's schema (its metadata is ObjectMeta, whatever the CRD says)."""
        spine = Spine()
        return self._compile(self.rewriter.node(schema, STRUCTURAL, spine), spine)

    def _compile(self, root: dict[str, Any], spine: Spine) -> Compiled:
        uri = f"urn:kasbah:schema:{next(_uris)}"
        self._roots[uri] = root
        validator = jsonschema_rs.validator_for(
            root, registry=self._registry, base_uri=uri, validate_formats=True, formats=_FORMATS
        )
        return Compiled(validator, Reader(self.document), spine)


class Compiled:
    """One kind's validator: the engine's structural verdict, then the spine's checks."""

    def __init__(self, validator: jsonschema_rs.Validator, reader: Reader, spine: Spine) -> None:
        self._validator, self._reader, self._spine = validator, reader, spine

    def check(self, obj: Any) -> Found:
        try:
            found = self._structural(obj, obj)
        except ValueError:  # a value JSON has no type for: a YAML date, a key that is not a string
            found = self._structural(plain_json(obj), obj)
        if not self._spine.empty():
            found.extend(run_spine(self._spine, obj, found))
        return found

    def _structural(self, validated: Any, obj: Any) -> Found:
        if self._validator.is_valid(validated):
            return []
        return self._reader.read(self._validator.iter_errors(validated), obj)
