"""Benchmark: the identity proof for one cluster of N tenants and I issuers.

The tiny environment's lab-1 Plan, widened: N tenants on its cluster, I issuers (the admin zone's and
I-1 shared by the tenants in turn; the first tenant of each is a reseller, the others its customers,
a fifth of the issuers a customer's own, so resellers' read-only reach is judged too). The
authentication configuration and RBAC are rendered by kasbah's own renderers, then proved
(verification/identity.py). Figures are medians of --runs runs in this process.

    .venv/bin/python tests/benchmarks/bench_identity.py [--runs 5] [--tenants 20 200] [--issuers 20]

The proof grows with tenants, issuers and bindings (two or three per tenant), never with users or pods:
an issuer's identities are reduced to the prefixes of its claim mappings. Target: a few seconds at
200 tenants and 20 issuers.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import TINY, planned  # noqa: E402

from kasbah.planning.identity import cluster_issuers  # noqa: E402
from kasbah.planning.model import Issuer, Plan, Tenant  # noqa: E402
from kasbah.planning.tenancy import cluster_view  # noqa: E402
from kasbah.rendering.authentication import authentication_config  # noqa: E402
from kasbah.rendering.kubernetes.rbac import rbac  # noqa: E402
from kasbah.verification.identity import check_identity  # noqa: E402


def widened(tenants: int, issuers: int) -> Plan:
    """lab-1 with `tenants` tenants and `issuers` issuers: the admin's, a fifth of the rest each one customer's own,
    the others shared by the remaining tenants in turn (the first of each a reseller, the others its customers)."""
    base = planned(TINY)[0]
    own = max(1, (issuers - 1) // 5)
    shared = max(issuers - 1 - own, 1)
    members: list[list[str]] = [[] for _ in range(shared)]
    records = []
    singles: list[Issuer] = []
    for n in range(tenants):
        name = f"t{n:03d}"
        g = n % shared
        reseller = members[g][0] if members[g] else None
        if reseller is not None and len(singles) < own:
            issuer = f"own-{name}"
            singles.append(
                Issuer(issuer, f"https://id.{name}.example", "ma", ("kasbah",), "sub", "groups", None, (name,), False)
            )
        else:
            issuer = f"shared-{g:02d}"
            members[g].append(name)
        kind = "enterprise" if reseller else "reseller"
        records.append(Tenant(name, name, kind, reseller, ("ma",), 0, (), 0, base.phase, (), issuer))
    admin = next(i for i in base.issuers if i.admin)
    trusted = [admin] + [
        Issuer(
            f"shared-{g:02d}", f"https://id{g}.example", "ma", ("kasbah",), "sub", "groups", "tenant", tuple(m), False
        )
        for g, m in enumerate(members)
    ]
    cluster = dataclasses.replace(base.clusters[0], tenants=tuple(t.name for t in records))
    return dataclasses.replace(base, tenants=tuple(records), issuers=tuple(trusted + singles), clusters=(cluster,))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tenants", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--issuers", type=int, default=20, help="issuers in all, the admin zone's included")
    args = parser.parse_args()
    print(f"# kasbah identity proof benchmark: median of {args.runs} runs, one cluster\n")
    print("| tenants | issuers | bindings | render s | prove s | ms/tenant | violations |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for tenants in args.tenants:
        plan = widened(tenants, args.issuers)
        cluster = plan.clusters[0]
        renders, proofs = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            files = {
                f"bootstrap/{cluster.name}/authentication.yaml": authentication_config(cluster_issuers(plan, cluster))
            }
            objs = rbac(cluster_view(plan, cluster))
            objs = [o for o in yaml.safe_load_all(yaml.safe_dump_all(objs)) if o]  # as the verifier reads the tree
            t1 = time.perf_counter()
            report = check_identity(files, plan, cluster, objs)
            t2 = time.perf_counter()
            renders.append(t1 - t0)
            proofs.append(t2 - t1)
        bindings = sum(1 for o in objs if o["kind"].endswith("Binding"))
        prove = statistics.median(proofs)
        print(
            f"| {tenants} | {len(report.issuers)} | {bindings} | {statistics.median(renders):.2f} | {prove:.2f} | "
            f"{prove / tenants * 1000:.1f} | {len(report.violations)} |"
        )
        if report.violations:
            for v in report.violations[:5]:
                print(f"  {v.property}: {v.message}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
