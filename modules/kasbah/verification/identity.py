"""The identity proof: for every issuer a cluster's API servers trust, what its identities reach.

Read from the rendered tree only: the authentication configuration (bootstrap/<cluster>/
authentication.yaml) and the RBAC the cluster is given (its GitOps tree and the cluster stack's
objects). For each JWT authenticator, the claim mappings' CEL is parsed (cel-python's parser) and
every string it can produce is reduced to a literal prefix: a string literal, a concatenation
whose left side has one, either branch of a conditional, every element of a list or of a `map`.
Anything else (a claim copied as it is) has no prefix, so the issuer is taken to mint any name.
Because the token's claims are the issuer's to choose, this over-approximates every identity it
can produce, independent of users: a binding's subject is reachable when it starts with one of
the prefixes (and `system:authenticated`, which every authenticated user holds, always is).

The Plan says who may reach what (never the renderer): an issuer's tenants reach their own
namespaces; a reseller reads (get, list, watch) its customers' namespaces and changes nothing;
only the admin zone's issuer reaches cluster-scoped objects or namespaces of no tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import celpy
from celpy.celparser import CELParseError
from lark import Token, Tree

from kasbah.planning.identity import cluster_issuers, owners
from kasbah.planning.model import Cluster, Plan
from kasbah.planning.tenancy import tenant_namespace
from kasbah.verification.manifests import Finding, documents

READ_VERBS = frozenset({"get", "list", "watch"})
_WRITE = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# the default ClusterRoles a kasbah tree binds without rendering them (their verbs, as Kubernetes defines them)
BUILTIN_ROLES: dict[str, frozenset[str]] = {
    "view": READ_VERBS,
    "edit": READ_VERBS | _WRITE,
    "admin": READ_VERBS | _WRITE,
    "cluster-admin": frozenset({"*"}),
}
IMPLICIT_GROUPS = ("system:authenticated",)  # every authenticated identity holds it
CLUSTER = "(cluster)"  # what a ClusterRoleBinding reaches: every namespace and cluster-scoped objects

# one level of the grammar with a single child passes its value through
_PASS = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary", "member", "primary"}
)


@dataclass(frozen=True, slots=True)
class Value:
    """A string the expression can produce: `text` exactly, or any string starting with it."""

    text: str
    exact: bool


def _literal(token: Token) -> str | None:
    raw = str(token)
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" and "\\" not in raw and raw[:3] not in ("'''", '"""'):
        return raw[1:-1]
    return None  # an escape, a raw or triple-quoted string, a number: not a literal this proof reads


def _values(node: Tree[Token] | Token) -> list[Value] | None:
    """Every string `node` can produce (or every element of a list it produces), as prefixes; None: any string."""
    if isinstance(node, Token):
        return None
    kids = node.children
    if node.data == "literal":
        text = _literal(kids[0]) if kids and isinstance(kids[0], Token) else None
        return None if text is None else [Value(text, True)]
    if node.data == "expr" and len(kids) == 3:
        # cond ? a : b: either branch
        a, b = _values(kids[1]), _values(kids[2])
        return None if a is None or b is None else a + b
    if node.data == "paren_expr" and len(kids) == 1:
        return _values(kids[0])
    if node.data == "addition" and len(kids) == 2 and isinstance(kids[0], Tree) and kids[0].data == "addition_add":
        left = _values(kids[0].children[0])
        if left is None:
            return None
        right = _values(kids[1])
        out: list[Value] = []
        for lv in left:
            if lv.exact and right is not None:
                out += [Value(lv.text + rv.text, rv.exact) for rv in right]
            else:
                out.append(Value(lv.text, False))
        return out
    if node.data == "list_lit":
        out = []
        for expr in kids[0].children if kids and isinstance(kids[0], Tree) else ():
            v = _values(expr)
            if v is None:
                return None
            out += v
        return out
    if node.data == "member_dot_arg" and len(kids) == 3 and str(kids[1]) == "map":
        args = kids[2].children if isinstance(kids[2], Tree) else []
        # list.map(x, e): every element is e; list.map(x, p, e) filters first
        return _values(args[-1]) if len(args) in (2, 3) else None
    if node.data in _PASS and len(kids) == 1:
        return _values(kids[0])
    return None


def prefixes(expression: str) -> frozenset[str] | None:
    """The literal prefixes every identity `expression` produces starts with; None: not provable (any name).

    An exact empty string or an empty list produces no identity (Kubernetes refuses an empty
    username and ignores an empty group) and contributes nothing.
    """
    try:
        tree = celpy.Environment().compile(expression)
    except (CELParseError, RecursionError):
        return None
    try:
        values = _values(tree)
    except RecursionError:  # nested past Python's stack: not a mapping this proof reads
        return None
    if values is None:
        return None
    out = set()
    for v in values:
        if v.exact and not v.text:
            continue
        if not v.text:
            return None
        out.add(v.text)
    return frozenset(out)


