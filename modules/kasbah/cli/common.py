"""What every `kasbah` command shares: exit codes, refusals, the environment, planning, writing.

A command's bad input raises `UsageError` (printed as is, exit 2); `requires` refuses a command
whose optional dependency is missing, naming the extra that installs it. `plan_phases` plans with a
spinner on stderr (`progress`), `write_atomic` and `emit` write a result without ever leaving half
a file. `Target` is what verify, preview and apply work on: a rendered tree on disk (with its
marker and whether it is still the environment's plan) or a phase rendered in memory.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kasbah.cli.output import err
from kasbah.config import Environment
from kasbah.planning import plan_environment
from kasbah.planning.model import Plan
from kasbah.rendering.phase import render_plans
from kasbah.rendering.tree import plan_digest, read_marker
from kasbah.verification.verify import read_tree

EXIT_OK = 0
EXIT_UNSTABLE = 1
EXIT_INVALID = 2
EXIT_INTERNAL = 3
EXIT_UNREACHABLE = 4
DEFAULT_ENV = "environments/campus"

# Optional parts of kasbah: the import a command needs, the extra that installs it
EXTRAS = {"ansible_runner": "ansible", "kubernetes": "cluster", "pulumi": "pulumi"}


class UsageError(Exception):
    """Bad command-line input: printed as is, exit 2."""


def env_path(arg: str | None) -> Path:
    return Path(arg or os.environ.get("KASBAH_ENV") or DEFAULT_ENV)


@contextmanager
def progress(what: str) -> Iterator[Any]:
    """A spinner on stderr while planning; silent when stderr is not a terminal."""
    if err.is_terminal:
        with err.status(what) as status:
            yield lambda phase: status.update(f"{what}: {phase}")
    else:
        yield lambda phase: None


def plan_phases(env: Environment, upto: str | None) -> list[Plan]:
    if upto is not None:
        try:
            env.campus.target(upto)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    with progress(f"planning {env.name}") as tick:
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


def emit(text: str, output: str | None, what: str) -> None:
    """To the file given (atomically, saying so on stderr), or to stdout."""
    if output:
        write_atomic(Path(output), text)
        err.print(f"wrote {what} to {output}")
    else:
        sys.stdout.write(text)


def pick_cluster(plan: Plan, cluster: str | None, label: str) -> str:
    """The cluster asked for, or the phase's only one."""
    names = [c.name for c in plan.clusters]
    if cluster is None:
        if len(names) != 1:
            raise UsageError(f"{label} has {len(names)} clusters ({', '.join(names)}); fix: pick one with --cluster")
        return names[0]
    if cluster not in names:
        raise UsageError(f"{label} has no cluster `{cluster}`; it has: {', '.join(names) or 'none'}")
    return cluster


def requires(module: str, command: str) -> None:
    """Refuse, naming the extra to install, a command whose optional dependency is missing."""
    if importlib.util.find_spec(module) is None:
        extra = EXTRAS[module]
        raise UsageError(
            f"`kasbah {command}` needs the `{extra}` extra, which is not installed; "
            f"fix: pip install 'kasbah[{extra}]' (or 'kasbah[all]')"
        )


def default_out(env: Environment, phase: str) -> Path:
    return Path("rendered") / env.name / phase


@dataclass
class Target:
    """What verify, preview and apply work on: a rendered tree on disk, or a phase rendered in memory."""

    files: dict[str, bytes]
    plans: list[Plan]
    label: str
    marker: dict[str, Any] | None
    stale: str | None  # why the tree does not match the environment's plan now

    @property
    def phase(self) -> str:
        return self.plans[-1].phase


def tree_plans(env: Environment, tree: Path) -> tuple[dict[str, Any], list[Plan], bool]:
    """A rendered tree's marker, the environment's plans up to its phase, and whether the tree is of that plan."""
    marker = read_marker(tree)
    phase = str(marker.get("phase"))
    if phase not in {p.name for p in env.campus.phases}:
        raise UsageError(
            f"{tree} was rendered for phase `{phase}` of `{marker.get('environment')}`, which {env.root} does not have; "
            "fix: pass the environment it came from with -e"
        )
    planned = plan_phases(env, phase)
    return marker, planned, marker.get("plan_sha256") == plan_digest(planned[-1])


def resolve_target(env: Environment, arg: str | None) -> Target:
    tree = Path(arg) if arg else None
    if arg is not None and tree is not None and (tree.is_dir() or os.sep in arg):
        if not tree.is_dir():
            raise UsageError(f"{tree}: no such directory; give a rendered tree or a phase name")
        marker, planned, fresh = tree_plans(env, tree)
        phase = planned[-1].phase
        stale = None
        if not fresh:
            stale = (
                f"rendered from a different plan than {env.root} gives for {phase} now; render it again "
                f"(`kasbah render {phase} -e {env.root} --out {tree}`) or use the environment it came from"
            )
        return Target(read_tree(tree), planned, str(tree), marker, stale)
    phase = arg or env.campus.phases[0].name
    planned = plan_phases(env, phase)
    with progress(f"rendering {phase}") as tick:
        rendered = render_plans(planned, env.name, tick)
    return Target(dict(rendered.files), planned, f"{env.name}/{phase} (rendered in memory)", None, None)
