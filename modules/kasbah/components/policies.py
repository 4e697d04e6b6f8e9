"""kasbah's policy pack: the campus invariants, checked by Pulumi at preview time against what a program is about to do.

The checks read only the resources' inputs (and, for renumbering and removal, the state of the
stack as deployed, exported by `pulumi stack export`), so they hold whatever produced the program:
a hand edit, an old checkout, a bug in the planner.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from kasbah.components.ledger import GROUP_BLOCKS, IDENTITY, collapsed, covering_decommissions, group_summary
from kasbah.planning.halls import hall_group
from kasbah.planning.platform import BOOTSTRAP
from kasbah.rendering.kubernetes import OWNER
from kasbah.rollout import PoolReach, describe

RECORD = "pulumi-python:dynamic/ledger:Record"
# kW of slack for rounding in sums of rack power
_EPSILON_KW = 0.5


def plain(value: Any) -> Any:
    """Plain dicts and lists: the analyzer hands policies read-only proxies, which compare unequal to lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class _Seen:
    """A resource as the checks read it."""

    urn: str
    props: dict[str, Any]


def _records(resources: Iterable[PolicyResource]) -> dict[tuple[str, str], _Seen]:
    return {
        (str(r.props["kind"]), str(r.props["name"])): _Seen(r.urn, plain(r.props))
        for r in resources
        if r.resource_type == RECORD
    }


# ---------------------------------------------------------------------------- one owner
def _one_owner(args: StackValidationArgs, report: ReportViolation) -> None:
    """A stack applies only bootstrap objects: whatever else it held, the GitOps controller applies too."""
    for r in args.resources:
        if not r.resource_type.startswith("kubernetes:") or r.resource_type.startswith(NOT_OBJECTS):
            continue
        meta = plain(r.props.get("metadata") or {})
        owner = (meta.get("annotations") or {}).get(OWNER)
        if owner != BOOTSTRAP:
            name = f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else meta.get("name")
            report(
                f"{r.resource_type.rsplit(':', 1)[-1]} {name} says {OWNER}: {owner!r}; a stack applies only what "
                "the bootstrap owns (bootstrap/<cluster>/platform/), the GitOps controller applies the rest; "
                "fix: create it from the rendered platform files, or leave it to GitOps",
                r.urn,
            )


# the provider itself and Helm releases (whose objects the chart owns) are not rendered objects
NOT_OBJECTS = ("pulumi:providers:", "kubernetes:helm.sh/")

