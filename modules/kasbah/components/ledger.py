"""The campus ledger in Pulumi state: one record per hall, rack, fabric and address block ever allocated.

Physical things have no cloud API here; what Pulumi must guard is their identity: a rack's floor
position and address blocks, a cluster's pod and service ranges, a fabric's loopbacks. Each record
is a dynamic resource that only lives in the stack's state (like `random`: applying it costs
nothing and touches no device). Records are protected, their identity fields replace (and a
protected resource cannot be replaced), and retired things stay in the ledger marked `retired`, so
an index or block is never handed out twice. The policy pack reads the same records.

The halls of hall group 0 and their racks are the site stack's; each other hall group's are its own
stack's (`stacks/halls`). The site stack carries one `group` record per other hall group, a summary
computed from the same ledger (its halls' indexes, live racks, IT load and address blocks), so the
site-wide checks (budget, numbering) still see the whole campus; a hall stack carries the same
record for its group and the policy pack checks that its racks add up to it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Mapping
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
    "group": ("group",),
}
# Rack address blocks a group record summarises (collapsed into covering prefixes): never two racks' alike
GROUP_BLOCKS = ("oob_cidr", "inband_cidr", "storage_cidr")


class LedgerError(ValueError):
    """A record is missing what identifies it."""


def _public(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != PROVIDER_KEY}


def covering_decommissions(kind: str, name: str, fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The decommissions that retire a record, most specific first: its own, its pool's, its hall's."""
    keys = ((kind, name), ("pool", fields.get("pool")), ("hall", fields.get("hall")))
    return [(k, str(v)) for k, v in keys if v]


def collapsed(cidrs: Iterable[str]) -> list[str]:
    """The fewest prefixes covering exactly these blocks (IPv4 first)."""
    nets = [ipaddress.ip_network(c) for c in cidrs if c]
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    return [str(n) for n in (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))]


def group_summary(
    group: int, halls: Mapping[str, int], racks: Mapping[str, Mapping[str, Any]], decommissions: Iterable[str]
) -> dict[str, Any]:
    """A hall group's record: its halls (name -> index), live racks and their IT load, its racks' address
    blocks (live and retired: never handed out again) and the decommissions that cover its records."""
    live = [f for f in racks.values() if f.get("state") == "live"]
    covering = {f"{k}/{v}" for h in halls for k, v in covering_decommissions("hall", h, {})}
    covering |= {f"{k}/{v}" for name, f in racks.items() for k, v in covering_decommissions("rack", name, f)}
    return {
        "group": group,
        "halls": dict(sorted(halls.items(), key=lambda kv: kv[1])),
        "racks": len(live),
        "it_load_kw": round(sum(float(f["power_kw"]) for f in live), 3),
        "blocks": {b: collapsed(str(f.get(b) or "") for f in racks.values()) for b in GROUP_BLOCKS},
        "decommissions": sorted(d for d in decommissions if d in covering),
    }


def record_sha256(fields: Mapping[str, Any]) -> str:
    """A record's fields as one digest (the site stack exports its group records' so hall stacks can compare)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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
