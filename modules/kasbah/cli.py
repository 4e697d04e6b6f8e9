"""The `kasbah` command: validate an environment, plan a phase, diff two phases."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kasbah import __version__
from kasbah.config import ConfigError, Environment, load_environment
from kasbah.config.files import InputFileError, read_regular
from kasbah.planning import diff_plans, plan_environment, plan_to_dict
from kasbah.planning.diff import PlanDiff
from kasbah.planning.export import PLAN_FORMAT, READABLE_FORMATS, SECTIONS, to_json
from kasbah.planning.model import Plan
from kasbah.planning.platform import BOOTSTRAP, GITOPS
from kasbah.rendering.phase import render_plans
from kasbah.rendering.provisioning import previous_files
from kasbah.rendering.tree import MARKER, RenderError, plan_digest, read_marker, write_tree
from kasbah.runners.ansible import PLAYBOOKS
from kasbah.verification.reachability import format_matrix
from kasbah.verification.verify import Finding, Verification, cluster_manifests, read_tree, verify_files

EXIT_OK = 0
EXIT_UNSTABLE = 1
EXIT_INVALID = 2
EXIT_INTERNAL = 3
EXIT_UNREACHABLE = 4
MAX_PLAN_BYTES = 512 * 1024 * 1024  # the 500 MW campus's plan is about 23 MB of compact JSON
PLAN_KEYS = ("format", "phase", "summary", *(s for s in SECTIONS if s != "upgrades"))  # upgrades: format 4
DEFAULT_ENV = "environments/campus"

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
for _console in (out, err):
    if not _console.is_terminal and "COLUMNS" not in os.environ:
        _console.width = 200  # piped or logged: keep table rows and messages on one line


class UsageError(Exception):
    """Bad command-line input: printed as is, exit 2."""


def _env_path(arg: str | None) -> Path:
    return Path(arg or os.environ.get("KASBAH_ENV") or DEFAULT_ENV)


@contextmanager
def _progress(what: str) -> Iterator[Any]:
    """A spinner on stderr while planning; silent when stderr is not a terminal."""
    if err.is_terminal:
        with err.status(what) as status:
            yield lambda phase: status.update(f"{what}: {phase}")
    else:
        yield lambda phase: None


def _plans(env: Environment, upto: str | None) -> list[Plan]:
    if upto is not None:
        try:
            env.campus.phase_index(upto)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    with _progress(f"planning {env.name}") as tick:
        return plan_environment(env, upto, tick)


def write_atomic(path: Path, text: str) -> None:
    """Write next to the target and rename over it: a failure never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes it 0600; the result is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _emit(text: str, output: str | None, what: str) -> None:
    """To the file given (atomically, saying so on stderr), or to stdout."""
    if output:
        write_atomic(Path(output), text)
        err.print(f"wrote {what} to {output}")
    else:
        sys.stdout.write(text)


def _pick_cluster(plan: Plan, cluster: str | None, label: str) -> str:
    """The cluster asked for, or the phase's only one."""
    names = [c.name for c in plan.clusters]
    if cluster is None:
        if len(names) != 1:
            raise UsageError(f"{label} has {len(names)} clusters ({', '.join(names)}); fix: pick one with --cluster")
        return names[0]
    if cluster not in names:
        raise UsageError(f"{label} has no cluster `{cluster}`; it has: {', '.join(names) or 'none'}")
    return cluster


# --------------------------------------------------------------------------- commands


# Optional parts of kasbah: the import a command needs, the extra that installs it
EXTRAS = {"ansible_runner": "ansible", "kubernetes": "cluster", "pulumi": "pulumi"}


