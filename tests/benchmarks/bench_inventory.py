"""Benchmark: which inventory format `ansible-inventory --list` loads fastest, for one slice and the whole phase.

Writes the same sliced inventory (kasbah.rendering.inventory's slices and groups) in several
standard layouts, checks each one loads to the same groups and host variables as the JSON slices,
and times `ansible-inventory -i <source> --list` (wall time and the child's peak RSS, median of
--runs runs) on the first slice and on the whole directory:

* `json`: the shipped layout, one JSON document a slice (read by the `yaml` plugin).
* `yaml`: the same documents as YAML (the `auto` plugin parses each one first, then `yaml`).
* `ini`: the same groups and variables in INI (values as Python literals).
* `json+group_vars`: hosts and groups in JSON, group variables in `group_vars/<group>.json` files.
* `json-flat`: JSON with every variable repeated on every host (no group-level variables).

    .venv/bin/python tests/benchmarks/bench_inventory.py [--runs 3] [--env environments/campus]
        [--phase phase-4] [--max-hosts 2000] [--formats json,yaml,...] [--whole/--no-whole]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from kasbah.config.loader import load_environment
from kasbah.planning.model import Plan
from kasbah.planning.planner import plan_campus
from kasbah.rendering.inventory import DEFAULT_MAX_HOSTS, slice_inventories

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_INVENTORY = Path(sys.executable).with_name("ansible-inventory")
Doc = dict[str, Any]
Writer = Callable[[Path, list[tuple[str, Doc]]], None]


def _json(path: Path, doc: object) -> None:
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")


def write_json(d: Path, docs: list[tuple[str, Doc]]) -> None:
    for name, doc in docs:
        _json(d / f"{name}.json", doc)


def write_yaml(d: Path, docs: list[tuple[str, Doc]]) -> None:
    for name, doc in docs:
        (d / f"{name}.yml").write_text(yaml.dump(doc, Dumper=yaml.CSafeDumper, sort_keys=False))


def write_ini(d: Path, docs: list[tuple[str, Doc]]) -> None:
    for name, doc in docs:
        lines: list[str] = []
        top = doc["all"]
        lines.append("[all:vars]")
        lines += [f"{k}={v!r}" for k, v in top.get("vars", {}).items()]
        for group, body in top["children"].items():
            if body.get("hosts"):
                lines.append(f"[{group}]")
                for host, hv in body["hosts"].items():
                    pairs = " ".join(f"{k}={shlex.quote(repr(v))}" for k, v in (hv or {}).items())
                    lines.append(f"{host} {pairs}".rstrip())
            if body.get("children"):
                lines.append(f"[{group}:children]")
                lines += list(body["children"])
            if body.get("vars"):
                lines.append(f"[{group}:vars]")
                lines += [f"{k}={v!r}" for k, v in body["vars"].items()]
        (d / f"{name}.ini").write_text("\n".join(lines) + "\n")


def write_group_vars(d: Path, docs: list[tuple[str, Doc]]) -> None:
    gv = d / "group_vars"
    gv.mkdir()
    for name, doc in docs:
        top = doc["all"]
        _json(gv / "all.json", top.get("vars", {}))
        stripped = {group: {k: v for k, v in body.items() if k != "vars"} for group, body in top["children"].items()}
        for group, body in top["children"].items():
            if body.get("vars"):
                _json(gv / f"{group}.json", body["vars"])
        _json(d / f"{name}.json", {"all": {"children": stripped}})


def write_flat(d: Path, docs: list[tuple[str, Doc]]) -> None:
    for name, doc in docs:
        top = doc["all"]
        groups = top["children"]
        # pool vars reach hosts through pool > su > rack; resolve them onto every host
        rack_pool: dict[str, Doc] = {}
        for group, body in groups.items():
            if group.startswith("pool_"):
                for su in body.get("children", {}):
                    for rack in groups[su].get("children", {}):
                        rack_pool[rack] = body.get("vars", {})
        flat: Doc = {}
        for group, body in groups.items():
            body = dict(body)
            if group.startswith("pool_"):
                body.pop("vars", None)
            if "hosts" in body:
                rv = body.pop("vars", {})
                pv = rack_pool.get(group, {})
                body["hosts"] = {h: {**pv, **rv, **(hv or {})} for h, hv in body["hosts"].items()}
            flat[group] = body
        _json(d / f"{name}.json", {"all": {"vars": top.get("vars", {}), "children": flat}})


FORMATS: dict[str, tuple[Writer, str]] = {
    "json": (write_json, ".json"),
    "yaml": (write_yaml, ".yml"),
    "ini": (write_ini, ".ini"),
    "json+group_vars": (write_group_vars, ".json"),
    "json-flat": (write_flat, ".json"),
}


# Started from a small interpreter, so the child's peak RSS is its own: a child forked from this
# process would inherit (and report) the RSS of the plan held here.
LAUNCHER = r"""
import json, os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=sys.stdout, stderr=subprocess.PIPE)
_, status, usage = os.wait4(proc.pid, 0)
seconds = time.perf_counter() - t0
err = proc.stderr.read().decode()
code = os.waitstatus_to_exitcode(status)
sys.stderr.write(json.dumps({"seconds": seconds, "rss_mb": usage.ru_maxrss / 1024, "code": code, "stderr": err}))
"""


def run(source: Path) -> tuple[float, float, bytes]:
    """One `ansible-inventory -i source --list`: wall seconds, its peak RSS in MB, its output."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(ANSIBLE_INVENTORY), "-i", str(source), "--list"],
        capture_output=True,
        check=True,
        env={**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "ANSIBLE_NOCOLOR": "1"},
    )
    report = json.loads(done.stderr)
    if report["code"]:
        raise SystemExit(f"ansible-inventory -i {source} failed:\n{report['stderr']}")
    return report["seconds"], report["rss_mb"], done.stdout


