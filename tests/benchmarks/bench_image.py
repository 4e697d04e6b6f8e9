"""Benchmark: bringing nodes into service, today's full pass on a plain OS against a pool image plus the lean pass.

    .venv/bin/python tests/benchmarks/bench_image.py [--runs 3] [--runners 1 8 28] [--cores 2]
        [--deploy-s 124] [--burn-in-s 900] [--deploys 250] [--vm] [--mitogen DIR] [--json]

Side by side in one run, on the tiny environment's lab-1 phase (4 nodes: a control-plane host, a management
host and two GPU nodes) as Debian 12 node containers (tests/nodes/fleet.py, no network, the package
mirror mounted):

* **full**: fresh containers of the plain node image, `kasbah configure` (playbooks/site.yml);
* **image+lean**: fresh containers booted from their pool's image (tests/nodes/pool_image.py: built
  once from the roles, `--tags image`), `kasbah configure --playbook node` (playbooks/node.yml,
  `--tags node`).

With `--vm`, the same two passes on the real VM of the Day-0 test (tests/provisioning/test_vm.py: Ironic
deploys the live ISO through an emulated Redfish BMC, then `kasbah configure` over SSH from the admin zone):
the full pass, then the lean pass on the node it configured (the live ISO is not a pool image, so the lean
pass's check of the booted image is skipped; its other tasks run as after an image boot). One run: booting
the VM takes minutes.

With `--mitogen DIR` (a directory holding the `ansible_mitogen` package, e.g. an unpacked mitogen wheel), a
third mode: image+lean under Mitogen's `mitogen_linear` strategy and its docker connection, the controller-side
accelerator the Ansible ecosystem offers beyond the pipelining, fact cache and forks playbooks/ansible.cfg
already sets; kasbah ships it only if it wins here.

Both skip the tasks this machine cannot run (`vendor`: NVIDIA's, DOCA's and Kubernetes' repositories;
`cluster`: a live API server), as the playbook tests do. Each run starts from fresh containers; the
figures are medians of `--runs`: wall time, controller CPU (user+sys of `kasbah configure` and every
process it started: ansible-runner, ansible-playbook and its workers) per node, and tasks per node.

**Projection** to the campus's phase 1 (40 MW) and the 500 MW phase from the Plan's node counts:
controller core-hours (nodes x CPU per node), and the wall time with R runners of `--cores` cores, the
larger of the controller-bound time and the node-side time: nodes deployed `--deploys` at a time
(Ironic's concurrent deployments per conductor), each `--deploy-s` seconds from power-on to SSH (the
VM of tests/provisioning/test_vm.py: image write and first boot) plus, on GPU nodes, the burn-in
(`--burn-in-s`: DCGM diagnostics level 3, about 15 minutes) and, for the full pass, the package
installation time a node spent in the containers' full pass (node-side wall per node).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.nodes import fleet, pool_image  # noqa: E402

TINY = ROOT / "environments" / "tiny"
CAMPUS = ROOT / "environments" / "campus"
KASBAH = [sys.executable, "-m", "kasbah.cli"]
SKIP = "vendor,cluster"


class PassFailedError(RuntimeError):
    """A pass failed: the whole benchmark stops, but for the optional Mitogen mode, which is reported as failing."""


def configure(
    tree: Path, overlay: Path, artifacts: Path, *extra: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [*KASBAH, "configure", str(tree), "-e", str(TINY), "-i", str(overlay), "--artifacts", str(artifacts),
         "--skip-tags", SKIP, *extra],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise PassFailedError(
            f"kasbah configure {' '.join(extra)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    summary = json.loads((artifacts / "summary.json").read_text())
    hosts = {h: r for s in summary["slices"] for h, r in s["hosts"].items()}
    tasks = statistics.mean(r["ok"] + r["skipped"] for r in hosts.values())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "hosts": len(hosts), "tasks_per_node": tasks}


def phase_counts(phase: str) -> tuple[int, int]:
    """(nodes, GPU nodes) of a campus phase."""
    from kasbah.config import load_environment
    from kasbah.planning import plan_campus

    env = load_environment(CAMPUS)
    plan = next(p for p in plan_campus(env.campus, env.name) if p.phase == phase)
    return len(plan.nodes), sum(1 for n in plan.nodes if n.gpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 8, 28])
    parser.add_argument("--cores", type=int, default=2, help="cores of one runner (this machine: 2)")
    parser.add_argument("--deploy-s", type=float, default=124.0, help="power-on to SSH of one deployment")
    parser.add_argument("--burn-in-s", type=float, default=900.0, help="burn-in of a GPU node")
    parser.add_argument("--deploys", type=int, default=250, help="deployments at a time")
    parser.add_argument("--phases", nargs=2, default=["phase-1", "phase-4"], help="the 40 MW and the 500 MW phase")
    parser.add_argument("--vm", action="store_true", help="also measure both passes on the Day-0 test's VM")
    parser.add_argument("--mitogen", type=Path, help="a directory holding ansible_mitogen: also measure it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kasbah-bench-image-"))
    tree = work / "tree"
    subprocess.run([*KASBAH, "render", "lab-1", "-e", str(TINY), "--out", str(tree)], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    manifest = json.loads((tree / "provisioning" / "images.json").read_text())
    builds = {}
    for record in manifest["images"]:
        builds[record["name"]] = pool_image.build(tree, record["name"], work / "images")
        print(f"  built {record['name']}: sha256:{builds[record['name']].digest[:16]}…", file=sys.stderr, flush=True)
    first = fleet.inventory_hosts(tree)[0]
    image_of = {node: builds[image].tag for node, image in pool_image.node_images(tree).items()}
    samples: dict[str, list[dict[str, Any]]] = {"full": [], "image+lean": []}
    mitogen_env: dict[str, str] = {}
    mitogen_failures: list[str] = []
    if args.mitogen:
        plugins = args.mitogen / "ansible_mitogen" / "plugins" / "strategy"
        if not plugins.is_dir():
            raise SystemExit(f"{args.mitogen}: no ansible_mitogen/plugins/strategy there")
        mitogen_env = {
            "ANSIBLE_STRATEGY_PLUGINS": str(plugins),
            "ANSIBLE_STRATEGY": "mitogen_linear",
            "PYTHONPATH": str(args.mitogen),
        }
        samples["image+lean+mitogen"] = []
    prefix = f"kasbah-bench-image-{os.getpid()}"
    try:
        for run in range(args.runs):
            for mode in samples:
                extra = ("--playbook", "node") if mode != "full" else ()
                env = mitogen_env if mode.endswith("mitogen") else None
                sample: dict[str, Any] = {}
                # the whole fleet, then one node alone: the difference is what each further node costs the controller
                for size, hosts, limit in (("all", None, ()), ("one", [first], ("--limit", first))):
                    where = work / f"{mode}-{run}-{size}"
                    started = fleet.up(tree, prefix, where, hosts=hosts, images=image_of if mode != "full" else None)
                    overlay = started.overlay
                    if env:  # Mitogen's strategy takes over the `docker` connection by that name
                        overlay.write_text(overlay.read_text().replace("community.docker.docker", "docker"))
                    try:
                        got = configure(tree, overlay, where / "runs", *extra, *limit, env=env)
                    except PassFailedError as exc:
                        if not env:
                            raise SystemExit(str(exc)) from None
                        got = {}
                        mitogen_failures.append(
                            f"run {run + 1}, {size}: {next((ln for ln in str(exc).splitlines() if ln.startswith('failed ')), str(exc))[:300]}"
                        )
                    fleet.down(prefix)
                    if not got:
                        break
                    if size == "all":
                        sample |= got
                    else:
                        sample |= {"wall_one_s": got["wall_s"], "cpu_one_s": got["cpu_s"]}
                if "cpu_one_s" not in sample:
                    continue
                sample["cpu_per_node_s"] = (sample["cpu_s"] - sample["cpu_one_s"]) / (sample["hosts"] - 1)
                sample["wall_per_node_s"] = (sample["wall_s"] - sample["wall_one_s"]) / (sample["hosts"] - 1)
                samples[mode].append(sample)
                print(f"  run {run + 1} {mode}: {json.dumps(sample)}", file=sys.stderr, flush=True)
    finally:
        fleet.down(prefix)
        for b in builds.values():
            subprocess.run(["docker", "image", "rm", "--force", b.tag], capture_output=True)

    vm: dict[str, Any] | None = None
    if args.vm:
        figures = work / "vm.json"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/provisioning/test_vm.py",
             "-k", "site_playbook_over_ssh or lean_pass"],
            cwd=ROOT, env={**os.environ, "KASBAH_BENCH_FIGURES": str(figures)}, capture_output=True, text=True,
        )  # fmt: skip
        if not figures.exists():
            raise SystemExit(f"the VM passes did not run:\n{proc.stdout[-3000:]}")
        vm = json.loads(figures.read_text())

    keys = ("wall_s", "cpu_s", "tasks_per_node", "wall_one_s", "cpu_one_s", "cpu_per_node_s", "wall_per_node_s")
    med = {
        mode: {k: statistics.median(s[k] for s in rows) for k in keys} | {"hosts": rows[0]["hosts"]}
        for mode, rows in samples.items()
        if rows
    }
    per_node = {m: v["cpu_per_node_s"] for m, v in med.items()}
    mitogen_row = per_node.pop("image+lean+mitogen", None)
    # node-side time of the full pass beyond the lean one: package installs and the rest (one node alone: its wall)
    install_s = med["full"]["wall_one_s"] - med["image+lean"]["wall_one_s"]
    result: dict[str, Any] = {
        "fleet": med,
        "controller_cpu_per_node_s": per_node,
        "ratio": per_node["full"] / per_node["image+lean"],
        "image_build_s": {n: b.build_seconds for n, b in builds.items()},
        "vm": vm,
        "mitogen_cpu_per_node_s": mitogen_row,
        "mitogen_failures": mitogen_failures,
        "projection": {},
    }
    for phase in args.phases:
        nodes, gpu_nodes = phase_counts(phase)
        rows = {}
        for mode, cpu in per_node.items():
            core_h = nodes * cpu / 3600
            node_side = args.deploy_s + (install_s if mode == "full" else 0.0)
            batches = -(-nodes // args.deploys)
            node_h = (batches * node_side + (args.burn_in_s if gpu_nodes else 0)) / 3600
            rows[mode] = {
                "controller_core_h": core_h,
                "wall_h": {r: max(core_h / (r * args.cores), node_h) for r in args.runners},
                "node_side_h": node_h,
            }
        result["projection"][phase] = {"nodes": nodes, "gpu_nodes": gpu_nodes, "modes": rows}

    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"\nlab-1 on {med['full']['hosts']} node containers, median of {args.runs} runs, fresh containers each run")
    print("(per node: the whole fleet's controller CPU less one node's alone, over the other nodes)\n")
    print("| pass | wall s (all) | controller CPU s (all / one) | CPU s per further node | tasks per node |")
    print("|---|---:|---:|---:|---:|")
    for mode, v in med.items():
        if mode.endswith("mitogen"):
            continue
        print(
            f"| {mode} | {v['wall_s']:.1f} | {v['cpu_s']:.1f} / {v['cpu_one_s']:.1f} | {per_node[mode]:.2f} "
            f"| {v['tasks_per_node']:.0f} |"
        )
    for failure in mitogen_failures:
        print(f"image+lean+mitogen failed: {failure}")
    if mitogen_row is not None:
        v = med["image+lean+mitogen"]
        print(
            f"| image+lean+mitogen | {v['wall_s']:.1f} | {v['cpu_s']:.1f} | {mitogen_row:.2f} | {v['tasks_per_node']:.0f} |"
        )
    print(f"\ncontroller CPU per node: {result['ratio']:.1f}x lower with image+lean")
    if vm:
        print("\nthe Day-0 VM over SSH (one node, one run):\n")
        print("| pass | wall s | controller CPU s | tasks |")
        print("|---|---:|---:|---:|")
        for mode, v in vm.items():
            print(f"| {mode} | {v['wall_s']:.1f} | {v['cpu_s']:.1f} | {v['tasks']:.0f} |")
        print(f"\nVM controller CPU: {vm['full']['cpu_s'] / vm['lean']['cpu_s']:.1f}x lower with the lean pass")
    print(f"image builds (roles on the build host, once per image): {json.dumps(result['image_build_s'])}")
    for phase, p in result["projection"].items():
        print(f"\n{phase}: {p['nodes']:,} nodes ({p['gpu_nodes']:,} with GPUs); runners of {args.cores} cores")
        print(
            "| pass | controller core-h | node-side h | " + " | ".join(f"{r} runner(s) h" for r in args.runners) + " |"
        )
        print("|---|---:|---:|" + "---:|" * len(args.runners))
        for mode, row in p["modes"].items():
            walls = " | ".join(f"{row['wall_h'][r]:.2f}" for r in args.runners)
            print(f"| {mode} | {row['controller_core_h']:.1f} | {row['node_side_h']:.2f} | {walls} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
