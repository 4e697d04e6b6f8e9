"""Plans as plain data (JSON-ready dicts with a fixed key order) and summaries of them."""

from __future__ import annotations

import hashlib
import json
import typing
from dataclasses import fields, is_dataclass
from typing import Any

from kasbah.planning.model import EtcdBackup, GitOpsSource, KmsProvider, Plan, Power

# 2: clusters' tenants, API endpoint and GitOps path, namespaces, host flows, tenants' egress,
# dedicated grants, the port facts cabling needs (rack_ports, switch_ports), Helm releases, GitOps,
# rollout waves
# 3: hardware (the trays in each slot), the site's DNS zone and servers, interface MTUs
# 4: clusters' API virtual IP, VRRP id and commissioned version; declared upgrades; etcd backups
# 5: pool images (each pool's `image`, the Plan's `images`)
# 6: identity (each tenant's `issuer`, the Plan's `issuers`), the site's container `registry`
# 7: residency (`jurisdiction`, `mirrors`, `sinks`, `kms`, `storage_classes`, `workload_backups`, each release's chart `origin`), tenancy changes
#    (`revision`, `tenancy`, each tenant's `since`, `offboarded` and `sinks`)
PLAN_FORMAT = 7
READABLE_FORMATS = (3, 4, 5, 6, 7)  # an older plan reads with the new fields' defaults
SECTIONS = (
    "halls",
    "scalable_units",
    "racks",
    "nodes",
    "pools",
    "fabrics",
    "switches",
    "clusters",
    "tenants",
    "addresses",
    "retired",
    "grants",
    "egress",
    "namespaces",
    "host_flows",
    "rack_ports",
    "switch_ports",
    "releases",
    "waves",
    "hardware",
    "bmcs",
    "upgrades",
    "images",
    "issuers",
    "mirrors",
    "tenancy",
    "sinks",
    "storage_classes",
    "workload_backups",
)


def _row(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for n in names:
        v = getattr(obj, n)
        out[n] = list(v) if isinstance(v, tuple) else v
    return out


def _rows(items: tuple[Any, ...]) -> list[dict[str, Any]]:
    if not items:
        return []
    names = tuple(f.name for f in fields(items[0]))
    return [_row(i, names) for i in items]


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    power = plan.power
    assert is_dataclass(power)
    out: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "environment": plan.environment,
        "site": plan.site,
        "phase": plan.phase,
        "phase_index": plan.phase_index,
        "summary": summary(plan),
        "power": _row(power, tuple(f.name for f in fields(power))),
        "admin_networks": list(plan.admin_networks),
        "dns_resolvers": list(plan.dns_resolvers),
        "zone": plan.zone,
        "dns_servers": list(plan.dns_servers),
        "mtus": [list(m) for m in plan.mtus],
        "image": list(plan.image) if plan.image else None,
        "registry": plan.registry,
        "jurisdiction": plan.jurisdiction,
        "revision": plan.revision,
        "gitops": _row(plan.gitops, tuple(f.name for f in fields(plan.gitops))) if plan.gitops else None,
        "kms": _row(plan.kms, tuple(f.name for f in fields(plan.kms))) if plan.kms else None,
        "etcd_backup": _row(plan.etcd_backup, tuple(f.name for f in fields(plan.etcd_backup)))
        if plan.etcd_backup
        else None,
    }
    for section in SECTIONS:
        out[section] = _rows(getattr(plan, section))
    return out


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """The Plan a `plan_to_dict` dict (a saved plan JSON of this format) describes: lists become the model's tuples."""
    hints = typing.get_type_hints(Plan)
    values: dict[str, Any] = {}
    for f in fields(Plan):
        if f.name not in data and f.name in (
            "hardware",
            "zone",
            "dns_servers",
            "mtus",
            "bmcs",
            "image",
            "upgrades",
            "etcd_backup",
            "images",
            "issuers",
            "registry",
            "jurisdiction",
            "mirrors",
            "revision",
            "tenancy",
            "sinks",
            "kms",
            "storage_classes",
            "workload_backups",
        ):
            continue  # a plan of an older format: the field's default
        if f.name in SECTIONS:
            row_type = typing.get_args(hints[f.name])[0]
            values[f.name] = tuple(row_type(**{k: _tuples(v) for k, v in row.items()}) for row in data[f.name])
        elif f.name == "power":
            values[f.name] = Power(**data["power"])
        elif f.name == "kms":
            values[f.name] = KmsProvider(**data["kms"]) if data.get("kms") else None
        elif f.name == "etcd_backup":
            values[f.name] = EtcdBackup(**data["etcd_backup"]) if data.get("etcd_backup") else None
        elif f.name == "gitops":
            values[f.name] = (
                GitOpsSource(**{k: _tuples(v) for k, v in data["gitops"].items()}) if data.get("gitops") else None
            )
        else:
            values[f.name] = _tuples(data[f.name])
    return Plan(**values)


def summary(plan: Plan) -> dict[str, Any]:
    p = plan.power
    return {
        "halls": len(plan.halls),
        "scalable_units": len(plan.scalable_units),
        "racks": len(plan.racks),
        "nodes": len(plan.nodes),
        "gpus": plan.gpus,
        "pools": len(plan.pools),
        "clusters": len(plan.clusters),
        "tenants": len(plan.tenants),
        "switches": len(plan.switches),
        "it_load_mw": round(p.it_load_kw / 1000, 3),
        "facility_load_mw": round(p.facility_load_kw / 1000, 3),
        "budget_mw": round(p.budget_kw / 1000, 3),
        "supply_mw": round(p.supply_kw / 1000, 3),
    }


def to_json(data: Any, compact: bool = False) -> str:
    if compact:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def section_digests(data: dict[str, Any]) -> dict[str, str]:
    """A SHA-256 per section, so a golden test can say which part of a large plan changed."""
    return {
        s: hashlib.sha256(json.dumps(data[s], separators=(",", ":"), sort_keys=True).encode()).hexdigest()
        for s in SECTIONS
    }