one_owner = StackValidationPolicy(
    name="one-owner-per-object",
    description="A stack applies only the Kubernetes objects the bootstrap owns; the GitOps controller owns the rest.",
    validate=_one_owner,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# ---------------------------------------------------------------------------- power
def _group_record(records: Mapping[tuple[str, str], _Seen]) -> _Seen | None:
    """A hall stack's own group record (a site stack holds several, one per other group, and a site record)."""
    if any(kind == "site" for kind, _ in records):
        return None
    return next((r for (kind, _), r in records.items() if kind == "group"), None)


def _adds_up(group: _Seen, records: Mapping[tuple[str, str], _Seen], keys: tuple[str, ...]) -> list[str]:
    """Where a hall stack's group record says other than its hall and rack records (what the site stack reads)."""
    halls = {name: int(r.props["index"]) for (kind, name), r in records.items() if kind == "hall"}
    racks = {name: r.props for (kind, name), r in records.items() if kind == "rack"}
    actual = group_summary(int(group.props["group"]), halls, racks, group.props.get("decommissions") or ())
    out = []
    for key in keys:
        said, real = group.props.get(key), actual[key]
        if key == "it_load_kw" and abs(float(said or 0) - float(real)) <= _EPSILON_KW:
            continue
        if said != real:
            out.append(
                f"{group.props['name']} says {key} {said}, its records {real}; the site stack's budget and numbering "
                "checks read that record; fix: create it with kasbah.components.site.group_record"
            )
    return out


def _power(args: StackValidationArgs, report: ReportViolation) -> None:
    records = _records(args.resources)
    sites = [r for (kind, _), r in records.items() if kind == "site"]
    group = _group_record(records)
    if not sites and group is None:
        args.not_applicable("no site or hall group record in this stack (a cluster stack)")
        return
    racks = [r.props for (kind, _), r in records.items() if kind == "rack" and r.props.get("state") == "live"]
    by_hall: dict[str, float] = {}
    for p in racks:
        by_hall[p["hall"]] = by_hall.get(p["hall"], 0.0) + float(p["power_kw"])
    for (kind, name), r in records.items():
        if kind == "hall" and by_hall.get(name, 0.0) > float(r.props["power_capacity_kw"]) + _EPSILON_KW:
            report(
                f"hall {name}: racks draw {by_hall[name]:,.0f} kW of {float(r.props['power_capacity_kw']):,.0f} kW; "
                "fix: move racks to another hall",
                r.urn,
            )
    if group is not None:  # a hall stack: the site stack checks the budget over its group record
        for message in _adds_up(group, records, ("racks", "it_load_kw")):
            report(message, group.urn)
        return
    site = sites[0].props
    # the site's own racks (hall group 0) and every other hall group's, as its record sums them
    others = [float(r.props["it_load_kw"]) for (kind, _), r in records.items() if kind == "group"]
    it_kw = sum(float(p["power_kw"]) for p in racks) + sum(others)
    facility_kw = it_kw * float(site["pue"])
    for limit in ("budget_kw", "supply_kw"):
        if facility_kw > float(site[limit]) + _EPSILON_KW:
            report(
                f"phase {site['phase']}: facility load {facility_kw / 1000:,.2f} MW (IT {it_kw / 1000:,.2f} MW x PUE "
                f"{site['pue']}) exceeds the {limit.removesuffix('_kw')} of {float(site[limit]) / 1000:,.2f} MW; "
                "fix: fewer racks in this phase, or a larger facility_budget_mw",
                sites[0].urn,
            )


power = StackValidationPolicy(
    name="power-within-budget",
    description=(
        "The live racks' IT load times PUE fits the phase's budget and supply, other hall groups' racks counted by "
        "their group records; each hall fits its capacity; a hall stack's group record adds up."
    ),
    validate=_power,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# ---------------------------------------------------------------------------- protection
def _protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == RECORD and not args.opts.protect:
        report(
            f"ledger record {args.props.get('kind')}/{args.name} is not protected; fix: create it with kasbah.components.ledger.Record",
            args.urn,
        )


protected = ResourceValidationPolicy(
    name="ledger-records-protected",
    description="Records of halls, racks, fabrics and address blocks are protected resources.",
    validate=_protected,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# ---------------------------------------------------------------------------- renumbering and removal
# The stack as deployed, for the policies that compare with it (`--policy-pack-config`)
DEPLOYED_STATE = PolicyConfigSchema(
    properties={
        "deployedState": {
            "type": "string",
            "description": "path of `pulumi stack export --file` output of the stack as deployed",
        }
    }
)


def deployed_records(state: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Ledger records of a `pulumi stack export` document, by (kind, name)."""
    deployment = state.get("deployment") or {}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for res in deployment.get("resources") or []:
        if res.get("type") != RECORD:
            continue
        props = res.get("outputs") or res.get("inputs") or {}
        if "kind" in props and "name" in props:
            out[(str(props["kind"]), str(props["name"]))] = props
    return out


def _load_state(path: str) -> Mapping[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"deployedState {path}: cannot read it ({exc}); fix: pulumi stack export --file {path}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"deployedState {path}: not a `pulumi stack export` document")
    return data


def _declared(kind: str, name: str, props: Mapping[str, Any], decommissions: set[str]) -> bool:
    return any(f"{k}/{v}" in decommissions for k, v in covering_decommissions(kind, name, props))


def _numbering(args: StackValidationArgs, report: ReportViolation) -> None:
    records = _records(args.resources)
    site = next((r.props for (kind, _), r in records.items() if kind == "site"), None)
    group = _group_record(records)
    if site is None and group is None:
        args.not_applicable("no site or hall group record in this stack (a cluster stack)")
        return
    # the site record's (every declared decommission), or a hall stack's group record's (those covering its records)
    holder = site if site is not None else group.props if group is not None else {}
    decommissions = set(holder.get("decommissions") or ())
    # one owner per block and floor position, retired records included (never reused)
    for fields in (("hall", "index"), ("inband_cidr",), ("oob_cidr",), ("storage_cidr",), ("pod_cidr",)):
        seen: dict[tuple[Any, ...], str] = {}
        for (kind, name), r in sorted(records.items()):
            values = tuple(r.props.get(f) for f in fields)
            if any(v in (None, "") for v in values):
                continue
            key = (kind, *values)
            other = seen.setdefault(key, f"{kind}/{name}")
            if other != f"{kind}/{name}":
                report(f"{kind}/{name} reuses {'/'.join(map(str, values))} of {other}; fix: allocate a new one", r.urn)
    for (kind, name), r in records.items():
        if r.props.get("state") == "retired" and r.props.get("reason") == "undeclared":
            report(f"{kind}/{name} left the Plan without a declared decommission; fix: declare it in the phase", r.urn)
    _across_groups(records, group, report)
    path = args.get_config().get("deployedState")
    if not path:
        return
    for (kind, name), old in deployed_records(_load_state(str(path))).items():
        new = records.get((kind, name))
        if new is None:
            if not _declared(kind, name, old, decommissions):
                report(
                    f"{kind}/{name} would be removed from the ledger without a declared decommission; "
                    "fix: restore it, or declare the decommission in the phase (and keep its record)",
                    None,
                )
            continue
        lost = sorted(set(old.get("halls") or {}) - set(new.props.get("halls") or {})) if kind == "group" else []
        if lost:
            report(f"{kind}/{name} would lose hall(s) {', '.join(lost)}; fix: a hall never leaves its group", new.urn)
        changed = [f for f in IDENTITY.get(kind, ()) if old.get(f) != new.props.get(f)]
        if changed:
            report(
                f"{kind}/{name} would be renumbered ({', '.join(f'{f}: {old.get(f)} -> {new.props.get(f)}' for f in changed)}); "
                "fix: keep allocations stable; a new allocation is a new record",
                new.urn,
            )


def _across_groups(records: Mapping[tuple[str, str], _Seen], group: _Seen | None, report: ReportViolation) -> None:
    """Halls in their group's stack; the site: hall indexes and rack address blocks not shared across hall groups."""
    mine = int(group.props["group"]) if group is not None else 0
    for (kind, name), r in sorted(records.items()):
        if kind == "hall" and hall_group(int(r.props["index"])) != mine:
            report(
                f"hall {name} (index {int(r.props['index'])}) is hall group {hall_group(int(r.props['index']))}'s, not this "
                f"stack's (hall group {mine}); fix: keep kasbah.planning.halls.HALLS_PER_STACK, halls never move",
                r.urn,
            )
    if group is not None:  # a hall stack: what its record tells the site stack is what it holds
        for message in _adds_up(group, records, ("halls", "blocks")):
            report(message, group.urn)
        return
    owners = {int(r.props["index"]): f"hall/{name}" for (kind, name), r in records.items() if kind == "hall"}
    site_urn = next((r.urn for (kind, _), r in records.items() if kind == "site"), None)
    racks = [r.props for (kind, _), r in records.items() if kind == "rack"]
    blocks = {0: (site_urn, {b: collapsed(str(p.get(b) or "") for p in racks) for b in GROUP_BLOCKS})}
    for (kind, name), r in sorted(records.items()):
        if kind != "group":
            continue
        g = int(r.props["group"])
        for hall, value in (r.props.get("halls") or {}).items():
            index = int(value)  # numbers arrive as floats
            if hall_group(index) != g:
                report(f"{name}: hall {hall} (index {index}) is hall group {hall_group(index)}'s", r.urn)
            other = owners.setdefault(index, f"{name} hall {hall}")
            if other != f"{name} hall {hall}":
                report(f"{name}: hall {hall} reuses index {index} of {other}; fix: allocate a new one", r.urn)
        blocks[g] = (r.urn, dict(r.props.get("blocks") or {}))
    for b in GROUP_BLOCKS:
        spans = sorted(
            (net.version, int(net.network_address), int(net.broadcast_address), g, str(net))
            for g, (_, by_field) in blocks.items()
            for net in (ipaddress.ip_network(c) for c in by_field.get(b) or ())
        )
        widest: tuple[int, int, int, int, str] | None = None  # the span reaching furthest so far
        for span in spans:
            if widest and widest[0] == span[0] and span[1] <= widest[2] and widest[3] != span[3]:
                report(
                    f"hall group {span[3]}'s {b} {span[4]} overlaps hall group {widest[3]}'s {widest[4]}; "
                    "fix: allocate a new one",
                    blocks[span[3]][0],
                )
            if widest is None or widest[0] != span[0] or span[2] > widest[2]:
                widest = span


numbering = StackValidationPolicy(
    name="no-renumbering-or-removal",
    description=(
        "Ledger records keep their identity (position, address blocks) and leave only by a declared decommission; "
        "no block or floor position is used twice, across hall groups too; a hall stays in its group's stack."
    ),
    validate=_numbering,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=DEPLOYED_STATE,
)

# ---------------------------------------------------------------------------- rollout reach
NODE_GROUP = "pulumi-python:dynamic/nodes:NodeGroup"


def _rollout(args: StackValidationArgs, report: ReportViolation) -> None:
    """Say, before `pulumi up`, how many racks a change reconfigures and in how many waves (advisory)."""
    groups = [plain(r.props) for r in args.resources if r.resource_type == NODE_GROUP]
    if not groups:
        args.not_applicable("no node groups in this stack")
        return
    path = args.get_config().get("deployedState")
    if not path:
        args.not_applicable("no deployedState given: nothing to compare the racks' configuration with")
        return
    deployed = {}
    for res in (_load_state(str(path)).get("deployment") or {}).get("resources") or []:
        props = res.get("outputs") or res.get("inputs") or {}
        if res.get("type") == NODE_GROUP and "rack" in props:
            deployed[str(props["rack"])] = str(props.get("config_sha256"))
    by_pool: dict[str, list[dict[str, Any]]] = {}
    for g in groups:
        by_pool.setdefault(str(g["pool"]), []).append(g)
    reaches = []
    for pool, mine in sorted(by_pool.items()):  # the engine registers in no fixed order
        moved = [g for g in mine if str(g["rack"]) in deployed and deployed[str(g["rack"])] != g["config_sha256"]]
        new = sum(1 for g in mine if str(g["rack"]) not in deployed)
        sizes: dict[Any, int] = {}
        for g in mine:
            sizes[g.get("wave")] = sizes.get(g.get("wave"), 0) + 1
        if moved or new:
            waves = len({g.get("wave") for g in moved})
            reaches.append(PoolReach(pool, len(moved), waves, max(sizes.values()), new))
    if reaches:
        report(describe(reaches), None)


rollout = StackValidationPolicy(
    name="rollout-reach",
    description="How many racks a change reconfigures (drain, configure, health gate, uncordon) and in how many waves.",
    validate=_rollout,
    enforcement_level=EnforcementLevel.ADVISORY,
    config_schema=DEPLOYED_STATE,
)

POLICIES = (one_owner, power, protected, numbering, rollout)
