"""Benchmark: zero-trust reachability proof time for a cluster of N tenants x 3 namespaces.

Each namespace carries the test suite's good policy set (about 8 NetworkPolicies), each tenant a
clusterwide Cilium guardrail, plus the platform namespaces; both modes are proved. Figures are
the median of --runs runs in this process.

    .venv/bin/python tests/benchmarks/bench_reachability.py [--runs 5] [--tenants 20 40 80]

Target: 20 tenants under 2 s, cost growing with namespaces and policies, not pods (pods are
never listed: compare the ms-per-namespace column across sizes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the cluster builder lives with the tests that use it

from tests.verification.test_reachability import scaled  # noqa: E402

from kasbah.verification.reachability import verify_cluster  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tenants", type=int, nargs="+", default=[20])
    args = parser.parse_args()
    print(f"# kasbah reachability benchmark: median of {args.runs} runs, both modes\n")
    print("| tenants | namespaces | policies | verify s | ms/namespace | violations |")
    print("|---:|---:|---:|---:|---:|---:|")
    for tenants in args.tenants:
        manifests, expect = scaled(tenants)
        namespaces = sum(1 for m in manifests if m["kind"] == "Namespace")
        policies = sum(1 for m in manifests if m["kind"].endswith("NetworkPolicy"))
        times: list[float] = []
        violations = 0
        for _ in range(args.runs):
            start = time.perf_counter()
            report = verify_cluster(manifests, expect)
            times.append(time.perf_counter() - start)
            violations = len(report.violations)
        median = statistics.median(times)
        print(
            f"| {tenants} | {namespaces} | {policies} | {median:.3f} | {1000 * median / namespaces:.1f} | {violations} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
