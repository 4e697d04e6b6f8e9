"""Tenants: commissioned (under a reseller, in jurisdictions), their quotas grown, and granted on shared pools. Pure.

A tenant's GPU quota is campus-wide; at the end of a clean phase it is placed on shared pools,
existing grants first and growth first-fit, so a tenant's Kueue quota stays where its workloads
already run. What a cluster then holds for its tenants (namespaces) is tenancy.py's.
"""

from __future__ import annotations

from kasbah.config.issues import Loc
from kasbah.config.models import QuotaChange, TenantKind, TenantSpec
from kasbah.planning.identity import check_issuer
from kasbah.planning.model import Egress, Pool, QuotaGrant, Tenant
from kasbah.planning.state import PlanState, TenantState, with_article


def commission_tenant(st: PlanState, spec: TenantSpec, path: Loc, phase: str) -> None:
    """A new tenant: its jurisdictions known, its reseller a reseller operating where it does."""
    if not st.claim("tenant", spec.name, (*path, "name"), phase):
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
    elif change.gpu_quota < t.gpu_quota:
        st.issue(
            (*path, "gpu_quota"),
            f"lowers `{change.tenant}`'s GPU quota from {t.gpu_quota} to {change.gpu_quota}; phases only grow",
            "keep the quota, or decommission the tenant and commission a new one",
        )
    else:
        t.gpu_quota = change.gpu_quota


def check_quotas(st: PlanState, clean: bool) -> None:
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
            ("phase", "tenants"),
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
    )
