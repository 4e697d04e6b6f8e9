"""Render every artifact of one phase from its Plan (and the plans before it, for the report)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kasbah.planning.model import Plan
from kasbah.rendering.backups import render_backups
from kasbah.rendering.bootstrap import render_bootstrap
from kasbah.rendering.endpoints import render_bundle, role_defaults
from kasbah.rendering.inventory import render_inventory
from kasbah.rendering.kubernetes import render_clusters
from kasbah.rendering.metering import render_metering
from kasbah.rendering.provisioning import render_provisioning
from kasbah.rendering.report import render_report
from kasbah.rendering.schedules import render_schedules
from kasbah.rendering.sinks import render_sinks
from kasbah.rendering.tree import Rendered, assemble
from kasbah.resources import roles

Step = Callable[[str], None]


def render_plans(
    plans: list[Plan], environment: str, step: Step | None = None, previous: Mapping[str, bytes] | None = None
) -> Rendered:
    """All artifacts of plans[-1]; `step` is told which part is being rendered (for progress).

    `previous`: the provisioning files of the tree this one replaces (`rendering.provisioning.previous_files`),
    so that a DNS zone keeps its serial while its content stays the same.
    """
    plan = plans[-1]
    tick = step or (lambda _: None)
    parts: dict[str, dict[str, bytes]] = {}
    tick("Kubernetes manifests")
    parts["clusters"], platforms = render_clusters(plan)
    tick("inventory")
    parts["inventory"] = render_inventory(plan)
    tick("bootstrap")
    parts["bootstrap"] = dict(sorted({**render_bootstrap(plan), **platforms}.items()))
    tick("provisioning")
    parts["provisioning"] = render_provisioning(plan, previous)
    tick("metering rules and sinks")
    to_sinks, logging = render_sinks(plan)
    parts["metering"] = {**render_metering(plan), **to_sinks}
    if logging:
        parts["logging"] = logging
    tick("backups")
    backups = render_backups(plan)
    if backups:
        parts["backups"] = backups
    tick("schedules")
    parts["schedules"] = render_schedules(plan)
    tick("report")
    parts["report"] = render_report(plans)
    tick("air-gap bundle")
    rendered = {f"{prefix}/{path}": data for prefix, part in parts.items() for path, data in part.items()}
    parts["bundle"] = render_bundle(plan, rendered, role_defaults(roles()))
    return assemble(plans, parts, environment)
