"""Tenants: commissioned (under a reseller, in jurisdictions), their quotas grown, and granted on shared pools. Pure.

A tenant's GPU quota is campus-wide; at the end of a clean phase it is placed on shared pools,
existing grants first and growth first-fit, so a tenant's Kueue quota stays where its workloads
already run. What a cluster then holds for its tenants (namespaces) is tenancy.py's.
"""

from __future__ import annotations

from kasbah.config.issues import TENANCY_DOC, Loc
from kasbah.config.models import (
    Offboarding,
    OffboardStep,
    QuotaChange,
    SinkScope,
    TenancyChange,
    TenantKind,
    TenantSpec,
)
from kasbah.planning.identity import check_issuer
from kasbah.planning.model import Egress, Pool, QuotaGrant, Retired, TenancyRecord, Tenant
from kasbah.planning.state import PlanState, TenantState, with_article


def commission_tenant(st: PlanState, spec: TenantSpec, path: Loc, phase: str, change: str = "") -> None:
    """A new tenant (of a phase, or onboarded by a tenancy `change`): its jurisdictions known, its reseller a
    reseller operating where it does."""
    if not st.claim("tenant", spec.name, (*path, "name"), change or phase):
        return
    for j, jur in enumerate(spec.jurisdictions):
        if jur not in st.jurisdictions:
            st.issue(
                (*path, "jurisdictions", j),
                f"unknown jurisdiction `{jur}`",
                f"use one of: {', '.join(sorted(st.jurisdictions))}, or declare it in site.jurisdictions",
            )
    if spec.reseller is not None:
        reseller = st.tenants.get(spec.reseller)
        if reseller is None:
            st.issue(
                (*path, "reseller"),
                f"unknown reseller `{spec.reseller}`",
                "commission the reseller tenant first (in this phase, above, or earlier)",
            )
        elif reseller.offboarded:
            st.issue(
                (*path, "reseller"),
                f"reseller `{spec.reseller}` is being offboarded (its {reseller.offboarded} step is done)",
                "onboard the customer under another reseller",
            )
        elif reseller.spec.kind is not TenantKind.RESELLER:
            st.issue(
                (*path, "reseller"),
                f"`{spec.reseller}` is {with_article(reseller.spec.kind.value)} tenant, not a reseller",
                "name a tenant of kind reseller",
            )
        else:
            outside = sorted(set(spec.jurisdictions) - set(reseller.spec.jurisdictions))
            if outside:
                st.issue(
                    (*path, "jurisdictions"),
                    f"reseller `{spec.reseller}` does not operate in {', '.join(outside)}",
                    f"limit the tenant to {', '.join(reseller.spec.jurisdictions)} or extend the reseller",
                )
    check_issuer(st, spec, path)
    sinks = {k.name: k for k in st.campus.site.sinks}
    for i, name in enumerate(spec.sinks):
        k = sinks.get(name)
        if k is None:
            st.issue((*path, "sinks", i), f"unknown sink `{name}`", f"use one of: {', '.join(sinks) or '(none)'}")
        elif k.scope is not SinkScope.TENANT:
            st.issue(
                (*path, "sinks", i),
                f"`{name}` is a platform sink: it receives every tenant's {k.kind.value} already",
                "name only sinks of scope tenant (the tenant's own)",
            )
        elif k.jurisdiction not in spec.jurisdictions:
            st.issue(
                (*path, "sinks", i),
                f"sink `{name}` stores in {k.jurisdiction}, outside `{spec.name}`'s jurisdictions "
                f"({', '.join(spec.jurisdictions)})",
                "name a sink in one of the tenant's jurisdictions, or leave its data in the platform's sinks",
            )
    st.tenants[spec.name] = TenantState(spec, spec.gpu_quota, phase)


def expand_tenant(st: PlanState, change: QuotaChange, path: Loc) -> None:
    """A tenant's GPU quota raised (phases only grow)."""
    t = st.tenants.get(change.tenant)
    if t is None:
        st.issue(
            (*path, "tenant"),
            f"no tenant `{change.tenant}`",
            f"use one of: {', '.join(st.tenants) or '(none yet)'}",
        )
    elif t.offboarded:
        st.issue(
            (*path, "tenant"),
            f"tenant `{change.tenant}` is being offboarded (its {t.offboarded} step is done): its quota stays as it is",
            "finish the offboarding (its next step), or commission a new tenant",
        )
    elif change.gpu_quota < t.gpu_quota:
        st.issue(
            (*path, "gpu_quota"),
            f"lowers `{change.tenant}`'s GPU quota from {t.gpu_quota} to {change.gpu_quota}; phases only grow",
            "keep the quota, or decommission the tenant and commission a new one",
        )
    else:
        t.gpu_quota = change.gpu_quota


