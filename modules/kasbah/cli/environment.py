"""The commands on an environment and its phases: validate, plan, diff, render and verify.

Each reads the environment's description (`-e`), plans its phases and prints a result for people
or, with `--json`, for a machine: `validate` checks every phase and their stability, `plan` one
phase's figures, `diff` what a later phase (or plan file) adds or breaks, `render` writes a phase's
tree, `verify` proves a rendered tree (or a phase rendered in memory) safe to apply.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kasbah.cli.common import (
    EXIT_OK,
    EXIT_UNSTABLE,
    UsageError,
    default_out,
    emit,
    env_path,
    plan_phases,
    progress,
    resolve_target,
)
from kasbah.cli.output import out, print_json, print_violations, show_diff, show_plan, show_verification
from kasbah.config import load_environment
from kasbah.config.files import InputFileError, read_regular
from kasbah.config.loader import Environment
from kasbah.planning import diff_plans, plan_to_dict
from kasbah.planning.export import PLAN_FORMAT, READABLE_FORMATS, SECTIONS, to_json
from kasbah.rendering.phase import render_plans
from kasbah.rendering.provisioning import previous_files
from kasbah.rendering.tree import MARKER, write_tree
from kasbah.verification.verify import Finding, Verification, verify_files

MAX_PLAN_BYTES = 512 * 1024 * 1024  # the 500 MW campus's plan is about 23 MB of compact JSON
PLAN_KEYS = ("format", "phase", "summary", *(s for s in SECTIONS if s != "upgrades"))  # upgrades: format 4


def cmd_validate(args: argparse.Namespace) -> int:
    env = load_environment(env_path(args.environment))
    plans = plan_phases(env, None)
    last = plans[-1]
    for prev, cur in itertools.pairwise(plans):
        d = diff_plans(plan_to_dict(prev), plan_to_dict(cur), (prev, cur))
        if not d.stable:
            if args.json:
                print_json(
                    {"ok": False, "environment": str(env.root), "unstable": [prev.phase, cur.phase], **d.as_dict()}
                )
            print_violations(d)
            return EXIT_UNSTABLE
    if args.json:
        print_json(
            {
                "ok": True,
                "environment": str(env.root),
                "phases": [
                    {
                        "phase": p.phase,
                        "nodes": len(p.nodes),
                        "gpus": p.gpus,
                        "facility_load_kw": p.power.facility_load_kw,
                        "supply_kw": p.power.supply_kw,
                    }
                    for p in plans
                ],
            }
        )
        return EXIT_OK
    out.print(
        f"[green]ok[/]: {env.root} — {len(plans)} phase(s) valid and stable; "
        f"{last.phase}: {len(last.nodes):,} nodes, {last.gpus:,} GPUs, "
        f"{last.power.facility_load_kw / 1000:,.2f} MW facility of {last.power.supply_kw / 1000:,.0f} MW supply"
    )
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    env = load_environment(env_path(args.environment))
    phase = args.phase or env.campus.phases[0].name
    plan = plan_phases(env, phase)[-1]
    if args.json or args.output:
        emit(to_json(plan_to_dict(plan), compact=args.compact), args.output, f"the plan of {phase}")
        return EXIT_OK
    show_plan(plan, len(env.campus.phases))
    return EXIT_OK


def _load_side(env_arg: str | None, ref: str, cache: dict[str, object]) -> dict[str, Any]:
    path = Path(ref)
    if ref.endswith(".json") or path.is_file():
        try:
            data: dict[str, Any] = json.loads(read_regular(path, MAX_PLAN_BYTES, "plan file").decode("utf-8"))
        except FileNotFoundError:
            raise UsageError(f"{ref}: no such plan file (write one with `kasbah plan PHASE --output {ref}`)") from None
        except InputFileError as exc:
            raise UsageError(f"{ref}: {exc.problem}; {exc.fix}") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"{ref}:{exc.lineno}: not a plan JSON file: {exc.msg}") from None
        except (UnicodeDecodeError, RecursionError, ValueError) as exc:  # nesting or numbers no plan has
            raise UsageError(f"{ref}: not a plan JSON file: {exc}") from None
        missing = [k for k in PLAN_KEYS if not isinstance(data, dict) or k not in data]
        if missing:
            raise UsageError(
                f"{ref}: not a kasbah plan (no {', '.join(missing)}); write one with `kasbah plan PHASE --output FILE`"
            )
        if data["format"] not in READABLE_FORMATS:
            raise UsageError(
                f"{ref}: plan format {data['format']}, this kasbah reads formats "
                f"{', '.join(map(str, READABLE_FORMATS))} (writes {PLAN_FORMAT}); plan it again with this version"
            )
        return data
    if "env" not in cache:
        cache["env"] = load_environment(env_path(env_arg))
    env = cache["env"]
    assert isinstance(env, Environment)
    try:
        env.campus.target(ref)
    except KeyError as exc:
        raise UsageError(f"{exc.args[0]}; or give a plan file ending in .json") from None
    # a phase (with its tenancy changes), `<phase>@built`, or a tenancy change: the plan right after it
    return plan_to_dict(plan_phases(env, ref)[-1])


def cmd_diff(args: argparse.Namespace) -> int:
    cache: dict[str, object] = {}
    old = _load_side(args.environment, args.old, cache)
    new = _load_side(args.environment, args.new, cache)
    files = [ref for ref in (args.old, args.new) if ref.endswith(".json") or Path(ref).is_file()]
    try:
        d = diff_plans(old, new)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        if not files:
            raise  # both sides planned here: a bug, reported as one
        # a plan file with the right keys and the wrong shapes inside: edited, truncated or not kasbah's
        raise UsageError(
            f"{' or '.join(files)}: not a well-formed kasbah plan ({type(exc).__name__}: {exc}); "
            "write plan files with `kasbah plan PHASE --output FILE` and compare them unedited"
        ) from None
    if args.json:
        sys.stdout.write(to_json(d.as_dict()))
    else:
        show_diff(d)
    return EXIT_OK if d.stable else EXIT_UNSTABLE


def cmd_render(args: argparse.Namespace) -> int:
    env = load_environment(env_path(args.environment))
    phase = args.phase or env.campus.phases[0].name
    plans = plan_phases(env, phase)
    target = Path(args.out) if args.out else default_out(env, phase)
    # zone serials move only when a zone changes: they continue from the tree being replaced
    previous = previous_files(target) if (target / MARKER).is_file() else None
    with progress(f"rendering {phase}") as tick:
        rendered = render_plans(plans, env.name, tick, previous)
    write_tree(target, rendered.files)
    tops: dict[str, int] = {}
    for path in rendered.files:
        top = path.split("/", 1)[0]
        tops[top] = tops.get(top, 0) + 1
    if args.json:
        print_json(
            {
                "environment": env.name,
                "phase": phase,
                "out": str(target),
                "files": len(rendered.files),
                "bytes": rendered.bytes,
                "by_directory": tops,
            }
        )
        return EXIT_OK
    out.print(
        f"[green]rendered[/] {env.name}/{phase} into {target}: {len(rendered.files):,} files, "
        f"{rendered.bytes / 1e6:,.1f} MB ({', '.join(f'{k} {v:,}' for k, v in tops.items())})"
    )
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    env = load_environment(env_path(args.environment))
    t = resolve_target(env, args.target)
    with progress(f"verifying {t.phase}") as tick:
        result = verify_files(t.files, t.plans[-1], t.marker, tick)
    if t.stale:
        result.findings.insert(0, Finding("tree", t.label, t.stale))
    if args.json:
        print_json(_verification_dict(result, t.label, args.matrix))
    else:
        show_verification(result, t.label, args.matrix)
    return EXIT_OK if result.ok else EXIT_UNSTABLE


def _verification_dict(result: Verification, label: str, matrix: bool) -> dict[str, Any]:
    """What `kasbah verify --json` prints: the verdict, every finding, each cluster's figures."""
    clusters = []
    for c in result.clusters:
        entry: dict[str, Any] = {
            "name": c.name,
            "kubernetes_version": c.kubernetes_version,
            "files": c.files,
            "objects": c.objects,
            "schema_issues": len(c.schema_issues),
        }
        if c.reachability is not None:
            report = c.reachability
            entry["proven"] = {mode: report.ok(mode) for mode in report.matrix}
            entry["violations"] = [
                {"mode": v.mode, "property": v.property, "message": v.message, "policy": v.policy, "flow": v.flow}
                for v in report.violations
            ]
            if matrix:
                entry["matrix"] = {
                    mode: {"rows": list(m.rows), "columns": list(m.columns), "cells": [list(r) for r in m.cells]}
                    for mode, m in report.matrix.items()
                }
        if c.identity is not None:
            entry["identity"] = {
                "proven": not c.identity.violations,
                "issuers": [r.as_dict() for r in c.identity.issuers],
                "violations": [{"property": v.property, "message": v.message} for v in c.identity.violations],
            }
        clusters.append(entry)
    return {
        "target": label,
        "phase": result.phase,
        "ok": result.ok,
        "findings": [{"check": f.check, "where": f.where, "message": f.message} for f in result.findings],
        "clusters": clusters,
        "residency": None
        if result.residency is None
        else {
            "proven": not result.residency.findings,
            "endpoints": [asdict(r) for r in result.residency.rows],
        },
        "notes": list(result.notes),
    }
