"""Run the node playbooks over a rendered inventory: one ansible-runner per slice, several at once.

Each slice of `inventory/index.json` is a self-contained inventory of whole scalable units, so
slices run independently: a host that fails is reported with its task and message while the
other hosts of its slice and every other slice go on (the playbooks set no `any_errors_fatal`).
Per-host results come from ansible-runner's events; each slice keeps its own artifacts directory
(stdout, events, the command line) for later reading.

The same unit runs on a fleet scale engine: one AWX / Automation Platform job template per
slice file (or one job with job slicing over the whole `all/` directory), or one Kubernetes Job
per slice running `ansible-runner run` on a copy of this project.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kasbah.resources import shipped

# The playbooks `kasbah configure` knows, by the name users type.
PLAYBOOKS = {
    "site": "site.yml",
    # the lean pass on nodes booted from their pool image (Plan.images): only the per-node tasks
    "node": "node.yml",
    "scale-out": "scale_out.yml",
    "rolling-upgrade": "rolling_upgrade.yml",
    "upgrade": "upgrade.yml",
    "burn-in": "burn_in.yml",
    "commission": "commission.yml",
    "decommission": "decommission.yml",
    "credentials": "credentials.yml",
    "etcd-restore": "etcd_restore.yml",
    "certificates": "certificates.yml",
}
# Tags a playbook runs with unless the user names others: the lean pass is the `node`-tagged tasks of the roles
DEFAULT_TAGS = {"node": "node"}
DEFAULT_PARALLEL = 4
_FAILED_EVENTS = {"runner_on_failed": "failed", "runner_on_unreachable": "unreachable"}


class ConfigureError(ValueError):
    """The run cannot start as asked; the message says what to change."""


def playbooks_dir() -> Path:
    """The project directory: $KASBAH_PLAYBOOKS, or the playbooks kasbah ships (checkout or wheel)."""
    env = os.environ.get("KASBAH_PLAYBOOKS")
    path = Path(env) if env else shipped("playbooks")
    if not (path / "site.yml").is_file():
        raise ConfigureError(
            f"no playbooks at {path}; fix: reinstall kasbah (the wheel ships them) or set KASBAH_PLAYBOOKS"
        )
    return path


@dataclass(frozen=True, slots=True)
class SliceRef:
    name: str
    path: Path
    hosts: tuple[str, ...]
    groups: frozenset[str]
    rack_sizes: tuple[int, ...]  # hosts per rack, the unit of a rolling upgrade


def read_slices(tree: Path) -> list[SliceRef]:
    """The inventory slices of a rendered tree, with their host and group names."""
    index_path = tree / "inventory" / "index.json"
    try:
        index = json.loads(index_path.read_text())
    except FileNotFoundError:
        raise ConfigureError(
            f"{index_path} is missing; fix: render the phase first (`kasbah render PHASE --out {tree}`)"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigureError(f"{index_path}: not valid JSON ({exc}); fix: render the phase again") from None
    out = []
    for entry in index.get("slices", []):
        path = tree / "inventory" / entry["path"]
        doc = json.loads(path.read_text())
        children = doc["all"]["children"]
        hosts: dict[str, None] = {}
        for group in children.values():
            hosts.update(dict.fromkeys((group or {}).get("hosts") or {}))
        racks = tuple(len((g or {}).get("hosts") or {}) for n, g in children.items() if n.startswith("rack_"))
        out.append(SliceRef(entry["name"], path, tuple(hosts), frozenset(children), racks))
    return out


_PATTERN_SPLIT = re.compile(r"[,:]")


def slice_matches(part: SliceRef, limit: str | None) -> bool:
    """Whether an Ansible `--limit` pattern can select any host of the slice (names and globs)."""
    if not limit:
        return True
    positive = [p for p in _PATTERN_SPLIT.split(limit) if p and not p.startswith(("!", "&"))]
    if not positive:
        return True  # only exclusions or intersections: let Ansible decide
    for pattern in positive:
        if pattern.startswith("~"):
            regex = re.compile(pattern[1:])
            if any(regex.search(n) for n in (*part.hosts, *part.groups)):
                return True
        elif any(fnmatch.fnmatchcase(n, pattern) for n in (*part.hosts, *part.groups)) or pattern == "all":
            return True
    return False


@dataclass(slots=True)
class HostResult:
    host: str
    slice: str
    ok: int = 0
    changed: int = 0
    skipped: int = 0
    failed: bool = False
    unreachable: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)  # (task, message)
    changed_tasks: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # debug lines (check-only notices)

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"


@dataclass(slots=True)
class SliceResult:
    name: str
    status: str  # successful | failed | timeout | canceled | error | skipped
    rc: int | None
    seconds: float
    artifacts: Path | None
    hosts: dict[str, HostResult]
    tasks: int = 0
    error: str | None = None  # why the slice failed when no host result says it


@dataclass(slots=True)
class RunResult:
    playbook: str
    slices: list[SliceResult]

    @property
    def hosts(self) -> list[HostResult]:
        return [h for s in self.slices for h in s.hosts.values()]

    @property
    def ok(self) -> bool:
        ran = [s for s in self.slices if s.status != "skipped"]
        return (
            bool(ran)
            and all(s.status == "successful" for s in ran)
            and not any(h.failed or h.unreachable for h in self.hosts)
        )

    def failure_detail(self) -> str:
        """One line per failed or unreachable host (its failed tasks), or the slices' errors: for an error message."""
        failed = [
            f"{h.host}: {'; '.join(f'{t}: {m}' for t, m in h.failures) or ('unreachable' if h.unreachable else 'failed')}"
            for h in self.hosts
            if h.failed or h.unreachable
        ]
        return "\n  ".join(failed) or "; ".join(s.error or s.status for s in self.slices)

    def as_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.playbook,
            "ok": self.ok,
            "slices": [
                {
                    "name": s.name,
                    "status": s.status,
                    "rc": s.rc,
                    "seconds": round(s.seconds, 2),
                    "artifacts": str(s.artifacts) if s.artifacts else None,
                    "error": s.error,
                    "hosts": {
                        h.host: {
                            "status": h.status,
                            "ok": h.ok,
                            "changed": h.changed,
                            "skipped": h.skipped,
                            "changed_tasks": h.changed_tasks,
                            "failures": [{"task": t, "message": m} for t, m in h.failures],
                        }
                        for h in s.hosts.values()
                    },
                }
                for s in self.slices
            ],
        }


