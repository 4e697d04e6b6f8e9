"""The campus ledger in Pulumi state: one record per hall, rack, fabric and address block ever allocated.

Physical things have no cloud API here; what Pulumi must guard is their identity: a rack's floor
position and address blocks, a cluster's pod and service ranges, a fabric's loopbacks. Each record
is a dynamic resource that only lives in the stack's state (like `random`: applying it costs
nothing and touches no device). Records are protected, their identity fields replace (and a
protected resource cannot be replaced), and retired things stay in the ledger marked `retired`, so
an index or block is never handed out twice. The policy pack reads the same records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.dynamic.dynamic import PROVIDER_KEY

# What identifies each kind of record: changing one of these is renumbering, not an update.
IDENTITY: dict[str, tuple[str, ...]] = {
    "site": ("site",),
    "hall": ("hall", "index", "rows", "positions"),
    "rack": ("hall", "row", "position", "index", "oob_cidr", "inband_cidr", "storage_cidr", "rail_cidrs"),
    "fabric": ("fabric", "loopback_block"),
    "cluster": ("cluster", "pod_cidr", "service_cidr"),
}


class LedgerError(ValueError):
    """A record is missing what identifies it."""


def _public(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != PROVIDER_KEY}


def covering_decommissions(kind: str, name: str, fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The decommissions that retire a record, most specific first: its own, its pool's, its hall's."""
    keys = ((kind, name), ("pool", fields.get("pool")), ("hall", fields.get("hall")))
    return [(k, str(v)) for k, v in keys if v]


class LedgerProvider(dynamic.ResourceProvider):
    """Create, update and forget records; the state is the record."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = []
        kind = news.get("kind")
        if kind not in IDENTITY:
            failures.append(dynamic.CheckFailure("kind", f"unknown record kind {kind!r}; one of {', '.join(IDENTITY)}"))
        else:
            for key in IDENTITY[kind]:
                if key not in news:
                    failures.append(dynamic.CheckFailure(key, f"a {kind} record needs `{key}`"))
        return dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        before, after = _public(olds), _public(news)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        identity = IDENTITY.get(str(after.get("kind")), ())
        replaces = [k for k in changed if k in identity or k == "kind"]
        return dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        return dynamic.CreateResult(id_=f"{props['kind']}/{props['name']}", outs=_public(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs=_public(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Forgetting a record touches nothing; protection and the policy pack decide whether it may go."""


_PROVIDER = LedgerProvider()
_PROTECT = pulumi.ResourceOptions(protect=True)


class Record(dynamic.Resource, module="ledger", name="Record"):
    """One ledger record (`pulumi-python:dynamic/ledger:Record`); `kind` says what it records."""

    def __init__(
        self, resource_name: str, kind: str, fields: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        if kind not in IDENTITY:
            raise LedgerError(f"record {resource_name}: unknown kind {kind!r}; one of {', '.join(IDENTITY)}")
        missing = [k for k in IDENTITY[kind] if k not in fields]
        if missing:
            raise LedgerError(f"{kind} record {resource_name}: missing {', '.join(missing)}")
        props: dict[str, Any] = {"kind": kind, "name": resource_name, **fields}
        super().__init__(_PROVIDER, resource_name, props, pulumi.ResourceOptions.merge(opts, _PROTECT))
