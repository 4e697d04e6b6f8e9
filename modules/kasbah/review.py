"""What a change to the repository does, for a pull request: `kasbah review --base DIR`.

The base is a checkout of the target branch (`git worktree add`). For every environment and
phase the head has, both sides are planned and rendered with the head's code: the plan diff
(`planning.diff`: what is added, retired, and anything changed or removed without a decommission),
the totals, and which rendered files differ. Then which Pulumi stacks the change touches, so a
pipeline previews only those: a stack is affected when its configuration file changed, when the
code every stack runs changed (package, stack programs, playbooks, templates), or when what it
deploys changed: for a site or hall stack, anything rendered for its environment at its phase; for a
cluster stack, its cluster's bootstrap files (the platform part included) or node inventory (its
GitOps tree is the GitOps controller's, published after the stacks are up). For each stack it also
says how far the change reaches the nodes: how many racks are reconfigured (their configuration
digest moved: inventory variables or the playbooks) and in how many waves (`kasbah.rollout`).

Everything is computed in memory; the markdown is deterministic (no times, no paths of the
machine), so it is golden-tested.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kasbah.config import ConfigError, load_environment
from kasbah.planning import diff_plans, plan_environment, plan_to_dict
from kasbah.planning.diff import PlanDiff
from kasbah.planning.model import Plan
from kasbah.rendering.phase import render_plans
from kasbah.rollout import describe, rack_digests, reach

# What every stack runs: a change here previews every stack
CODE = (
    "modules",
    "playbooks",
    "templates",
    "stacks/policy",
    "stacks/site/__main__.py",
    "stacks/site/Pulumi.yaml",
    "stacks/halls/__main__.py",
    "stacks/halls/Pulumi.yaml",
    "stacks/cluster/__main__.py",
    "stacks/cluster/Pulumi.yaml",
    "pyproject.toml",
)
TOTALS = (("it_load_mw", "IT MW"), ("gpus", "GPUs"), ("nodes", "nodes"), ("racks", "racks"))


@dataclass
class PhaseReview:
    environment: str
    phase: str
    new: bool  # the base has no such phase
    diff: PlanDiff | None
    changed_files: list[str]
    base_error: str | None = None

    @property
    def stable(self) -> bool:
        """Nothing changed without a decommission; a base that would not load proves nothing, so it is not."""
        return self.base_error is None and (self.diff is None or self.diff.stable)


@dataclass
class Stack:
    project: str  # site | halls | cluster
    name: str
    environment: str
    phase: str
    cluster: str | None
    why: list[str] = field(default_factory=list)
    nodes: str = ""  # how far the change reaches the stack's racks (`kasbah.rollout.describe`)

    @property
    def directory(self) -> str:
        return f"stacks/{self.project}"


@dataclass
class Review:
    phases: list[PhaseReview]
    removed_phases: list[str]
    stacks: list[Stack]
    code_changed: list[str]

    @property
    def stable(self) -> bool:
        return all(p.stable for p in self.phases)

    def affected(self) -> list[dict[str, str]]:
        return [
            {"project": s.project, "stack": s.name, "dir": s.directory, "why": "; ".join(s.why), "nodes": s.nodes}
            for s in self.stacks
            if s.why
        ]

    def as_dict(self) -> dict[str, Any]:
        """What `kasbah review --json` prints: each phase's verdict, plan diff and changed files; the stacks."""
        return {
            "stable": self.stable,
            "phases": [
                {
                    "environment": p.environment,
                    "phase": p.phase,
                    "new": p.new,
                    "stable": p.stable,
                    "base_error": p.base_error,
                    "diff": p.diff.as_dict() if p.diff else None,
                    "changed_files": p.changed_files,
                }
                for p in self.phases
            ],
            "removed_phases": self.removed_phases,
            "code_changed": self.code_changed,
            "affected": self.affected(),
        }


def _digest(root: Path, rel: str) -> dict[str, str]:
    path = root / rel
    if path.is_file():
        return {rel: hashlib.sha256(path.read_bytes()).hexdigest()}
    if not path.is_dir():
        return {}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not any(part == "__pycache__" or part.endswith(".egg-info") for part in p.parts)
    }


def _environments(root: Path) -> list[str]:
    base = root / "environments"
    return sorted(p.name for p in base.iterdir() if (p / "site.yaml").is_file()) if base.is_dir() else []


