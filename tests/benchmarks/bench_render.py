"""Benchmark: plan + render + write + verify for every shipped phase, each step timed, and Ansible's inventory load.

Each measurement runs in a fresh interpreter (peak RSS is that run's alone); figures are the
median of --runs runs. Rendering phase N plans phases 1..N, as `kasbah render` does.

    .venv/bin/python tests/benchmarks/bench_render.py [--runs 3] [--env environments/campus] [--phases phase-4]

Targets (issue 3): plan + render + verify of the 500 MW phase under 10 s and 1.5 GB on this
2-core machine. The last table is `ansible-inventory --list` on the rendered inventory: the
whole phase, and its largest slice, in a fresh process each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from kasbah.config import load_environment

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from kasbah.config import load_environment
from kasbah.planning import plan_campus
from kasbah.rendering.phase import render_plans
from kasbah.rendering.tree import write_tree
from kasbah.verification.verify import verify_files
env = load_environment(sys.argv[1])
t1 = time.perf_counter()
plans = plan_campus(env.campus, env.name, upto=sys.argv[2])
t2 = time.perf_counter()
steps = {}
last = [time.perf_counter(), None]
def tick(name):
    now = time.perf_counter()
    if last[1] is not None:
        steps[last[1]] = now - last[0]
    last[0], last[1] = now, name
rendered = render_plans(plans, env.name, tick)
t3 = time.perf_counter()
steps[last[1]] = t3 - last[0]
write_tree(Path(sys.argv[3]), rendered.files)
t4 = time.perf_counter()
result = verify_files(rendered.files, plans[-1], None)
t5 = time.perf_counter()
assert result.ok, result.findings[:5]
plan = plans[-1]
print(json.dumps({
    "load_s": t1 - t0, "plan_s": t2 - t1, "render_s": t3 - t2, "write_s": t4 - t3, "verify_s": t5 - t4,
    "total_s": t5 - t0, "steps": steps,
    "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "files": len(rendered.files), "mb": rendered.bytes / 1e6, "nodes": len(plan.nodes), "gpus": plan.gpus,
    "clusters": len(plan.clusters), "objects": sum(c.objects for c in result.clusters),
    "it_mw": plan.power.it_load_kw / 1000,
}))
"""


def measure(env: Path, phase: str, out: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(env), phase, str(out)], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode:
        raise SystemExit(f"{phase}: probe failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout)
    return result


WRAP = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(json.dumps([time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))
"""


def ansible_load(inventory: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of `ansible-inventory -i INVENTORY --list`, measured by a fresh wrapper."""
    tool = str(Path(sys.executable).parent / "ansible-inventory")
    done = subprocess.run(
        [sys.executable, "-c", WRAP, tool, "-i", str(inventory), "--list"], capture_output=True, text=True, check=True
    )
    seconds, rss = json.loads(done.stdout)
    return float(seconds), float(rss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--env", type=Path, default=ROOT / "environments" / "campus")
    parser.add_argument("--phases", nargs="*", help="phases to measure (default: all)")
    parser.add_argument("--no-ansible", action="store_true", help="skip the ansible-inventory load")
    args = parser.parse_args()
    phases = args.phases or [p.name for p in load_environment(args.env).campus.phases]
    print(f"# kasbah render + verify benchmark: {args.env.name}, median of {args.runs} runs, one fresh process a run\n")
    print(
        "| phase | IT MW | nodes | clusters | objects | files | MB | plan s | render s | write s | verify s | total s | peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    step_rows = []
    with tempfile.TemporaryDirectory(prefix="kasbah-bench-") as tmp:
        trees = {}
        for phase in phases:
            out = Path(tmp) / phase
            runs = [measure(args.env, phase, out) for _ in range(args.runs)]
            trees[phase] = out

            def med(key: str, runs: list[dict[str, object]] = runs) -> float:
                return statistics.median(float(r[key]) for r in runs)  # type: ignore[arg-type]

            r0 = runs[0]
            print(
                f"| {phase} | {float(r0['it_mw']):.1f} | {r0['nodes']:,} | {r0['clusters']} | {r0['objects']:,} "
                f"| {r0['files']:,} | {float(r0['mb']):.1f} | {med('plan_s'):.2f} | {med('render_s'):.2f} "
                f"| {med('write_s'):.2f} | {med('verify_s'):.2f} | {med('total_s'):.2f} | {med('rss_peak_mb'):.0f} |",
                flush=True,
            )
            names = list(r0["steps"])  # type: ignore[call-overload]
            step_rows.append(
                (phase, {n: statistics.median(float(r["steps"][n]) for r in runs) for n in names})  # type: ignore[index]
            )
        print("\nRender steps (s, median):\n")
        names = list(step_rows[-1][1])
        print("| phase | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for phase, steps in step_rows:
            print(f"| {phase} | " + " | ".join(f"{steps.get(n, 0):.3f}" for n in names) + " |")
        if args.no_ansible:
            return 0
        print("\n`ansible-inventory --list` on the rendered inventory (s and peak RSS MB, median):\n")
        print("| phase | hosts | slices | whole phase s | RSS MB | largest slice hosts | slice s | slice RSS MB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for phase, out in trees.items():
            inv = out / "inventory"
            index = json.loads((inv / "index.json").read_text())
            slices = index["slices"]
            biggest = max(slices, key=lambda s: s["hosts"])
            whole = [ansible_load(inv) for _ in range(args.runs)]
            one = [ansible_load(inv / biggest["path"]) for _ in range(args.runs)]
            print(
                f"| {phase} | {sum(s['hosts'] for s in slices):,} | {len(slices)} "
                f"| {statistics.median(w[0] for w in whole):.2f} | {statistics.median(w[1] for w in whole):.0f} "
                f"| {biggest['hosts']:,} | {statistics.median(o[0] for o in one):.2f} | {statistics.median(o[1] for o in one):.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
