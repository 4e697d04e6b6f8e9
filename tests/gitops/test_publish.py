"""`.ci/publish-rendered` against a real bare repository: the branch holds what GitOps reads, nothing else."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from kasbah.rendering.phase import render_plans
from kasbah.rendering.tree import write_tree
from tests.conftest import ROOT, TINY, planned


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


def test_only_the_per_cluster_trees_are_published(tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    _git(tmp_path, "init", "-q", "--bare", str(origin))
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "publish-rendered", repo / ".ci" / "publish-rendered")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "source")
    _git(repo, "remote", "add", "origin", str(origin))
    plans = list(planned(TINY))
    for i, plan in enumerate(plans):
        write_tree(repo / "rendered" / "tiny" / plan.phase, render_plans(plans[: i + 1], "tiny").files)

    run = subprocess.run([str(repo / ".ci" / "publish-rendered")], cwd=repo, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    published = _git(origin, "ls-tree", "-r", "--name-only", "rendered").split()
    assert published, "nothing was published"
    assert {p.split("/clusters/")[0] for p in published} == {f"tiny/{p.phase}" for p in plans}
    assert all("/clusters/" in p for p in published)
    # exactly each phase's per-cluster tree, the path each cluster's sync object names
    for plan in plans:
        for c in plan.clusters:
            tree = repo / "rendered" / "tiny" / plan.phase / "clusters" / c.name
            files = sorted(f"{c.gitops_path}/{p.relative_to(tree).as_posix()}" for p in tree.rglob("*") if p.is_file())
            assert [p for p in published if p.startswith(c.gitops_path + "/")] == files
    # a second publish of the same trees adds no commit
    again = subprocess.run([str(repo / ".ci" / "publish-rendered")], cwd=repo, capture_output=True, text=True)
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert _git(origin, "rev-list", "--count", "rendered").strip() == "1"
