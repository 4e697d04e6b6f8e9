"""kasbah's policy pack: the campus invariants, checked by Pulumi at preview time against what a program is about to do.

The checks read only the resources' inputs (and, for renumbering and removal, the state of the
stack as deployed, exported by `pulumi stack export`), so they hold whatever produced the program:
a hand edit, an old checkout, a bug in the planner.
"""

from __future__ import annotations

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

from kasbah.components.ledger import IDENTITY, covering_decommissions
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
def _power(args: StackValidationArgs, report: ReportViolation) -> None:
    records = _records(args.resources)
    sites = [r for (kind, _), r in records.items() if kind == "site"]
    if not sites:
        args.not_applicable("no site record in this stack (a cluster stack)")
        return
    site = sites[0].props
    racks = [r.props for (kind, _), r in records.items() if kind == "rack" and r.props.get("state") == "live"]
    it_kw = sum(float(p["power_kw"]) for p in racks)
    facility_kw = it_kw * float(site["pue"])
    for limit in ("budget_kw", "supply_kw"):
        if facility_kw > float(site[limit]) + _EPSILON_KW:
            report(
                f"phase {site['phase']}: facility load {facility_kw / 1000:,.2f} MW (IT {it_kw / 1000:,.2f} MW x PUE "
                f"{site['pue']}) exceeds the {limit.removesuffix('_kw')} of {float(site[limit]) / 1000:,.2f} MW; "
                "fix: fewer racks in this phase, or a larger facility_budget_mw",
                sites[0].urn,
            )
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


power = StackValidationPolicy(
    name="power-within-budget",
    description="The live racks' IT load times PUE fits the phase's budget and supply; each hall fits its capacity.",
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
    if site is None:
        args.not_applicable("no site record in this stack (a cluster stack)")
        return
    decommissions = set(site.get("decommissions") or ())
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
        changed = [f for f in IDENTITY.get(kind, ()) if old.get(f) != new.props.get(f)]
        if changed:
            report(
                f"{kind}/{name} would be renumbered ({', '.join(f'{f}: {old.get(f)} -> {new.props.get(f)}' for f in changed)}); "
                "fix: keep allocations stable; a new allocation is a new record",
                new.urn,
            )


numbering = StackValidationPolicy(
    name="no-renumbering-or-removal",
    description=(
        "Ledger records keep their identity (position, address blocks) and leave only by a declared decommission; "
        "no block or floor position is used twice."
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
