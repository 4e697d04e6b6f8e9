"""The phase planner: applies phases in build order and lays each one out as a Plan. Pure: no I/O.

Only the phase loop is here: one PlanState (state.py) carried through the phases, each phase's
declarations applied in dependency order, its checks, and its snapshot as a Plan. What each
declaration does is in the module of its noun: decommissions, halls, racks (and scalable units),
pools, clusters, tenants, switches (fabrics), addresses and hardware (manifests).
"""

from __future__ import annotations

from collections.abc import Callable
from math import ceil
from typing import TYPE_CHECKING

from kasbah.config.issues import ConfigError, Loc, PlanningError
from kasbah.config.models import Campus, Phase
from kasbah.planning import ports
from kasbah.planning.addresses import address_usage
from kasbah.planning.clusters import (
    check_charts,
    check_node_limits,
    cluster_snapshot,
    commission_cluster,
    etcd_backup,
    kms_provider,
    place_control_plane,
    releases,
    site_mirrors,
    site_sinks,
    upgrade_cluster,
    workload_backups,
)
from kasbah.planning.decommissions import retire
from kasbah.planning.halls import check_hall_loads, commission_hall
from kasbah.planning.hardware import check_hardware, node_hardware
from kasbah.planning.host_flows import FLOWS
from kasbah.planning.identity import issuers
from kasbah.planning.model import BmcAccess, Egress, GitOpsSource, Plan, Power, StorageClassSpec
from kasbah.planning.pools import commission_pool, expand_pool, images, pool_snapshot, waves
from kasbah.planning.racks import rack_ports
from kasbah.planning.state import PlanState
from kasbah.planning.switches import lay_out_fabrics, switch_ports
from kasbah.planning.tenancy import cluster_namespaces
from kasbah.planning.tenants import (
    apply_tenancy,
    check_quotas,
    commission_tenant,
    expand_tenant,
    grant_snapshot,
    tenant_snapshot,
)

if TYPE_CHECKING:
    from kasbah.config.loader import Environment

Progress = Callable[[str], None]

# Interface MTUs where the site sets none: storage and the compute rails carry jumbo frames
DEFAULT_MTU = {"oob": 1500, "inband": 1500, "storage": 9000, "compute": 9000}


def apply_phase(st: PlanState, phase: Phase) -> None:
    """One phase's declarations, in dependency order, then its checks.

    Retirements first, then halls, tenants, clusters, pools and pool growth; control planes once
    their management pools are laid out; upgrades; quota changes.
    """
    st.doc = phase.name
    st.pool_paths, st.hall_paths = {}, {}
    st.phase_start = len(st.issues)
    st.retiring = {(d.kind.value, d.name) for d in phase.decommissions}
    p: Loc = ("phase",)
    if phase.facility_budget_mw > st.campus.site.renewable_supply_mw:
        st.issue(
            (*p, "facility_budget_mw"),
            f"the phase budget of {phase.facility_budget_mw:g} MW is above the renewable supply of {st.campus.site.renewable_supply_mw:g} MW",
            "lower the phase budget; the supply is the campus cap",
        )
    retire(st, phase)
    for i, hall in enumerate(phase.halls):
        commission_hall(st, hall, (*p, "halls", i), phase.name)
    for i, tenant in enumerate(phase.tenants):
        commission_tenant(st, tenant, (*p, "tenants", i), phase.name)
    new_clusters = []
    for i, cluster in enumerate(phase.clusters):
        if commission_cluster(st, cluster, (*p, "clusters", i), phase.name):
            new_clusters.append((i, cluster))
    for i, pool in enumerate(phase.pools):
        commission_pool(st, pool, (*p, "pools", i), phase.name)
    for i, exp in enumerate(phase.expansions.pools):
        expand_pool(st, exp, (*p, "expansions", "pools", i), phase.name)
    for i, cluster in new_clusters:
        place_control_plane(st, cluster, (*p, "clusters", i, "control_plane"))
    seen: set[str] = set()
    for i, up in enumerate(phase.upgrades):
        upgrade_cluster(st, up, (*p, "upgrades", i), phase.name, seen)
    for i, change in enumerate(phase.expansions.tenants):
        expand_tenant(st, change, (*p, "expansions", "tenants", i))
    _check_phase(st, phase)


def _check_phase(st: PlanState, phase: Phase) -> None:
    """What a phase adds up to: power against its budget and the supply, the halls, the clusters, the quotas."""
    site = st.campus.site
    # the quota cross-check only means something when every pool was placed
    clean = len(st.issues) == st.phase_start and not any(kind == "pool" for kind, _ in st.failed)
    it_kw = sum(r.power_kw for r in st.racks.values())
    facility_kw = it_kw * site.pue
    if facility_kw > phase.facility_budget_mw * 1000:
        st.issue(
            ("phase", "facility_budget_mw"),
            f"facility load {_mw(facility_kw)} (IT {_mw(it_kw)} x PUE {site.pue:g}) is above the phase budget of {phase.facility_budget_mw:g} MW",
            f"raise facility_budget_mw to at least {ceil(facility_kw) / 1000:g}, or commission fewer racks",
        )
    if facility_kw > site.renewable_supply_mw * 1000:
        st.issue(
            ("phase",),
            f"facility load {_mw(facility_kw)} is above the renewable supply of {site.renewable_supply_mw:g} MW",
            "commission fewer racks; the supply is the campus cap",
        )
    check_hall_loads(st)
    check_node_limits(st)
    check_quotas(st, clean)


