"""Benchmark: Day 0 at hall and campus scale (issue 14).

    .venv/bin/python tests/benchmarks/bench_day0.py [--runs 3] [--hall dh01] [--nodes N] [--workers 16]
        [--shards 8] [--cores 2 16] [--deploy-s 124] [--skip-ironic] [--skip-render]

1. **Ironic at hall scale.** A hall of the 40 MW phase (dh01: 1,424 nodes; `--nodes N`: its first N) as
   sushy-tools emulated Redfish BMCs, each at its node's Plan OOB address in a network namespace of the
   benchmark's own, spread over `--shards` emulator processes (one emulator keeps its systems in one
   SQLite file whose locks time out under a hall's calls; the namespace's NAT sends each BMC address to
   its shard), behind one standalone Ironic (API and conductor in one process, SQLite, the redfish
   hardware type): the time `kasbah.runners.ironic.Provisioner` takes to enrol every node (one node and
   one port per node) and bring it to `available` (manage: Ironic reads the power state over Redfish;
   provide: cleaning off, as in the lab), and the CPU Ironic spent per node. A fresh Ironic each run.
   Needs root and `make ironic`.
2. **DHCP and DNS data for the campus.** Every rack of the environment gets a synthetic hardware
   manifest (deterministic serials and MACs), then in a fresh interpreter: load and plan (manifests
   validated), and render `provisioning/` (Kea per hall, Knot zones, per-rack node records with
   each node's cloud-init network config) for the 40 MW and the 500 MW phase: time, nodes, files.
3. **Projection** from (1): enrolment is bound by the conductor's CPU (Ironic's CPU per node x the
   largest hall / conductor cores), deployments by Ironic's 250 concurrent deployments per conductor
   and a per-node deployment time (`--deploy-s`: power-on to SSH, the VM measurement of
   tests/provisioning/test_vm.py, or a site's own figure).

Figures are medians of --runs runs, each in its own process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kasbah.config import load_environment  # noqa: E402
from kasbah.planning import plan_campus  # noqa: E402

PROBE_IRONIC = r"""
import json, sys, time
from kasbah.runners.ironic import Credentials, Ironic, Provisioner, Target
doc = json.load(sys.stdin)
wanted = [Target(**{**t, "macs": tuple(t["macs"])}) for t in doc["targets"]]
creds = Credentials(doc["username"], doc["password"])
t0 = time.perf_counter()
results = Provisioner(Ironic(doc["url"]), lambda _rack: creds, None, workers=doc["workers"], timeout=900, poll=1.0,
                      in_flight=doc["in_flight"]).run(wanted)
t1 = time.perf_counter()
states = {}
for r in results:
    states[r.state] = states.get(r.state, 0) + 1
print(json.dumps({"seconds": t1 - t0, "states": states, "ok": sum(r.ok for r in results),
                  "failed": [r.as_dict() for r in results if not r.ok][:3]}))
