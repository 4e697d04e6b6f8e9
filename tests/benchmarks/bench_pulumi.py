"""Benchmark: every stack's program under Pulumi's mocks at 40 MW and 500 MW, against one Pulumi resource per object.

For each phase, a fresh interpreter plans the phase once (timed), then runs the site stack, every
hall stack (one per hall group past the first, `kasbah.planning.halls.HALLS_PER_STACK`) and every
cluster stack `--runs` times under `pulumi.runtime.set_mocks` (the real SDK: resource
registration, serialization, outputs; the mock monitor stands in for the engine). Figures are the
median program time and the resources each stack registers.

The comparison registers the same objects the stacks stand for (every node, rack, hall, switch,
fabric and Kubernetes object of the phase) as one Pulumi resource each, in one program, with
small inputs: what a naive "one resource per object" design would push through the SDK before
any provider or engine work.

Each stack's program time excludes planning: a stack plans the environment in its own process under
`pulumi up`, so each of them also pays the planning time printed once per phase.

    .venv/bin/python tests/benchmarks/bench_pulumi.py [--runs 3] [--phases phase-1 phase-4] [--naive-runs 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# issue 18: every stack at or under about this many resources at 500 MW
LIMIT = 3000

PROBE = r"""
import json, resource, statistics, sys, time
env_dir, phase, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
from kasbah.components.mocked import run_mocked
from kasbah.components.programs import cluster_program, halls_program, plans, settings, site_program, _node_configs, _playbooks
from kasbah.planning.halls import hall_group
import pulumi
pulumi.runtime.set_all_config({"kasbah:environment": env_dir, "kasbah:phase": phase})
t0 = time.perf_counter()
plan = plans(settings(pulumi.Config("kasbah")))[-1]
_node_configs(plan, _playbooks())
planning = time.perf_counter() - t0
cfg = {"environment": env_dir, "phase": phase}
out = {"planning_s": planning, "stacks": []}
site_outputs = None
groups = sorted({hall_group(h.index) for h in plan.halls} - {0})
todo = [("site", None)] + [("halls", g) for g in groups] + [("cluster", c.name) for c in plan.clusters]
for project, name in todo:
    times, count = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        if project == "site":
            run = run_mocked(site_program, project="kasbah-site", stack="bench", config=cfg)
            site_outputs = run.outputs
        elif project == "halls":
            run = run_mocked(
                halls_program, project="kasbah-halls", stack=f"bench-halls-{name}",
                config={**cfg, "hallGroup": name, "siteStack": "o/kasbah-site/bench"},
                stack_outputs={"o/kasbah-site/bench": site_outputs},
            )
        else:
            run = run_mocked(
                cluster_program, project="kasbah-cluster", stack=f"bench-{name}",
                config={**cfg, "cluster": name, "siteStack": "o/kasbah-site/bench"},
                stack_outputs={"o/kasbah-site/bench": site_outputs},
            )
        times.append(time.perf_counter() - t)
        count = len(run.resources)
    label = "site" if project == "site" else f"halls-{name}" if project == "halls" else name
    out["stacks"].append({"stack": label, "resources": count, "seconds": statistics.median(times)})
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""

NAIVE = r"""
import json, resource, statistics, sys, time
env_dir, phase, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
import pulumi
from kasbah.components.mocked import run_mocked
from kasbah.components.programs import plans, settings
from kasbah.planning.tenancy import cluster_view
from kasbah.rendering.kubernetes import cluster_files
pulumi.runtime.set_all_config({"kasbah:environment": env_dir, "kasbah:phase": phase})
plan = plans(settings(pulumi.Config("kasbah")))[-1]
objects = []
objects += [("Hall", h.name, {"profile": h.profile}) for h in plan.halls]
objects += [("Rack", r.name, {"hall": r.hall, "index": r.index, "inband": r.inband_cidr or ""}) for r in plan.racks]
objects += [("Node", n.name, {"rack": n.rack, "ip": n.inband_ip, "pool": n.pool}) for n in plan.nodes]
objects += [("Switch", s.name, {"fabric": s.fabric, "tier": s.tier}) for s in plan.switches]
objects += [("Fabric", f.name, {"kind": f.kind}) for f in plan.fabrics]
for c in plan.clusters:
    for _path, objs in cluster_files(cluster_view(plan, c)):
        for o in objs:
            key = o["metadata"].get("namespace", "") + "/" + o["metadata"]["name"]
            objects.append((o["kind"], f"{c.name}:{key}", {"cluster": c.name}))

def program():
    for kind, name, props in objects:
        pulumi.CustomResource(f"kasbah:naive:{kind}", name, dict(props))
    return {"objects": len(objects)}

times = []
for _ in range(runs):
    t = time.perf_counter()
    run = run_mocked(program, project="naive", stack="bench", config={})
    times.append(time.perf_counter() - t)
    assert len(run.resources) == len(objects), (len(run.resources), len(objects))
print(json.dumps({"resources": len(objects), "seconds": statistics.median(times),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _probe(code: str, env: str, phase: str, runs: int) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", code, env, phase, str(runs)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{phase}: probe failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--env", default="environments/campus")
    ap.add_argument("--phases", nargs="+", default=["phase-1", "phase-4"])
    ap.add_argument("--runs", type=int, default=3, help="runs of each stack program (median)")
    ap.add_argument("--naive-runs", type=int, default=1, help="runs of the one-resource-per-object program")
    args = ap.parse_args()
    for phase in args.phases:
        res = _probe(PROBE, args.env, phase, args.runs)
        stacks = res["stacks"]
        assert isinstance(stacks, list)
        total_r = sum(int(s["resources"]) for s in stacks)
        total_s = sum(float(s["seconds"]) for s in stacks)
        biggest = max(stacks, key=lambda s: int(s["resources"]))
        print(
            f"\n## {args.env} {phase}: planning {float(res['planning_s']):.1f} s (once), peak RSS {float(res['peak_rss_mb']):.0f} MB"
        )  # type: ignore[arg-type]
        print(f"| stack | resources | program s (median of {args.runs}) | ms per resource |")
        print("|---|---:|---:|---:|")
        for s in stacks:
            print(
                f"| {s['stack']} | {s['resources']:,} | {s['seconds']:.2f} | {1000 * s['seconds'] / max(1, s['resources']):.2f} |"
            )
        print(f"| **all {len(stacks)} stacks** | **{total_r:,}** | **{total_s:.2f}** | |")
        over = [str(s["stack"]) for s in stacks if int(s["resources"]) > LIMIT]
        print(f"stacks over {LIMIT:,} resources: {', '.join(over) or 'none'}")
        print(
            f"largest stack: {biggest['stack']} with {biggest['resources']:,} resources, "
            f"{float(biggest['seconds']):.2f} s (median of {args.runs})"
        )
        naive = _probe(NAIVE, args.env, phase, args.naive_runs)
        print(
            f"one resource per object, one program: {int(naive['resources']):,} resources, "  # type: ignore[call-overload]
            f"{float(naive['seconds']):.1f} s (median of {args.naive_runs}), peak RSS {float(naive['peak_rss_mb']):.0f} MB"  # type: ignore[arg-type]
        )


if __name__ == "__main__":
    main()