def check_quotas(st: PlanState, clean: bool, where: Loc = ("phase", "tenants")) -> None:
    """Tenants' quotas against the shared pools' GPUs, then placed on them (only for a clean phase)."""
    # a grant on a pool (or of a tenant) this phase retired goes with it, whether or not the quotas fit
    st.grants = {k: g for k, g in st.grants.items() if k[0] in st.tenants and k[1] in st.pools}
    if not clean:
        return
    shared = sum(
        r.gpus
        for p in st.pools.values()
        if p.spec.tenant is None and p.spec.purpose.kubernetes_workers
        for r in st.pool_racks(p)
    )
    quota = sum(t.gpu_quota for t in st.tenants.values())
    if quota > shared:
        st.issue(
            where,
            f"tenants' nominal GPU quotas add up to {quota}, above the {shared} GPUs of shared pools",
            "lower quotas or commission more shared GPU racks; dedicated pools are outside quotas",
        )
        return
    _grant_quotas(st)


def _grant_quotas(st: PlanState) -> None:
    """Place each tenant's quota on shared pools: existing grants stay, growth goes first-fit.

    A grant only moves when its pool shrinks or retires; the quota check above guarantees room.
    """
    free: dict[str, int] = {
        name: sum(r.gpus for r in st.pool_racks(p))
        for name, p in st.pools.items()
        if p.spec.tenant is None and p.spec.purpose.kubernetes_workers and p.cluster is not None
    }
    kept: dict[tuple[str, str], int] = {}
    for (tenant, pool), gpus in st.grants.items():
        if tenant in st.tenants and pool in free:
            take = min(gpus, free[pool])
            if take:
                kept[(tenant, pool)] = take
                free[pool] -= take
    # a lowered quota (a tenancy change) gives back its last grants first: its first grants keep its workloads
    for name, t in st.tenants.items():
        excess = sum(g for (tenant, _), g in kept.items() if tenant == name) - t.gpu_quota
        for key in reversed([k for k in kept if k[0] == name]):
            if excess <= 0:
                break
            cut = min(excess, kept[key])
            kept[key] -= cut
            free[key[1]] += cut
            excess -= cut
            if not kept[key]:
                del kept[key]
    for name, t in st.tenants.items():
        need = t.gpu_quota - sum(g for (tenant, _), g in kept.items() if tenant == name)
        for pool in free:
            if need <= 0:
                break
            take = min(need, free[pool])
            if take:
                kept[(name, pool)] = kept.get((name, pool), 0) + take
                free[pool] -= take
                need -= take
    st.grants = kept


def grant_snapshot(st: PlanState, pools: tuple[Pool, ...]) -> tuple[QuotaGrant, ...]:
    """Shared-pool grants (tenant, pool order), then each dedicated GPU pool of a cluster as its tenant's grant."""
    shared = [
        QuotaGrant(tenant, pool, st.pools[pool].cluster or "", gpus, False)
        for (tenant, pool), gpus in sorted(st.grants.items())
    ]
    dedicated = [
        QuotaGrant(p.tenant, p.name, p.cluster, p.gpus, True) for p in pools if p.tenant and p.cluster and p.gpus
    ]
    return (*shared, *dedicated)


def tenant_snapshot(st: PlanState, t: TenantState, pools: tuple[Pool, ...], egress: tuple[Egress, ...]) -> Tenant:
    mine = [p for p in pools if p.tenant == t.spec.name]
    return Tenant(
        name=t.spec.name,
        display_name=t.spec.display_name or t.spec.name,
        kind=t.spec.kind.value,
        reseller=t.spec.reseller,
        jurisdictions=tuple(t.spec.jurisdictions),
        gpu_quota=t.gpu_quota,
        dedicated_pools=tuple(p.name for p in mine),
        dedicated_gpus=sum(p.gpus for p in mine),
        phase=t.phase,
        egress=tuple(e.key for e in egress if e.jurisdiction in t.spec.jurisdictions),
        issuer=t.spec.issuer,
        since=t.since,
        offboarded=t.offboarded,
        sinks=tuple(t.spec.sinks),
    )