# progress(slice name, tasks started so far, host results so far)
Progress = Callable[[str, int, dict[str, HostResult]], None]


@dataclass(frozen=True, slots=True)
class RunOptions:
    playbook: str = "site"
    limit: str | None = None
    check: bool = False
    diff: bool = False
    tags: str | None = None
    skip_tags: str | None = None
    extra_vars: tuple[str, ...] = ()  # `key=value` or `@file`, as ansible-playbook takes them
    extra_inventories: tuple[Path, ...] = ()
    parallel: int = DEFAULT_PARALLEL
    forks: int | None = None
    envvars: tuple[tuple[str, str], ...] = ()

    def cmdline(self) -> list[str]:
        args: list[str] = []
        if self.check:
            args.append("--check")
        if self.diff:
            args.append("--diff")
        tags = self.tags or DEFAULT_TAGS.get(self.playbook)
        if tags:
            args += ["--tags", tags]
        if self.skip_tags:
            args += ["--skip-tags", self.skip_tags]
        for ev in self.extra_vars:
            args += ["--extra-vars", ev]
        if self.forks:
            args += ["--forks", str(self.forks)]
        return args


def _message(res: dict[str, Any]) -> str:
    for key in ("msg", "stderr", "reason"):
        value = res.get(key)
        if value:
            return str(value).strip().splitlines()[0][:500] if isinstance(value, str) else str(value)[:500]
    return json.dumps(res, default=str)[:500]


class _Collector:
    """Turns one slice's ansible-runner events into host results."""

    def __init__(self, part: SliceRef, progress: Progress | None) -> None:
        self.part = part
        self.hosts: dict[str, HostResult] = {}
        self.tasks = 0
        self.progress = progress
        self.lock = threading.Lock()

    def host(self, name: str) -> HostResult:
        h = self.hosts.get(name)
        if h is None:
            h = self.hosts[name] = HostResult(name, self.part.name)
        return h

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        with self.lock:
            if kind == "playbook_on_task_start":
                self.tasks += 1
            elif kind.startswith("runner_on_") and "host" in data and not kind.startswith("runner_on_start"):
                h = self.host(data["host"])
                res = data.get("res") or {}
                task = data.get("task", "")
                if kind == "runner_on_ok":
                    h.ok += 1
                    if res.get("changed"):
                        h.changed += 1
                        h.changed_tasks.append(task)
                    if data.get("task_action") in ("debug", "ansible.builtin.debug") and res.get("msg"):
                        h.messages.append(str(res["msg"]))
                elif kind == "runner_on_skipped":
                    h.skipped += 1
                elif kind in _FAILED_EVENTS and not data.get("ignore_errors"):
                    setattr(h, _FAILED_EVENTS[kind], True)
                    h.failures.append((task, _message(res)))
        if self.progress is not None:
            self.progress(self.part.name, self.tasks, self.hosts)
        return True  # keep the event on disk too