def _requires(module: str, command: str) -> None:
    """Refuse, naming the extra to install, a command whose optional dependency is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        extra = EXTRAS[module]
        raise UsageError(
            f"`kasbah {command}` needs the `{extra}` extra, which is not installed; "
            f"fix: pip install 'kasbah[{extra}]' (or 'kasbah[all]')"
        )


def cmd_validate(args: argparse.Namespace) -> int:
    env = load_environment(_env_path(args.environment))
    plans = _plans(env, None)
    last = plans[-1]
    for prev, cur in itertools.pairwise(plans):
        d = diff_plans(plan_to_dict(prev), plan_to_dict(cur), (prev, cur))
        if not d.stable:
            if args.json:
                _print_json(
                    {"ok": False, "environment": str(env.root), "unstable": [prev.phase, cur.phase], **d.as_dict()}
                )
            _print_violations(d)
            return EXIT_UNSTABLE
    if args.json:
        _print_json(
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
    env = load_environment(_env_path(args.environment))
    phase = args.phase or env.campus.phases[0].name
    plan = _plans(env, phase)[-1]
    if args.json or args.output:
        _emit(to_json(plan_to_dict(plan), compact=args.compact), args.output, f"the plan of {phase}")
        return EXIT_OK
    show_plan(plan, len(env.campus.phases))
    return EXIT_OK


def _load_side(env_arg: str | None, ref: str, cache: dict[str, list[Plan]]) -> dict[str, Any]:
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
    if "plans" not in cache:
        env = load_environment(_env_path(env_arg))
        cache["plans"] = _plans(env, None)
    for plan in cache["plans"]:
        if plan.phase == ref:
            return plan_to_dict(plan)
    known = ", ".join(p.phase for p in cache["plans"])
    raise UsageError(f"no phase `{ref}` (phases: {known}); or give a plan file ending in .json")


def cmd_diff(args: argparse.Namespace) -> int:
    cache: dict[str, list[Plan]] = {}
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


def _default_out(env: Environment, phase: str) -> Path:
    return Path("rendered") / env.name / phase


def cmd_render(args: argparse.Namespace) -> int:
    env = load_environment(_env_path(args.environment))
    phase = args.phase or env.campus.phases[0].name
    plans = _plans(env, phase)
    target = Path(args.out) if args.out else _default_out(env, phase)
    # zone serials move only when a zone changes: they continue from the tree being replaced
    previous = previous_files(target) if (target / MARKER).is_file() else None
    with _progress(f"rendering {phase}") as tick:
        rendered = render_plans(plans, env.name, tick, previous)
    write_tree(target, rendered.files)
    tops: dict[str, int] = {}
    for path in rendered.files:
        top = path.split("/", 1)[0]
        tops[top] = tops.get(top, 0) + 1
    if args.json:
        _print_json(
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


@dataclass
class _Target:
    """What verify, preview and apply work on: a rendered tree on disk, or a phase rendered in memory."""

    files: dict[str, bytes]
    plans: list[Plan]
    label: str
    marker: dict[str, Any] | None
    stale: str | None  # why the tree does not match the environment's plan now

    @property
    def phase(self) -> str:
        return self.plans[-1].phase


def _tree_plans(env: Environment, tree: Path) -> tuple[dict[str, Any], list[Plan], bool]:
    """A rendered tree's marker, the environment's plans up to its phase, and whether the tree is of that plan."""
    marker = read_marker(tree)
    phase = str(marker.get("phase"))
    if phase not in {p.name for p in env.campus.phases}:
        raise UsageError(
            f"{tree} was rendered for phase `{phase}` of `{marker.get('environment')}`, which {env.root} does not have; "
            "fix: pass the environment it came from with -e"
        )
    plans = _plans(env, phase)
    return marker, plans, marker.get("plan_sha256") == plan_digest(plans[-1])


def _target(env: Environment, arg: str | None) -> _Target:
    target = Path(arg) if arg else None
    if arg is not None and target is not None and (target.is_dir() or os.sep in arg):
        if not target.is_dir():
            raise UsageError(f"{target}: no such directory; give a rendered tree or a phase name")
        marker, plans, fresh = _tree_plans(env, target)
        phase = plans[-1].phase
        stale = None
        if not fresh:
            stale = (
                f"rendered from a different plan than {env.root} gives for {phase} now; render it again "
                f"(`kasbah render {phase} -e {env.root} --out {target}`) or use the environment it came from"
            )
        return _Target(read_tree(target), plans, str(target), marker, stale)
    phase = arg or env.campus.phases[0].name
    plans = _plans(env, phase)
    with _progress(f"rendering {phase}") as tick:
        rendered = render_plans(plans, env.name, tick)
    return _Target(dict(rendered.files), plans, f"{env.name}/{phase} (rendered in memory)", None, None)


def cmd_verify(args: argparse.Namespace) -> int:
    env = load_environment(_env_path(args.environment))
    t = _target(env, args.target)
    with _progress(f"verifying {t.phase}") as tick:
        result = verify_files(t.files, t.plans[-1], t.marker, tick)
    if t.stale:
        result.findings.insert(0, Finding("tree", t.label, t.stale))
    if args.json:
        _print_json(_verification_dict(result, t.label, args.matrix))
    else:
        show_verification(result, t.label, args.matrix)
    return EXIT_OK if result.ok else EXIT_UNSTABLE


def _print_json(data: Any) -> None:
    sys.stdout.write(to_json(data))


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
        clusters.append(entry)
    return {
        "target": label,
        "phase": result.phase,
        "ok": result.ok,
        "findings": [{"check": f.check, "where": f.where, "message": f.message} for f in result.findings],
        "clusters": clusters,
        "notes": list(result.notes),
    }


def _cluster_objects(
    t: _Target, cluster: str | None, owner: str = GITOPS
) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The objects one owner applies to a cluster, exactly as `kasbah verify` reads them."""
    cluster = _pick_cluster(t.plans[-1], cluster, t.label)
    findings: list[Finding] = []
    objs = list(cluster_manifests(t.files, cluster, findings, owner))
    if findings:
        raise UsageError(
            f"{t.label}: the tree of cluster {cluster} is broken; fix it or render again:\n"
            + "\n".join(f"  {f.where}: {f.message}" for f in findings)
        )
    return cluster, objs


# `kasbah apply`'s roles (DESIGN.md, "One owner per object"): which part of the tree it applies and
# under which field manager. Bootstrap: what the cluster stack owns, for a site or a test cluster
# without Pulumi. Break-glass: the GitOps tree, as the controller would apply it, when the
# controller cannot (it is down, or its sync is what broke); under the controller's own field
# manager, so the controller takes its objects back unchanged instead of fighting a second owner.
BOOTSTRAP_FIELD_MANAGER = "kasbah-bootstrap"


def _role(args: argparse.Namespace, dry_run: bool, plan: Plan) -> tuple[str, str]:
    """(owner, field manager) of a preview or apply."""
    if args.bootstrap and args.break_glass:
        raise UsageError("--bootstrap and --break-glass: give one role")
    if not dry_run and not (args.bootstrap or args.break_glass or args.crds_only):
        raise UsageError(
            "say which role this apply plays: --bootstrap (the cluster's platform part: namespaces, the GitOps "
            "controller's policies and sync object; what the cluster stack applies) or --break-glass (the GitOps "
            "tree, under the controller's field manager, when the controller cannot sync)"
        )
    owner = BOOTSTRAP if args.bootstrap else GITOPS
    if args.field_manager is not None:
        return owner, args.field_manager
    if owner == BOOTSTRAP:
        return owner, BOOTSTRAP_FIELD_MANAGER
    if plan.gitops is None:
        raise UsageError("the Plan names no GitOps controller; render the phase again")
    return owner, plan.gitops.field_manager