def summary(listing: bytes) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Groups (hosts and children, sorted) and host variables of an `ansible-inventory --list` output."""
    data = json.loads(listing)
    meta = data.pop("_meta", {})
    # `all` is left out: INI makes only parentless groups children of `all`, the yaml plugin every listed group
    groups = {
        g: sorted(body.get("hosts", [])) + sorted(body.get("children", [])) for g, body in data.items() if g != "all"
    }
    return groups, meta.get("hostvars", {})


def plan_of(env: Path, phase: str) -> Plan:
    e = load_environment(env)
    return plan_campus(e.campus, e.name, upto=phase)[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--env", type=Path, default=ROOT / "environments" / "campus")
    ap.add_argument("--phase", default="phase-4")
    ap.add_argument("--max-hosts", type=int, default=DEFAULT_MAX_HOSTS)
    ap.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, of {', '.join(FORMATS)}")
    ap.add_argument(
        "--whole", action=argparse.BooleanOptionalAction, default=True, help="also load the whole directory"
    )
    args = ap.parse_args(argv)

    plan = plan_of(args.env, args.phase)
    docs = [(part.name, doc) for part, doc in slice_inventories(plan, args.max_hosts)]
    print(f"{args.env.name} {args.phase}: {len(plan.nodes)} hosts, {len(docs)} slices of at most {args.max_hosts}")
    header = f"{'format':<17}{'hosts':>7}{'slices':>7}{'MB':>7}{'slice s':>9}{'slice MB':>10}{'whole s':>9}{'whole MB':>10}  same"
    print(header)
    print("-" * len(header))
    reference: tuple[dict[str, list[str]], dict[str, Any]] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        for fmt in args.formats.split(","):
            writer, ext = FORMATS[fmt]
            d = Path(tmp) / fmt
            d.mkdir()
            writer(d, docs)
            size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / 1e6
            first = d / f"{docs[0][0]}{ext}"
            one = [run(first) for _ in range(args.runs)]
            got = summary(one[0][2])
            if reference is None:
                reference = got
            same = "yes" if got == reference else "NO"
            whole = [run(d) for _ in range(args.runs)] if args.whole else []
            cells = [
                statistics.median(r[0] for r in one),
                statistics.median(r[1] for r in one),
            ]
            if whole:
                cells += [statistics.median(r[0] for r in whole), statistics.median(r[1] for r in whole)]
            w = f"{cells[2]:>9.2f}{cells[3]:>10.0f}" if whole else f"{'-':>9}{'-':>10}"
            print(
                f"{fmt:<17}{len(plan.nodes):>7}{len(docs):>7}{size:>7.1f}{cells[0]:>9.2f}{cells[1]:>10.0f}{w}  {same}"
            )
            shutil.rmtree(d)
    print(f"(median of {args.runs}; MB: peak RSS of ansible-inventory; 'same': one slice loads as the json slice does)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
