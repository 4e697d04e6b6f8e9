"""The identity proof: each issuer's identities are prefixed with their owner and reach only what the Plan allows.

The proof reads the rendered authentication configuration and RBAC; the seeded defects below are
edits of a rendered tree, each caught with the property it breaks. The rendered CEL is also
evaluated (cel-python) on hostile claims, to show the mappings do what the proof reads in them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from kasbah.cli import main
from kasbah.planning.identity import cluster_issuers, group_prefix, tenant_group, username_prefix
from kasbah.planning.model import Plan
from kasbah.rendering.authentication import authenticator
from kasbah.rendering.phase import render_plans
from kasbah.verification.identity import CLUSTER, check_identity, prefixes
from kasbah.verification.verify import verify_files
from tests.conftest import CAMPUS, TINY, planned

AUTH = "bootstrap/{}/authentication.yaml"
RBAC = "clusters/{}/rbac.yaml"


def _tree(env: Path, index: int) -> tuple[Plan, dict[str, bytes]]:
    plans = planned(env)
    return plans[index], dict(render_plans(list(plans[: index + 1]), env.name).files)


def _objs(files: Mapping[str, bytes], cluster: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(files[RBAC.format(cluster)]) if d]


def _properties(plan: Plan, files: Mapping[str, bytes], cluster: str) -> set[str]:
    c = next(x for x in plan.clusters if x.name == cluster)
    return {v.property for v in check_identity(files, plan, c, _objs(files, cluster)).violations}


def _edit_rbac(files: dict[str, bytes], cluster: str, change: Any) -> None:
    docs = _objs(files, cluster)
    change(docs)
    files[RBAC.format(cluster)] = yaml.safe_dump_all(docs).encode()


def _binding(kind: str, name: str, ns: str | None, role: str, group: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": group}],
    }


@pytest.mark.parametrize("env", [TINY, CAMPUS], ids=["tiny", "campus"])
def test_every_shipped_phase_proves_each_issuer_reaches_only_its_tenants(env: Path) -> None:
    plans = planned(env)
    for i, plan in enumerate(plans):
        files = dict(render_plans(list(plans[: i + 1]), env.name).files)
        tenants = {t.name: t for t in plan.tenants}
        for c in plan.clusters:
            report = check_identity(files, plan, c, _objs(files, c.name))
            assert not report.violations, report.violations
            assert [r.name for r in report.issuers] == [i.name for i in cluster_issuers(plan, c)]
            for r in report.issuers:
                if r.owners == ("operator",):
                    assert r.namespaces[CLUSTER] == {"*"}  # the administrators: cluster-admin
                    continue
                assert CLUSTER not in r.namespaces
                assert r.usernames == {username_prefix(o) for o in r.owners}
                assert r.groups == {group_prefix(o) for o in r.owners}
                for ns, verbs in r.namespaces.items():
                    owner = ns.removeprefix("tenant-")
                    if owner not in r.owners:  # a reseller's customer: read only
                        assert tenants[owner].reseller in r.owners and verbs == {"get", "list", "watch"}, (ns, verbs)


def test_the_shared_issuer_serves_only_the_tenants_that_name_it_and_the_reseller_reads_its_customers() -> None:
    plan, files = _tree(CAMPUS, 0)
    telecom = next(i for i in plan.issuers if i.name == "telecom-id")
    assert telecom.tenant_claim == "tenant" and telecom.tenants == ("telecom", "ministry-digital", "health-agency")
    c = next(x for x in plan.clusters if x.name == "cloud-1")
    reach = {r.name: r for r in check_identity(files, plan, c, _objs(files, "cloud-1")).issuers}
    # atlas-bank is a customer of the telecom with its own issuer: the telecom reads it, atlas-bank's issuer
    # reaches nothing of the telecom's other customers
    assert reach["telecom-id"].namespaces["tenant-atlas-bank"] == {"get", "list", "watch"}
    assert set(reach["atlas-bank-id"].namespaces) == {"tenant-atlas-bank"}


def _evaluate(expression: str, claims: dict[str, Any]) -> Any:
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    return program.evaluate({"claims": celpy.json_to_cel(claims)})


HOSTILE_GROUPS = ["developers", "kasbah:atlas-bank:developers", "system:masters", "../operator"]


def test_the_rendered_mappings_prefix_hostile_claims_with_the_tokens_tenant() -> None:
    plan, _ = _tree(CAMPUS, 0)
    by_name = {i.name: i for i in plan.issuers}
    single = authenticator(by_name["atlas-bank-id"])["claimMappings"]
    claims = {"sub": "kasbah:operator:platform-admins", "groups": HOSTILE_GROUPS}
    assert _evaluate(single["username"]["expression"], claims) == "atlas-bank:kasbah:operator:platform-admins"
    groups = list(_evaluate(single["groups"]["expression"], claims))
    assert groups == [f"kasbah:atlas-bank:{g}" for g in HOSTILE_GROUPS]
    assert list(_evaluate(single["groups"]["expression"], {"sub": "x"})) == []  # no groups claim: no groups

    shared = authenticator(by_name["telecom-id"])
    rule = shared["claimValidationRules"][0]["expression"]
    for tenant, accepted in (("health-agency", True), ("atlas-bank", False), ("operator", False)):
        assert bool(_evaluate(rule, {"tenant": tenant, "sub": "u"})) is accepted, tenant
    assert not _evaluate(rule, {"sub": "u"})  # no tenant claim: refused
    mapped = shared["claimMappings"]
    claims = {"tenant": "health-agency", "sub": "amina", "groups": HOSTILE_GROUPS}
    assert _evaluate(mapped["username"]["expression"], claims) == "health-agency:amina"
    assert all(str(g).startswith("kasbah:health-agency:") for g in _evaluate(mapped["groups"]["expression"], claims))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'acme:' + claims.sub", {"acme:"}),
        ("('kasbah:' + 'acme:') + claims.sub", {"kasbah:acme:"}),
        ("claims.t == 'a' ? 'a:' + claims.sub : claims.t == 'b' ? 'b:' + claims.sub : ''", {"a:", "b:"}),
        ("has(claims.g) ? claims.g.map(x, 'kasbah:a:' + x) : []", {"kasbah:a:"}),
        ("claims.sub", None),  # the claim as it is: any name
        ("claims.t + ':' + claims.sub", None),  # the prefix from a claim: any tenant's
        ("'' + claims.sub", None),
        ("claims.t == 'a' ? 'a:' + claims.sub : claims.sub", None),  # one branch unprefixed
        ("'kasbah:' + claims.t + ':' + claims.sub", {"kasbah:"}),  # a prefix, but not a tenant's: judged by reach
        ("this is not CEL (", None),
    ],
)
def test_the_prefix_of_a_mapping_is_read_from_its_cel(expression: str, expected: set[str] | None) -> None:
    assert prefixes(expression) == (None if expected is None else frozenset(expected))


def test_a_mapping_without_the_tenant_prefix_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tree"
    assert main(["render", "lab-1", "-e", str(TINY), "-o", str(out)]) == 0
    path = out / AUTH.format("lab")
    doc = yaml.safe_load(path.read_text())
    telecom = next(a for a in doc["jwt"] if "telecom" in a["issuer"]["url"])
    telecom["claimMappings"]["groups"] = {"expression": "claims.groups"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    capsys.readouterr()
    assert main(["verify", str(out), "-e", str(TINY), "--json"]) != 0
    result = json.loads(capsys.readouterr().out)
    messages = [f["message"] for f in result["findings"] if f["check"] == "identity"]
    assert any(
        m.startswith("identity-mapping: bootstrap/lab/authentication.yaml: jwt[1].claimMappings.groups")
        for m in messages
    )
    # taken at its worst: the issuer now holds the administrators' group, cluster-wide
    assert any(m.startswith("identity-cluster-scope: telecom-id") for m in messages), messages
    identity = result["clusters"][0]["identity"]
    assert not identity["proven"] and identity["issuers"][1]["groups"] is None


@pytest.mark.parametrize(
    ("seed", "prop"),
    [
        # another tenant's group bound in a tenant's namespace
        (
            lambda d: d.append(_binding("RoleBinding", "x", "tenant-ministry", "edit", tenant_group("telecom", "x"))),
            None,
        ),
        (
            lambda d: d.append(_binding("RoleBinding", "x", "tenant-operator", "view", tenant_group("ministry", "x"))),
            "identity-tenant-isolation",
        ),
        # a tenant's group given a cluster-wide role
        (
            lambda d: d.append(_binding("ClusterRoleBinding", "x", None, "view", tenant_group("ministry", "viewers"))),
            "identity-cluster-scope",
        ),
        # every authenticated user, whoever its issuer, given a tenant's namespace
        (
            lambda d: d.append(_binding("RoleBinding", "x", "tenant-operator", "view", "system:authenticated")),
            "identity-tenant-isolation",
        ),
        # a platform namespace opened to a tenant
        (
            lambda d: d.append(_binding("RoleBinding", "x", "kube-system", "view", tenant_group("ministry", "x"))),
            "identity-tenant-isolation",
        ),
    ],
    ids=["reseller-own-customer", "tenant-into-operator", "cluster-wide", "all-users", "platform"],
)
def test_each_seeded_cross_tenant_grant_is_caught(seed: Any, prop: str | None) -> None:
    plan, files = _tree(TINY, 0)
    assert _properties(plan, files, "lab") == set()
    _edit_rbac(files, "lab", seed)
    # (the first seed is legitimate: the telecom's own issuer also mints the ministry's users, a declared sharing)
    assert _properties(plan, files, "lab") == ({prop} if prop else set())


def test_a_reseller_that_may_change_a_customer_with_its_own_issuer_is_caught() -> None:
    plan, files = _tree(CAMPUS, 0)

    def widen(docs: list[dict[str, Any]]) -> None:
        for b in docs:
            if b["metadata"]["name"] == "reseller-telecom" and b["metadata"].get("namespace") == "tenant-atlas-bank":
                b["roleRef"]["name"] = "edit"

    _edit_rbac(files, "cloud-1", widen)
    assert _properties(plan, files, "cloud-1") == {"identity-reseller-read-only"}


def test_an_issuer_the_plan_does_not_trust_is_caught() -> None:
    plan, files = _tree(TINY, 0)
    path = AUTH.format("lab")
    doc = yaml.safe_load(files[path])
    extra = json.loads(json.dumps(doc["jwt"][1]))
    extra["issuer"]["url"] = "https://rogue.example"
    doc["jwt"].append(extra)
    files[path] = yaml.safe_dump(doc).encode()
    assert "identity-issuer" in _properties(plan, files, "lab")


def test_the_verifier_reports_identity_per_cluster() -> None:
    plan, files = _tree(TINY, 1)
    result = verify_files(files, plan, None)
    assert result.ok, result.findings[:5]
    for c in result.clusters:
        assert c.identity is not None and not c.identity.violations


def test_a_missing_or_incomplete_authentication_file_is_caught() -> None:
    plan, files = _tree(TINY, 0)
    path = AUTH.format("lab")
    doc = yaml.safe_load(files[path])
    doc["jwt"] = doc["jwt"][:1]  # the telecom's issuer dropped: its tenants could not log in
    files[path] = yaml.safe_dump(doc).encode()
    assert _properties(plan, files, "lab") == {"identity-issuer"}
    del files[path]
    assert _properties(plan, files, "lab") == {"identity-issuer"}


def test_a_hostile_authentication_file_is_refused_without_hanging() -> None:
    plan, files = _tree(TINY, 0)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20)
    )
    files[AUTH.format("lab")] = bomb.encode()
    assert "identity-mapping" in _properties(plan, files, "lab")
    assert prefixes("(" * 5000 + "'a:'" + ")" * 5000) is None  # nested past any parser: not provable, no crash
