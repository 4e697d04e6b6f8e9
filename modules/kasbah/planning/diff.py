"""Phase stability: what a later plan adds to an earlier one, and anything it changes or removes.

Works on the plain-data form of plans (`plan_to_dict`), so a plan saved from another branch or
release can be compared with a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kasbah.planning.cabling import CablingError, cable_moves
from kasbah.planning.export import plan_from_dict
from kasbah.planning.model import Plan

# Fields of each kind of object that must never change once it exists. Loads, counts and
# free-form descriptions may grow; everything that names, places or addresses a thing may not.
IDENTITY: dict[str, tuple[str, ...]] = {
    "halls": ("profile", "index", "rows", "positions"),
    "scalable_units": ("hall", "index", "pool", "pool_index", "profile"),
    "racks": (
        "hall",
        "row",
        "position",
        "index",
        "scalable_unit",
        "pool",
        "profile",
        "feeds",
        "oob_cidr",
        "inband_cidr",
        "storage_cidr",
        "rail_cidrs",
    ),
    "nodes": (
        "rack",
        "hall",
        "scalable_unit",
        "slot",
        "pool",
        "tenant",
        "gpus",
        "nvlink_domain",
        "oob_ip",
        "inband_ip",
        "storage_ip",
        "rail_ips",
        "role",
        "cluster",
    ),
    "pools": ("profile", "purpose", "cluster", "tenant"),
    "switches": ("fabric", "tier", "model", "loopback"),
    "clusters": (
        "pod_cidr",
        "service_cidr",
        "node_pod_prefix",
        "control_plane",
        "api_host",
        "api_port",
        "api_vip",
    ),
    "tenants": ("kind", "reseller", "jurisdictions"),
    # what cabling lays out: a changed NIC count, port count or link speed moves cables
    "rack_ports": (
        "nodes",
        "compute_nics_per_node",
        "compute_nic_gbps",
        "storage_nics_per_node",
        "storage_nic_gbps",
        "oob_ports",
        "scalable_unit_racks",
    ),
    "switch_ports": ("ports", "port_gbps", "max_breakout", "uplink_ports"),
}
# Derived from what the racks and switches use: they come and go with them, only their facts are stable.
DERIVED = ("rack_ports", "switch_ports")
# Fields that may only grow (a shrink needs a decommission in its scope).
GROWING: dict[str, tuple[str, ...]] = {
    "pools": ("racks", "nodes", "gpus"),
    "clusters": ("node_limit",),
    "tenants": ("gpu_quota",),
}
SINGULAR = {
    "halls": "hall",
    "scalable_units": "scalable unit",
    "racks": "rack",
    "nodes": "node",
    "pools": "pool",
    "switches": "switch",
    "clusters": "cluster",
    "tenants": "tenant",
    "rack_ports": "rack profile",
    "switch_ports": "switch model",
    "cables": "cable",
}
KINDS = ("halls", "scalable_units", "racks", "nodes", "pools", "switches", "clusters", "tenants", *DERIVED)


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str
    name: str
    what: str

    def __str__(self) -> str:
        return f"{SINGULAR.get(self.kind, self.kind)} {self.name}: {self.what}"


@dataclass
class PlanDiff:
    old_phase: str
    new_phase: str
    added: dict[str, list[str]] = field(default_factory=dict)
    retired: list[dict[str, str]] = field(default_factory=list)
    removed_by_decommission: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    totals: dict[str, tuple[float, float]] = field(default_factory=dict)
    addresses: dict[str, tuple[int, int]] = field(default_factory=dict)
    # cables the fabric rules re-patch because a fabric's spine or core count grew: fabric -> link -> cables
    repatched: dict[str, dict[str, int]] = field(default_factory=dict)
    repatched_examples: list[str] = field(default_factory=list)
    # trays that replaced others in a node's slot (an RMA): the node keeps its identity, is provisioned and burned in again
    replaced: list[dict[str, str]] = field(default_factory=list)
    hardware_arrived: list[str] = field(default_factory=list)  # nodes whose rack's manifest is new
    # declared Kubernetes minor upgrades `new` adds: cluster, from, to, phase
    upgrades: list[dict[str, str]] = field(default_factory=list)
    # tenancy steps `new` adds (tenancy.yaml): change, after, action, tenant, detail
    tenancy: list[dict[str, str]] = field(default_factory=list)

    @property
    def stable(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.old_phase,
            "to": self.new_phase,
            "stable": self.stable,
            "totals": {k: {"from": a, "to": b, "added": round(b - a, 3)} for k, (a, b) in self.totals.items()},
            "addresses_used": {k: {"from": a, "to": b} for k, (a, b) in self.addresses.items()},
            "added": {k: len(v) for k, v in self.added.items()},
            "added_names": {
                k: v for k, v in self.added.items() if k in ("halls", "pools", "clusters", "tenants", "scalable_units")
            },
            "decommissioned": self.retired,
            "removed_by_decommission": self.removed_by_decommission,
            "repatched_cables": self.repatched,
            "repatched_examples": self.repatched_examples,
            "hardware_replaced": self.replaced,
            "hardware_arrived": len(self.hardware_arrived),
            "upgrades": self.upgrades,
            "tenancy": self.tenancy,
            "violations": [{"kind": v.kind, "name": v.name, "what": v.what} for v in self.violations],
        }


def _owners(kind: str, item: dict[str, Any]) -> list[tuple[str, str]]:
    """Decommissions that may remove or shrink this item."""
    if kind == "nodes":
        return [("rack", item["rack"]), ("pool", item["pool"]), ("hall", item["hall"])]
    if kind == "racks":
        return [("rack", item["name"]), ("pool", item["pool"] or ""), ("hall", item["hall"])]
    if kind == "scalable_units":
        return [
            ("pool", item["pool"]),
            ("hall", item["hall"]),
            *(("rack", r) for r in item["racks"]),
        ]
    if kind == "pools":
        return [("pool", item["name"])]
    if kind == "halls":
        return [("hall", item["name"])]
    if kind == "clusters":
        return [("cluster", item["name"])]
    if kind == "tenants":
        return [("tenant", item["name"])]
    return []


def diff_plans(old: dict[str, Any], new: dict[str, Any], plans: tuple[Plan, Plan] | None = None) -> PlanDiff:
    """What `new` adds to `old` (plain-data plans), and anything it changes or removes undeclared.

    `plans`: the same two plans as Plan objects, when the caller has them (saves reading the dicts
    back for the cable comparison).
    """
    d = PlanDiff(old["phase"], new["phase"])
    known = {(r["kind"], r["name"]) for r in old.get("retired", [])}
    fresh = [r for r in new.get("retired", []) if (r["kind"], r["name"]) not in known]
    d.retired = fresh
    retired = {(r["kind"], r["name"]) for r in fresh}
    # scopes touched by a decommission: their fabrics and counts may shrink
    old_racks = {r["name"]: r for r in old["racks"]}
    old_pools = {p["name"]: p for p in old["pools"]}
    scopes = {name for kind, name in retired if kind in ("pool", "hall")}
    for kind, name in retired:
        # a retired rack or pool also shrinks the per-hall storage and out-of-band fabrics
        if kind == "rack" and name in old_racks:
            scopes.update(x for x in (old_racks[name]["pool"], old_racks[name]["hall"]) if x)
        if kind == "pool" and name in old_pools:
            scopes.update(old_pools[name]["halls"])
    retired_clusters = {name for kind, name in retired if kind == "cluster"}
    # tenancy changes `new` adds: a declared quota change may lower a quota (the grants shrink with it)
    seen = {(r["change"], r["action"], r["tenant"]) for r in old.get("tenancy", [])}
    d.tenancy = [r for r in new.get("tenancy", []) if (r["change"], r["action"], r["tenant"]) not in seen]
    requoted = {r["tenant"] for r in d.tenancy if r["action"] == "quota"}
    fabric_scope = {f["name"]: f["scope"] for f in old.get("fabrics", [])}

    for kind in KINDS:
        before = {i["name"]: i for i in old[kind]}
        after = {i["name"]: i for i in new[kind]}
        d.added[kind] = [n for n in after if n not in before]
        removed = 0
        for name, item in before.items():
            now = after.get(name)
            if now is None and kind in DERIVED:
                continue
            if now is None:
                covered = any(o in retired for o in _owners(kind, item))
                if kind == "switches":
                    covered = fabric_scope.get(item["fabric"]) in scopes
                if covered:
                    removed += 1
                else:
                    d.violations.append(Violation(kind, name, "removed without a decommission"))
                continue
            for f in IDENTITY.get(kind, ()):
                a, b = item.get(f), now.get(f)
                if a == b or f not in item or a == "":
                    continue  # a field newer than the old plan's format
                if kind == "nodes" and f in ("role", "cluster"):
                    # a management node taking a control-plane seat, or freed when its cluster retires
                    if (item["role"], now["role"]) == ("management", "control-plane"):
                        continue
                    if (item["role"], now["role"]) == ("control-plane", "management") and item[
                        "cluster"
                    ] in retired_clusters:
                        continue
                d.violations.append(Violation(kind, name, f"{f} changed from {a!r} to {b!r}"))
            for f in GROWING.get(kind, ()):
                a, b = item.get(f, 0), now.get(f, 0)
                if b < a and name not in scopes and not (kind == "tenants" and name in requoted):
                    d.violations.append(Violation(kind, name, f"{f} shrank from {a} to {b} without a decommission"))
            if kind == "scalable_units":
                lost = set(item["racks"]) - set(now["racks"])
                for r in sorted(lost):
                    if ("rack", r) not in retired and item["pool"] not in scopes:
                        d.violations.append(Violation(kind, name, f"lost rack {r} without a decommission"))
        if removed:
            d.removed_by_decommission[kind] = removed

    _cables(d, plans or (old, new), {f for f, scope in fabric_scope.items() if scope in scopes})
    _hardware(d, old, new)
    _versions(d, old, new)

    so, sn = old["summary"], new["summary"]
    for key in (
        "halls",
        "racks",
        "nodes",
        "gpus",
        "switches",
        "clusters",
        "it_load_mw",
        "facility_load_mw",
    ):
        d.totals[key] = (so[key], sn[key])
    uo = {a["network"]: a["used"] for a in old["addresses"]}
    for a in new["addresses"]:
        d.addresses[a["network"]] = (uo.get(a["network"], 0), a["used"])
    return d


def _versions(d: PlanDiff, old: dict[str, Any], new: dict[str, Any]) -> None:
    """A cluster's Kubernetes minor moves only along the upgrades `new` declares; anything else is an in-place edit."""
    known = {(u["cluster"], u["to_version"]) for u in old.get("upgrades", [])}
    fresh = [u for u in new.get("upgrades", []) if (u["cluster"], u["to_version"]) not in known]
    d.upgrades = [
        {"cluster": u["cluster"], "from": u["from_version"], "to": u["to_version"], "phase": u["phase"]} for u in fresh
    ]
    before = {c["name"]: c for c in old["clusters"]}
    for c in new["clusters"]:
        was = before.get(c["name"])
        if was is None:
            continue
        path = [was["kubernetes_version"]]
        for u in fresh:
            if u["cluster"] == c["name"] and u["from_version"] == path[-1]:
                path.append(u["to_version"])
        # the version it was commissioned at is history: editing it is an in-place edit too
        edited = was.get("commissioned_version", "") not in ("", c.get("commissioned_version"))
        if path[-1] == c["kubernetes_version"] and not edited:
            continue
        key = "commissioned_version" if edited else "kubernetes_version"
        d.violations.append(
            Violation(
                "clusters",
                c["name"],
                f"kubernetes_version changed from {was.get(key)!r} to {c.get(key)!r} without a declared upgrade; "
                "fix: keep the version where the cluster is commissioned and declare "
                f'`upgrades: [{{cluster: {c["name"]}, kubernetes_version: "..."}}]` in a later phase, one minor '
                "at a time",
            )
        )


