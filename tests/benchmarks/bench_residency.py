"""Benchmark: the residency proof and the air-gap bundle over a shipped phase's whole rendered tree.

Every shipped phase of the campus is planned and rendered once; then, for each, the endpoint scan of the tree and
the role defaults, their resolution against the Plan, the jurisdiction judgement and the bundle comparison
(verification/residency.py) run --runs times. Figures are medians, one process.

    .venv/bin/python tests/benchmarks/bench_residency.py [--runs 3] [--env environments/campus]

The proof reads every value of every rendered file (the inventory slices dominate: they grow with nodes), so it
grows with the tree's bytes, not with the number of endpoints (a few dozen, the same at every phase).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import planned  # noqa: E402

from kasbah.rendering.endpoints import role_defaults  # noqa: E402
from kasbah.rendering.phase import render_plans  # noqa: E402
from kasbah.resources import roles  # noqa: E402
from kasbah.verification.residency import check_residency  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--env", default=str(ROOT / "environments" / "campus"))
    args = parser.parse_args()
    env = Path(args.env)
    plans = planned(env)
    defaults = role_defaults(roles())
    print(f"# kasbah residency proof benchmark ({env.name}): median of {args.runs} runs, one process\n")
    print("| phase | nodes | tree MB | endpoints | findings | proof s (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for i, plan in enumerate(plans):
        files = dict(render_plans(list(plans[: i + 1]), env.name).files)
        size = sum(len(v) for v in files.values()) / 1e6
        times = []
        report = None
        for _ in range(args.runs):
            t = time.perf_counter()
            report = check_residency(files, plan, defaults)
            times.append(time.perf_counter() - t)
        assert report is not None
        print(
            f"| {plan.phase} | {len(plan.nodes):,} | {size:,.1f} | {len(report.rows)} | {len(report.findings)} | "
            f"{statistics.median(times):.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
