"""`kasbah usage`: a month of tenants' use from the clusters' Prometheus, per reseller and customer.

    kasbah usage [-e ENV] [--month YYYY-MM] [--prometheus URL] [--phase P] [--out DIR] [--json]

The Prometheus URL comes from --prometheus or KASBAH_PROMETHEUS_URL; a bearer token, if the API needs one, only
from KASBAH_PROMETHEUS_TOKEN (never a command line). Without --out the whole month's markdown is printed.
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path

from kasbah.cli.common import EXIT_OK, EXIT_UNREACHABLE, UsageError, env_path, plan_phases, write_atomic
from kasbah.cli.output import err, out, print_json
from kasbah.config import load_environment
from kasbah.runners import usage

DEFAULT_PROMETHEUS = "http://127.0.0.1:9090"


def last_month(today: datetime.date | None = None) -> str:
    first = (today or datetime.datetime.now(datetime.UTC).date()).replace(day=1)
    prev = first - datetime.timedelta(days=1)
    return f"{prev.year:04d}-{prev.month:02d}"


def add_parser(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    env: argparse.ArgumentParser,
    json_parent: argparse.ArgumentParser,
) -> None:
    p = sub.add_parser(
        "usage",
        help="a month of each tenant's GPU use from Prometheus, per reseller and customer (CSV and markdown)",
        parents=[env, json_parent],
    )
    p.add_argument("--month", help="the month, YYYY-MM (default: last month, UTC)")
    p.add_argument(
        "--prometheus",
        action="append",
        help=f"Prometheus's base URL (default: $KASBAH_PROMETHEUS_URL or {DEFAULT_PROMETHEUS}): the store where the "
        "clusters' recorded series meet, or once per cluster's own Prometheus; a bearer token only from "
        "$KASBAH_PROMETHEUS_TOKEN",
    )
    p.add_argument("--phase", help="the phase whose tenants (resellers, names) to report (default: the last)")
    p.add_argument("--out", help="write usage-<month>.csv/.md and one pair per reseller into this directory")
    p.set_defaults(func=cmd_usage)


def cmd_usage(args: argparse.Namespace) -> int:
    month = args.month or last_month()
    try:
        usage.month_range(month)
        token = os.environ.get("KASBAH_PROMETHEUS_TOKEN") or None
        urls = args.prometheus or [os.environ.get("KASBAH_PROMETHEUS_URL") or DEFAULT_PROMETHEUS]
        clients = [usage.Prometheus(url, token) for url in urls]
    except usage.UsageError as exc:
        raise UsageError(str(exc)) from None
    env = load_environment(env_path(args.environment))
    plan = plan_phases(env, args.phase)[-1]
    try:
        rows = usage.usage(clients, month, plan.tenants, plan.tenancy)
    except usage.UnreachableError as exc:
        err.print(f"kasbah: {exc}", markup=False)
        return EXIT_UNREACHABLE
    except usage.UsageError as exc:
        raise UsageError(str(exc)) from None
    files = usage.reports(rows, month, plan.site)
    if args.out:
        target = Path(args.out)
        for name, text in files.items():
            write_atomic(target / name, text)
    if args.json:
        print_json(
            {
                "month": month,
                "site": plan.site,
                "rows": [usage.as_dict(r) for r in rows],
                "files": sorted(str(Path(args.out) / n) for n in files) if args.out else [],
            }
        )
    elif args.out:
        out.print(f"wrote {len(files)} file(s) to {args.out}: " + ", ".join(sorted(files)), markup=False)
    else:
        out.print(files[f"usage-{month}.md"], markup=False, soft_wrap=True)
    return EXIT_OK