def snapshot(st: PlanState, phase: Phase, index: int, revision: str = "") -> Plan:
    """The Plan of the phase just applied: an immutable copy of the state, with what each noun derives from it."""
    site = st.campus.site
    st.phase_name = phase.name
    halls = tuple(st.hall_loads)
    it_kw = sum(h.it_load_kw for h in halls)
    fabrics, switches = lay_out_fabrics(st)
    pools = tuple(pool_snapshot(st, p) for p in st.pools.values())
    egress = tuple(Egress(j.name, d.name, str(d.cidr), tuple(d.ports)) for j in site.jurisdictions for d in j.egress)
    tenants = tuple(tenant_snapshot(st, t, pools, egress) for t in st.tenants.values())
    grants = grant_snapshot(st, pools)
    clusters = tuple(cluster_snapshot(st, name, c, pools, tenants, grants) for name, c in st.clusters.items())
    racks = tuple(st.racks.values())
    return Plan(
        environment=st.environment,
        site=site.name,
        phase=phase.name,
        phase_index=index,
        power=Power(
            site.pue,
            round(it_kw, 3),
            round(it_kw * site.pue, 3),
            phase.facility_budget_mw * 1000,
            site.renewable_supply_mw * 1000,
        ),
        halls=halls,
        scalable_units=tuple(st.units.values()),
        racks=racks,
        nodes=tuple(st.nodes.values()),
        pools=pools,
        fabrics=fabrics,
        switches=switches,
        clusters=clusters,
        tenants=tenants,
        addresses=address_usage(st, racks, fabrics, switches, clusters),
        retired=tuple(st.retired),
        upgrades=tuple(st.upgrades),
        etcd_backup=etcd_backup(st, clusters, tenants),
        images=images(st, pools),
        issuers=issuers(st),
        registry=site.platform.registry,
        jurisdiction=site.jurisdiction or site.jurisdictions[0].name,
        mirrors=site_mirrors(st, tenants),
        revision=revision,
        tenancy=tuple(st.tenancy),
        sinks=site_sinks(st, tenants),
        kms=kms_provider(st, tenants),
        workload_backups=workload_backups(st, tenants, clusters),
        storage_classes=tuple(
            StorageClassSpec(
                p.name,
                p.name,
                site.jurisdiction or site.jurisdictions[0].name,
                site.storage.provisioner,
                tuple((k, v.replace("{pool}", p.name)) for k, v in sorted(site.storage.parameters.items())),
            )
            for p in pools
            if p.purpose == "storage"
        )
        if site.storage is not None
        else (),
        grants=grants,
        egress=egress,
        admin_networks=tuple(str(n) for n in site.admin_zone.networks),
        dns_resolvers=tuple(str(n) for n in site.admin_zone.dns_resolvers),
        namespaces=tuple(ns for c in clusters for ns in cluster_namespaces(c.name, c.tenants, st.controller.namespace)),
        host_flows=FLOWS,
        rack_ports=rack_ports(st, racks),
        switch_ports=switch_ports(st, fabrics, switches),
        releases=releases(st, clusters),
        waves=waves(st, pools),
        hardware=node_hardware(st),
        zone=st.zone,
        dns_servers=tuple(str(a) for a in site.provisioning.dns_servers),
        bmcs=tuple(
            BmcAccess(
                p.name, p.bmc.scheme, p.bmc.port, p.bmc.system, p.bmc.verify_tls, tuple(sorted(p.bmc.bios.items()))
            )
            for p in st.campus.catalog.rack_profiles
            if p.nodes and any(r.profile == p.name for r in racks)
        ),
        image=(site.provisioning.image.kind, site.provisioning.image.url, site.provisioning.image.checksum)
        if site.provisioning.image
        else None,
        mtus=tuple((net, getattr(site.addressing, net).mtu or mtu) for net, mtu in DEFAULT_MTU.items()),
        gitops=GitOpsSource(
            st.controller.kind.value,
            st.controller.namespace,
            st.controller.field_manager,
            site.platform.gitops.repository,
            site.platform.gitops.branch,
            tuple(str(n) for n in site.platform.gitops.sources),
            ports.SSH if site.platform.gitops.repository.startswith("ssh://") else ports.HTTPS,
        ),
    )


def _mw(kw: float) -> str:
    return f"{kw / 1000:,.2f} MW" if kw >= 1000 else f"{kw:,.1f} kW"


def plan_campus(
    campus: Campus, environment: str = "", upto: str | None = None, progress: Progress | None = None
) -> list[Plan]:
    """Plan every phase in build order (or up to `upto`); raise PlanningError listing every problem."""
    stop = campus.target(upto) if upto is not None else None  # KeyError naming the targets if unknown
    st = PlanState(campus, environment)
    check_charts(st)
    plans: list[Plan] = []
    for i, phase in enumerate(campus.phases):
        if progress:
            progress(phase.name)
        apply_phase(st, phase)
        revision = ""
        if stop is None or stop[0] != i or not stop[2]:
            for n, change in enumerate(campus.tenancy):
                if change.after != phase.name:
                    continue
                apply_tenancy(st, change, n)
                revision = change.name
                if stop is not None and stop[1] == change.name:
                    break
        plans.append(snapshot(st, phase, i, revision))
        if stop is not None and stop[0] == i:
            break
    check_hardware(st, complete=len(plans) == len(campus.phases))
    if st.issues:
        raise PlanningError(st.issues)
    return plans


def plan_environment(env: Environment, upto: str | None = None, progress: Progress | None = None) -> list[Plan]:
    """plan_campus for a loaded environment: refusals come back located in its files (ConfigError).

    An unknown `upto` raises KeyError naming the phases.
    """
    try:
        return plan_campus(env.campus, env.name, upto=upto, progress=progress)
    except PlanningError as exc:
        raise ConfigError(env.locate(i) for i in exc.issues) from None


def plan_phase(campus: Campus, phase: str, environment: str = "") -> Plan:
    return plan_campus(campus, environment, upto=phase)[-1]
