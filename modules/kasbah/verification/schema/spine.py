"""The checks a CRD schema asks for that plain JSON Schema cannot say, run along the object's spine.

`x-kubernetes-list-type: map` (unique by the list-map keys) and `set`, the apiVersion and kind an
`x-kubernetes-embedded-resource` needs, and the CEL rules. The pre-pass records where in the schema
they sit (through properties, items and additionalProperties only); validation visits just those
places of the object. CEL runs last, on a value the structural checks accepted, as in the API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kasbah.verification.schema.cel import CelCheck
from kasbah.verification.schema.kubernetes import Found, Path, show

__all__ = ["Spine", "run_spine"]


@dataclass
class Spine:
    """One schema node's own checks and the nodes below it that have some."""

    list_keys: tuple[str, ...] | None = None  # a list-map's keys; () for a set
    embedded: bool = False
    cel: CelCheck | None = None
    properties: dict[str, Spine] = field(default_factory=dict)
    items: Spine | None = None
    additional: Spine | None = None
    declared: frozenset[str] = frozenset()  # the properties that additional does not cover

    def empty(self) -> bool:
        return (
            self.list_keys is None
            and not self.embedded
            and self.cel is None
            and not self.properties
            and self.items is None
            and self.additional is None
        )


def run_spine(spine: Spine, obj: Any, structural: Found) -> Found:
    """Issues of the spine's checks on obj; CEL only where neither structural nor these found anything."""
    out: Found = []
    pending: list[tuple[Path, Any, CelCheck]] = []
    _walk(spine, obj, (), out, pending)
    if pending:
        refused = [p for p, _ in structural] + [p for p, _ in out]
        # deepest first: a rule that fails refuses its value for the rules above it
        for path, value, check in pending:
            if any(p[: len(path)] == path for p in refused):
                continue
            for message in check(value):
                out.append((path, message))
                refused.append(path)
    return out


def _walk(spine: Spine, value: Any, path: Path, out: Found, pending: list[tuple[Path, Any, CelCheck]]) -> None:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            if sub is None:
                continue  # the API server drops null fields
            child = spine.properties.get(key)
            if child is None and key not in spine.declared:
                child = spine.additional
            if child is not None:
                _walk(child, sub, (*path, key), out, pending)
        if spine.embedded:
            for name in ("apiVersion", "kind"):
                if not value.get(name):
                    out.append(((*path, name), "required field is missing (embedded objects need apiVersion and kind)"))
    elif isinstance(value, list | tuple):
        if spine.items is not None:
            for index, item in enumerate(value):
                _walk(spine.items, item, (*path, index), out, pending)
        if spine.list_keys is not None:
            out.extend(duplicates(value, spine.list_keys or None, path))
    if spine.cel is not None and value is not None:
        pending.append((path, value, spine.cel))


def _freeze(value: Any) -> Any:
    if type(value) is str or value is None:
        return value
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return (type(value).__name__, value) if isinstance(value, bool) else value


def duplicates(value: list[Any] | tuple[Any, ...], map_keys: tuple[str, ...] | None, path: Path) -> Found:
    """Each repeated entry of a list, at its index: whole items, or by the list-map keys."""
    out: Found = []
    seen: dict[Any, int] = {}
    for index, item in enumerate(value):
        keyed = bool(map_keys) and isinstance(item, Mapping)
        identity = tuple(_freeze(item.get(k)) for k in map_keys or ()) if keyed else _freeze(item)
        if identity not in seen:
            seen[identity] = index
            continue
        shown = ", ".join(f"{k}={show(item.get(k))}" for k in map_keys or ()) if keyed else show(item)
        out.append(((*path, index), f"duplicate entry {shown} (first at [{seen[identity]}])"))
    return out