def run_slices(
    tree: Path,
    options: RunOptions,
    artifacts: Path,
    progress: Progress | None = None,
) -> RunResult:
    """Run one playbook over every slice of `tree` that `options.limit` can select."""
    import ansible_runner  # ansible-runner is heavy to import; only configure needs it

    if options.playbook not in PLAYBOOKS:
        raise ConfigureError(f"unknown playbook {options.playbook!r}; choose one of {', '.join(PLAYBOOKS)}")
    if options.parallel < 1:
        raise ConfigureError(f"--parallel is {options.parallel}; fix: run at least 1 slice at a time")
    for extra in options.extra_inventories:
        if not extra.exists():
            raise ConfigureError(f"{extra}: no such inventory file; fix: give an existing file to -i")
    project = playbooks_dir()
    parts = read_slices(tree)
    if not parts:
        raise ConfigureError(f"{tree}: the inventory has no slices (no hosts in this phase)")
    selected = [p for p in parts if slice_matches(p, options.limit)]
    if not selected:
        raise ConfigureError(f"--limit {options.limit!r} matches no host or group of {tree}/inventory")
    if options.playbook in ("rolling-upgrade", "upgrade") and not any(
        v.startswith("rolling_upgrade_batch=") for v in options.extra_vars
    ):
        sizes = sorted({n for p in selected for n in p.rack_sizes if n})
        if len(sizes) != 1:
            raise ConfigureError(
                f"the selected racks hold {', '.join(map(str, sizes))} hosts, so a batch of one rack has no single "
                "size; fix: limit the run to one pool (-l pool_NAME) and pass -x rolling_upgrade_batch=<hosts a rack>"
            )
        options = replace(options, extra_vars=(*options.extra_vars, f"rolling_upgrade_batch={sizes[0]}"))
    artifacts.mkdir(parents=True, exist_ok=True)
    env = {"ANSIBLE_CONFIG": str(project / "ansible.cfg"), "PATH": _path_with_ansible(), **dict(options.envvars)}

    def one(part: SliceRef) -> SliceResult:
        collector = _Collector(part, progress)
        private = artifacts / part.name
        private.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(project),
            playbook=PLAYBOOKS[options.playbook],
            inventory=[str(part.path.resolve()), *(str(p.resolve()) for p in options.extra_inventories)],
            limit=options.limit,
            cmdline=" ".join(shlex.quote(a) for a in options.cmdline()) or None,
            envvars=env,
            event_handler=collector,
            quiet=True,
            ident="run",
        )
        run_dir = private / "artifacts" / "run"
        error = None
        if runner.status != "successful" and not any(h.failures for h in collector.hosts.values()):
            error = _tail(run_dir / "stdout") or f"ansible-playbook ended {runner.status} (rc {runner.rc})"
        return SliceResult(
            part.name,
            runner.status,
            runner.rc,
            time.perf_counter() - start,
            run_dir,
            collector.hosts,
            collector.tasks,
            error,
        )

    skipped = [SliceResult(p.name, "skipped", None, 0.0, None, {}) for p in parts if p not in selected]
    first: list[SliceRef] = []
    if options.playbook == "upgrade":
        # control planes before kubelets: the slices holding control-plane hosts one after the other, and the
        # others only once those all succeeded
        first = [p for p in selected if "control_plane" in p.groups]
        selected = [p for p in selected if p not in first]
    results = []
    for part in first:
        results.append(one(part))
        if results[-1].status != "successful":
            break
    if first and any(r.status != "successful" for r in results):
        skipped += [SliceResult(p.name, "skipped", None, 0.0, None, {}) for p in (*first[len(results) :], *selected)]
        selected = []
    if selected:
        with ThreadPoolExecutor(max_workers=min(options.parallel, len(selected))) as pool:
            results += list(pool.map(one, selected))
    order = {p.name: i for i, p in enumerate(parts)}
    return RunResult(options.playbook, sorted([*results, *skipped], key=lambda s: order[s.name]))


def _path_with_ansible() -> str:
    """PATH with this interpreter's bin directory first: ansible-playbook of a virtualenv that is not activated."""
    here = str(Path(sys.executable).parent)
    return os.pathsep.join([here, *(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != here)])


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())[:1000]


def check_only(hosts: Iterable[HostResult]) -> list[str]:
    """The check-only notices (packages whose repository check mode could not read), deduplicated."""
    seen: dict[str, None] = {}
    for h in hosts:
        for m in h.messages:
            if m.startswith("check-only:"):
                seen[m] = None
    return list(seen)


def summarize(result: RunResult) -> Sequence[tuple[str, int]]:
    counts: dict[str, int] = {}
    for h in result.hosts:
        counts[h.status] = counts.get(h.status, 0) + 1
    return sorted(counts.items())
