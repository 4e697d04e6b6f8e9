"""RDMA isolation: no RDMA path between a tenant's dedicated pool and any other pool, over the rendered cabling.

RDMA on the compute fabric bypasses every pod policy, so isolation there is physical or it is
nothing. The Plan gives every GPU pool a compute fabric of its own (planning/fabric.py: one
rail-optimised fabric per pool), so a dedicated pool's partition of the compute fabric is the
whole of its fabric. This proof checks that the *rendered* cabling keeps it so: every compute
fabric's cables (schedules/cabling/<fabric>.csv) are joined into connected parts, devices as
vertices; a part holding a node of one tenant's dedicated pool and a node of another pool, or a
switch of another pool's fabric, is an RDMA path between them. It grows with cables, never with
pods. Shared pools are one RDMA domain for the tenants sharing them (a tenant that needs RDMA
isolation takes a dedicated pool); the storage fabric, which carries storage traffic to the
storage servers and not pods' RDMA, is not in this proof.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

from kasbah.planning.model import Plan

CABLING = "schedules/cabling/"


class _Parts:
    """Union-find over device names."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = self.parent.setdefault(x, x)
        while root != self.parent[root]:
            root = self.parent[root]
        while x != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


def check_rdma(files: Mapping[str, bytes], plan: Plan) -> list[tuple[str, str]]:
    """(where, what is wrong) for every RDMA path the cabling opens between a dedicated pool and another pool."""
    compute = {f.name: f.scope for f in plan.fabrics if f.kind == "compute"}
    dedicated = {p.name: p.tenant for p in plan.pools if p.tenant}
    if not dedicated:
        return []
    problems: list[tuple[str, str]] = []
    parts = _Parts()
    for fabric in sorted(compute):
        path = f"{CABLING}{fabric}.csv"
        data = files.get(path)
        if data is None:
            problems.append((path, "missing: the compute fabric's cabling is not in the tree; render the phase again"))
            continue
        for n, row in enumerate(csv.DictReader(io.StringIO(data.decode("utf-8", "replace"))), start=2):
            a, b = row.get("a_device") or "", row.get("b_device") or ""
            if not a or not b:
                problems.append((f"{path}:{n}", "a cable without both ends"))
                continue
            parts.join(a, b)
    # what each device is: a node of a pool, or a switch of a pool's fabric
    owner = {n.name: n.pool for n in plan.nodes}
    owner.update({s.name: compute[s.fabric] for s in plan.switches if s.fabric in compute})
    members: dict[str, set[str]] = {}
    for device in parts.parent:
        pool = owner.get(device)
        if pool is not None:
            members.setdefault(parts.find(device), set()).add(pool)
    for pools in members.values():
        mine = sorted(p for p in pools if p in dedicated)
        for p in mine:
            others = sorted(pools - {p})
            if others:
                problems.append(
                    (
                        CABLING,
                        f"an RDMA path joins pool {p} (dedicated to {dedicated[p]}) to pool(s) {', '.join(others)}: "
                        "their compute fabrics are cabled together; fix: render the phase again, or remove the cable",
                    )
                )
    return problems
