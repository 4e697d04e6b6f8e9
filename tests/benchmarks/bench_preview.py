"""Benchmark: objects per second of `kasbah preview` (server-side dry-run) against a live API server.

The cluster is `--kubeconfig` (or `$KUBECONFIG`), or, without one, the local API server of
`tests/cluster/apiserver.py` (`make apiserver` builds it). The objects are a cluster's rendered
manifests (default: campus phase-4 `cloud-1`, the largest cluster object count at 500 MW), applied once
first so every object is checked by the server (a dry-run of an object whose namespace does not
exist yet never reaches it). Then, each `--runs` times with a fresh client (discovery included):

- `kasbah preview` at each `--concurrency` (each object: GET the live object, then a server-side
  apply with dryRun=All, then the field comparison);
- `kasbah apply` of the unchanged set (a no-op server-side apply per object);
- `kubectl apply --dry-run=server` of the same objects with its default client-side validation,
  when a kubectl is given (`--kubectl`), for the figure to beat (15-20 objects/s).

A server older than Kubernetes 1.25 gets the objects without NetworkPolicy `endPort` (it refuses
the field; see tests/cluster/test_live.py). Figures are medians; the machine and server are in the
output.

    .venv/bin/python tests/benchmarks/bench_preview.py [--runs 5] [--concurrency 1 4 16 32] [--kubectl PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the local API server lives with the tests that use it

from tests.cluster.apiserver import LocalApiServer, drop_end_ports  # noqa: E402

from kasbah.config import load_environment  # noqa: E402
from kasbah.kube.client import Kube  # noqa: E402
from kasbah.kube.sync import sync  # noqa: E402
from kasbah.planning import plan_environment  # noqa: E402
from kasbah.planning.tenancy import cluster_view  # noqa: E402
from kasbah.rendering.kubernetes import cluster_files  # noqa: E402
from kasbah.verification.schema import CRD_RULES_SINCE, custom_resource_definitions  # noqa: E402


def objects(env_dir: Path, phase: str, cluster: str) -> list[tuple[str, dict[str, Any]]]:
    env = load_environment(env_dir)
    plan = plan_environment(env, phase)[-1]
    c = next(c for c in plan.clusters if c.name == cluster)
    return [(path, o) for path, objs in cluster_files(cluster_view(plan, c)) for o in objs]


def timed_sync(kubeconfig: Path, objs: list[tuple[str, dict[str, Any]]], dry_run: bool, concurrency: int) -> float:
    kube = Kube(kubeconfig, pool_size=concurrency)
    try:
        report = sync(kube, objs, dry_run=dry_run, concurrency=concurrency)
    finally:
        kube.close()
    failed = [o for o in report.outcomes if o.failed]
    if failed:
        raise SystemExit(f"{len(failed)} objects failed, first: {failed[0].label}: {failed[0].message}")
    return report.seconds


def kubectl_dry_run(kubectl: str, kubeconfig: Path, objs: list[tuple[str, dict[str, Any]]]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "objects.yaml"
        path.write_text(yaml.safe_dump_all([o for _, o in objs], sort_keys=False))
        start = time.perf_counter()
        run = subprocess.run(
            [kubectl, "--kubeconfig", str(kubeconfig), "apply", "--dry-run=server", "-f", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"kubectl failed: {run.stderr[-500:]}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="a test cluster (default: local)")
    ap.add_argument("-e", "--environment", default=str(ROOT / "environments" / "campus"))
    ap.add_argument("--phase", default="phase-4")
    ap.add_argument("--cluster", default="cloud-1")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 32])
    ap.add_argument("--kubectl", help="a kubectl binary for the reference figure")
    args = ap.parse_args()

    objs = objects(Path(args.environment), args.phase, args.cluster)
    with ExitStack() as stack:
        if args.kubeconfig:
            kubeconfig = Path(args.kubeconfig)
        else:
            kubeconfig = stack.enter_context(LocalApiServer.start()).kubeconfig
        kube = Kube(kubeconfig)
        version = kube.version()
        kube.close()
        minor = int("".join(ch for ch in version.split(".")[1] if ch.isdigit()))
        if minor < 25:
            objs = [(p, drop_end_ports(o)) for p, o in objs]
        # a server older than 1.25 refuses CRD validation rules (as `kasbah apply --crds` knows)
        crds = [("crds", o) for o in custom_resource_definitions(with_rules=minor >= CRD_RULES_SINCE[1])]
        timed_sync(kubeconfig, crds, dry_run=False, concurrency=8)
        # the namespaces the cluster stack's Helm releases create (gpu-operator, monitoring...): the tree's
        # objects there need them
        declared = {o["metadata"]["name"] for _, o in objs if o["kind"] == "Namespace"}
        needed = sorted({str(o["metadata"]["namespace"]) for _, o in objs if o["metadata"].get("namespace")} - declared)
        platform = [
            ("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}) for ns in needed
        ]
        timed_sync(kubeconfig, platform, dry_run=False, concurrency=8)
        first = timed_sync(kubeconfig, objs, dry_run=False, concurrency=16)
        n = len(objs)
        print(
            f"{args.phase} cluster {args.cluster}: {n} objects against {version} "
            f"({'given cluster' if args.kubeconfig else 'local kube-apiserver + etcd on loopback'}), "
            f"{os.cpu_count()} cores; first apply {first:.2f} s ({n / first:,.0f} objects/s at 16)"
        )
        print(f"{'what':<44} {'median s':>9} {'objects/s':>10}   runs")
        rows: list[tuple[str, list[float]]] = []
        for c in args.concurrency:
            rows.append(
                (f"kasbah preview, {c} at a time", [timed_sync(kubeconfig, objs, True, c) for _ in range(args.runs)])
            )
        rows.append(
            (
                "kasbah apply (no change), 16 at a time",
                [timed_sync(kubeconfig, objs, False, 16) for _ in range(args.runs)],
            )
        )
        if args.kubectl:
            runs = max(1, min(args.runs, 3))
            rows.append(
                (
                    "kubectl apply --dry-run=server (validating)",
                    [kubectl_dry_run(args.kubectl, kubeconfig, objs) for _ in range(runs)],
                )
            )
        for label, times in rows:
            med = statistics.median(times)
            print(f"{label:<44} {med:>9.2f} {n / med:>10,.0f}   {', '.join(f'{t:.2f}' for t in times)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