@dataclass
class Reach:
    """One trusted issuer: whose identities it mints (per the Plan), and what they reach (per the rendered tree)."""

    url: str
    name: str  # the Plan's name of the issuer ("" for an authenticator the Plan does not know)
    owners: tuple[str, ...]
    usernames: frozenset[str] | None  # the usernames' prefixes; None: any name
    groups: frozenset[str] | None
    namespaces: dict[str, set[str]] = field(default_factory=dict)  # namespace (or CLUSTER) -> verbs

    def as_dict(self) -> dict[str, Any]:
        return {
            "issuer": self.name,
            "url": self.url,
            "owners": list(self.owners),
            "usernames": sorted(self.usernames) if self.usernames is not None else None,
            "groups": sorted(self.groups) if self.groups is not None else None,
            "reaches": {ns: sorted(v) for ns, v in sorted(self.namespaces.items())},
        }


@dataclass(frozen=True, slots=True)
class IdentityViolation:
    property: str
    message: str


@dataclass
class IdentityReport:
    cluster: str
    issuers: list[Reach]
    violations: list[IdentityViolation]


def _mints(prefixes_: frozenset[str] | None, name: str) -> bool:
    return prefixes_ is None or any(name.startswith(p) for p in prefixes_)


def _verbs(ref: Mapping[str, Any], namespace: str | None, roles: Mapping[tuple[str, str | None], set[str]]) -> set[str]:
    kind, name = ref.get("kind", ""), ref.get("name", "")
    key = (name, namespace if kind == "Role" else None)
    if key in roles:
        return roles[key]
    if kind == "ClusterRole" and name in BUILTIN_ROLES:
        return set(BUILTIN_ROLES[name])
    return {"*"}  # a role the tree does not hold: taken as everything


def _roles(objs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str | None], set[str]]:
    out: dict[tuple[str, str | None], set[str]] = {}
    for o in objs:
        if o.get("kind") in ("ClusterRole", "Role") and str(o.get("apiVersion", "")).startswith("rbac.authorization"):
            meta = o.get("metadata") or {}
            ns = meta.get("namespace") if o["kind"] == "Role" else None
            verbs = {str(v) for rule in o.get("rules") or [] for v in rule.get("verbs") or []}
            out[(str(meta.get("name", "")), ns)] = verbs
    return out


def _authenticators(text: bytes, where: str, violations: list[IdentityViolation]) -> list[dict[str, Any]]:
    # read as every manifest of the tree is (bounded: an alias bomb or a deep nesting cannot hang the proof)
    findings: list[Finding] = []
    docs = documents(where, text, findings)
    for f in findings:
        violations.append(IdentityViolation("identity-mapping", f"{f.where}: {f.message}"))
    if len(docs) != 1 or docs[0].get("kind") != "AuthenticationConfiguration":
        violations.append(IdentityViolation("identity-mapping", f"{where}: not one AuthenticationConfiguration"))
        return []
    jwt = docs[0].get("jwt") or []
    return [a for a in jwt if isinstance(a, dict)] if isinstance(jwt, list) else []


def _mapping(auth: Mapping[str, Any], key: str) -> frozenset[str] | None:
    m = ((auth.get("claimMappings") or {}).get(key)) or {}
    if "expression" in m:
        return prefixes(str(m["expression"]))
    if "claim" in m:
        prefix = m.get("prefix")
        return frozenset({str(prefix)}) if prefix else None
    # groups unset: no groups from the token
    return frozenset() if key == "groups" else None


