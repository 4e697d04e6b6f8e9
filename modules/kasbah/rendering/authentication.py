"""authentication.yaml: the API servers' structured authentication configuration (one JWT authenticator per issuer).

Each authenticator's claim mappings prefix every username and group with the identity's owner
(planning/identity.py): `'<tenant>:' + claims.sub`, `claims.groups.map(g, 'kasbah:<tenant>:' + g)`.
A shared issuer maps a token to the tenant its `tenant_claim` names, among the tenants that
declared it, and refuses any other. The verifier proves the prefixes on this file's expressions
(verification/identity.py). kube-apiserver reads it with `--authentication-config` and reloads it
when it changes, so a new tenant's issuer needs no restart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from kasbah.planning.identity import group_prefix, owners, username_prefix
from kasbah.planning.model import Issuer

API_VERSION = "apiserver.config.k8s.io/v1beta1"  # structured authentication: beta from 1.30, GA in 1.34
PATH = "/etc/kubernetes/kasbah/authentication.yaml"  # on every control-plane host (the control_plane role)


def _lit(text: str) -> str:
    """A CEL string literal of a name (DNS labels and prefixes: no quote or backslash to escape)."""
    assert "'" not in text and "\\" not in text, text
    return f"'{text}'"


def _per_owner(issuer: Issuer, value: Callable[[str], str], none: str) -> str:
    """`value(owner)` for a single owner; for a shared issuer, a choice on its tenant claim (`none` for no tenant)."""
    names = owners(issuer)
    if issuer.tenant_claim is None:
        return value(names[0])
    claim = f"claims.{issuer.tenant_claim}"
    text = none
    for name in reversed(names):
        text = f"{claim} == {_lit(name)} ? {value(name)} : {text}"
    return text


def authenticator(issuer: Issuer) -> dict[str, Any]:
    """One issuer's JWT authenticator: its tokens' identities, each prefixed with the owner's name."""
    groups = f"claims.{issuer.groups_claim}"

    def username(owner: str) -> str:
        return f"{_lit(username_prefix(owner))} + claims.{issuer.username_claim}"

    def group_list(owner: str) -> str:
        return f"(has({groups}) ? {groups}.map(g, {_lit(group_prefix(owner))} + g) : [])"

    out: dict[str, Any] = {
        "issuer": {"url": issuer.url, "audiences": list(issuer.audiences), "audienceMatchPolicy": "MatchAny"},
    }
    if issuer.tenant_claim is not None:
        claim = f"claims.{issuer.tenant_claim}"
        tenants = ", ".join(_lit(t) for t in issuer.tenants)
        out["claimValidationRules"] = [
            {
                "expression": f"has({claim}) && {claim} in [{tenants}]",
                "message": f"the token's `{issuer.tenant_claim}` is not a tenant this issuer serves",
            }
        ]
    out["claimMappings"] = {
        "username": {"expression": _per_owner(issuer, username, "''")},
        "groups": {"expression": _per_owner(issuer, group_list, "[]")},
    }
    out["userValidationRules"] = [
        {"expression": "!user.username.startsWith('system:')", "message": "no issuer mints system: users"},
        {"expression": "user.groups.all(g, !g.startsWith('system:'))", "message": "no issuer mints system: groups"},
    ]
    return out


def authentication_config(issuers: tuple[Issuer, ...]) -> bytes:
    doc = {"apiVersion": API_VERSION, "kind": "AuthenticationConfiguration", "jwt": [authenticator(i) for i in issuers]}
    head = (
        "---\n# Managed by kasbah: kube-apiserver --authentication-config, one JWT authenticator per issuer; every\n"
        "# identity is prefixed with its owner (<tenant>:<user>, kasbah:<tenant>:<group>).\n"
    )
    return (head + yaml.safe_dump(doc, sort_keys=False, width=1_000_000)).encode()
