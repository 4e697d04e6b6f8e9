"""Controller overhead of Ansible per host and per task, default settings against kasbah's tuned ones.

Runs a synthetic playbook (T `stat` tasks after fact gathering) over N Debian 12 node containers
(tests/nodes/fleet.py; the `community.docker.docker` connection, no network), with

* `default`: Ansible's defaults (an empty ansible.cfg: 5 forks, full fact gathering every run,
  no pipelining, linear strategy), and
* `tuned`: playbooks/ansible.cfg (50 forks, pipelining, `gather_subset=min,virtual`, smart
  gathering with a JSON fact cache), and `tuned+free` (the same with the free strategy),

side by side in one run, each the median of --runs runs after one warm-up. It reports wall time,
the slope per task (more tasks, same hosts) and per host (more hosts, same tasks), and the
controller CPU per host-task (user+sys of ansible-playbook and everything it started). From the
site playbook's task count per node (its last converge, if a summary.json is given) and the Plan's
phase-1 node count it projects the time to configure phase 1 with R parallel runners.

    python tests/benchmarks/bench_ansible.py [--hosts 4 8] [--tasks 10 30] [--runs 3]
        [--site-summary RUNS/summary.json] [--runners 1 8 28]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.nodes import fleet  # noqa: E402

PLAYBOOKS = ROOT / "playbooks"
ANSIBLE = str(Path(sys.executable).parent / "ansible-playbook")


def playbook(tasks: int) -> str:
    lines = ["---", "- name: Bench", "  hosts: all", "  tasks:"]
    for i in range(tasks):
        lines += [
            f"    - name: Stat {i}",
            "      ansible.builtin.stat:",
            "        path: /etc/hostname",
        ]
    return "\n".join(lines) + "\n"


def run_once(config: Path, inventory: Path, book: Path, extra_env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and controller CPU seconds (children's user+sys) of one ansible-playbook run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = {**os.environ, "ANSIBLE_CONFIG": str(config), **extra_env}
    proc = subprocess.run([ANSIBLE, "-i", str(inventory), str(book)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"ansible-playbook failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(config: Path, inventory: Path, book: Path, runs: int, extra_env: dict[str, str]) -> tuple[float, float]:
    run_once(config, inventory, book, extra_env)  # warm-up: image pages, fact cache
    samples = [run_once(config, inventory, book, extra_env) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def site_tasks_per_host(summary: Path) -> float:
    import json

    data = json.loads(summary.read_text())
    counts = [h["ok"] + h["skipped"] + len(h["failures"]) for s in data["slices"] for h in s["hosts"].values()]
    return statistics.mean(counts)


def phase_nodes(phase: str) -> int:
    from kasbah.config import load_environment
    from kasbah.planning import plan_campus

    env = load_environment(ROOT / "environments" / "campus")
    plans = plan_campus(env.campus, env.name)
    return len(next(p for p in plans if p.phase == phase).nodes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs=2, default=[4, 8], help="two fleet sizes (per-host slope)")
    parser.add_argument("--tasks", type=int, nargs=2, default=[10, 30], help="two task counts (per-task slope)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--site-summary", type=Path, help="summary.json of a site converge (tasks per host)")
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 8, 28], help="parallel runners to project")
    parser.add_argument("--phase", default="phase-1")
    args = parser.parse_args()

    few, many = sorted(args.hosts)
    short, long_ = sorted(args.tasks)
    work = Path(tempfile.mkdtemp(prefix="kasbah-bench-ansible-"))
    default_cfg = work / "default.cfg"
    default_cfg.write_text("[defaults]\n")
    tuned_cfg = work / "tuned.cfg"
    # the project's settings, with its relative roles path and a private fact cache
    text = (PLAYBOOKS / "ansible.cfg").read_text().replace("~/.cache/kasbah/facts", str(work / "facts"))
    tuned_cfg.write_text(text)
    free_cfg = work / "free.cfg"
    free_cfg.write_text(text.replace("strategy = linear", "strategy = ansible.builtin.free"))
    configs = {"default": default_cfg, "tuned": tuned_cfg, "tuned+free": free_cfg}
    books = {t: work / f"tasks-{t}.yml" for t in (short, long_)}
    for t, path in books.items():
        path.write_text(playbook(t))

    prefix = "kasbah-bench"
    names = [f"bench-{i:03d}" for i in range(many)]
    started = fleet.up(ROOT, prefix, work, hosts=names)
    overlay_all = started.overlay
    # the smaller fleet: the same containers, fewer hosts in the inventory
    import yaml

    doc = yaml.safe_load(overlay_all.read_text())
    doc["all"]["hosts"] = dict(list(doc["all"]["hosts"].items())[:few])
    overlay_few = work / "few.yml"
    overlay_few.write_text(yaml.safe_dump(doc))
    inventories = {few: overlay_few, many: overlay_all}

    results: dict[tuple[str, int, int], tuple[float, float]] = {}
    try:
        for name, cfg in configs.items():
            for n, inv in inventories.items():
                for t, book in books.items():
                    results[(name, n, t)] = measure(cfg, inv, book, args.runs, {})
                    w, c = results[(name, n, t)]
                    print(
                        f"  {name:11s} hosts={n:3d} tasks={t:3d}: wall {w:6.2f} s, controller CPU {c:6.2f} s",
                        flush=True,
                    )
    finally:
        fleet.down(prefix)

    print()
    print(f"N = {few} and {many} containers, T = {short} and {long_} tasks, median of {args.runs} runs after a warm-up")
    print()
    print("| settings | wall s (N, T) | per task s | per host s | CPU ms per host-task |")
    print("|---|---:|---:|---:|---:|")
    per_host_task: dict[str, float] = {}
    for name in configs:
        w_ml, c_ml = results[(name, many, long_)]
        w_ms, c_ms = results[(name, many, short)]
        w_fl, _ = results[(name, few, long_)]
        per_task = (w_ml - w_ms) / (long_ - short)
        per_host = (w_ml - w_fl) / (many - few)
        cpu = (c_ml - c_ms) / ((long_ - short) * many)
        per_host_task[name] = cpu
        print(f"| {name} | {w_ml:.1f} ({many}, {long_}) | {per_task:.3f} | {per_host:.3f} | {cpu * 1000:.1f} |")

    if args.site_summary:
        tasks = site_tasks_per_host(args.site_summary)
        nodes = phase_nodes(args.phase)
        cores = os.cpu_count() or 1
        print()
        print(
            f"Projection for {args.phase}: {nodes:,} nodes x {tasks:.0f} site tasks a node (from {args.site_summary}), "
            f"controller CPU bound at {cores} cores a runner:"
        )
        print()
        print("| settings | " + " | ".join(f"{r} runner(s) h" for r in args.runners) + " |")
        print("|---|" + "---:|" * len(args.runners))
        for name, cpu in per_host_task.items():
            hours = [nodes * tasks * cpu / (cores * r) / 3600 for r in args.runners]
            print(f"| {name} | " + " | ".join(f"{h:.2f}" for h in hours) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
