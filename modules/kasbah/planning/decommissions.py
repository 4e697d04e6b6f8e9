"""Decommissions: a phase's declared retirements, racks first and halls last, each refused while something depends on it. Pure.

A rack hosting a live control plane, a pool hosting one, a cluster with pools, a tenant with pools
or customers, a hall with racks in pools: each stays, with the problem said. A retired name is
never reused (state.PlanState.claim) and references to it say when it went (PlanState.gone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from kasbah.config.issues import Loc
from kasbah.config.models import DecommissionKind, Phase
from kasbah.planning.model import Retired
from kasbah.planning.racks import drop_rack
from kasbah.planning.state import PlanState


def retire(st: PlanState, phase: Phase) -> None:
    """The phase's decommissions, by kind in _RETIRE order (racks first, halls last), each recorded once done."""
    order = sorted(enumerate(phase.decommissions), key=lambda item: _RETIRE_ORDER.index(item[1].kind))
    for i, d in order:
        path: Loc = ("phase", "decommissions", i)
        if _RETIRE[d.kind](st, d.name, path):
            st.retired.append(Retired(d.kind.value, d.name, phase.name, d.reason))


def _retire_rack(st: PlanState, name: str, path: Loc) -> bool:
    rack = st.racks.get(name)
    if rack is None or rack.pool is None:
        st.issue(
            (*path, "name"),
            f"no live rack `{name}` in a pool",
            "name a rack from `kasbah plan --json` of the previous phase",
        )
        return False
    cp = [
        n for n in st.rack_nodes(rack)
        if st.nodes[n].role == "control-plane" and ("cluster", st.nodes[n].cluster or "") not in st.retiring
    ]  # fmt: skip
    if cp:
        st.issue(
            (*path, "name"),
            f"rack `{name}` hosts control-plane node(s) {', '.join(cp)}",
            "decommission the cluster first; control planes do not move",
        )
        return False
    drop_rack(st, rack)
    return True


def _retire_pool(st: PlanState, name: str, path: Loc) -> bool:
    pool = st.pools.get(name)
    if pool is None:
        st.issue((*path, "name"), f"no live pool `{name}`", f"use one of: {', '.join(st.pools)}")
        return False
    hosts = [
        c for c, s in st.clusters.items() if s.spec.control_plane.pool == name and ("cluster", c) not in st.retiring
    ]
    if hosts:
        st.issue(
            (*path, "name"),
            f"pool `{name}` hosts the control plane of {', '.join(hosts)}",
            "decommission those clusters in the same phase or earlier",
        )
        return False
    for unit in list(pool.units):
        for rack in st.units[unit].racks:
            drop_rack(st, st.racks[rack])
    del st.pools[name]
    return True


def _retire_cluster(st: PlanState, name: str, path: Loc) -> bool:
    cluster = st.clusters.get(name)
    if cluster is None:
        st.issue(
            (*path, "name"),
            f"no live cluster `{name}`",
            f"use one of: {', '.join(st.clusters)}",
        )
        return False
    users = [p for p, s in st.pools.items() if s.cluster == name]
    if users:
        st.issue(
            (*path, "name"),
            f"cluster `{name}` still has pools: {', '.join(users)}",
            "decommission its pools in the same phase or earlier",
        )
        return False
    for n in cluster.control_plane:
        if n in st.nodes:
            st.nodes[n] = replace(st.nodes[n], role="management", cluster=None)
    del st.clusters[name]
    return True


def _retire_tenant(st: PlanState, name: str, path: Loc) -> bool:
    if name not in st.tenants:
        st.issue(
            (*path, "name"),
            f"no live tenant `{name}`",
            f"use one of: {', '.join(st.tenants)}",
        )
        return False
    users = [p for p, s in st.pools.items() if s.spec.tenant == name]
    customers = [t for t, s in st.tenants.items() if s.spec.reseller == name and ("tenant", t) not in st.retiring]
    if users or customers:
        st.issue(
            (*path, "name"),
            f"tenant `{name}` still has {'pools ' + ', '.join(users) if users else 'customers ' + ', '.join(customers)}",
            "decommission those first, in the same phase or earlier",
        )
        return False
    del st.tenants[name]
    return True


def _retire_hall(st: PlanState, name: str, path: Loc) -> bool:
    if name not in st.halls:
        st.issue((*path, "name"), f"no live hall `{name}`", f"use one of: {', '.join(st.halls)}")
        return False
    busy = [r.name for r in st.racks.values() if r.hall == name and r.pool is not None]
    if busy:
        st.issue(
            (*path, "name"),
            f"hall `{name}` still has {len(busy)} racks in pools",
            "decommission its pools or racks in the same phase or earlier",
        )
        return False
    for r in [r for r in st.racks.values() if r.hall == name]:
        del st.racks[r.name]
    del st.halls[name]
    return True


# each kind's retirement, in the order a phase's decommissions are applied
_RETIRE: dict[DecommissionKind, Callable[[PlanState, str, Loc], bool]] = {
    DecommissionKind.RACK: _retire_rack,
    DecommissionKind.POOL: _retire_pool,
    DecommissionKind.CLUSTER: _retire_cluster,
    DecommissionKind.TENANT: _retire_tenant,
    DecommissionKind.HALL: _retire_hall,
}
_RETIRE_ORDER = list(_RETIRE)