def _stacks(root: Path) -> list[Stack]:
    out = []
    for project in ("site", "halls", "cluster"):
        for f in sorted((root / "stacks" / project).glob("Pulumi.*.yaml")):
            config = (yaml.safe_load(f.read_text()) or {}).get("config") or {}
            env = str(config.get("kasbah:environment", "")).rstrip("/").split("/")[-1]
            out.append(
                Stack(
                    project,
                    f.name[len("Pulumi.") : -len(".yaml")],
                    env,
                    str(config.get("kasbah:phase", "")),
                    config.get("kasbah:cluster"),
                )
            )
    return out


def _render(root: Path, env_name: str, phase: str) -> tuple[Plan, dict[str, bytes]]:
    env = load_environment(root / "environments" / env_name)
    plans = plan_environment(env, phase)
    rendered = render_plans(plans, env.name)
    files = {k: v for k, v in rendered.files.items() if k != "kasbah.json"}  # the marker names the plan digest
    return plans[-1], files


def review(base: Path, head: Path, environments: list[str] | None = None, all_stacks: str | None = None) -> Review:
    """`all_stacks`: a reason to mark every stack affected (no deployed baseline to compare with)."""
    envs = environments or _environments(head)
    phases: list[PhaseReview] = []
    removed: list[str] = []
    rendered_changes: dict[tuple[str, str], list[str]] = {}
    # (environment, phase) -> (the head's plan, rack digests before, rack digests after)
    digests: dict[tuple[str, str], tuple[Plan, dict[str, str], dict[str, str]]] = {}
    for env_name in envs:
        head_env = load_environment(head / "environments" / env_name)  # head must be valid: ConfigError
        head_phases = [p.name for p in head_env.campus.phases]
        try:
            base_phases = (
                [p.name for p in load_environment(base / "environments" / env_name).campus.phases]
                if (base / "environments" / env_name / "site.yaml").is_file()
                else []
            )
            base_error = None
        except ConfigError as exc:
            lines = exc.render().splitlines()  # "N problems...:", then each problem and its fix
            first = (lines[1] if len(lines) > 1 else lines[0]).replace(f"{base}/", "")  # relative to the checkout
            base_phases, base_error = [], f"the base's environment does not load, so nothing was compared: {first}"
        removed += [f"{env_name}/{p}" for p in base_phases if p not in head_phases]
        for phase in head_phases:
            new_plan, new_files = _render(head, env_name, phase)
            after, _ = rack_digests(new_plan, head / "playbooks")
            if phase not in base_phases:
                changed = sorted(new_files)
                phases.append(PhaseReview(env_name, phase, True, None, changed, base_error))
                digests[(env_name, phase)] = (new_plan, {}, after)
            else:
                old_plan, old_files = _render(base, env_name, phase)
                changed = sorted(k for k in set(old_files) | set(new_files) if old_files.get(k) != new_files.get(k))
                diff = diff_plans(plan_to_dict(old_plan), plan_to_dict(new_plan), plans=(old_plan, new_plan))
                phases.append(PhaseReview(env_name, phase, False, diff, changed))
                before, _ = rack_digests(old_plan, base / "playbooks")
                digests[(env_name, phase)] = (new_plan, before, after)
            rendered_changes[(env_name, phase)] = changed
    code_changed: list[str] = []
    for rel in CODE:
        a, b = _digest(base, rel), _digest(head, rel)
        code_changed += sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    stacks = _stacks(head)
    for s in stacks:
        config = f"stacks/{s.project}/Pulumi.{s.name}.yaml"
        if _digest(base, config) != _digest(head, config):
            s.why.append(f"{config} changed")
        if all_stacks:
            s.why.append(all_stacks)
        if code_changed:
            s.why.append("code every stack runs changed")
        changed = rendered_changes.get((s.environment, s.phase), [])
        if s.cluster:
            mine = [f for f in changed if f.startswith((f"bootstrap/{s.cluster}/", "inventory/"))]
            if mine:
                s.why.append(f"{len(mine)} rendered file(s) of cluster {s.cluster} at {s.phase} changed")
        elif changed:
            s.why.append(f"{len(changed)} rendered file(s) of {s.environment}/{s.phase} changed")
        if (s.environment, s.phase) in digests and s.project != "halls":  # hall stacks configure no racks
            plan, before, after = digests[(s.environment, s.phase)]
            pools = {p.name for p in plan.pools if p.cluster == s.cluster}  # site stacks: cluster None
            s.nodes = describe(reach(plan, before, after, pools))
    return Review(phases, removed, stacks, code_changed)