"""

PROBE_RENDER = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from kasbah.config import load_environment
from kasbah.planning import plan_campus
from kasbah.rendering.provisioning import render_provisioning
env = load_environment(sys.argv[1])
t1 = time.perf_counter()
plans = plan_campus(env.campus, env.name, upto=sys.argv[2])
t2 = time.perf_counter()
files = render_provisioning(plans[-1])
t3 = time.perf_counter()
plan = plans[-1]
# the parts again, each alone: DHCP (Kea, every hall), DNS (every zone), the per-rack node records
from kasbah.planning.hostnet import HostNet
from kasbah.rendering.provisioning import kea_config, rack_nodes, zone_files
net = HostNet(plan)
a = time.perf_counter()
for hall in plan.halls:
    json.dumps(kea_config(plan, hall.name, net), indent=1)
b = time.perf_counter()
zone_files(plan)
c = time.perf_counter()
rack_nodes(plan, net)
d = time.perf_counter()
print(json.dumps({
    "load_s": t1 - t0, "plan_s": t2 - t1, "render_s": t3 - t2, "dhcp_s": b - a, "dns_s": c - b,
    "node_records_s": d - c, "nodes": len(plan.nodes),
    "hardware": len(plan.hardware), "files": len(files), "mb": sum(map(len, files.values())) / 1e6,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def _mac(i: int, nic: int) -> str:
    """A locally administered MAC, unique per (node index, NIC)."""
    v = (0x02 << 40) | (nic << 24) | i
    return ":".join(f"{(v >> s) & 0xFF:02x}" for s in range(40, -8, -8))


def write_manifests(env_dir: Path) -> int:
    """A hardware manifest for every rack holding nodes in any phase of the environment; the node count."""
    env = load_environment(env_dir)
    plan = plan_campus(env.campus, env.name)[-1]
    profiles = {p.name: p for p in env.campus.catalog.rack_profiles}
    out = env_dir / "hardware"
    out.mkdir(exist_ok=True)
    i = 0
    for rack in plan.racks:
        if not rack.nodes:
            continue
        prof = profiles[rack.profile]
        slots = []
        for slot in range(1, rack.nodes + 1):
            i += 1
            row = {"slot": slot, "serial": f"SN{i:07d}", "bmc_mac": _mac(i, 0), "inband_mac": _mac(i, 1)}
            if prof.storage_nics_per_node:
                row["storage_mac"] = _mac(i, 2)
            if prof.compute_nics_per_node:
                row["rail_macs"] = [_mac(i, 16 + r) for r in range(prof.compute_nics_per_node)]
            slots.append(row)
        doc = {"hardware": {"rack": rack.name, "integrator": "benchmark", "slots": slots}}
        (out / f"{rack.name}.yaml").write_text("---\n" + yaml.safe_dump(doc, sort_keys=False, width=200))
    return i


def bench_render(runs: int) -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="kasbah-day0-") as tmp:
        env_dir = Path(tmp) / "campus"
        shutil.copytree(ROOT / "environments" / "campus", env_dir)
        write_manifests(env_dir)
        phases = [p.name for p in load_environment(env_dir).campus.phases]
        for phase in (phases[0], phases[-1]):
            got = []
            for _ in range(runs):
                r = subprocess.run(
                    [sys.executable, "-c", PROBE_RENDER, str(env_dir), phase], capture_output=True, text=True
                )
                if r.returncode:
                    raise SystemExit(f"render probe failed:\n{r.stderr[-3000:]}")
                got.append(json.loads(r.stdout))
            keys = ("load_s", "plan_s", "render_s", "dhcp_s", "dns_s", "node_records_s", "rss_mb")
            med = {k: statistics.median(float(g[k]) for g in got) for k in keys}
            rows.append({"phase": phase, **{k: got[0][k] for k in ("nodes", "hardware", "files", "mb")}, **med})
    return rows


def _cpu_seconds(pattern: str) -> float:
    """User + system CPU time of the processes whose command line holds `pattern` and of their children
    (Ironic's master holds its --config-file; its worker renames itself and only has the master as parent)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float, bytes]] = {}  # pid -> (parent, cpu seconds, command line)
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit():
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / tick
                stats[int(proc.name)] = (int(fields[1]), cpu, (proc / "cmdline").read_bytes())
        except OSError:
            continue
    roots = {pid for pid, (_, _, cmd) in stats.items() if pattern.encode() in cmd}
    return sum(cpu for pid, (parent, cpu, _) in stats.items() if pid in roots or parent in roots)


def bench_ironic(
    runs: int, hall: str, workers: int, shards: int, limit: int | None, in_flight: int = 64
) -> dict[str, object]:
    from tests.provisioning.lab import BMC_PASSWORD, BMC_USER, FakeSystem, lab, missing

    from kasbah.runners.ironic import Target

    why = missing()
    if why:
        raise SystemExit(f"the Ironic benchmark cannot run here: {why} (use --skip-ironic)")
    env = load_environment(ROOT / "environments" / "campus")
    plan = plan_campus(env.campus, env.name, upto=env.campus.phases[0].name)[-1]
    nodes = [n for n in plan.nodes if n.hall == hall]
    if not nodes:
        raise SystemExit(f"no hall {hall} in {plan.phase}")
    hall_nodes = len(nodes)
    nodes = nodes[:limit] if limit else nodes
    targets = [
        Target(
            name=n.name, rack=n.rack, hall=n.hall, pool=n.pool, serial=f"SN{i:07d}",
            bmc_address=f"http://{n.oob_ip}:8000", system=f"/redfish/v1/Systems/{n.name}", verify_tls=False,
            macs=(_mac(i, 1),), fqdn=f"{n.name}.{plan.zone}", network_config="",
        )
        for i, n in enumerate(nodes, 1)
    ]  # fmt: skip
    systems = [FakeSystem(t.name, t.macs, str(n.oob_ip)) for t, n in zip(targets, nodes, strict=True)]
    doc = {
        "targets": [t.__dict__ | {"macs": list(t.macs)} for t in targets],
        "username": BMC_USER,
        "password": BMC_PASSWORD,
        "url": "http://127.0.0.1:6385",
        "workers": workers,
        "in_flight": in_flight,
    }
    got = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="kasbah-day0-ironic-") as tmp:
            t0 = time.perf_counter()
            with lab(Path(tmp), hall, systems, shards=shards) as env_:
                started = time.perf_counter() - t0
                conf = str(env_.dir / "ironic.conf")
                cpu0 = _cpu_seconds(conf)
                r = env_.run([sys.executable, "-c", PROBE_IRONIC], input=json.dumps(doc), capture_output=True)
                if r.returncode:
                    raise SystemExit(f"Ironic probe failed:\n{r.stderr[-3000:]}")
                one = json.loads(r.stdout)
                one["ironic_cpu_s"] = _cpu_seconds(conf) - cpu0
                print(
                    f"  run {run + 1}: {one['seconds']:.1f} s, {one['states']}, Ironic CPU {one['ironic_cpu_s']:.0f} s "
                    f"(lab up in {started:.0f} s)",
                    flush=True,
                )
                if one["failed"]:
                    print(f"  failures: {json.dumps(one['failed'], indent=1)}", flush=True)
                got.append(one)
    seconds = statistics.median(g["seconds"] for g in got)
    cpu = statistics.median(g["ironic_cpu_s"] for g in got)
    return {
        "hall": hall, "hall_nodes": hall_nodes, "nodes": len(targets), "workers": workers, "shards": shards,
        "seconds": seconds, "ironic_cpu_s": cpu, "states": got[-1]["states"], "ok": min(g["ok"] for g in got),
        "in_flight": in_flight,
    }  # fmt: skip