def _sync(args: argparse.Namespace, dry_run: bool) -> int:
    _requires("kubernetes", "preview" if dry_run else "apply")
    from kasbah.kube import client, sync
    from kasbah.verification.schema import CRD_RULES_SINCE, custom_resource_definitions

    if args.concurrency < 1:
        raise UsageError(f"--concurrency {args.concurrency}: give 1 or more")
    if not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout}: give the seconds a request may take, more than 0")
    if args.field_manager is not None and not (0 < len(args.field_manager) <= 128 and args.field_manager.isprintable()):
        # the API server's rule for server-side apply managers
        raise UsageError(f"--field-manager {args.field_manager!r}: give a name of 1 to 128 printable characters")
    env = load_environment(_env_path(args.environment))
    t = _target(env, args.target)
    if t.stale and not dry_run:
        raise UsageError(f"{t.label} was {t.stale}")
    if t.stale:
        err.print(f"[yellow]warning[/]: {t.label} was {escape(t.stale)}")
    owner, field_manager = _role(args, dry_run, t.plans[-1])
    cluster, objs = _cluster_objects(t, args.cluster, owner)
    if not dry_run and not args.crds_only:
        _safe_to_apply(t, args.unsafe)
    try:
        kube = client.Kube(Path(args.kubeconfig), args.context, args.concurrency, args.timeout)
    except client.KubeconfigError as exc:
        raise UsageError(str(exc)) from None
    crds: list[tuple[str, dict[str, Any]]] = []
    if args.crds or args.crds_only:
        try:
            server = kube.version()
        except client.UnreachableError as exc:
            kube.close()
            err.print(f"kasbah: {escape(str(exc))}")
            return EXIT_UNREACHABLE
        rules = _version_skew(server, ".".join(map(str, CRD_RULES_SINCE))) is None
        if not rules:
            err.print(
                f"[yellow]note[/]: the cluster runs Kubernetes {server}, which does not know CRD validation rules "
                "(CEL, 1.25 and later): the vendored CRDs are installed without them; `kasbah verify` still checks them"
            )
        crds = [("(kasbah's vendored CRDs)", o) for o in custom_resource_definitions(with_rules=rules)]
    objs = crds if args.crds_only else crds + objs
    verb = "previewing" if dry_run else "applying"
    try:
        with _progress(f"{verb} {len(objs)} objects of {cluster}") as tick:
            report = sync.sync(
                kube,
                objs,
                dry_run=dry_run,
                concurrency=args.concurrency,
                field_manager=field_manager,
                force=getattr(args, "force_conflicts", False),
                progress=lambda done, total: tick(f"{done}/{total}"),
            )
    except client.UnreachableError as exc:
        err.print(f"kasbah: {escape(str(exc))}")
        return EXIT_UNREACHABLE
    except TimeoutError as exc:  # CRDs applied but not Established in time
        err.print(f"kasbah: {escape(str(exc))}; fix: check the API server's logs, then run the apply again")
        return EXIT_UNSTABLE
    finally:
        kube.close()
    target_version = next(c.kubernetes_version for c in t.plans[-1].clusters if c.name == cluster)
    skew = _version_skew(report.version, target_version)
    if skew:
        err.print(f"[yellow]warning[/]: {skew}")
    if args.json:
        sys.stdout.write(json.dumps({"cluster": cluster, "target": t.label, **report.as_dict()}, indent=2) + "\n")
    else:
        show_sync(report, f"{t.label}, cluster {cluster}", args.verbose)
    if args.markdown:
        write_atomic(Path(args.markdown), sync_markdown(report, f"{t.label}, cluster {cluster}"))
    return EXIT_OK if report.ok else EXIT_UNSTABLE


def _safe_to_apply(t: _Target, unsafe: bool) -> None:
    """An apply verifies the whole tree first and refuses one that fails, unless told `--unsafe`."""
    with _progress(f"verifying {t.phase} before applying") as tick:
        result = verify_files(t.files, t.plans[-1], t.marker, tick)
    if result.ok:
        return
    listed = "\n".join(f"  {f}" for f in result.findings[:10])
    more = f"\n  ... and {len(result.findings) - 10} more" if len(result.findings) > 10 else ""
    if not unsafe:
        raise UsageError(
            f"{t.label} fails verification ({len(result.findings)} finding(s)); nothing was applied:\n{listed}{more}\n"
            "fix the environment and render again; `kasbah verify` shows every finding (--unsafe applies anyway)"
        )
    err.print(f"[yellow]warning[/]: applying a tree that fails verification (--unsafe):\n{escape(listed + more)}")


def _version_skew(server: str, target: str) -> str | None:
    """A warning when the cluster is older than the Kubernetes version the tree is rendered for."""
    try:
        have = tuple(int(x) for x in server.lstrip("v").split(".")[:2])
        want = tuple(int(x) for x in target.split(".")[:2])
    except ValueError:
        return None
    if have >= want:
        return None
    return (
        f"the cluster runs Kubernetes {server} and the tree targets Kubernetes {target}: the server refuses "
        "fields it does not know yet (NetworkPolicy endPort before 1.22, for one)"
    )


def cmd_preview(args: argparse.Namespace) -> int:
    return _sync(args, dry_run=True)


def cmd_apply(args: argparse.Namespace) -> int:
    return _sync(args, dry_run=False)