# --------------------------------------------------------------------------- markdown


def _num(v: float) -> str:
    return f"{v:,.2f}" if isinstance(v, float) else f"{v:,}"


def _fromto(d: PlanDiff, key: str) -> str:
    a, b = d.totals[key]
    return _num(b) if a == b else f"{_num(a)} → {_num(b)}"


def markdown(r: Review, limit: int = 25) -> str:
    lines = ["## kasbah review", ""]
    if r.stable:
        lines.append(
            "Every phase is **stable**: nothing that exists is renamed, moved, renumbered or removed without a decommission."
        )
    else:
        bad = [f"{p.environment}/{p.phase}" for p in r.phases if not p.stable]
        lines.append(
            f"**NOT STABLE**: {', '.join(bad)} change(s) or remove what exists without a decommission (details below)."
        )
    lines += [
        "",
        "| environment | phase | stable | " + " | ".join(t for _, t in TOTALS) + " | rendered files changed |",
    ]
    lines.append("|---|---|---|" + "---:|" * len(TOTALS) + "---:|")
    for p in r.phases:
        if p.base_error:
            cells = ["**base does not load**", *([""] * len(TOTALS))]
        elif p.diff is None:
            cells = ["new phase", *([""] * len(TOTALS))]
        else:
            cells = ["yes" if p.stable else "**no**", *(_fromto(p.diff, k) for k, _ in TOTALS)]
        lines.append(f"| {p.environment} | {p.phase} | " + " | ".join(cells) + f" | {len(p.changed_files):,} |")
    if r.removed_phases:
        lines += ["", f"Phases the base has and this change removes: {', '.join(r.removed_phases)}."]
    for p in r.phases:
        if p.diff is None and not p.base_error:
            continue
        d = p.diff
        body: list[str] = []
        if p.base_error:
            body.append(f"- {p.base_error}")
        if d is not None:
            for kind in ("halls", "clusters", "pools", "tenants"):
                if d.added.get(kind):
                    body.append(f"- added {kind}: {', '.join(d.added[kind])}")
            for kind in ("scalable_units", "racks", "nodes", "switches"):
                if d.added.get(kind):
                    body.append(f"- added {len(d.added[kind]):,} {kind.replace('_', ' ')}")
            for ret in d.retired:
                body.append(f"- decommissioned {ret['kind']} {ret['name']}: {ret['reason']}")
            for t in d.tenancy:
                detail = f": {t['detail']}" if t["detail"] else ""
                body.append(f"- tenancy ({t['change']}, no construction): {t['action']} {t['tenant']}{detail}")
            for fabric, links in d.repatched.items():
                moved = ", ".join(f"{n:,} {link}" for link, n in links.items())
                body.append(f"- **re-patched cables** in {fabric} (it grew spines or cores): {moved}")
            if d.violations:
                body.append(f"- **{len(d.violations)} change(s) without a decommission:**")
                body += [f"  - {v}" for v in d.violations[:limit]]
                if len(d.violations) > limit:
                    body.append(f"  - … and {len(d.violations) - limit} more (`kasbah diff --json`)")
        if p.changed_files:
            shown = ", ".join(f"`{f}`" for f in p.changed_files[:limit])
            more = f" and {len(p.changed_files) - limit} more" if len(p.changed_files) > limit else ""
            body.append(f"- rendered files changed: {shown}{more}")
        if body:
            lines += ["", f"### {p.environment} / {p.phase}", "", *body]
    lines += ["", "### Pulumi stacks", ""]
    if r.code_changed:
        shown = ", ".join(f"`{f}`" for f in r.code_changed[:limit])
        more = f" and {len(r.code_changed) - limit} more" if len(r.code_changed) > limit else ""
        lines += [
            f"Code every stack runs changed: {shown}{more}. Both sides above were planned and rendered with "
            "this change's code; what the code itself changes in plans and trees shows in the golden files "
            "(`tests/planning/golden`, `tests/rendering/golden`) this change updates.",
            "",
        ]
    lines += ["| stack | environment | phase | preview? | why | nodes |", "|---|---|---|---|---|---|"]
    for s in r.stacks:
        lines.append(
            f"| kasbah-{s.project}/{s.name} | {s.environment} | {s.phase} | {'yes' if s.why else 'no'} | "
            f"{'; '.join(s.why) or 'nothing it deploys changed'} | {s.nodes or 'none reconfigured'} |"
        )
    return "\n".join(lines) + "\n"
