"""Validates rendered Kubernetes objects against the upstream OpenAPI and CRD schemas, as the API server would.

The structural work (types, fields, enums, patterns, bounds, anyOf/oneOf) is done by jsonschema-rs on a
plain JSON Schema the pre-pass derives from each Kubernetes schema (`structural`); the Kubernetes rules
no JSON-Schema engine knows (names, labels, quantities, formats: `kubernetes`; list-map keys, embedded
resources: `spine`; CEL rules: `cel`) and every message stay kasbah's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kasbah.verification.schema.catalog import (
    CRD_RULES_SINCE,
    UnsupportedKubernetesVersionError,
    catalog_for,
    custom_resource_definitions,
    minor_version,
    supported_kubernetes_versions,
)
from kasbah.verification.schema.kubernetes import Found, check_metadata, got, path_text

__all__ = [
    "CRD_RULES_SINCE",
    "SchemaIssue",
    "SchemaValidator",
    "UnsupportedKubernetesVersionError",
    "custom_resource_definitions",
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


class SchemaValidator:
    """Validates Kubernetes objects (plain dicts) for one Kubernetes minor version.

    Schemas are compiled on first use per (apiVersion, kind) and shared by every validator for
    the same version, so one instance can check thousands of objects cheaply.
    """

    def __init__(self, kubernetes_version: str) -> None:
        self.kubernetes_version = minor_version(kubernetes_version)
        self._catalog = catalog_for(self.kubernetes_version)

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
            return [SchemaIssue(source, "", "", "", f"expected a Kubernetes object (a mapping), {got(obj)}")]
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
        found: Found = schema.compiled.check(obj)
        if isinstance(metadata, Mapping) or metadata is None:
            check_metadata(metadata or {}, schema.group, schema.kind, schema.namespaced, found)
        return [issue(path_text(path), message) for path, message in found]

    def _validate_list(self, obj: Mapping[str, Any], source: str) -> list[SchemaIssue]:
        items = obj.get("items")
        if not isinstance(items, list):
            return [SchemaIssue(source, "List", "", "items", f"expected array, {got(items)}")]
        issues: list[SchemaIssue] = []
        for index, item in enumerate(items):
            for found in self.validate(item, source):
                path = f"items[{index}]" + (f".{found.path}" if found.path and found.path[0] != "[" else found.path)
                issues.append(SchemaIssue(source, found.kind, found.name, path, found.message))
        return issues


def _missing_or_wrong(value: Any, example: str) -> str:
    if value is None:
        return f"required field is missing (e.g. {example})"
    return f"expected a non-empty string such as {example}, {got(value)}"
