"""The residency proof: every endpoint of a rendered tree and of the node roles is declared and lies where the
tenants it serves allow their data to be.

`rendering.endpoints` finds the endpoints and resolves each against the Plan (a mirror, a mirrored upstream, an
issuer, the campus); here each resolution is judged: an undeclared endpoint is a finding, and so is one whose
jurisdiction some tenant it serves does not allow (a cluster's files serve that cluster's tenants, an issuer its
own tenants, the inventory, provisioning data and role defaults every tenant of the phase). The etcd snapshots'
target and the Secrets' KMS keys are judged the same way (and every cluster's API servers must write Secrets
through that KMS first), and the tree's air-gap bundle must be the one the tree implies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from kasbah.config.reading import bounded_yaml
from kasbah.planning.model import Plan
from kasbah.rendering.endpoints import UNDECLARED, Endpoint, Resolution, bundle, resolve_all, role_defaults
from kasbah.resources import roles

BUNDLE = "bundle/manifest.json"


@dataclass(frozen=True, slots=True)
class Row:
    """One endpoint of the inventory, as `kasbah verify --json` reports it."""

    value: str
    kind: str  # url | image
    via: str
    by: str
    fetched_from: str
    jurisdiction: str | None
    where: str
    tenants: tuple[str, ...]


@dataclass
class ResidencyReport:
    rows: list[Row] = field(default_factory=list)
    findings: list[tuple[str, str]] = field(default_factory=list)  # (where, message)

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.via] = out.get(r.via, 0) + 1
        return out


def _served(e: Endpoint, res: Resolution, plan: Plan) -> tuple[str, ...]:
    if res.tenants is not None:
        return res.tenants
    if e.cluster is not None:
        c = next((c for c in plan.clusters if c.name == e.cluster), None)
        if c is not None:
            return c.tenants
    return tuple(t.name for t in plan.tenants)


def check_residency(
    files: Mapping[str, bytes], plan: Plan, defaults: Mapping[str, bytes] | None = None
) -> ResidencyReport:
    defaults = role_defaults(roles()) if defaults is None else defaults
    report = ResidencyReport()
    allowed = {t.name: frozenset(t.jurisdictions) for t in plan.tenants}
    resolved = resolve_all(files, defaults, plan)
    for e, res in resolved:
        if res is None:
            continue
        served = _served(e, res, plan)
        report.rows.append(
            Row(
                e.value,
                "image" if e.image else "url",
                res.via,
                res.by,
                res.fetched_from,
                res.jurisdiction,
                e.where,
                served,
            )
        )
        if res.via == UNDECLARED:
            report.findings.append(
                (
                    e.where,
                    f"{e.value} is served by no declared mirror, issuer or campus name, so nothing says where it "
                    "lies; fix: list its upstream under a site mirror (site.mirrors) and fetch it from there",
                )
            )
            continue
        outside = [t for t in served if t in allowed and res.jurisdiction not in allowed[t]]
        if outside:
            via = f", fetched from {res.fetched_from}" if res.fetched_from != e.value else ""
            report.findings.append(
                (
                    e.where,
                    f"{e.value} ({res.via} {res.by}{via}) lies in {res.jurisdiction}, "
                    f"outside the jurisdictions of {', '.join(outside)} "
                    f"({' / '.join(sorted(set().union(*(allowed[t] for t in outside))))})",
                )
            )
    b = plan.etcd_backup
    if b is not None:
        for c in plan.clusters:
            outside = [t for t in c.tenants if t in allowed and b.jurisdiction not in allowed[t]]
            if outside:
                report.findings.append(
                    (
                        f"cluster {c.name}: etcd snapshots",
                        f"go to `{b.target}` in {b.jurisdiction}, outside the jurisdictions of {', '.join(outside)}",
                    )
                )
    if plan.kms is not None:
        k = plan.kms
        for c in plan.clusters:
            outside = [t for t in c.tenants if t in allowed and k.jurisdiction not in allowed[t]]
            if outside:
                report.findings.append(
                    (
                        f"cluster {c.name}: Secrets' keys",
                        f"held in {k.jurisdiction} ({k.name}), outside the jurisdictions of {', '.join(outside)}",
                    )
                )
            path = f"bootstrap/{c.name}/encryption.yaml"
            if path in files and not _encrypts(files[path], k.name):
                report.findings.append(
                    (path, f"Secrets are not written through the site's KMS v2 provider `{k.name}` first")
                )
            elif path not in files and any(p.startswith(f"bootstrap/{c.name}/") for p in files):
                report.findings.append((path, "missing: the cluster's Secrets would be stored unencrypted"))
    if BUNDLE not in files:
        report.findings.append((BUNDLE, "missing: the tree lists no air-gap bundle; render the phase again"))
    else:
        expected = bundle(plan, files, defaults, resolved)
        try:
            written = json.loads(files[BUNDLE])
        except ValueError as exc:
            report.findings.append((BUNDLE, f"not JSON ({exc}); render the phase again"))
        else:
            if written != expected:
                report.findings.append(
                    (BUNDLE, "does not list what the tree refers to (edited, or stale); render the phase again")
                )
    return report


def _encrypts(text: bytes, name: str) -> bool:
    """Whether an EncryptionConfiguration writes Secrets through KMS v2 provider `name` (its first provider)."""
    if bounded_yaml(text, strict=False) is not None:
        return False
    try:
        doc = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return False
    rules = doc.get("resources") if isinstance(doc, dict) else None
    for rule in rules if isinstance(rules, list) else []:
        if isinstance(rule, dict) and "secrets" in (rule.get("resources") or []):
            providers = rule.get("providers") or []
            first = providers[0] if isinstance(providers, list) and providers else {}
            kms = first.get("kms") if isinstance(first, dict) else None
            return isinstance(kms, dict) and kms.get("apiVersion") == "v2" and kms.get("name") == name
    return False
