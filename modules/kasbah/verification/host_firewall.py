"""The host firewall in a rendered tree is the Plan's: every inventory slice carries the Plan's flow table.

The host_firewall role turns `kasbah_host_flows` (which networks reach which ports of which node
groups) and `kasbah_networks` (the ranges behind each network name) into an nftables input chain
that drops everything else. What reaches a node from outside the campus is therefore decided by
those two variables: a slice whose table differs from the Plan's (an added flow from the admin
zone, a widened port, a missing table) would open or close nodes that the Plan and the proof do
not know of. The rules themselves are tested against a real nftables in tests/playbooks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kasbah.planning.host_flows import as_dicts, networks
from kasbah.planning.model import Plan

INVENTORY_SLICES = "inventory/all/"


def check_host_firewall(files: Mapping[str, bytes], plan: Plan) -> list[tuple[str, str]]:
    """(where, what is wrong) for every inventory slice whose host firewall is not the Plan's."""
    want_flows = as_dicts(plan.host_flows)
    want_nets = networks(plan)
    by_name = {str(f["name"]): f for f in want_flows}
    problems: list[tuple[str, str]] = []
    slices = sorted(p for p in files if p.startswith(INVENTORY_SLICES) and p.endswith(".json"))
    if plan.nodes and not slices:
        return [
            ("inventory/", "no inventory slice: the nodes' host firewall has no flow table; render the phase again")
        ]
    for path in slices:
        try:
            doc: Any = json.loads(files[path])
            shared = doc["all"]["vars"]
        except (ValueError, KeyError, TypeError):
            problems.append((path, "not an inventory slice (no all.vars): render the phase again"))
            continue
        flows = shared.get("kasbah_host_flows") if isinstance(shared, dict) else None
        if not isinstance(flows, list):
            problems.append((path, "kasbah_host_flows is missing: the host firewall would have no table"))
            continue
        have = {str(f.get("name")): f for f in flows if isinstance(f, dict)}
        for name in sorted(set(have) - set(by_name)):
            problems.append(
                (path, f"host flow `{name}` is not the Plan's: it admits traffic no flow of the Plan allows")
            )
        for name in sorted(set(by_name) - set(have)):
            problems.append((path, f"host flow `{name}` of the Plan is missing"))
        for name in sorted(set(by_name) & set(have)):
            if have[name] != by_name[name]:
                changed = sorted(k for k in {*by_name[name], *have[name]} if have[name].get(k) != by_name[name].get(k))
                problems.append((path, f"host flow `{name}` differs from the Plan's in {', '.join(changed)}"))
        if len(flows) != len(have):
            problems.append((path, "kasbah_host_flows holds an entry that is not a flow, or one flow twice"))
        if shared.get("kasbah_networks") != want_nets:
            problems.append(
                (
                    path,
                    "kasbah_networks differs from the Plan's address plan: the firewall's sources would be other ranges",
                )
            )
    return problems