def check_identity(
    files: Mapping[str, bytes], plan: Plan, cluster: Cluster, objs: Iterable[Mapping[str, Any]]
) -> IdentityReport:
    """What each issuer the cluster's API servers trust reaches, and every reach the Plan does not allow."""
    where = f"bootstrap/{cluster.name}/authentication.yaml"
    violations: list[IdentityViolation] = []
    objs = list(objs)
    by_url = {i.url: i for i in plan.issuers}
    tenants = {t.name: t for t in plan.tenants}
    # namespace -> its tenant (the Plan's namespaces: tenant-<name>); any other namespace is the platform's
    owner_of = {tenant_namespace(t): t for t in cluster.tenants}
    roles = _roles(objs)
    bindings = [
        o
        for o in objs
        if o.get("kind") in ("RoleBinding", "ClusterRoleBinding")
        and str(o.get("apiVersion", "")).startswith("rbac.authorization")
    ]
    trusted = cluster_issuers(plan, cluster)
    text = files.get(where)
    if text is None:
        if trusted:
            violations.append(
                IdentityViolation(
                    "identity-issuer",
                    f"{where} is missing: the Plan trusts {', '.join(i.name for i in trusted)} here; render the phase again",
                )
            )
        return IdentityReport(cluster.name, [], violations)
    reaches: list[Reach] = []
    authenticators = _authenticators(text, where, violations)
    rendered = {str((a.get("issuer") or {}).get("url", "")) for a in authenticators}
    for i in trusted:
        if i.url not in rendered:
            violations.append(
                IdentityViolation("identity-issuer", f"{where} lacks {i.name} ({i.url}), which the Plan trusts here")
            )
    for n, auth in enumerate(authenticators):
        url = str((auth.get("issuer") or {}).get("url", ""))
        planned = by_url.get(url)
        reach = Reach(
            url,
            planned.name if planned else "",
            owners(planned) if planned else (),
            _mapping(auth, "username"),
            _mapping(auth, "groups"),
        )
        reaches.append(reach)
        if planned is None:
            violations.append(
                IdentityViolation("identity-issuer", f"{where}: jwt[{n}] trusts {url}, an issuer the Plan does not")
            )
        for key, found in (("username", reach.usernames), ("groups", reach.groups)):
            if found is None:
                violations.append(
                    IdentityViolation(
                        "identity-mapping",
                        f"{where}: jwt[{n}].claimMappings.{key} of {url} is not prefixed with its owner: the issuer "
                        "can mint any name, other tenants' included; fix: render the phase again (kasbah maps "
                        f"{key}s to <tenant>:… and kasbah:<tenant>:…)",
                    )
                )
        for b in bindings:
            meta = b.get("metadata") or {}
            ns = meta.get("namespace") if b["kind"] == "RoleBinding" else None
            for s in b.get("subjects") or []:
                kind, name = s.get("kind"), str(s.get("name", ""))
                held = (kind == "Group" and (name in IMPLICIT_GROUPS or _mints(reach.groups, name))) or (
                    kind == "User" and _mints(reach.usernames, name)
                )
                if held:
                    verbs = _verbs(b.get("roleRef") or {}, ns, roles)
                    reach.namespaces.setdefault(ns or CLUSTER, set()).update(verbs)
        violations += _judge(reach, owner_of, tenants, planned.admin if planned else False)
    return IdentityReport(cluster.name, reaches, violations)


def _judge(
    reach: Reach, owner_of: Mapping[str, str], tenants: Mapping[str, Any], admin: bool
) -> list[IdentityViolation]:
    if admin:
        return []
    out = []
    mine = set(reach.owners)
    customers = {t.name for t in tenants.values() if t.reseller in mine}
    who = f"{reach.name or reach.url} (issuer of {', '.join(reach.owners) or 'no tenant'})"
    for ns, verbs in sorted(reach.namespaces.items()):
        if ns == CLUSTER:
            out.append(
                IdentityViolation(
                    "identity-cluster-scope",
                    f"{who} reaches cluster-scoped objects and every namespace ({', '.join(sorted(verbs))}); only the "
                    "admin zone's issuer may",
                )
            )
            continue
        tenant = owner_of.get(ns)
        if tenant in mine:
            continue
        if tenant in customers and verbs <= READ_VERBS:
            continue  # a reseller reads its customers
        if tenant in customers:
            out.append(
                IdentityViolation(
                    "identity-reseller-read-only",
                    f"{who} may {', '.join(sorted(verbs - READ_VERBS))} in {ns} of its customer {tenant}: a reseller "
                    "reads its customers and changes nothing",
                )
            )
        else:
            whose = f"tenant {tenant}'s" if tenant else "the platform's"
            out.append(
                IdentityViolation(
                    "identity-tenant-isolation",
                    f"{who} reaches {whose} namespace {ns} ({', '.join(sorted(verbs))})",
                )
            )
    return out


def format_identity(report: IdentityReport) -> str:
    """`kasbah verify --matrix`: each trusted issuer, the prefixes of what it mints, and what that reaches."""
    lines = [f"identity of cluster {report.cluster}: issuer -> namespace: verbs"]
    for r in report.issuers:
        users = ", ".join(f"{p}*" for p in sorted(r.usernames)) if r.usernames is not None else "ANY"
        groups = ", ".join(f"{p}*" for p in sorted(r.groups)) if r.groups is not None else "ANY"
        lines.append(f"  {r.name or r.url} ({', '.join(r.owners) or '?'}): users {users}; groups {groups}")
        for ns, verbs in sorted(r.namespaces.items()):
            lines.append(f"    {ns}: {' '.join(sorted(verbs))}")
        if not r.namespaces:
            lines.append("    (nothing)")
    return "\n".join(lines)
