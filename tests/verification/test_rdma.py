"""RDMA isolation over the rendered cabling: a dedicated pool's compute fabric joins no other pool's."""

from __future__ import annotations

from pathlib import Path

from kasbah.planning.model import Plan
from kasbah.rendering.phase import render_plans
from kasbah.verification.rdma import CABLING, check_rdma
from tests.conftest import CAMPUS, TINY, planned


def _tree(env: Path, index: int) -> tuple[Plan, dict[str, bytes]]:
    plans = planned(env)
    return plans[index], dict(render_plans(list(plans[: index + 1]), env.name).files)


def test_every_shipped_phase_keeps_dedicated_pools_rdma_apart() -> None:
    for env in (TINY, CAMPUS):
        plans = planned(env)
        for i, plan in enumerate(plans):
            files = dict(render_plans(list(plans[: i + 1]), env.name).files)
            assert check_rdma(files, plan) == [], (env.name, plan.phase)


def test_a_cable_between_a_dedicated_fabric_and_a_shared_one_is_an_rdma_path() -> None:
    plan, files = _tree(TINY, 1)  # lab-2: gpu-gov is the ministry's, gpu-a is shared
    path = f"{CABLING}gpu-gov-compute.csv"
    shared_leaf = next(s.name for s in plan.switches if s.fabric == "gpu-a-compute" and s.tier == "leaf")
    node = next(n.name for n in plan.nodes if n.pool == "gpu-gov")
    files[path] += f"gpu-gov-compute,node-leaf,{node},rail9,{shared_leaf},48,400\n".encode()
    problems = check_rdma(files, plan)
    assert len(problems) == 1
    assert "pool gpu-gov (dedicated to ministry) to pool(s) gpu-a" in problems[0][1]


def test_a_node_of_another_pool_cabled_into_a_dedicated_fabric_is_caught() -> None:
    plan, files = _tree(TINY, 1)
    path = f"{CABLING}gpu-gov-compute.csv"
    leaf = next(s.name for s in plan.switches if s.fabric == "gpu-gov-compute" and s.tier == "leaf")
    stranger = next(n.name for n in plan.nodes if n.pool == "gpu-a")
    files[path] += f"gpu-gov-compute,node-leaf,{stranger},rail1,{leaf},47,400\n".encode()
    assert [p[1].split(":")[0] for p in check_rdma(files, plan)] == [
        "an RDMA path joins pool gpu-gov (dedicated to ministry) to pool(s) gpu-a"
    ]


def test_a_missing_compute_cabling_file_is_reported() -> None:
    plan, files = _tree(TINY, 1)
    del files[f"{CABLING}gpu-gov-compute.csv"]
    assert any("missing" in m for _, m in check_rdma(files, plan))


def test_the_proof_at_500_mw_reads_the_whole_campus_compute_cabling() -> None:
    plans = planned(CAMPUS)
    files = dict(render_plans(list(plans), CAMPUS.name).files)
    cables = sum(files[p].count(b"\n") - 1 for p in files if p.startswith(CABLING) and p.endswith("-compute.csv"))
    assert cables > 100_000, cables  # every compute cable of the campus, not a sample
    assert check_rdma(files, plans[-1]) == []
