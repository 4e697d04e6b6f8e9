"""The commands on a live cluster: preview and apply a rendered tree, and kind-config for a test one.

`preview` is a server-side dry-run of a cluster's manifests, `apply` a server-side apply of one
part of its tree in a stated role (`--bootstrap` or `--break-glass`), after verifying the whole
tree; both go through `kasbah.kube` and never delete. `kind-config` writes a kind cluster's
configuration with the Plan's nodes, labels and taints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.markup import escape

from kasbah.cli.common import (
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_UNSTABLE,
    Target,
    UsageError,
    emit,
    env_path,
    pick_cluster,
    plan_phases,
    progress,
    requires,
    resolve_target,
    write_atomic,
)
from kasbah.cli.output import err, show_sync, sync_markdown
from kasbah.config import load_environment
from kasbah.planning.model import Plan
from kasbah.planning.platform import BOOTSTRAP, GITOPS
from kasbah.verification.verify import Finding, cluster_manifests, verify_files


def _cluster_objects(
    t: Target, cluster: str | None, owner: str = GITOPS
) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The objects one owner applies to a cluster, exactly as `kasbah verify` reads them."""
    cluster = pick_cluster(t.plans[-1], cluster, t.label)
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
    requires("kubernetes", "preview" if dry_run else "apply")
    from kasbah.kube import client, sync
    from kasbah.verification.schema import CRD_RULES_SINCE, custom_resource_definitions

    if args.concurrency < 1:
        raise UsageError(f"--concurrency {args.concurrency}: give 1 or more")
    if not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout}: give the seconds a request may take, more than 0")
    if args.field_manager is not None and not (0 < len(args.field_manager) <= 128 and args.field_manager.isprintable()):
        # the API server's rule for server-side apply managers
        raise UsageError(f"--field-manager {args.field_manager!r}: give a name of 1 to 128 printable characters")
    env = load_environment(env_path(args.environment))
    t = resolve_target(env, args.target)
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
        with progress(f"{verb} {len(objs)} objects of {cluster}") as tick:
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


def _safe_to_apply(t: Target, unsafe: bool) -> None:
    """An apply verifies the whole tree first and refuses one that fails, unless told `--unsafe`."""
    with progress(f"verifying {t.phase} before applying") as tick:
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

    env = load_environment(env_path(args.environment))
    phase = args.phase or env.campus.phases[0].name
    plan = plan_phases(env, phase)[-1]
    cluster = pick_cluster(plan, args.cluster, f"{env.name}/{phase}")
    if args.max_nodes < 1:
        raise UsageError(f"--max-nodes {args.max_nodes}: give 1 or more")
    try:
        text = kind_config(plan, cluster, max_nodes=args.max_nodes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    emit(text, args.output, f"the kind configuration of {env.name}/{phase} cluster {cluster}")
    return EXIT_OK
