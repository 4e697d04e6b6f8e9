"""A phase's rendered tree: every artifact in memory, then swapped into place in one step."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kasbah.planning.export import plan_to_dict, to_json
from kasbah.planning.model import Plan
from kasbah.rendering.templates import render

# 2: clusters/<c>/ holds only what the GitOps controller owns; bootstrap/<c>/platform/ what the stack owns
TREE_FORMAT = 2
MARKER = "kasbah.json"

Renderer = Callable[[Plan], dict[str, bytes]]
# What each top-level directory holds and who reads it (the tree's README).
PARTS = {
    "inventory": (
        "Ansible inventory in slices, grouped by hall, scalable unit, rack, pool, cluster, role",
        "`kasbah configure`, ansible-runner, AWX job slicing",
    ),
    "bootstrap": (
        "kubeadm init/join and kubelet configuration with the Plan's labels and taints; per cluster, `platform/`: "
        "the namespaces, Helm releases (pinned charts, values) and GitOps sync object the cluster stack owns",
        "the kubeadm role of the node playbooks; the cluster stack (`pulumi up`), `kasbah apply --bootstrap`",
    ),
    "metering": (
        "per cluster, Prometheus recording rules of each tenant's use (GPUs admitted and requested by pool, quota, "
        "admitted workloads, GPU utilisation) from Kueue, kube-state-metrics and the DCGM exporter",
        "each cluster's own Prometheus (rule_files, or a PrometheusRule); `kasbah usage` reads the recorded series "
        "(each carries its cluster) where they meet, or from each cluster's Prometheus",
    ),
    "logging": (
        "per cluster, the log collector's configuration (Vector): the pods' logs to the declared log sinks only, a "
        "tenant's own sink receiving its namespaces' logs alone",
        "the cluster's log collector (a Vector DaemonSet of the platform)",
    ),
    "backups": (
        "per cluster, each tenant's backup schedule: its namespaces, the target in its jurisdictions (a directory of "
        "the campus's storage), how often, how many kept",
        "the site's backup tool (Velero with a BackupStorageLocation a target, or its storage's snapshots)",
    ),
    "bundle": (
        "the air-gap bundle: `manifest.json` lists what the site's mirrors must hold for the phase (charts by "
        "version, images as referenced, package repositories, the node image by sha256) and where each is served",
        "whoever fills the mirrors before `pulumi up`; `kasbah verify` proves every endpoint is on them",
    ),
    "provisioning": (
        "day 0: Kea DHCP for the BMCs (per hall), Knot DNS zones (forward and reverse), and per rack each node's "
        "identity, BMC, MACs and cloud-init network-config",
        "the site's DHCP and DNS servers, `kasbah provision` (Ironic), the node_network role (same template)",
    ),
    "schedules": ("rack, IP and cabling schedules (CSV)", "data-hall and network engineers"),
    "report": ("power, cooling, fabric and tenant summaries with pictures", "people"),
}


class RenderError(Exception):
    """The output cannot be written where asked: printed as is, exit 2."""


@dataclass(frozen=True)
class Rendered:
    plan: Plan
    files: dict[str, bytes]  # relative path -> content, the marker included

    @property
    def bytes(self) -> int:
        return sum(len(v) for v in self.files.values())


def plan_digest(plan: Plan) -> str:
    return hashlib.sha256(to_json(plan_to_dict(plan), compact=True).encode()).hexdigest()


def assemble(plans: list[Plan], parts: Mapping[str, Mapping[str, bytes]], environment: str) -> Rendered:
    """Put each renderer's files under its directory and add the marker that describes the tree."""
    plan = plans[-1]
    files: dict[str, bytes] = {}
    for prefix, part in parts.items():
        for path, data in part.items():
            files[f"{prefix}/{path}"] = data
    digest = plan_digest(plan)
    files["README.md"] = render(
        "tree/README.md.j2",
        site=plan.site,
        phase=plan.phase,
        environment=environment,
        digest=digest,
        clusters=plan.clusters,
        parts=[(p, *PARTS[p]) for p in parts if p in PARTS],
    ).encode()
    files[".yamllint"] = render("tree/yamllint.j2").encode()
    files = dict(sorted(files.items()))
    marker: dict[str, Any] = {
        "format": TREE_FORMAT,
        "environment": environment,
        "site": plan.site,
        "phase": plan.phase,
        "plan_sha256": digest,
        "clusters": [
            {
                "name": c.name,
                "kubernetes_version": c.kubernetes_version,
                "path": f"clusters/{c.name}",
                "platform": f"bootstrap/{c.name}/platform",
                "gitops_path": c.gitops_path,
            }
            for c in plan.clusters
        ],
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in files.items()},
    }
    files[MARKER] = (json.dumps(marker, indent=1) + "\n").encode()
    return Rendered(plan, files)


def read_marker(root: Path) -> dict[str, Any]:
    path = root / MARKER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RenderError(
            f"{root}: not a rendered tree (no {MARKER}); render one with `kasbah render PHASE --out {root}`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RenderError(f"{path}: unreadable tree marker: {exc}; render the tree again") from None
    if not isinstance(data, dict) or data.get("format") != TREE_FORMAT:
        raise RenderError(
            f"{path}: tree format {data.get('format') if isinstance(data, dict) else '?'}, this kasbah reads {TREE_FORMAT}; render it again"
        )
    return data


# ---------------------------------------------------------------------------- atomic replacement
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2); False where the call does not exist."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the filesystem cannot exchange
            return False
        raise OSError(errno, os.strerror(errno), str(b))
    return True


def write_tree(out: Path, files: Mapping[str, bytes]) -> None:
    """Write the whole tree beside `out`, then swap it in: readers see the old tree or the new, never a mix.

    Refuses to replace a non-empty directory that is not a rendered tree, so a wrong `--out` never
    deletes someone's work.
    """
    out = out.absolute()
    if out.is_symlink():
        raise RenderError(f"{out} is a symbolic link; fix: give --out the directory it points to ({out.resolve()})")
    try:
        _write_tree(out, files)
    except OSError as exc:
        raise RenderError(
            f"cannot write {out}: {exc.strerror or exc}; the previous tree, if any, is unchanged"
        ) from exc


def _write_tree(out: Path, files: Mapping[str, bytes]) -> None:
    if out.exists():
        if not out.is_dir():
            raise RenderError(f"{out} exists and is not a directory; fix: give --out a directory path")
        if not (out / MARKER).is_file() and any(out.iterdir()):
            raise RenderError(
                f"{out} is not empty and is not a kasbah render (no {MARKER}); refusing to replace it; "
                "fix: give --out a new or empty directory, or one `kasbah render` wrote"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".new", dir=out.parent))
    try:
        made: set[Path] = set()
        for rel, data in files.items():
            path = tmp / rel
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            path.write_bytes(data)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; the tree is an ordinary directory
        os.sync()  # the new tree is on disk before it replaces the old one
        if out.exists() and not any(out.iterdir()):
            out.rmdir()
        if not out.exists():
            tmp.rename(out)
            return
        if not _exchange(tmp, out):
            old = out.with_name(f".{out.name}.{os.getpid()}.old")
            out.rename(old)
            tmp.rename(out)
            tmp = old
        shutil.rmtree(tmp)  # now the previous tree
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
