"""How far a change reaches the nodes: each rack's configuration digest, and the waves a change runs in.

A rack's digest covers everything the node playbooks read for its hosts (their inventory
variables, the site-wide variables, the playbooks and roles). The Pulumi node groups carry it as
their input (`components.nodes`), so a rack is reconfigured exactly when its digest moves; the
review compares the digests of two checkouts to say, before anything runs, "N racks will be
reconfigured in M waves" (`Plan.waves`: a pool's racks `rollout.racks` at a time). No Pulumi here.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kasbah.planning.model import Node, Plan
from kasbah.rendering.inventory import PLAN_PHASE, host_vars, site_vars
from kasbah.resources import COLLECTION


def _reaches_nodes(path: Path, root: Path) -> bool:
    """Files that decide what a node becomes: playbooks, ansible.cfg, the collection's roles and plugins.

    Not docs, the collection's build metadata, caches or hidden tool state.
    """
    rel = path.relative_to(root)
    if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
        return False
    if len(rel.parts) == 1:
        return path.suffix in (".yml", ".cfg")
    inner = rel.parts[len(COLLECTION.parts) :]
    return (
        rel.parts[: len(COLLECTION.parts)] == COLLECTION.parts and len(inner) > 1 and inner[0] in ("roles", "plugins")
    )


@functools.cache
def playbooks_digest(root: Path) -> str:
    """sha256 over the playbook project's files that reach nodes (so a role change reconfigures its racks)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and _reaches_nodes(p, root)):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _without_macs(v: Mapping[str, Any]) -> dict[str, Any]:
    """A host's variables with its NICs' MACs left out: a replaced tray is `node_hardware`'s business, not the rack's."""
    net = v.get("kasbah_network")
    if net is None:
        return dict(v)
    ifaces = [{k: x for k, x in i.items() if k != "mac"} for i in net["interfaces"]]
    return {**v, "kasbah_network": {**net, "interfaces": ifaces}}


def node_hardware(plan: Plan) -> dict[str, str]:
    """node -> its tray as one string (serial and MACs): when it changes, the node is provisioned and burned in again."""
    return {
        h.node: " ".join([h.serial, h.bmc_mac, h.inband_mac, h.storage_mac or "-", *h.rail_macs]) for h in plan.hardware
    }


def rack_digests(plan: Plan, playbooks: Path) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """(rack -> configuration sha256, rack -> host names) for every rack with nodes.

    The trays' MACs are left out: replacing a tray re-commissions that node (`node_hardware`), it
    does not drain its rack.
    """
    shared = {k: v for k, v in site_vars(plan).items() if k != PLAN_PHASE}
    hv = {h: _without_macs(v) for h, v in host_vars(plan).items()}
    roles = playbooks_digest(playbooks)
    by_rack: dict[str, list[Node]] = {}
    for n in plan.nodes:
        by_rack.setdefault(n.rack, []).append(n)
    digests: dict[str, str] = {}
    hosts: dict[str, tuple[str, ...]] = {}
    for rack, nodes in by_rack.items():
        names = tuple(sorted(n.name for n in nodes))
        doc = {"site": shared, "hosts": {h: hv[h] for h in names}, "playbooks": roles}
        digests[rack] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
        hosts[rack] = names
    return digests, hosts


@dataclass(frozen=True, slots=True)
class PoolReach:
    """What a change does to one pool's racks."""

    pool: str
    reconfigured: int  # racks that exist on both sides and whose digest moved: drained, configured, gated
    waves: int  # waves holding at least one of them: they run one after the other
    wave_racks: int  # the pool's `rollout.racks`
    commissioned: int  # new racks: configured and burned in


def reach(plan: Plan, before: Mapping[str, str], after: Mapping[str, str], pools: set[str]) -> list[PoolReach]:
    """Per pool of `pools` (in Plan order): racks a change from `before` to `after` digests reaches, and in how many waves."""
    out = []
    sizes = {p.name: p.rollout_racks for p in plan.pools}
    for name in (p.name for p in plan.pools if p.name in pools):
        waves = [w for w in plan.waves if w.pool == name]
        moved = {r for w in waves for r in w.racks if r in before and r in after and before[r] != after[r]}
        new = sum(1 for w in waves for r in w.racks if r in after and r not in before)
        touched = sum(1 for w in waves if moved & set(w.racks))
        if moved or new:
            out.append(PoolReach(name, len(moved), touched, sizes[name], new))
    return out


def describe(reaches: list[PoolReach]) -> str:
    """`128 racks will be reconfigured in 16 waves (train-a: 128 in 16 waves of up to 8); 2 new racks commissioned`."""
    racks = sum(r.reconfigured for r in reaches)
    parts = []
    if racks:
        # pools roll side by side; within a pool, wave after wave
        longest = max(r.waves for r in reaches)
        pools = [r for r in reaches if r.reconfigured]
        per_pool = ", ".join(
            f"{r.pool}: {r.reconfigured} in {r.waves} wave{'s' if r.waves != 1 else ''} of up to {r.wave_racks}"
            for r in pools
        )
        parts.append(
            f"{racks} rack{'s' if racks != 1 else ''} will be reconfigured in {longest} wave{'s' if longest != 1 else ''} "
            f"({per_pool}{'; pools side by side' if len(pools) > 1 else ''})"
        )
    new = sum(r.commissioned for r in reaches)
    if new:
        parts.append(f"{new} new rack{'s' if new != 1 else ''} commissioned and burned in")
    return "; ".join(parts)