def cmd_kind_config(args: argparse.Namespace) -> int:
    from kasbah.kube.kind import kind_config

    env = load_environment(_env_path(args.environment))
    phase = args.phase or env.campus.phases[0].name
    plan = _plans(env, phase)[-1]
    cluster = _pick_cluster(plan, args.cluster, f"{env.name}/{phase}")
    if args.max_nodes < 1:
        raise UsageError(f"--max-nodes {args.max_nodes}: give 1 or more")
    try:
        text = kind_config(plan, cluster, max_nodes=args.max_nodes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _emit(text, args.output, f"the kind configuration of {env.name}/{phase} cluster {cluster}")
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    from kasbah import review

    base, head = Path(args.base), Path(args.head)
    for side, path in (("--base", base), ("--head", head)):
        if not (path / "environments").is_dir():
            raise UsageError(
                f"{side} {path}: not a kasbah checkout (no environments/); fix: `git worktree add {path} origin/main`"
            )
    envs = args.environment or None
    for e in envs or ():
        if not (head / "environments" / e / "site.yaml").is_file():
            raise UsageError(f"--environment {e}: {head / 'environments' / e} has no site.yaml")
    with _progress("planning and rendering both sides"):
        result = review.review(base, head, envs, "every stack asked for (--all-stacks)" if args.all_stacks else None)
    _emit(review.markdown(result), args.output, "the review")
    if args.affected:
        write_atomic(Path(args.affected), json.dumps(result.affected(), indent=2) + "\n")
    return EXIT_OK if result.stable else EXIT_UNSTABLE


def _configured_tree(env: Environment, target: str) -> Path:
    """The rendered tree `kasbah configure` runs over: a directory, or a phase's default render output."""
    phases = {p.name for p in env.campus.phases}
    tree = Path(target) if (os.sep in target or target not in phases) else _default_out(env, target)
    if not tree.is_dir():
        hint = f"kasbah render {target} -e {env.root}" if target in phases else "kasbah render PHASE --out DIR"
        raise UsageError(f"{tree}: no rendered tree there; fix: render it first (`{hint}`)")
    _, plans, fresh = _tree_plans(env, tree)
    phase = plans[-1].phase
    if not fresh:
        raise UsageError(
            f"{tree} was rendered from a different plan than {env.root} gives for {phase} now; fix: render it "
            f"again (`kasbah render {phase} -e {env.root} --out {tree}`) and review the change before configuring"
        )
    return tree


def cmd_configure(args: argparse.Namespace) -> int:
    _requires("ansible_runner", "configure")
    from kasbah.runners import ansible as runner

    env = load_environment(_env_path(args.environment))
    tree = _configured_tree(env, args.target or env.campus.phases[0].name)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    artifacts = Path(args.artifacts) if args.artifacts else Path(".kasbah") / "runs" / f"{tree.name}-{stamp}"
    options = runner.RunOptions(
        playbook=args.playbook,
        limit=args.limit,
        check=args.check,
        diff=args.diff,
        tags=args.tags,
        skip_tags=args.skip_tags,
        extra_vars=tuple(args.extra_vars or ()),
        extra_inventories=tuple(Path(p) for p in args.inventory or ()),
        parallel=args.parallel,
        forks=args.forks,
    )
    done: dict[str, int] = {}
    lock = threading.Lock()

    with _progress(f"{args.playbook}{' (check)' if args.check else ''} over {tree}") as tick:

        def progress(name: str, tasks: int, hosts: dict[str, Any]) -> None:
            with lock:
                if done.get(name) != tasks:
                    done[name] = tasks
                    tick(f"{len(done)} slice(s) running, {sum(done.values())} tasks started")

        try:
            result = runner.run_slices(tree, options, artifacts, progress)
        except runner.ConfigureError as exc:
            raise UsageError(str(exc)) from None
    write_atomic(artifacts / "summary.json", json.dumps(result.as_dict(), indent=2) + "\n")
    show_configure(result, artifacts)
    return EXIT_OK if result.ok else EXIT_UNSTABLE


def cmd_provision(args: argparse.Namespace) -> int:
    from kasbah.runners import ironic

    if args.in_flight < 1 or args.workers < 1:
        raise UsageError(f"--in-flight {args.in_flight} --workers {args.workers}: give at least 1 of each")
    env = load_environment(_env_path(args.environment))
    arg = args.target or env.campus.phases[0].name
    tree = Path(arg)
    if tree.is_dir() or os.sep in arg:
        if not tree.is_dir():
            raise UsageError(f"{tree}: no such directory; give a rendered tree or a phase name")
        _, plans, fresh = _tree_plans(env, tree)
        if not fresh:
            raise UsageError(f"{tree} was rendered from another plan than {env.root} gives now; render it again")
    else:
        plans = _plans(env, arg)
    plan = plans[-1]
    wanted, missing = ironic.targets(plan, ironic.limiter(args.limit))
    if not wanted:
        raise UsageError(
            f"no node of {plan.phase}{' matching --limit ' + args.limit if args.limit else ''} has hardware: "
            "add the racks' manifests (hardware/<rack>.yaml) to the environment"
        )
    deployment = None
    if args.deploy:
        image = plan.image
        if args.image_url:
            if not args.image_checksum:
                raise UsageError("--image-url needs --image-checksum sha256:<hex>")
            image = (args.image_kind, args.image_url, args.image_checksum)
        if image is None:
            raise UsageError(
                "--deploy needs the node image: set site.provisioning.image (kind, url on the site's mirror, checksum)"
            )
        try:
            keys = tuple(k for f in args.ssh_key or () for k in ironic.public_keys(Path(f)))
        except ironic.IronicError as exc:
            raise UsageError(str(exc)) from None
        deployment = ironic.Deployment(image[0], image[1], image[2], keys)
    bmc_file = args.bmc_credentials or os.environ.get("KASBAH_BMC_CREDENTIALS")
    try:
        creds = ironic.load_credentials(Path(bmc_file) if bmc_file else None)
        client = ironic.Ironic(args.ironic or os.environ.get("KASBAH_IRONIC_URL") or "http://127.0.0.1:6385")
        with _progress(f"provisioning {len(wanted):,} nodes of {plan.phase}") as tick:
            results = ironic.Provisioner(
                client, creds, deployment, tick, workers=args.workers, timeout=args.timeout, in_flight=args.in_flight
            ).run(wanted)
    except ironic.IronicError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        sys.stdout.write(
            to_json({"phase": plan.phase, "nodes": [r.as_dict() for r in results], "without_hardware": missing})
        )
    else:
        show_provision(results, missing, "active" if deployment else "available")
    return EXIT_OK if all(r.ok for r in results) else EXIT_UNSTABLE


def show_provision(results: list[Any], missing: list[str], goal: str) -> None:
    by_rack: dict[str, list[Any]] = {}
    for r in results:
        by_rack.setdefault(r.rack, []).append(r)
    rows = []
    for rack, rs in by_rack.items():
        states: dict[str, int] = {}
        for r in rs:
            states[r.state] = states.get(r.state, 0) + 1
        rows.append(
            (
                rack,
                f"{len(rs):,}",
                f"{sum(r.ok and r.state == goal for r in rs):,}",
                f"{sum(not r.ok for r in rs):,}",
                f"{sum(r.replaced for r in rs):,}",
                ", ".join(f"{k} {v}" for k, v in sorted(states.items())),
            )
        )
    out.print(_table(f"provision: nodes to {goal}", ("rack", "nodes", goal, "failed", "replaced", "states"), rows))
    for r in results:
        if r.replaced:
            out.print(
                f"[yellow]~[/] {r.node}: hardware replaced; it keeps its name and addresses and must be burned in "
                "again before it takes work (its node group commissions it)"
            )
    for r in results:
        if not r.ok:
            out.print(f"[red]✗[/] {r.node} ({r.state}): {escape(r.error)}\n    fix: {escape(r.fix)}")
    if missing:
        out.print(f"{len(missing):,} node(s) have no hardware manifest yet and were left alone (e.g. {missing[0]})")
    bad = sum(not r.ok for r in results)
    if bad:
        out.print(f"[red]{bad:,} of {len(results):,} node(s) failed[/]; the others went on")
    else:
        out.print(f"[green]ok[/]: {len(results):,} node(s) {goal}")


def show_configure(result: Any, artifacts: Path) -> None:
    from kasbah.runners.ansible import check_only

    rows = []
    for s in result.slices:
        counts: dict[str, int] = {}
        for h in s.hosts.values():
            counts[h.status] = counts.get(h.status, 0) + 1
        rows.append(
            (
                s.name,
                s.status,
                f"{len(s.hosts):,}",
                f"{counts.get('ok', 0):,}",
                f"{counts.get('changed', 0):,}",
                f"{counts.get('failed', 0) + counts.get('unreachable', 0):,}",
                f"{s.seconds:,.1f}",
            )
        )
    out.print(_table(f"{result.playbook}: slices", ("slice", "status", "hosts", "ok", "changed", "failed", "s"), rows))
    for s in result.slices:
        if s.error:
            out.print(f"[red]{s.status}[/] {s.name}: {escape(s.error)} (artifacts: {s.artifacts})", soft_wrap=True)
    for h in result.hosts:
        for task, message in h.failures:
            out.print(
                f"[red]{h.status}[/] {escape(h.host)} ({h.slice}): {escape(task)}: {escape(message)}", soft_wrap=True
            )
    for line in check_only(result.hosts):
        out.print(f"[yellow]{escape(line)}[/]", soft_wrap=True)
    hosts = result.hosts
    bad = sum(1 for h in hosts if h.failed or h.unreachable)
    verdict = "[green]configured[/]" if result.ok else "[red]not configured[/]"
    out.print(
        f"{verdict}: {len(hosts):,} hosts, {sum(1 for h in hosts if h.changed):,} changed, {bad:,} failed or "
        f"unreachable; per-host results in {artifacts / 'summary.json'}"
    )


SYNC_STYLE = {
    "create": ("green", "+"),
    "change": ("yellow", "~"),
    "unchanged": ("dim", "="),
    "rejected": ("red", "✗"),
    "missing-kind": ("red", "?"),
}


def _short(value: Any) -> str:
    text = "(none)" if value is None else json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def show_sync(report: Any, label: str, verbose: bool) -> None:
    from kasbah.kube.sync import missing_kind_fix

    what = "preview (server-side dry-run)" if report.dry_run else "apply (server-side apply)"
    out.rule(f"[bold]kasbah {what.split()[0]}[/] {escape(label)}")
    for o in report.outcomes:
        if o.action == "unchanged" and not verbose:
            continue
        style, mark = SYNC_STYLE[o.action]
        out.print(f"  [{style}]{mark} {o.action:<9}[/] {escape(o.label)}")
        for c in o.changes[:20]:
            out.print(f"      {escape(c.path)}: {escape(_short(c.before))} → {escape(_short(c.after))}")
        if len(o.changes) > 20:
            out.print(f"      … and {len(o.changes) - 20} more fields (--json lists all)")
        if o.message:
            out.print(f"      [dim]{escape(o.message)}[/]" if not o.failed else f"      {escape(o.message)}")
    counts = ", ".join(
        f"{report.count(a)} {word}"
        for a, word in (
            ("create", "to create" if report.dry_run else "created"),
            ("change", "to change" if report.dry_run else "changed"),
            ("unchanged", "unchanged"),
            ("rejected", "rejected"),
            ("missing-kind", "of kinds the cluster does not serve"),
        )
        if report.count(a) or a in ("create", "change", "unchanged")
    )
    out.print(
        f"{what} of {len(report.outcomes)} objects against {report.server} ({report.version}): {counts}; "
        f"{report.seconds:.2f} s, {report.rate:,.0f} objects/s at {report.concurrency} at a time"
    )
    if report.unchecked:
        out.print(
            f"[yellow]{report.unchecked} object(s) not checked by the server[/]: their namespace or CRD is created by "
            "this change, and a dry-run cannot check objects inside what does not exist yet"
        )
    for missing in report.missing_kinds():
        api_version, kind = missing.split(" ")
        err.print(f"[red]the cluster does not serve {missing}[/]; fix: {escape(missing_kind_fix(api_version, kind))}")
    if report.missing_kinds():
        err.print(
            "  on a kind or test cluster, `kasbah apply TARGET --crds-only` installs the CRDs kasbah verifies against"
        )


def sync_markdown(report: Any, label: str) -> str:
    """The preview as a markdown summary (a pull request's job summary)."""
    word = "Preview" if report.dry_run else "Apply"
    lines = [
        f"### {word}: {label}",
        "",
        f"Against {report.server} ({report.version}), {len(report.outcomes)} objects, "
        f"{report.seconds:.2f} s at {report.concurrency} at a time.",
        "",
        "| create | change | unchanged | rejected | kind not served |",
        "|---:|---:|---:|---:|---:|",
        "| "
        + " | ".join(str(report.count(a)) for a in ("create", "change", "unchanged", "rejected", "missing-kind"))
        + " |",
        "",
    ]
    shown = [o for o in report.outcomes if o.action != "unchanged"]
    if shown:
        lines += ["| | object | fields / reason |", "|---|---|---|"]
        for o in shown:
            detail = "; ".join(f"`{c.path}`" for c in o.changes[:10]) or o.message
            cell = detail.replace("|", "\\|")
            lines.append(f"| {o.action} | `{o.label}` | {cell} |")
        lines.append("")
    return "\n".join(lines)


def show_verification(result: Verification, label: str, matrix: bool) -> None:
    out.rule(f"[bold]kasbah verify[/] {label}")

    def mark(ok: bool) -> str:
        return "[green]proven[/]" if ok else "[red]FAILED[/]"

    rows = []
    for c in result.clusters:
        rep = c.reachability
        rows.append(
            (
                c.name,
                c.kubernetes_version,
                c.files,
                c.objects,
                len(c.schema_issues),
                mark(bool(rep and rep.ok("standard"))),
                mark(bool(rep and rep.ok("cilium"))),
            )
        )
    out.print(
        _table(
            "Clusters",
            (
                "cluster",
                "Kubernetes",
                "files",
                "objects",
                "schema issues",
                "zero trust (NetworkPolicy)",
                "zero trust (+ Cilium)",
            ),
            rows,
            left=2,
        )
    )
    if matrix:
        for c in result.clusters:
            if c.reachability:
                for mode in ("standard", "cilium"):
                    out.print(format_matrix(c.reachability, mode), soft_wrap=True, markup=False)
                    out.print()
    for note in result.notes:
        out.print(f"[yellow]note[/]: {note}")
    if result.ok:
        out.print(
            "[green]ok[/]: every manifest matches its schema and is read as the appliers apply it; no path "
            "between tenants (directly or through platform pods), egress only to their jurisdictions, management "
            "plane reachable from the admin zone only (platform namespaces: the API server), platform egress and "
            "connections between namespaces only where declared and on their ports, nothing from outside or "
            "the BMC network into a tenant, Cilium's enforcement pinned on, the nodes' host firewall the Plan's, "
            "every allowed flow named"
        )
        return
    err.print(f"[bold red]NOT SAFE TO APPLY[/]: {len(result.findings)} problem(s)")
    for f in result.findings[:200]:
        err.print(f"  [red]✗[/] {escape(str(f))}", soft_wrap=True)  # one line each: grep-able
    if len(result.findings) > 200:
        err.print(f"  … and {len(result.findings) - 200} more")


# --------------------------------------------------------------------------- rendering for people


def _mw(kw: float) -> str:
    return f"{kw / 1000:,.2f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]], left: int = 1) -> Table:
    """A table whose first `left` columns are text and the rest right-aligned figures."""
    t = Table(title=title, title_justify="left")
    for i, h in enumerate(headers):
        t.add_column(h, justify="left" if i < left else "right")
    for row in rows:
        t.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    return t


def show_plan(plan: Plan, phases: int) -> None:
    p = plan.power
    out.rule(f"[bold]kasbah plan[/] {plan.environment} / {plan.phase} (phase {plan.phase_index + 1} of {phases})")
    counts = (
        ("halls", len(plan.halls)), ("scalable units", len(plan.scalable_units)), ("racks", len(plan.racks)),
        ("nodes", len(plan.nodes)), ("GPUs", plan.gpus), ("pools", len(plan.pools)),
        ("clusters", len(plan.clusters)), ("tenants", len(plan.tenants)), ("switches", len(plan.switches)),
    )  # fmt: skip
    out.print(_table("Capacity", ("", "count"), counts))
    out.print(_table(
        "Power (MW)",
        ("IT load", "PUE", "facility load", "phase budget", "headroom", "renewable supply", "headroom"),
        [(_mw(p.it_load_kw), f"{p.pue:g}", _mw(p.facility_load_kw), _mw(p.budget_kw),
          f"{_mw(p.budget_headroom_kw)} ({_pct(p.budget_headroom_kw, p.budget_kw)})", _mw(p.supply_kw),
          f"{_mw(p.supply_headroom_kw)} ({_pct(p.supply_headroom_kw, p.supply_kw)})")],
        left=0,
    ))  # fmt: skip
    out.print(_table(
        "Halls: power and cooling (kW, with redundancy)",
        ("hall", "profile", "racks", "positions used", "IT load", "IT capacity", "headroom", "liquid load", "liquid cap.", "air load", "air cap."),
        ((h.name, h.profile, h.racks, f"{h.positions_used}/{h.positions}", f"{h.it_load_kw:,.0f}", f"{h.power_capacity_kw:,.0f}",
          f"{h.power_headroom_kw:,.0f}", f"{h.liquid_load_kw:,.0f}", f"{h.liquid_capacity_kw:,.0f}", f"{h.air_load_kw:,.0f}",
          f"{h.air_capacity_kw:,.0f}") for h in plan.halls),
        left=2,
    ))  # fmt: skip
    out.print(_table(
        "Node pools",
        ("pool", "profile", "purpose", "cluster", "tenant", "SUs", "racks", "nodes", "GPUs", "halls"),
        ((x.name, x.profile, x.purpose, x.cluster or "-", x.tenant or "shared", len(x.scalable_units), x.racks, x.nodes,
          x.gpus, ", ".join(x.halls)) for x in plan.pools),
        left=5,
    ))  # fmt: skip
    fabric_rows: list[Sequence[object]] = [
        (f.name, f.switch_model, f.radix, f.design, f.tiers, f.endpoint_ports, f.leaves, f.spines, f.cores,
         f.node_leaf_cables, f.leaf_spine_cables, f.spine_core_cables)
        for f in plan.fabrics if f.kind == "compute"
    ]  # fmt: skip
    for kind in ("storage", "oob"):
        fs = [f for f in plan.fabrics if f.kind == kind]
        if fs:
            sums = (
                sum(getattr(f, a) for f in fs)
                for a in (
                    "endpoint_ports",
                    "leaves",
                    "spines",
                    "cores",
                    "node_leaf_cables",
                    "leaf_spine_cables",
                    "spine_core_cables",
                )
            )
            fabric_rows.append(
                (
                    f"{kind} ({len(fs)} halls)",
                    fs[0].switch_model,
                    fs[0].radix,
                    "per hall",
                    max(f.tiers for f in fs),
                    *sums,
                )
            )
    out.print(_table(
        "Fabrics",
        ("fabric", "switch", "radix", "design", "tiers", "endpoints", "leaves", "spines", "cores", "node-leaf", "leaf-spine", "spine-core"),
        fabric_rows,
        left=2,
    ))  # fmt: skip
    out.print(_table(
        "Kubernetes clusters",
        ("cluster", "version", "pod range", "node pods", "service range", "pools", "nodes", "limit", "control plane", "GPUs"),
        ((c.name, c.kubernetes_version, c.pod_cidr, f"/{c.node_pod_prefix}", c.service_cidr, ", ".join(c.pools), c.nodes,
          c.node_limit, len(c.control_plane), c.gpus) for c in plan.clusters),
        left=6,
    ))  # fmt: skip
    out.print(_table(
        "Tenants",
        ("tenant", "kind", "reseller", "jurisdictions", "GPU quota", "dedicated GPUs"),
        ((tn.name, tn.kind, tn.reseller or "-", ", ".join(tn.jurisdictions), tn.gpu_quota, tn.dedicated_gpus) for tn in plan.tenants),
        left=4,
    ))  # fmt: skip
    out.print(_table(
        "Address plan",
        ("network", "supernet", "block", "blocks", "allocated", "used", "of supernet"),
        ((a.network, a.supernet, a.block, a.blocks, a.allocated, a.used, _pct(a.allocated, ip_network(a.supernet).num_addresses))
         for a in plan.addresses),
        left=3,
    ))  # fmt: skip
    if plan.retired:
        out.print(f"[bold]decommissioned so far:[/] {len(plan.retired)} (see `kasbah diff`)")


def _print_violations(d: PlanDiff) -> None:
    err.print(
        f"[bold red]NOT STABLE[/]: {d.new_phase} changes or removes {len(d.violations)} thing(s) that exist in {d.old_phase} without a decommission:"
    )
    for v in d.violations[:50]:
        err.print(f"  [red]✗[/] {v}")
    if len(d.violations) > 50:
        err.print(f"  … and {len(d.violations) - 50} more (`kasbah diff --json` lists all)")
    err.print("fix: restore what changed, or declare it under the later phase's `decommissions` with a reason")


def show_diff(d: PlanDiff) -> None:
    out.rule(f"[bold]kasbah diff[/] {d.old_phase} → {d.new_phase}")

    def row(label: str, a: float, b: float) -> tuple[str, str, str, str]:
        fmt = "{:,.2f}" if isinstance(a, float) or isinstance(b, float) else "{:,}"
        return label, fmt.format(a), fmt.format(b), ("+" if b >= a else "") + fmt.format(b - a)

    labels = {"it_load_mw": "IT load (MW)", "facility_load_mw": "facility load (MW)", "gpus": "GPUs"}
    rows = [row(labels.get(k, k), a, b) for k, (a, b) in d.totals.items()]
    rows += [row(f"{k} addresses used", a, b) for k, (a, b) in d.addresses.items()]
    out.print(_table("Totals", ("", d.old_phase, d.new_phase, "added"), rows))
    for kind in ("halls", "clusters", "pools", "tenants"):
        names = d.added.get(kind, [])
        if names:
            out.print(f"[green]+[/] {len(names)} {kind}: {', '.join(names)}")
    for kind in ("scalable_units", "racks", "nodes", "switches"):
        n = len(d.added.get(kind, []))
        if n:
            out.print(f"[green]+[/] {n:,} {kind.replace('_', ' ')}")
    if d.retired:
        out.print("[bold yellow]DECOMMISSIONED[/] (declared):")
        for r in d.retired:
            out.print(f"  [yellow]-[/] {r['kind']} {r['name']} in {r['phase']}: {r['reason']}")
        for kind, n in d.removed_by_decommission.items():
            out.print(f"  [yellow]-[/] {n:,} {kind.replace('_', ' ')} removed with them")
    if d.repatched:
        out.print("[bold yellow]RE-PATCHED[/] (the fabric grew spines or cores, and its rules re-spread the uplinks):")
        for fabric, links in d.repatched.items():
            for link, n in links.items():
                out.print(f"  [yellow]~[/] {n:,} {link} cables of {fabric} move to other ports")
        for example in d.repatched_examples:
            out.print(f"    e.g. {escape(example)}")
    if d.hardware_arrived:
        out.print(f"[green]+[/] hardware manifests for {len(d.hardware_arrived):,} nodes (ready to provision)")
    if d.replaced:
        out.print(
            f"[bold yellow]HARDWARE REPLACED[/] ({len(d.replaced)} tray(s); each node keeps its name, addresses, "
            "labels and cluster, and is provisioned and burned in again before it takes work):"
        )
        for r in d.replaced:
            new = f"serial {escape(r['to'])}" if r["to"] else "no tray recorded"
            out.print(f"  [yellow]~[/] {r['node']}: serial {escape(r['from'])} → {new} ({r['changed']})")
    if d.upgrades:
        out.print(
            f"[bold cyan]UPGRADE[/] ({len(d.upgrades)} cluster(s); rolled out by upgrade.yml: control plane one host "
            "at a time, then workers rack by rack with drain and health gate):"
        )
        for u in d.upgrades:
            out.print(f"  [cyan]^[/] cluster {u['cluster']}: Kubernetes {u['from']} → {u['to']} (phase {u['phase']})")
    if d.stable:
        out.print(
            "[green]stable[/]: everything in the earlier phase keeps its name, place, addresses, labels and cluster"
        )
    else:
        _print_violations(d)


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kasbah",
        description="Plan a phased, sovereign AI campus from one declarative description.",
    )
    parser.add_argument("--version", action="version", version=f"kasbah {__version__}")
    env_help = f"environment directory (default: $KASBAH_ENV or {DEFAULT_ENV})"
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check the environment: every phase valid, feasible and stable")
    p.add_argument("-e", "--environment", help=env_help)
    p.add_argument("--json", action="store_true", help="print the verdict (or the problems) as JSON")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", help="plan one phase: capacity, power, cooling, fabrics, clusters, addresses")
    p.add_argument("phase", nargs="?", help="phase name (default: the first)")
    p.add_argument("-e", "--environment", help=env_help)
    p.add_argument("--json", action="store_true", help="print the whole plan as JSON")
    p.add_argument("--compact", action="store_true", help="with --json or --output: no indentation")
    p.add_argument("-o", "--output", help="write the JSON plan to this file (atomically)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("diff", help="what a later phase adds; any change or removal without a decommission fails")
    p.add_argument("old", help="earlier phase name, or a plan JSON file")
    p.add_argument("new", help="later phase name, or a plan JSON file")
    p.add_argument("-e", "--environment", help=env_help)
    p.add_argument("--json", action="store_true", help="print the diff as JSON")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser(
        "render", help="write a phase's artifacts: GitOps trees, inventory, bootstrap, schedules, report"
    )
    p.add_argument("phase", nargs="?", help="phase name (default: the first)")
    p.add_argument("-e", "--environment", help=env_help)
    p.add_argument(
        "-o", "--out", help="output directory, replaced as a whole (default: rendered/<environment>/<phase>)"
    )
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("verify", help="check a rendered tree (or a phase): schemas, zero-trust reachability")
    p.add_argument(
        "target", nargs="?", help="a directory `kasbah render` wrote, or a phase name (default: the first phase)"
    )
    p.add_argument("-e", "--environment", help=env_help)
    p.add_argument("--matrix", action="store_true", help="print each cluster's reachability matrix")
    p.add_argument("--json", action="store_true", help="print the verdict, findings and violations as JSON")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser(
        "configure",
        help="run a node playbook over a rendered tree's inventory (ansible-runner, slices in parallel)",
    )
    p.add_argument("target", nargs="?", help="a rendered tree, or a phase (its default render output)")
    p.add_argument("-e", "--environment", help=env_help)
    p.add_argument("-p", "--playbook", default="site", choices=list(PLAYBOOKS), help="which playbook (default: site)")
    p.add_argument("-l", "--limit", help="Ansible host pattern: hosts, groups (rack_*, su_*, pool_*), globs")
    p.add_argument("-C", "--check", action="store_true", help="check mode: report what would change")
    p.add_argument("-D", "--diff", action="store_true", help="show file differences")
    p.add_argument("-t", "--tags", help="only tasks with these tags (comma-separated)")
    p.add_argument("--skip-tags", help="skip tasks with these tags (comma-separated)")
    p.add_argument(
        "-x", "--extra-vars", action="append", metavar="K=V|@FILE", help="extra variables, as ansible-playbook takes"
    )
    p.add_argument(
        "-i", "--inventory", action="append", metavar="FILE",
        help="another inventory after each slice (connection settings, bastions); repeatable",
    )  # fmt: skip
    p.add_argument("-j", "--parallel", type=int, default=4, help="slices at a time (default 4)")
    p.add_argument("--forks", type=int, help="hosts at a time within a slice (default: ansible.cfg's)")
    p.add_argument("--artifacts", help="where per-slice artifacts and summary.json go (default .kasbah/runs/...)")
    p.set_defaults(func=cmd_configure)

    p = sub.add_parser(
        "provision",
        help="day 0 on OpenStack Ironic: enrol the Plan's nodes (BMCs over Redfish), bring them to available, deploy",
    )
    p.add_argument("target", nargs="?", help="a phase (default: the first) or a rendered tree")
    p.add_argument("-e", "--environment", help=env_help)
    p.add_argument("-l", "--limit", help="only these nodes, racks, halls or pools (comma-separated names)")
    p.add_argument("--ironic", help="Ironic API URL (default: $KASBAH_IRONIC_URL or http://127.0.0.1:6385)")
    p.add_argument(
        "--bmc-credentials", metavar="FILE",
        help="YAML (mode 600): default and per-rack BMC username/password (default: $KASBAH_BMC_CREDENTIALS, "
        "else $KASBAH_BMC_USERNAME and $KASBAH_BMC_PASSWORD); never a password on the command line",
    )  # fmt: skip
    p.add_argument("--deploy", action="store_true", help="deploy the node image (to active), not only to available")
    p.add_argument("--image-url", help="deploy this image instead of site.provisioning.image (a lab's)")
    p.add_argument("--image-checksum", help="sha256:<hex> of --image-url")
    p.add_argument("--image-kind", default="disk", choices=["disk", "iso"], help="what --image-url is (default disk)")
    p.add_argument("--ssh-key", action="append", metavar="FILE", help="public key(s) root accepts on the node")
    p.add_argument("--workers", type=int, default=8, help="Ironic calls at a time (default 8)")
    p.add_argument(
        "--timeout", type=float, default=3600,
        help="seconds a node may take from its first move, and the longest the run may go without progress (default 3600)",
    )  # fmt: skip
    p.add_argument(
        "--in-flight", type=int, default=64,
        help="nodes Ironic moves at once; the others wait their turn (default 64: a conductor's CPU, not the "
        "node count, bounds a hall)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print each node's state, actions and error as JSON")
    p.set_defaults(func=cmd_provision)

    for name, dry in (("preview", True), ("apply", False)):
        p = sub.add_parser(
            name,
            help=(
                "server-side dry-run of a cluster's manifests against a live cluster: what would be created or changed"
                if dry
                else "server-side apply of one part of a cluster's tree, in a stated role (--bootstrap or "
                "--break-glass), after verifying it; never deletes"
            ),
        )
        p.add_argument("target", nargs="?", help="a phase (rendered in memory) or a rendered tree")
        p.add_argument("-e", "--environment", help=env_help)
        p.add_argument("--kubeconfig", required=True, help="the cluster's kubeconfig")
        p.add_argument("--context", help="kubeconfig context (default: its current-context)")
        p.add_argument("--cluster", help="which of the phase's clusters (default: the only one)")
        p.add_argument("-j", "--concurrency", type=int, default=16, help="requests in flight (default 16)")
        p.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
        role = p.add_argument_group("role (one owner per object; an apply must give one)")
        role.add_argument(
            "--bootstrap",
            action="store_true",
            help=f"the platform part (bootstrap/<cluster>/platform/: what the cluster stack owns), as {BOOTSTRAP_FIELD_MANAGER}",
        )
        role.add_argument(
            "--break-glass",
            action="store_true",
            help="the GitOps tree (clusters/<cluster>/), under the GitOps controller's field manager"
            + (" (the default of a preview)" if dry else ", when the controller cannot sync"),
        )
        p.add_argument(
            "--field-manager",
            help="server-side apply field manager (default: the role's; see --bootstrap, --break-glass)",
        )
        p.add_argument(
            "--crds", action="store_true", help="also apply kasbah's vendored CRDs first (kind/test clusters)"
        )
        p.add_argument("--crds-only", action="store_true", help="only the vendored CRDs (kind/test clusters)")
        p.add_argument("--json", action="store_true", help="print every object's outcome as JSON")
        p.add_argument("--markdown", help="also write a markdown summary to this file")
        p.add_argument("-v", "--verbose", action="store_true", help="list unchanged objects too")
        if not dry:
            p.add_argument("--force-conflicts", action="store_true", help="take over fields another field manager owns")
            p.add_argument("--unsafe", action="store_true", help="apply even if the tree fails `kasbah verify`")
        p.set_defaults(func=cmd_preview if dry else cmd_apply)

    p = sub.add_parser("kind-config", help="a kind cluster configuration with the Plan's nodes, labels and taints")
    p.add_argument("phase", nargs="?", help="phase name (default: the first)")
    p.add_argument("-e", "--environment", help=env_help)
    p.add_argument("--cluster", help="which of the phase's clusters (default: the only one)")
    p.add_argument("--max-nodes", type=int, default=12, help="refuse clusters with more nodes than this (default 12)")
    p.add_argument("-o", "--output", help="write to this file (atomically) instead of stdout")
    p.set_defaults(func=cmd_kind_config)

    p = sub.add_parser(
        "review",
        help="what a change does against a base checkout: plan diffs, rendered files, affected stacks (markdown)",
    )
    p.add_argument("--base", required=True, help="a checkout of the base branch (git worktree add DIR origin/main)")
    p.add_argument("--head", default=".", help="the changed checkout (default: here)")
    p.add_argument(
        "-e", "--environment", action="append", help="only this environment (a name under environments/; repeatable)"
    )
    p.add_argument("-o", "--output", help="write the markdown to this file (atomically) instead of stdout")
    p.add_argument("--affected", help="write the affected stacks as JSON here (for a CI matrix)")
    p.add_argument("--all-stacks", action="store_true", help="mark every stack affected (no deployed baseline)")
    p.set_defaults(func=cmd_review)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        if getattr(args, "json", False):  # a machine reads the refusal too, located
            _print_json({"ok": False, "problems": [i.as_dict() for i in exc.issues]})
        sys.stderr.write(exc.render() + "\n")
        return EXIT_INVALID
    except (UsageError, RenderError, InputFileError) as exc:
        sys.stderr.write(f"kasbah: {exc}\n")
        return EXIT_INVALID
    except BrokenPipeError:
        return EXIT_OK
    except Exception:  # a bug: never let it pass for exit 1 ("not stable")
        traceback.print_exc()
        sys.stderr.write("kasbah: internal error (a bug in kasbah); please report it with the input that caused it\n")
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
