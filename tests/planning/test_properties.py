"""Properties of the planner over generated campuses: determinism, phase stability, budgets, unique addresses."""

from __future__ import annotations

import ipaddress
import itertools
from functools import cache
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kasbah.config import PlanningError
from kasbah.config.models import Campus, Phase, SiteDocument
from kasbah.planning import diff_plans, plan_campus, plan_to_dict
from kasbah.planning.model import Plan
from tests.conftest import TINY


@cache
def _site() -> SiteDocument:
    """The tiny site with room to grow: bigger halls, more reservations and address space."""
    raw: dict[str, Any] = yaml.safe_load((TINY / "site.yaml").read_text())
    a = raw["site"]["addressing"]
    a["reserve"] = {
        "halls": 6,
        "scalable_units_per_hall": 32,
        "racks_per_scalable_unit": 2,
        "rails": 2,
        "fabrics": 64,
        "switches_per_fabric": 256,
    }
    for i, net in enumerate(("oob", "inband", "storage", "compute")):
        a[net]["supernet"] = f"10.{20 + i}.0.0/16"
    a["loopback"] = "10.30.0.0/16"
    a["pods"] = {"supernet": "10.128.0.0/12", "cluster_prefix": 16, "node_prefix": 24}
    a["services"] = {"supernet": "10.96.0.0/12", "cluster_prefix": 16}
    raw["catalog"]["hall_profiles"][0].update(
        rows=2,
        positions_per_row=12,
        power={"units": 3, "unit_mw": 0.1, "redundancy": "N+1"},
        air_cooling_mw=0.3,
    )
    raw["site"]["phases"] = ["p1"]
    return SiteDocument.model_validate(raw)


@st.composite
def campuses(draw: st.DrawFn) -> Campus:
    halls: list[str] = []
    pools: list[str] = []
    clusters: list[str] = []
    phases = []
    for n in range(draw(st.integers(1, 4))):
        spec: dict[str, Any] = {
            "name": f"p{n + 1}",
            "facility_budget_mw": 1,
            "pools": [],
            "clusters": [],
            "halls": [],
        }
        for _ in range(draw(st.integers(1 if n == 0 else 0, 2))):
            halls.append(f"h{len(halls) + 1}")
            spec["halls"].append({"name": halls[-1], "profile": "lab-room"})
        if n == 0:
            spec["tenants"] = [{"name": "op", "kind": "operator", "jurisdictions": ["ma"]}]
            spec["pools"].append(
                {
                    "name": "mgmt",
                    "rack_profile": "lab-cpu",
                    "purpose": "management",
                    "placements": [{"hall": halls[0], "racks": 2}],
                }
            )
        if n == 0 or draw(st.booleans()):
            clusters.append(f"c{len(clusters) + 1}")
            spec["clusters"].append(
                {
                    "name": clusters[-1],
                    "kubernetes_version": "1.34",
                    "node_limit": draw(st.sampled_from([8, 64, 64])),
                    "control_plane": {"pool": "mgmt", "replicas": 1},
                }
            )
        for _ in range(draw(st.integers(0, 3))):
            pools.append(f"w{len(pools) + 1}")
            gpu = draw(st.booleans())
            spec["pools"].append(
                {
                    "name": pools[-1],
                    "rack_profile": "lab-gpu" if gpu else "lab-cpu",
                    "purpose": draw(st.sampled_from(["training", "inference", "hpc"])) if gpu else "hpc",
                    "cluster": draw(st.sampled_from([None, *clusters])),
                    "placements": [
                        {"hall": draw(st.sampled_from(halls)), "racks": draw(st.integers(1, 3))}
                        for _ in range(draw(st.integers(1, 2)))
                    ],
                }
            )
        existing = [p for p in pools if all(p != q["name"] for q in spec["pools"])]
        if existing and draw(st.booleans()):
            spec["expansions"] = {
                "pools": [
                    {
                        "pool": draw(st.sampled_from(existing)),
                        "placements": [{"hall": draw(st.sampled_from(halls)), "racks": 1}],
                    }
                ]
            }
        elif existing and draw(st.integers(0, 3)) == 0:
            victim = draw(st.sampled_from(existing))
            pools.remove(victim)
            spec["decommissions"] = [{"kind": "pool", "name": victim, "reason": "generated retirement"}]
        phases.append(Phase.model_validate(spec))
    site = _site()
    return Campus(
        site=site.site.model_copy(update={"phases": [p.name for p in phases]}),
        catalog=site.catalog,
        phases=tuple(phases),
    )


def _check_plan(plan: Plan) -> None:
    p = plan.power
    assert p.facility_load_kw <= p.budget_kw + 1e-6 and p.facility_load_kw <= p.supply_kw + 1e-6
    for h in plan.halls:
        assert h.it_load_kw <= h.power_capacity_kw + 1e-6
        assert h.liquid_load_kw <= h.liquid_capacity_kw + 1e-6 and h.air_load_kw <= h.air_capacity_kw + 1e-6
        assert h.positions_used <= h.positions
    for c in plan.clusters:
        assert c.nodes <= c.node_limit
    for section in (
        "halls",
        "scalable_units",
        "racks",
        "nodes",
        "pools",
        "switches",
        "clusters",
        "tenants",
    ):
        names = [i.name for i in getattr(plan, section)]
        assert len(names) == len(set(names)), f"duplicate names in {section}"
    racks = {r.name: r for r in plan.racks}
    for attr, cidr_attr in (
        ("oob_ip", "oob_cidr"),
        ("inband_ip", "inband_cidr"),
        ("storage_ip", "storage_cidr"),
    ):
        ips = [getattr(n, attr) for n in plan.nodes]
        assert len(ips) == len(set(ips)), f"duplicate {attr}"
        for n in plan.nodes:
            assert ipaddress.ip_address(getattr(n, attr)) in ipaddress.ip_network(getattr(racks[n.rack], cidr_attr))
    rails = [ip for n in plan.nodes for ip in n.rail_ips]
    assert len(rails) == len(set(rails))
    loopbacks = [s.loopback for s in plan.switches]
    assert len(loopbacks) == len(set(loopbacks))
    for cidrs in (
        [r.oob_cidr for r in plan.racks if r.oob_cidr],
        [c for r in plan.racks for c in r.rail_cidrs],
        [c.pod_cidr for c in plan.clusters],
    ):
        nets = sorted(ipaddress.ip_network(c) for c in cidrs)
        assert all(not a.overlaps(b) for a, b in itertools.pairwise(nets))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campuses())
def test_generated_campuses_plan_deterministically_stably_and_within_budget(campus: Campus) -> None:
    try:
        plans = plan_campus(campus, "generated")
    except PlanningError as exc:
        # infeasible inputs are refused with located issues, never with a crash
        assert exc.issues and all(i.message and i.fix and i.doc for i in exc.issues)
        return
    again = plan_campus(campus, "generated")
    assert [plan_to_dict(p) for p in plans] == [plan_to_dict(p) for p in again]
    for plan in plans:
        _check_plan(plan)
    for old, new in itertools.pairwise(plans):
        d = diff_plans(plan_to_dict(old), plan_to_dict(new))
        assert d.stable, [str(v) for v in d.violations]
