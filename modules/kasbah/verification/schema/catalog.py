"""Where the upstream schemas live: the Kubernetes versions installed, the vendored CRDs, one catalog per version."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kasbah.verification.schema.kubernetes import CLUSTER_SCOPED, name_list
from kasbah.verification.schema.structural import OBJECT_META_DEF, Compiled, Engine

__all__ = [
    "CRD_RULES_SINCE",
    "Catalog",
    "KindSchema",
    "UnsupportedKubernetesVersionError",
    "catalog_for",
    "custom_resource_definitions",
    "minor_version",
    "supported_kubernetes_versions",
]


class UnsupportedKubernetesVersionError(ValueError):
    """The requested Kubernetes minor version has no upstream schema here."""


_CRD_PACKAGE = "kasbah.verification"
_SCHEMA_DIR_RE = re.compile(r"^v(\d+)\.(\d+)\.\d+-local-strict$")


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


def minor_version(version: str) -> str:
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
class KindSchema:
    group: str
    version: str
    kind: str
    namespaced: bool
    compiled: Compiled


class Catalog:
    """Every schema known for one Kubernetes minor version, compiled lazily and kept."""

    def __init__(self, minor: str) -> None:
        self.minor = minor
        path = _kubernetes_validate_schema_root() / f"v{minor}.0-local-strict" / "_definitions.json"
        definitions: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))["$defs"]
        self.engine = Engine(definitions)
        self._builtin: dict[tuple[str, str, str], str] = {}
        self._persisted: set[tuple[str, str, str]] = set()
        for name, definition in definitions.items():
            has_meta = definition.get("properties", {}).get("metadata", {}).get("$ref", "").endswith(OBJECT_META_DEF)
            for gvk in definition.get("x-kubernetes-group-version-kind", ()):
                key = (gvk["group"], gvk["version"], gvk["kind"])
                self._builtin.setdefault(key, name)
                if has_meta:
                    self._persisted.add(key)
        self._custom: dict[tuple[str, str, str], tuple[_CustomResource, Mapping[str, Any]]] = {}
        for resource in _custom_resources():
            for version, schema in resource.versions.items():
                self._custom[(resource.group, version, resource.kind)] = (resource, schema)
        self._compiled: dict[tuple[str, str, str], KindSchema] = {}

    def lookup(self, group: str, version: str, kind: str) -> KindSchema | None:
        key = (group, version, kind)
        found = self._compiled.get(key)
        if found is not None:
            return found
        if key in self._builtin:
            compiled = self.engine.definition(self._builtin[key])
            found = KindSchema(group, version, kind, (group, kind) not in CLUSTER_SCOPED, compiled)
        elif key in self._custom:
            resource, schema = self._custom[key]
            properties = dict(schema.get("properties") or {})
            # The API server validates a custom resource's metadata as ObjectMeta, whatever the CRD says.
            properties["metadata"] = {"$ref": f"#/$defs/{OBJECT_META_DEF}"}
            compiled = self.engine.structural({**schema, "properties": properties})
            found = KindSchema(group, version, kind, resource.scope == "Namespaced", compiled)
        else:
            return None
        self._compiled[key] = found
        return found

    def served(self) -> list[tuple[str, str, str]]:
        return sorted(self._persisted | set(self._custom))

    def unknown_kind_message(self, group: str, version: str, kind: str) -> str:
        api_version = f"{group}/{version}" if group else version
        head = f"no schema for {api_version} {kind} in Kubernetes {self.minor}"
        served = self.served()
        same_kind = [f"{g}/{v}" if g else v for g, v, k in served if k == kind and g == group]
        if same_kind:
            return f"{head}; {kind} is served at {name_list(same_kind)}"
        in_group = [f"{v} {k}" for g, v, k in served if g == group]
        if in_group:
            return f"{head}; known in {group or 'the core group'}: {name_list(in_group)}"
        elsewhere = [f"{g}/{v}" if g else v for g, v, k in served if k == kind]
        if elsewhere:
            return f"{head}; {kind} exists at {name_list(elsewhere)}"
        groups = sorted({g or "core (v1)" for g, _, _ in served})
        return f"{head}; known API groups: {', '.join(groups)}"


@functools.cache
def catalog_for(minor: str) -> Catalog:
    return Catalog(minor)
