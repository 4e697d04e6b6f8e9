"""CSV schedules: the IP plan, racks and cabling are the Plan's, row for row."""

from __future__ import annotations

import csv
import io
from collections import Counter
from functools import cache

import pytest

from kasbah.config import load_environment
from kasbah.config.models import Catalog
from kasbah.planning import plan_campus
from kasbah.planning.cabling import CABLE_FIELDS, LEAF_SPINE, NODE_LEAF, SPINE_CORE
from kasbah.planning.model import Plan
from kasbah.rendering.schedules import IP_PLAN_FIELDS, RACK_FIELDS, render_schedules
from tests.conftest import CAMPUS, TINY
from tests.rendering.fresh import digest_in_fresh_interpreter


@cache
def case(env: str) -> tuple[Plan, Catalog]:
    if env == "tiny":
        e = load_environment(TINY)
        return plan_campus(e.campus, e.name)[-1], e.campus.catalog
    e = load_environment(CAMPUS)
    return plan_campus(e.campus, e.name, upto="phase-1")[-1], e.campus.catalog


@cache
def rendered(env: str) -> dict[str, bytes]:
    return render_schedules(case(env)[0])


def rows(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(data.decode()))
    body = list(reader)
    return list(reader.fieldnames or []), body


ENVS = ["tiny", "campus"]


@pytest.mark.parametrize("env", ENVS)
def test_ip_plan_has_every_address_of_the_plan(env: str) -> None:
    plan, _ = case(env)
    header, body = rows(rendered(env)["ip-plan.csv"])
    assert header == list(IP_PLAN_FIELDS)
    racks = {r.name: r for r in plan.racks}
    want = set()
    for n in plan.nodes:
        r = racks[n.rack]
        want |= {
            (n.name, "oob", n.oob_ip, r.oob_cidr),
            (n.name, "inband", n.inband_ip, r.inband_cidr),
            (n.name, "storage", n.storage_ip, r.storage_cidr),
        }
        want |= {(n.name, f"rail{i + 1}", ip, r.rail_cidrs[i]) for i, ip in enumerate(n.rail_ips)}
    blocks = {f.name: f.loopback_block for f in plan.fabrics}
    want |= {(s.name, "loopback", s.loopback, blocks[s.fabric]) for s in plan.switches}
    got = [(r["name"], r["network"], r["address"], r["cidr"]) for r in body]
    assert len(got) == len(set(got)) == len(want)
    assert set(got) == want
    addresses = Counter(r["address"] for r in body)
    assert max(addresses.values()) == 1, "an address is planned twice"


@pytest.mark.parametrize("env", ENVS)
def test_racks_schedule_is_one_row_per_rack(env: str) -> None:
    plan, _ = case(env)
    header, body = rows(rendered(env)["racks.csv"])
    assert header == list(RACK_FIELDS)
    by_name = {r.name: r for r in plan.racks}
    assert sorted(r["rack"] for r in body) == sorted(by_name)
    for row in body:
        r = by_name[row["rack"]]
        assert (row["hall"], int(row["row"]), int(row["position"])) == (r.hall, r.row, r.position)
        assert (row["scalable_unit"] or None, row["pool"] or None, row["profile"]) == (
            r.scalable_unit,
            r.pool,
            r.profile,
        )
        assert float(row["power_kw"]) == r.power_kw and float(row["weight_kg"]) == r.weight_kg
        assert row["feeds"].split("+") == list(r.feeds) and int(row["nodes"]) == r.nodes


@pytest.mark.parametrize("env", ENVS)
def test_cabling_files_hold_every_cable_of_each_fabric(env: str) -> None:
    plan, _ = case(env)
    files = rendered(env)
    _, summary = rows(files["cabling/fabrics.csv"])
    assert [s["fabric"] for s in summary] == [f.name for f in plan.fabrics]
    assert set(files) == {"ip-plan.csv", "racks.csv", "cabling/fabrics.csv", *(s["file"] for s in summary)}
    for f in plan.fabrics:
        header, body = rows(files[f"cabling/{f.name}.csv"])
        assert header == list(CABLE_FIELDS)
        links = Counter(r["link"] for r in body)
        assert (links[NODE_LEAF], links[LEAF_SPINE], links[SPINE_CORE]) == (
            f.node_leaf_cables,
            f.leaf_spine_cables,
            f.spine_core_cables,
        )
        assert {r["fabric"] for r in body} <= {f.name}
        ends = [(r["a_device"], r["a_port"]) for r in body] + [(r["b_device"], r["b_port"]) for r in body]
        assert len(ends) == len(set(ends)), f"{f.name}: a port is cabled twice"


@pytest.mark.parametrize("env", ENVS)
def test_schedules_are_deterministic(env: str) -> None:
    assert render_schedules(case(env)[0]) == rendered(env)


def test_schedules_are_the_same_under_any_hash_seed() -> None:
    render = "from kasbah.rendering.schedules import render_schedules; out = render_schedules(plan)"
    assert digest_in_fresh_interpreter(render, "1") == digest_in_fresh_interpreter(render, "2")
