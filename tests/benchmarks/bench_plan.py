"""Benchmark: load, plan and JSON-export time and peak memory for every shipped phase.

Each measurement runs in a fresh interpreter, so peak RSS is that run's alone; figures are the
median of --runs runs. Planning phase N plans phases 1..N (that is what `kasbah plan` does).

    .venv/bin/python tests/benchmarks/bench_plan.py [--runs 5] [--env environments/campus]

Targets (issue 2): the 500 MW plan under 5 s and 1 GB on a 2-core machine, cost growing no
faster than linearly with the node count (compare the µs-per-node column across phases).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from kasbah.config import load_environment

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from kasbah.config import load_environment
from kasbah.planning import plan_campus, plan_to_dict
from kasbah.planning.export import to_json
t1 = time.perf_counter()
rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
env = load_environment(sys.argv[1])
t2 = time.perf_counter()
plan = plan_campus(env.campus, env.name, upto=sys.argv[2])[-1]
t3 = time.perf_counter()
text = to_json(plan_to_dict(plan), compact=True)
t4 = time.perf_counter()
print(json.dumps({
    "imports_s": t1 - t0, "load_s": t2 - t1, "plan_s": t3 - t2, "json_s": t4 - t3,
    "rss_imports_mb": rss_imports / 1024, "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "nodes": len(plan.nodes), "racks": len(plan.racks), "switches": len(plan.switches), "gpus": plan.gpus,
    "it_mw": plan.power.it_load_kw / 1000, "json_mb": len(text) / 1e6,
}))
"""


def measure(env: Path, phase: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(env), phase], capture_output=True, text=True, check=True, cwd=ROOT
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--env", type=Path, default=ROOT / "environments" / "campus")
    args = parser.parse_args()
    phases = [p.name for p in load_environment(args.env).campus.phases]
    print(f"# kasbah plan benchmark: {args.env.name}, median of {args.runs} runs, one fresh process a run\n")
    print(
        "| phase | IT MW | racks | nodes | GPUs | switches | load s | plan s | JSON s | plan µs/node | peak RSS MB | RSS after imports MB | JSON MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for phase in phases:
        runs = [measure(args.env, phase) for _ in range(args.runs)]

        def med(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        first = runs[0]
        print(
            f"| {phase} | {first['it_mw']:.1f} | {int(first['racks']):,} | {int(first['nodes']):,} | {int(first['gpus']):,} "
            f"| {int(first['switches']):,} | {med('load_s'):.3f} | {med('plan_s'):.3f} | {med('json_s'):.3f} "
            f"| {1e6 * med('plan_s') / max(1, first['nodes']):.1f} | {med('rss_peak_mb'):.0f} | {med('rss_imports_mb'):.0f} "
            f"| {first['json_mb']:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