def _hardware(d: PlanDiff, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Trays that changed in a node's slot: a replacement, never a renumbering (the node's identity is its slot)."""
    before = {h["node"]: h for h in old.get("hardware", [])}
    nodes = {n["name"] for n in new["nodes"]}
    for h in new.get("hardware", []):
        was = before.get(h["node"])
        if was is None:
            d.hardware_arrived.append(h["node"])
            continue
        if was != h:
            changed = [
                k for k in ("serial", "bmc_mac", "inband_mac", "storage_mac", "rail_macs") if was.get(k) != h.get(k)
            ]
            d.replaced.append(
                {"node": h["node"], "from": was["serial"], "to": h["serial"], "changed": ", ".join(changed)}
            )
    for node, h in before.items():
        if node in nodes and node not in {x["node"] for x in new.get("hardware", [])}:
            d.replaced.append({"node": node, "from": h["serial"], "to": "", "changed": "manifest row removed"})


def _cables(
    d: PlanDiff,
    sides: tuple[Plan, Plan] | tuple[dict[str, Any], dict[str, Any]],
    shrinking: set[str],
    examples: int = 5,
) -> None:
    """Cables whose two ends remain but land elsewhere: re-patched by the fabric rules (reported), or a violation.

    Fabrics in the scope of a decommission may shrink and re-cable; they are left out. A side that
    cannot be cabled (a hand-edited plan file whose fabrics and switches disagree) proves nothing,
    so it is a violation too.
    """
    try:
        old, new = (s if isinstance(s, Plan) else plan_from_dict(s) for s in sides)
        moves = cable_moves(old, new)
    except (CablingError, KeyError, TypeError, ValueError) as exc:
        d.violations.append(Violation("cables", "(all)", f"not compared: a side cannot be cabled ({exc})"))
        return
    for m in moves:
        if m.fabric in shrinking:
            continue
        if m.forced:
            links = d.repatched.setdefault(m.fabric, {})
            links[m.link] = links.get(m.link, 0) + 1
            if len(d.repatched_examples) < examples:
                d.repatched_examples.append(str(m))
        else:
            d.violations.append(
                Violation(
                    "cables",
                    f"{m.a_device}:{m.a_port}",
                    f"{m.fabric} {m.link} {m.change}, although the fabric kept its size",
                )
            )