def apply_tenancy(st: PlanState, change: TenancyChange, index: int) -> None:
    """One tenancy change on top of its phase: onboardings, quota changes (up or down), offboarding steps; then the
    quotas checked and placed as at the end of a phase. Recorded in `st.tenancy` (the Plan's `tenancy`)."""
    st.doc = TENANCY_DOC
    st.phase_start = len(st.issues)
    st.retiring = set()
    here: Loc = ("changes", index)
    for i, spec in enumerate(change.onboard):
        path = (*here, "onboard", i)
        commission_tenant(st, spec, path, change.after, change.name)
        if spec.name in st.tenants and not st.tenants[spec.name].since:
            st.tenants[spec.name].since = change.name
            st.tenancy.append(
                TenancyRecord(change.name, change.after, "onboard", spec.name, change.description, spec.reseller or "")
            )
    for i, q in enumerate(change.quotas):
        t = st.tenants.get(q.tenant)
        if t is None:
            st.issue((*here, "quotas", i, "tenant"), f"no live tenant `{q.tenant}`", _live(st))
        elif t.offboarded:
            st.issue(
                (*here, "quotas", i, "tenant"),
                f"tenant `{q.tenant}` is being offboarded (its {t.offboarded} step is done): its quota stays as it is",
                "finish the offboarding (its next step), or onboard a new tenant",
            )
        elif q.gpu_quota != t.gpu_quota:
            st.tenancy.append(
                TenancyRecord(
                    change.name,
                    change.after,
                    "quota",
                    q.tenant,
                    f"{t.gpu_quota} -> {q.gpu_quota} GPUs",
                    t.spec.reseller or "",
                )
            )
            t.gpu_quota = q.gpu_quota
    for i, o in enumerate(change.offboard):
        offboard_tenant(st, o, (*here, "offboard", i), change)
    check_quotas(st, len(st.issues) == st.phase_start, (*here, "quotas"))


def _live(st: PlanState) -> str:
    return f"use one of: {', '.join(st.tenants) or '(none)'}"


def offboard_tenant(st: PlanState, o: Offboarding, path: Loc, change: TenancyChange) -> None:
    """One step of an offboarding, in order: access, workloads, data. A tenant with dedicated pools or live
    customers cannot start one (their racks and customers are construction and tenancy facts of their own)."""
    t = st.tenants.get(o.tenant)
    if t is None:
        st.issue((*path, "tenant"), f"no live tenant `{o.tenant}`", _live(st))
        return
    steps = list(OffboardStep)
    done = steps.index(OffboardStep(t.offboarded)) + 1 if t.offboarded else 0
    if o.step.order != done:
        st.issue(
            (*path, "step"),
            f"tenant `{o.tenant}`'s next offboarding step is `{steps[done].value}`, not `{o.step.value}`"
            if done < len(steps)
            else f"tenant `{o.tenant}` is offboarded already",
            "offboard in order: access (users out), then workloads (drained), then data (deleted), each declared",
        )
        return
    if o.step in (OffboardStep.ACCESS, OffboardStep.DATA):  # data: a phase may have added one since (refused there)
        pools = sorted(p for p, s in st.pools.items() if s.spec.tenant == o.tenant)
        customers = sorted(n for n, s in st.tenants.items() if s.spec.reseller == o.tenant)
        if pools:
            st.issue(
                (*path, "tenant"),
                f"tenant `{o.tenant}` still has dedicated pools {', '.join(pools)}",
                "decommission those pools (or give their racks to another pool) in a construction phase first",
            )
            return
        if customers:
            st.issue(
                (*path, "tenant"),
                f"reseller `{o.tenant}` still has customers {', '.join(customers)}",
                "offboard its customers first (or move them to another reseller)",
            )
            return
    t.offboarded = o.step.value
    st.tenancy.append(
        TenancyRecord(change.name, change.after, f"offboard-{o.step.value}", o.tenant, o.reason, t.spec.reseller or "")
    )
    if o.step is OffboardStep.DATA:
        del st.tenants[o.tenant]
        st.retired.append(Retired("tenant", o.tenant, change.after, o.reason))
