"""The residency proof: every endpoint of a rendered tree and of the node roles is declared and lies where the
tenants it serves allow their data to be.

`rendering.endpoints` finds the endpoints and resolves each against the Plan (a mirror, a mirrored upstream, an
issuer, a sink, the campus); here each resolution is judged: an undeclared endpoint is a finding, and so is one
whose jurisdiction some tenant it serves does not allow (a cluster's files serve that cluster's tenants, an issuer
its own tenants, a tenant's sink the tenants that name it, the inventory, provisioning data and role defaults
every tenant of the phase). The etcd snapshots'
target and the Secrets' KMS keys are judged the same way (and every cluster's API servers must write Secrets
through that KMS first); every tenant's backups are scheduled as the Plan says, to a target it allows; the volumes
admission policy lets a tenant's claims name only storage classes labelled with a jurisdiction it allows; and the
tree's air-gap bundle must be the one the tree implies.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from kasbah.config.reading import bounded_yaml
from kasbah.planning.model import Plan
from kasbah.rendering.endpoints import UNDECLARED, Endpoint, Resolution, bundle, resolve_all, role_defaults
from kasbah.rendering.kubernetes.admission import VOLUMES
from kasbah.rendering.kubernetes.storage import JURISDICTION
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
                    f"{e.value} is served by no declared mirror, issuer, sink or campus name, so nothing says where it "
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
    report.findings += _backups(files, plan, allowed)
    for c in plan.clusters:
        if c.tenants:  # a cluster without tenants has no tenant volume to keep anywhere
            report.findings += _volumes(files, c.name, allowed)
    report.findings += _secrets(files, plan, allowed)
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


def _schedules(text: bytes | None) -> dict[str, str]:
    """tenant -> directory of a rendered backups file (empty when missing or unreadable: every tenant a finding)."""
    if text is None or bounded_yaml(text, strict=False) is not None:
        return {}
    try:
        doc = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return {}
    rows = doc.get("schedules") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        return {}
    return {str(r.get("tenant")): str(r.get("directory")) for r in rows if isinstance(r, dict)}


def _docs(text: bytes | None) -> list[Any]:
    if text is None or bounded_yaml(text, strict=False) is not None:
        return []
    try:
        return [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if isinstance(d, dict)]
    except yaml.YAMLError:
        return []


def _volumes(files: Mapping[str, bytes], cluster: str, allowed: Mapping[str, frozenset[str]]) -> list[tuple[str, str]]:
    """Tenants' volumes: the admission policy lets each tenant's claims name only storage classes (storage.yaml)
    whose jurisdiction the tenant allows, read from the two rendered files."""
    storage, admission = f"clusters/{cluster}/storage.yaml", f"clusters/{cluster}/admission.yaml"
    classes = {
        str((d.get("metadata") or {}).get("name")): str(
            ((d.get("metadata") or {}).get("labels") or {}).get(JURISDICTION)
        )
        for d in _docs(files.get(storage))
        if d.get("kind") == "StorageClass"
    }
    if not classes:
        return []
    policy = next(
        (
            d
            for d in _docs(files.get(admission))
            if d.get("kind") == "ValidatingAdmissionPolicy" and (d.get("metadata") or {}).get("name") == VOLUMES
        ),
        None,
    )
    variables = {v.get("name"): v.get("expression") for v in ((policy or {}).get("spec") or {}).get("variables") or []}
    try:
        residency = ast.literal_eval(variables.get("residency") or "")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        residency = None
    if policy is None or not isinstance(residency, dict):
        return [(admission, f"no readable `{VOLUMES}` policy: tenants' volumes could use any storage class")]
    out = []
    for tenant, names in sorted(residency.items()):
        for name in names if isinstance(names, list) else []:
            where = classes.get(str(name))
            if where is None:
                out.append((admission, f"{VOLUMES} lets {tenant} use storage class `{name}`, which {storage} lacks"))
            elif tenant in allowed and where not in allowed[tenant]:
                out.append(
                    (
                        admission,
                        f"{VOLUMES} lets {tenant} use storage class `{name}` in {where}, outside its jurisdictions "
                        f"({' / '.join(sorted(allowed[tenant]))})",
                    )
                )
    return out


def _backups(files: Mapping[str, bytes], plan: Plan, allowed: Mapping[str, frozenset[str]]) -> list[tuple[str, str]]:
    """etcd snapshots (every tenant of a cluster has objects there) and each tenant's workload backups: to a target
    its jurisdictions allow, and scheduled in backups/<cluster>.yaml as the Plan says."""
    out: list[tuple[str, str]] = []
    etcd = plan.etcd_backup
    for c in plan.clusters:
        if etcd is not None:
            outside = [t for t in c.tenants if t in allowed and etcd.jurisdiction not in allowed[t]]
            if outside:
                out.append(
                    (
                        f"cluster {c.name}: etcd snapshots",
                        f"go to `{etcd.target}` in {etcd.jurisdiction}, outside the jurisdictions of "
                        f"{', '.join(outside)}",
                    )
                )
        planned = {w.tenant: w for w in plan.workload_backups if w.tenant in c.tenants}
        for tenant, w in planned.items():
            if tenant in allowed and w.jurisdiction not in allowed[tenant]:
                out.append(
                    (
                        f"cluster {c.name}: backups of {tenant}",
                        f"go to `{w.target}` in {w.jurisdiction}, outside its jurisdictions "
                        f"({' / '.join(sorted(allowed[tenant]))})",
                    )
                )
        if not planned:
            continue
        path = f"backups/{c.name}.yaml"
        written = _schedules(files.get(path))
        for tenant, w in planned.items():
            if written.get(tenant) != w.directory(c.name):
                out.append(
                    (path, f"{tenant}'s backups are not scheduled to {w.directory(c.name)} (its target `{w.target}`)")
                )
        for tenant in sorted(set(written) - set(planned)):
            out.append((path, f"backs up `{tenant}`, which the Plan does not back up on this cluster"))
    return out


def _secrets(files: Mapping[str, bytes], plan: Plan, allowed: Mapping[str, frozenset[str]]) -> list[tuple[str, str]]:
    """Secrets at rest: the KMS keys where every tenant of a cluster allows, and every cluster writing through it."""
    if plan.kms is None:
        return []
    k = plan.kms
    out: list[tuple[str, str]] = []
    for c in plan.clusters:
        outside = [t for t in c.tenants if t in allowed and k.jurisdiction not in allowed[t]]
        if outside:
            out.append(
                (
                    f"cluster {c.name}: Secrets' keys",
                    f"held in {k.jurisdiction} ({k.name}), outside the jurisdictions of {', '.join(outside)}",
                )
            )
        path = f"bootstrap/{c.name}/encryption.yaml"
        if path in files and not _encrypts(files[path], k.name):
            out.append((path, f"Secrets are not written through the site's KMS v2 provider `{k.name}` first"))
        elif path not in files and any(p.startswith(f"bootstrap/{c.name}/") for p in files):
            out.append((path, "missing: the cluster's Secrets would be stored unencrypted"))
    return out
