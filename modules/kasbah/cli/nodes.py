"""The commands on the nodes themselves: provision them (day 0, Ironic) and configure them (Ansible).

`provision` enrols the Plan's nodes on OpenStack Ironic (BMCs over Redfish), brings them to
available and, with `--deploy`, deploys the node image. `configure` runs a node playbook over a
rendered tree's inventory, its slices in parallel, and keeps every run's artifacts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kasbah.cli.common import (
    EXIT_OK,
    EXIT_UNSTABLE,
    UsageError,
    default_out,
    env_path,
    plan_phases,
    progress,
    requires,
    tree_plans,
    write_atomic,
)
from kasbah.cli.output import print_json, show_configure, show_provision
from kasbah.config import Environment, load_environment
from kasbah.planning.export import to_json


def _configured_tree(env: Environment, target: str) -> Path:
    """The rendered tree `kasbah configure` runs over: a directory, or a phase's default render output."""
    phases = {p.name for p in env.campus.phases}
    tree = Path(target) if (os.sep in target or target not in phases) else default_out(env, target)
    if not tree.is_dir():
        hint = f"kasbah render {target} -e {env.root}" if target in phases else "kasbah render PHASE --out DIR"
        raise UsageError(f"{tree}: no rendered tree there; fix: render it first (`{hint}`)")
    _, plans, fresh = tree_plans(env, tree)
    phase = plans[-1].phase
    if not fresh:
        raise UsageError(
            f"{tree} was rendered from a different plan than {env.root} gives for {phase} now; fix: render it "
            f"again (`kasbah render {phase} -e {env.root} --out {tree}`) and review the change before configuring"
        )
    return tree


def cmd_configure(args: argparse.Namespace) -> int:
    requires("ansible_runner", "configure")
    from kasbah.runners import ansible as runner

    env = load_environment(env_path(args.environment))
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

    with progress(f"{args.playbook}{' (check)' if args.check else ''} over {tree}") as tick:

        def on_progress(name: str, tasks: int, hosts: dict[str, Any]) -> None:
            with lock:
                if done.get(name) != tasks:
                    done[name] = tasks
                    tick(f"{len(done)} slice(s) running, {sum(done.values())} tasks started")

        try:
            result = runner.run_slices(tree, options, artifacts, on_progress)
        except runner.ConfigureError as exc:
            raise UsageError(str(exc)) from None
    write_atomic(artifacts / "summary.json", json.dumps(result.as_dict(), indent=2) + "\n")
    if args.json:
        print_json(result.as_dict())
    else:
        show_configure(result, artifacts)
    return EXIT_OK if result.ok else EXIT_UNSTABLE


def cmd_provision(args: argparse.Namespace) -> int:
    from kasbah.runners import ironic

    if args.in_flight < 1 or args.workers < 1:
        raise UsageError(f"--in-flight {args.in_flight} --workers {args.workers}: give at least 1 of each")
    env = load_environment(env_path(args.environment))
    arg = args.target or env.campus.phases[0].name
    tree = Path(arg)
    if tree.is_dir() or os.sep in arg:
        if not tree.is_dir():
            raise UsageError(f"{tree}: no such directory; give a rendered tree or a phase name")
        _, plans, fresh = tree_plans(env, tree)
        if not fresh:
            raise UsageError(f"{tree} was rendered from another plan than {env.root} gives now; render it again")
    else:
        plans = plan_phases(env, arg)
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
        with progress(f"provisioning {len(wanted):,} nodes of {plan.phase}") as tick:
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
