"""Who may log in: the identities each issuer mints, and the groups RBAC grants. Pure.

Every identity an API server accepts from an issuer is prefixed with its owner: the username
`<owner>:<claim>` and each group `kasbah:<owner>:<group>`, where the owner is the tenant the
issuer serves (a shared issuer: the tenant its token names, among those that declared it) or
`operator` for the admin zone's issuer. RBAC binds only such groups (`tenant_group`), so one
tenant's issuer can never mint an identity another tenant's bindings accept; the verifier
proves it on the rendered configuration (verification/identity.py).
"""

from __future__ import annotations

from kasbah.config.issues import Loc
from kasbah.config.models import TenantKind, TenantSpec
from kasbah.planning.model import Cluster, Issuer, Plan
from kasbah.planning.state import PlanState

ADMIN_OWNER = "operator"  # the owner of the admin zone's identities (the operator's administrators)
ADMIN_GROUP = "platform-admins"  # the administrators' group: cluster-admin
TENANT_ROLES = ("developers", "viewers")  # the groups a tenant's issuer grants in its namespaces
RESELLER_ROLE = "operators"  # a reseller's group: reads its customers' namespaces


def username_prefix(owner: str) -> str:
    return f"{owner}:"


def group_prefix(owner: str) -> str:
    return f"kasbah:{owner}:"


def tenant_group(owner: str, role: str) -> str:
    """The group RBAC binds for `owner`'s `role`: only `owner`'s issuer mints it."""
    return group_prefix(owner) + role


def check_issuer(st: PlanState, spec: TenantSpec, path: Loc) -> None:
    """A tenant's issuer: declared, in its jurisdictions, never the admin's, shared only when declared so."""
    if spec.name == ADMIN_OWNER and spec.kind is not TenantKind.OPERATOR:
        st.issue(
            (*path, "name"),
            f"`{ADMIN_OWNER}` names the operator's administrators (their groups are kasbah:{ADMIN_OWNER}:*)",
            "give the tenant another name",
        )
    name = spec.issuer
    if name is None:
        return
    admin = st.campus.site.identity.admin_issuer
    issuer = st.issuers.get(name)
    if issuer is None:
        known = sorted(i for i in st.issuers if i != admin)
        st.issue(
            (*path, "issuer"),
            f"unknown issuer `{name}`",
            f"use one of: {', '.join(known)}" if known else "declare it in site.identity.issuers",
        )
        return
    if spec.kind is TenantKind.OPERATOR:
        if name != admin:
            st.issue(
                (*path, "issuer"),
                "an operator tenant's users are the operator's administrators",
                f"name site.identity.admin_issuer ({admin or 'unset'}) or remove `issuer`",
            )
        return
    if name == admin:
        st.issue(
            (*path, "issuer"),
            f"`{name}` is the admin issuer: its users are the operator's administrators, cluster-wide",
            "give the tenant an issuer of its own (site.identity.issuers)",
        )
        return
    if issuer.jurisdiction not in spec.jurisdictions:
        st.issue(
            (*path, "issuer"),
            f"issuer `{name}` runs in `{issuer.jurisdiction}`, outside the tenant's jurisdictions "
            f"({', '.join(spec.jurisdictions)}): its users' identities would be held there",
            f"use an issuer in {', '.join(spec.jurisdictions)}, or allow `{issuer.jurisdiction}` for the tenant",
        )
    users = st.issuer_tenants.setdefault(name, [])
    if users and issuer.tenant_claim is None:
        index = list(st.issuers).index(name)
        st.issue(
            (*path, "issuer"),
            f"issuer `{name}` already serves tenant `{users[0]}`: two tenants share an issuer only when it is "
            "declared shared",
            f"set tenant_claim on site.identity.issuers[{index}] (the claim naming each token's tenant), "
            "or give the tenant its own issuer",
        )
    users.append(spec.name)


def issuers(st: PlanState) -> tuple[Issuer, ...]:
    """The admin issuer, then every issuer a tenant names (`check_issuer` recorded them), in the site's order;
    unused issuers are not trusted."""
    admin = st.campus.site.identity.admin_issuer
    out = []
    for spec in st.campus.site.identity.issuers:
        # tenants being offboarded (access removed) or gone are no longer served: their tokens map to nobody
        served = [t for t in st.issuer_tenants.get(spec.name, []) if t in st.tenants and not st.tenants[t].offboarded]
        if spec.name != admin and not served:
            continue
        out.append(
            Issuer(
                name=spec.name,
                url=spec.url,
                jurisdiction=spec.jurisdiction,
                audiences=tuple(spec.audiences),
                username_claim=spec.username_claim,
                groups_claim=spec.groups_claim,
                tenant_claim=spec.tenant_claim,
                tenants=tuple(served),
                admin=spec.name == admin,
            )
        )
    out.sort(key=lambda i: not i.admin)
    return tuple(out)


def owners(issuer: Issuer) -> tuple[str, ...]:
    """Whose identities the issuer mints: its tenants, or the administrators for the admin issuer."""
    return (ADMIN_OWNER,) if issuer.admin else issuer.tenants


def cluster_issuers(plan: Plan, cluster: Cluster) -> tuple[Issuer, ...]:
    """The issuers a cluster's API servers trust: the admin's, and those of its tenants and of their resellers."""
    by_name = {t.name: t for t in plan.tenants}
    present = set(cluster.tenants)
    present |= {r for t in cluster.tenants if (r := by_name[t].reseller) is not None}
    return tuple(i for i in plan.issuers if i.admin or present & set(i.tenants))
