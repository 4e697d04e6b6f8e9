"""Identity in the Plan: the issuers the clusters trust, whose users each mints, and the groups RBAC binds."""

from __future__ import annotations

from kasbah.planning.export import plan_from_dict, plan_to_dict
from kasbah.planning.identity import cluster_issuers, group_prefix, tenant_group, username_prefix
from tests.conftest import CAMPUS, TINY, planned


def test_the_plan_lists_the_admin_issuer_first_then_those_tenants_name() -> None:
    plan = planned(TINY)[0]
    assert [(i.name, i.admin, i.tenants) for i in plan.issuers] == [
        ("lab-admins", True, ()),
        ("telecom-id", False, ("telecom", "ministry")),
    ]
    assert {t.name: t.issuer for t in plan.tenants} == {
        "operator": "lab-admins",
        "telecom": "telecom-id",
        "ministry": "telecom-id",
    }


def test_issuers_grow_with_tenants_across_phases_and_unused_ones_are_not_trusted() -> None:
    plans = planned(CAMPUS)
    names = [[i.name for i in p.issuers] for p in plans]
    assert names[0] == ["campus-admins", "telecom-id", "atlas-bank-id"]  # sahara-id and research-id: no tenant yet
    assert names[1] == ["campus-admins", "telecom-id", "atlas-bank-id", "sahara-id"]
    assert names[2] == names[3] == ["campus-admins", "telecom-id", "atlas-bank-id", "sahara-id", "research-id"]
    telecom = next(i for i in plans[1].issuers if i.name == "telecom-id")
    assert telecom.tenants == ("telecom", "ministry-digital", "health-agency", "ministry-education")


def test_a_cluster_trusts_the_admin_issuer_and_those_of_its_tenants_and_their_resellers() -> None:
    plan = planned(CAMPUS)[0]
    trusted = {c.name: [i.name for i in cluster_issuers(plan, c)] for c in plan.clusters}
    assert trusted["cloud-1"] == ["campus-admins", "telecom-id", "atlas-bank-id"]
    assert trusted["train-1"] == ["campus-admins"]  # the operator's own training cluster: no tenant logs in


def test_identities_and_groups_are_prefixed_with_their_owner() -> None:
    assert username_prefix("acme") == "acme:" and group_prefix("acme") == "kasbah:acme:"
    assert tenant_group("acme", "developers") == "kasbah:acme:developers"


def test_a_plan_of_format_5_reads_with_no_issuers() -> None:
    plan = planned(TINY)[0]
    data = plan_to_dict(plan)
    data["format"] = 5
    del data["issuers"]
    for t in data["tenants"]:
        del t["issuer"]
    old = plan_from_dict(data)
    assert old.issuers == () and all(t.issuer is None for t in old.tenants)
