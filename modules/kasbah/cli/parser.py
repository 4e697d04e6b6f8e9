"""The `kasbah` command line, built in one place: every command, its options and its help.

The options every command on an environment shares come from parent parsers (argparse `parents=`):
`-e/--environment` from one, `--json` from another whose help names what the command prints. Each
command's function lives with its group: `environment` (validate, plan, diff, render, verify),
`nodes` (configure, provision), `images` (image list, vars, capture), `cluster` (preview, apply, kind-config) and `review`.
"""

from __future__ import annotations

import argparse

from kasbah import __version__
from kasbah.cli import images, usage
from kasbah.cli.cluster import BOOTSTRAP_FIELD_MANAGER, cmd_apply, cmd_kind_config, cmd_preview
from kasbah.cli.common import DEFAULT_ENV
from kasbah.cli.environment import cmd_diff, cmd_plan, cmd_render, cmd_validate, cmd_verify
from kasbah.cli.nodes import cmd_configure, cmd_provision
from kasbah.cli.review import cmd_review
from kasbah.runners.ansible import PLAYBOOKS


def _environment() -> argparse.ArgumentParser:
    """The parent of every command that reads one environment: `-e/--environment`."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-e", "--environment", help=f"environment directory (default: $KASBAH_ENV or {DEFAULT_ENV})")
    return parent


def _json(what: str) -> argparse.ArgumentParser:
    """The parent of every command that prints a result: `--json`, printing `what` for a machine."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help=f"print {what} as JSON")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kasbah",
        description="Plan a phased, sovereign AI campus from one declarative description.",
    )
    parser.add_argument("--version", action="version", version=f"kasbah {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    env = _environment()

    p = sub.add_parser(
        "validate",
        help="check the environment: every phase valid, feasible and stable",
        parents=[env, _json("the verdict (or the problems)")],
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "plan",
        help="plan one phase: capacity, power, cooling, fabrics, clusters, addresses",
        parents=[env, _json("the whole plan")],
    )
    p.add_argument("phase", nargs="?", help="phase name (default: the first)")
    p.add_argument("--compact", action="store_true", help="with --json or --output: no indentation")
    p.add_argument("-o", "--output", help="write the JSON plan to this file (atomically)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "diff",
        help="what a later phase adds; any change or removal without a decommission fails",
        parents=[env, _json("the diff")],
    )
    p.add_argument("old", help="earlier phase name, or a plan JSON file")
    p.add_argument("new", help="later phase name, or a plan JSON file")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser(
        "render",
        help="write a phase's artifacts: GitOps trees, inventory, bootstrap, schedules, report",
        parents=[env, _json("what was written")],
    )
    p.add_argument("phase", nargs="?", help="phase name (default: the first)")
    p.add_argument(
        "-o", "--out", help="output directory, replaced as a whole (default: rendered/<environment>/<phase>)"
    )
    p.set_defaults(func=cmd_render)

    p = sub.add_parser(
        "verify",
        help="check a rendered tree (or a phase): schemas, zero-trust reachability",
        parents=[env, _json("the verdict, findings and violations")],
    )
    p.add_argument(
        "target", nargs="?", help="a directory `kasbah render` wrote, or a phase name (default: the first phase)"
    )
    p.add_argument("--matrix", action="store_true", help="print each cluster's reachability matrix")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser(
        "configure",
        help="run a node playbook over a rendered tree's inventory (ansible-runner, slices in parallel)",
        parents=[env, _json("each slice's and host's result (what summary.json holds)")],
    )
    p.add_argument("target", nargs="?", help="a rendered tree, or a phase (its default render output)")
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
        parents=[env, _json("each node's state, actions and error")],
    )
    p.add_argument("target", nargs="?", help="a phase (default: the first) or a rendered tree")
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
    p.set_defaults(func=cmd_provision)

    images.add_parsers(sub, env, _json)
    usage.add_parser(sub, env, _json("the month's rows"))

    outcomes = _json("every object's outcome")
    for name, dry in (("preview", True), ("apply", False)):
        p = sub.add_parser(
            name,
            parents=[env, outcomes],
            help=(
                "server-side dry-run of a cluster's manifests against a live cluster: what would be created or changed"
                if dry
                else "server-side apply of one part of a cluster's tree, in a stated role (--bootstrap or "
                "--break-glass), after verifying it; never deletes"
            ),
        )
        p.add_argument("target", nargs="?", help="a phase (rendered in memory) or a rendered tree")
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
        p.add_argument("--markdown", help="also write a markdown summary to this file")
        p.add_argument("-v", "--verbose", action="store_true", help="list unchanged objects too")
        if not dry:
            p.add_argument("--force-conflicts", action="store_true", help="take over fields another field manager owns")
            p.add_argument("--unsafe", action="store_true", help="apply even if the tree fails `kasbah verify`")
        p.set_defaults(func=cmd_preview if dry else cmd_apply)

    p = sub.add_parser(
        "kind-config", help="a kind cluster configuration with the Plan's nodes, labels and taints", parents=[env]
    )
    p.add_argument("phase", nargs="?", help="phase name (default: the first)")
    p.add_argument("--cluster", help="which of the phase's clusters (default: the only one)")
    p.add_argument("--max-nodes", type=int, default=12, help="refuse clusters with more nodes than this (default 12)")
    p.add_argument("-o", "--output", help="write to this file (atomically) instead of stdout")
    p.set_defaults(func=cmd_kind_config)

    p = sub.add_parser(
        "review",
        help="what a change does against a base checkout: plan diffs, rendered files, affected stacks (markdown)",
        parents=[_json("the review (each phase's plan diff and changed files, the affected stacks)")],
    )
    p.add_argument("--base", required=True, help="a checkout of the base branch (git worktree add DIR origin/main)")
    p.add_argument("--head", default=".", help="the changed checkout (default: here)")
    p.add_argument(  # not the shared -e: a review reads both checkouts' environments by name
        "-e", "--environment", action="append", help="only this environment (a name under environments/; repeatable)"
    )
    p.add_argument(
        "-o",
        "--output",
        help="write the markdown (or, with --json, the JSON) to this file (atomically) instead of stdout",
    )
    p.add_argument("--affected", help="write the affected stacks as JSON here (for a CI matrix)")
    p.add_argument("--all-stacks", action="store_true", help="mark every stack affected (no deployed baseline)")
    p.set_defaults(func=cmd_review)

    return parser
