"""The physical campus in Pulumi: data halls and their racks as ledger records, the site's budget, fabrics and address blocks.

The ledger of phase N holds every hall, rack, fabric and cluster address block that phases
1..N ever allocated: live ones as the Plan has them, retired ones as they were when retired,
marked with the phase and the declared reason. So records are only ever added or updated,
never deleted, and an index or a block stays taken after its rack is gone.

The ledger is computed whole; its halls are split between stacks by hall group
(`kasbah.planning.halls.hall_group`): group 0's `DataHall`s are the site stack's, each other
group's are its hall stack's, and both hold that group's record (`group_record`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from kasbah.components.ledger import Record, covering_decommissions, group_summary
from kasbah.planning.halls import hall_group
from kasbah.planning.model import Cluster, Fabric, Hall, Plan, Rack

Fields = dict[str, Any]


@dataclass(frozen=True)
class Ledger:
    """Records by kind and name, computed from the plans of phases 1..N (the last is current)."""

    site: Fields
    halls: dict[str, Fields]
    racks: dict[str, Fields]
    fabrics: dict[str, Fields]
    clusters: dict[str, Fields]

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "halls": self.halls,
            "racks": self.racks,
            "fabrics": self.fabrics,
            "clusters": self.clusters,
        }


def _hall(h: Hall) -> Fields:
    return {
        "hall": h.name,
        "index": h.index,
        "rows": h.rows,
        "positions": h.positions,
        "profile": h.profile,
        "power_capacity_kw": h.power_capacity_kw,
        "phase": h.phase,
    }


def _rack(r: Rack) -> Fields:
    return {
        "hall": r.hall,
        "row": r.row,
        "position": r.position,
        "index": r.index,
        "profile": r.profile,
        "rack_kind": r.kind,
        "pool": r.pool,
        "scalable_unit": r.scalable_unit,
        "power_kw": r.power_kw,
        "nodes": r.nodes,
        "gpus": r.gpus,
        "oob_cidr": r.oob_cidr or "",
        "inband_cidr": r.inband_cidr or "",
        "storage_cidr": r.storage_cidr or "",
        "rail_cidrs": list(r.rail_cidrs),
        "phase": r.phase,
    }


def _fabric(f: Fabric) -> Fields:
    return {"fabric": f.name, "loopback_block": f.loopback_block, "fabric_kind": f.kind, "scope": f.scope}


def _cluster(c: Cluster) -> Fields:
    return {"cluster": c.name, "pod_cidr": c.pod_cidr, "service_cidr": c.service_cidr, "phase": c.phase}


def ledger(plans: Sequence[Plan]) -> Ledger:
    """Every record of the last plan's phase, retired ones included (with why and when)."""
    if not plans:
        raise ValueError("no plans: the ledger needs at least the current phase")
    current = plans[-1]
    retired = {(r.kind, r.name): r for p in plans for r in p.retired}
    tables: dict[str, dict[str, Fields]] = {"hall": {}, "rack": {}, "fabric": {}, "cluster": {}}
    live: dict[str, set[str]] = {k: set() for k in tables}
    for i, plan in enumerate(plans):
        rows: dict[str, list[tuple[str, Fields]]] = {
            "hall": [(h.name, _hall(h)) for h in plan.halls],
            "rack": [(r.name, _rack(r)) for r in plan.racks],
            "fabric": [(f.name, _fabric(f)) for f in plan.fabrics],
            "cluster": [(c.name, _cluster(c)) for c in plan.clusters],
        }
        for kind, items in rows.items():
            for name, fields in items:
                tables[kind][name] = fields
                if i == len(plans) - 1:
                    live[kind].add(name)
    for kind, table in tables.items():
        for name, fields in table.items():
            if name in live[kind]:
                fields["state"] = "live"
                continue
            why = _why_retired(kind, name, fields, retired)
            fields["state"] = "retired"
            fields["retired_in"] = why[0]
            fields["reason"] = why[1]
    site = {
        "site": current.site,
        "environment": current.environment,
        "phase": current.phase,
        "pue": current.power.pue,
        "budget_kw": current.power.budget_kw,
        "supply_kw": current.power.supply_kw,
        "decommissions": sorted(f"{r.kind}/{r.name}" for r in retired.values()),
    }
    return Ledger(site, tables["hall"], tables["rack"], tables["fabric"], tables["cluster"])


def hall_groups(book: Ledger) -> dict[int, list[str]]:
    """Hall names by hall group (`kasbah.planning.halls.hall_group`), retired halls included, in index order."""
    out: dict[int, list[str]] = {}
    for name, fields in sorted(book.halls.items(), key=lambda kv: int(kv[1]["index"])):
        out.setdefault(hall_group(int(fields["index"])), []).append(name)
    return dict(sorted(out.items()))


def group_name(group: int) -> str:
    """The name of hall group `group`'s record, and of its stack's suffix (`<environment>-halls-<group>`)."""
    return f"hall-group-{group}"


def group_racks(book: Ledger, halls: Sequence[str]) -> dict[str, Fields]:
    """The racks (live and retired) of these halls, by name."""
    wanted = set(halls)
    return {r: f for r, f in book.racks.items() if f["hall"] in wanted}


def group_record(book: Ledger, group: int) -> Fields:
    """Hall group `group`'s record: its halls, live racks, IT load, address blocks and decommissions."""
    halls = hall_groups(book).get(group, [])
    return group_summary(
        group,
        {h: int(book.halls[h]["index"]) for h in halls},
        group_racks(book, halls),
        book.site["decommissions"],
    )


def _why_retired(kind: str, name: str, fields: Fields, retired: Mapping[tuple[str, str], Any]) -> tuple[str, str]:
    """The declared decommission that took a record out of the Plan: its own, or its pool's or hall's."""
    for key in covering_decommissions(kind, name, fields):
        if key in retired:
            r = retired[key]
            return r.phase, r.reason if key[0] == kind else f"{key[0]} {key[1]} decommissioned: {r.reason}"
    # a rack or fabric the plan dropped without a decommission: the policy pack refuses it
    return "", "undeclared"


@dataclass(frozen=True)
class DataHallArgs:
    """One data hall of the ledger."""

    hall: Fields
    """The hall's record (`Ledger.halls[name]`)."""
    racks: Mapping[str, Fields]
    """Its racks' records, live and retired, by rack name."""


class DataHall(pulumi.ComponentResource):
    """A data hall: its record and one protected record per rack; outputs its load and headroom."""

    racks: pulumi.Output[int]
    it_load_kw: pulumi.Output[float]
    power_capacity_kw: pulumi.Output[float]

    def __init__(self, name: str, args: DataHallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("kasbah:site:DataHall", name, None, opts)
        hall = args.hall["hall"]
        strays = sorted(r for r, f in args.racks.items() if f["hall"] != hall)
        if strays:
            raise ValueError(f"DataHall {name}: rack(s) {', '.join(strays)} are in another hall")
        child = pulumi.ResourceOptions(parent=self)
        Record(name, "hall", args.hall, child)
        for rack, fields in sorted(args.racks.items(), key=lambda kv: kv[1]["index"]):
            Record(rack, "rack", fields, child)
        live = [f for f in args.racks.values() if f["state"] == "live"]
        self.racks = pulumi.Output.from_input(len(live))
        self.it_load_kw = pulumi.Output.from_input(round(sum(f["power_kw"] for f in live), 1))
        self.power_capacity_kw = pulumi.Output.from_input(args.hall["power_capacity_kw"])
        self.register_outputs(
            {"racks": self.racks, "it_load_kw": self.it_load_kw, "power_capacity_kw": self.power_capacity_kw}
        )
