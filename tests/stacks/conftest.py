"""Stack programs under Pulumi's mocks: every stack of every shipped phase, run once per session."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from pulumi_policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, StackValidationArgs

from kasbah.components import policies as pol
from kasbah.components.mocked import MockedRun, run_mocked
from kasbah.components.programs import cluster_program, halls_program, site_program
from kasbah.planning.halls import hall_group
from tests.conftest import CAMPUS, TINY, planned

ENVIRONMENTS = {"campus": CAMPUS, "tiny": TINY}
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n"


def phases(env: str) -> list[str]:
    return [p.phase for p in planned(ENVIRONMENTS[env])]


def clusters(env: str, phase: str) -> list[str]:
    plan = next(p for p in planned(ENVIRONMENTS[env]) if p.phase == phase)
    return [c.name for c in plan.clusters]


def site_stack(env: str) -> str:
    return f"organization/kasbah-site/{env}"


@cache
def site(env: str, phase: str) -> MockedRun:
    return run_mocked(
        site_program,
        project="kasbah-site",
        stack=env,
        config={"environment": f"environments/{env}", "phase": phase},
    )


@cache
def cluster(env: str, phase: str, name: str) -> MockedRun:
    return run_mocked(
        cluster_program,
        project="kasbah-cluster",
        stack=f"{env}-{name}",
        config={"environment": f"environments/{env}", "phase": phase, "cluster": name, "siteStack": site_stack(env)},
        stack_outputs={site_stack(env): site(env, phase).outputs},
    )


def hall_groups(env: str, phase: str) -> list[int]:
    """The hall groups of the phase that have a stack of their own (group 0 is the site stack's)."""
    plan = next(p for p in planned(ENVIRONMENTS[env]) if p.phase == phase)
    return sorted({hall_group(h.index) for h in plan.halls} - {0})


def hall_stack(env: str, group: int) -> str:
    """A hall group's stack name (`stacks/halls/Pulumi.<name>.yaml`)."""
    return f"{env}-halls-{group}"


@cache
def halls(env: str, phase: str, group: int) -> MockedRun:
    return run_mocked(
        halls_program,
        project="kasbah-halls",
        stack=hall_stack(env, group),
        config={"environment": f"environments/{env}", "phase": phase, "hallGroup": group, "siteStack": site_stack(env)},
        stack_outputs={site_stack(env): site(env, phase).outputs},
    )


def every_hall_stack() -> list[tuple[str, str, int]]:
    """(environment, phase, hall group) for every hall stack of every shipped phase."""
    return [(env, phase, g) for env in ENVIRONMENTS for phase in phases(env) for g in hall_groups(env, phase)]


def every_stack() -> list[tuple[str, str, str | None]]:
    """(environment, phase, cluster or None for the site) for every stack of every shipped phase."""
    out: list[tuple[str, str, str | None]] = []
    for env in ENVIRONMENTS:
        for phase in phases(env):
            out.append((env, phase, None))
            out.extend((env, phase, c) for c in clusters(env, phase))
    return out


def run_of(env: str, phase: str, name: str | None) -> MockedRun:
    return site(env, phase) if name is None else cluster(env, phase, name)


def policy_resources(run: MockedRun, protect: bool | None = None) -> list[PolicyResource]:
    """What the policy pack would see of a mocked run (inputs and the protect option)."""
    out = []
    for urn, r in run.resources.items():
        opts = PolicyResourceOptions(
            protect=protect if protect is not None else urn in run.protected,
            ignore_changes=[],
            delete_before_replace=None,
            aliases=[],
            custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
            additional_secret_outputs=[],
        )
        out.append(PolicyResource(r.type, r.public_inputs, urn, r.name, opts, None, None, [], {}))
    return out


def validate(policy: Any, resources: list[PolicyResource], config: dict[str, Any] | None = None) -> list[str]:
    """Run a stack policy (or a resource policy over each resource); the violation messages."""
    from pulumi_policy import ResourceValidationArgs, StackValidationPolicy

    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    from pulumi_policy.policy import _NotApplicableError

    if isinstance(policy, StackValidationPolicy):
        try:
            policy.validate(StackValidationArgs(resources, config or {}), report)
        except _NotApplicableError:
            return ["<not applicable>"]
    else:
        for r in resources:
            policy.validate(
                ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, None, config or {}), report
            )
    return found


def export_state(resources: list[PolicyResource], path: Path) -> str:
    """A `pulumi stack export` document holding these records as deployed."""
    doc = {
        "version": 3,
        "deployment": {
            "resources": [
                {"urn": r.urn, "type": r.resource_type, "inputs": dict(r.props), "outputs": dict(r.props)}
                for r in resources
                if r.resource_type == pol.RECORD
            ]
        },
    }
    path.write_text(json.dumps(doc))
    return str(path)