def project(cpu_per_node: float, deploy_s: float, cores: tuple[int, ...]) -> list[dict[str, object]]:
    """Phase 1 and the 500 MW campus: one conductor group per hall, halls in parallel.

    Enrolment to `available` is bound by the conductor's CPU (measured per node above: Ironic derives a key
    from the BMC password, PBKDF2-SHA512 600,000 rounds, on every Redfish connection it looks up), so the
    largest hall takes nodes x CPU-seconds per node / cores. Deployments run 250 at a time per conductor
    (Ironic's default max_concurrent_deploy), each `deploy_s` from power-on to SSH.
    """
    env = load_environment(ROOT / "environments" / "campus")
    plans = plan_campus(env.campus, env.name)
    rows = []
    for plan in (plans[0], plans[-1]):
        per_hall: dict[str, int] = {}
        for n in plan.nodes:
            per_hall[n.hall] = per_hall.get(n.hall, 0) + 1
        biggest = max(per_hall.values())
        rows.append(
            {
                "phase": plan.phase,
                "nodes": len(plan.nodes),
                "halls": len(per_hall),
                "conductors": len(per_hall),
                "largest_hall": biggest,
                "available_min": {c: biggest * cpu_per_node / c / 60 for c in cores},
                "deploy_min": math.ceil(biggest / 250) * deploy_s / 60,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hall", default="dh01")
    ap.add_argument("--workers", type=int, default=16, help="the provisioner's parallel calls to Ironic")
    ap.add_argument(
        "--in-flight", type=int, default=64, help="nodes Ironic moves at once (kasbah provision --in-flight)"
    )
    ap.add_argument("--nodes", type=int, help="only the hall's first N nodes (default: the whole hall)")
    ap.add_argument(
        "--cores", type=int, nargs="+", default=[2, 16], help="conductor cores to project for (default: 2 16)"
    )
    ap.add_argument(
        "--shards", type=int, default=8, help="sushy-tools emulator processes the hall's BMCs are spread over"
    )
    ap.add_argument("--deploy-s", type=float, default=60.0, help="one node's deployment, power-on to SSH (s)")
    ap.add_argument("--skip-ironic", action="store_true")
    ap.add_argument("--skip-render", action="store_true")
    args = ap.parse_args()
    if not args.skip_render:
        print("DHCP/DNS/node records for the campus (synthetic manifests for every rack), median of", args.runs)
        print(
            f"{'phase':<10}{'nodes':>8}{'manifests':>10}{'files':>7}{'MB':>7}{'plan s':>8}{'render s':>9}"
            f"{'(DHCP':>7}{'DNS':>6}{'nodes)':>8}{'RSS MB':>8}"
        )
        for r in bench_render(args.runs):
            print(
                f"{r['phase']:<10}{r['nodes']:>8,}{r['hardware']:>10,}{r['files']:>7}{r['mb']:>7.1f}"
                f"{r['plan_s']:>8.2f}{r['render_s']:>9.2f}{r['dhcp_s']:>7.2f}{r['dns_s']:>6.2f}"
                f"{r['node_records_s']:>8.2f}{r['rss_mb']:>8.0f}"
            )
    if not args.skip_ironic:
        print(f"Ironic: hall {args.hall} enrolled and brought to available, median of {args.runs}")
        got = bench_ironic(args.runs, args.hall, args.workers, args.shards, args.nodes, args.in_flight)
        nodes, seconds, cpu = int(got["nodes"]), float(got["seconds"]), float(got["ironic_cpu_s"])  # type: ignore[call-overload]
        print(
            f"  {got['ok']:,} of {nodes:,} nodes (the hall has {got['hall_nodes']:,}) available in {seconds:.1f} s "
            f"({nodes / seconds:.2f} nodes/s; Ironic CPU {cpu / nodes:.2f} s a node; workers {got['workers']}, "
            f"{got['in_flight']} in flight, {got['shards']} emulator processes)"
        )
        print(
            f"  the whole hall on this machine: {int(got['hall_nodes']) * seconds / nodes / 60:.1f} min"  # type: ignore[call-overload]
        )
        print("Projection (one conductor group per hall, halls in parallel; deployments 250 at a time per conductor):")
        for p in project(cpu / nodes, args.deploy_s, tuple(args.cores)):
            mins = ", ".join(f"{m:.0f} min on {c} cores" for c, m in p["available_min"].items())  # type: ignore[attr-defined]
            print(
                f"  {p['phase']}: {p['nodes']:,} nodes, {p['halls']} halls -> {p['conductors']} conductors; "
                f"largest hall {p['largest_hall']:,}: to available {mins}; "
                f"deploy {p['deploy_min']:.0f} min at {args.deploy_s:.0f} s a node"
            )


if __name__ == "__main__":
    main()
