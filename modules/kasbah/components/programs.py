"""The stack programs: read the stack's config, plan the phase, create components, export outputs.

`stacks/site/__main__.py`, `stacks/halls/__main__.py` and `stacks/cluster/__main__.py` only call
`site_program()`, `halls_program()` and `cluster_program()`, so the programs run the same under `pulumi up`, in the mocked tests and in
the benchmark. Bad configuration stops the program with a `pulumi.RunError` naming the key and
the fix (Pulumi prints it without a traceback).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from kasbah.components.cluster import KubernetesCluster, KubernetesClusterArgs
from kasbah.components.controlplane import ControlPlane
from kasbah.components.controlplane import props as control_plane_props
from kasbah.components.ledger import Record, record_sha256
from kasbah.components.nodes import NodeConfigs, NodePoolArgs, NodeRun, ServicePool
from kasbah.components.provisioning import Day0, ProvisionRun
from kasbah.components.site import (
    DataHall,
    DataHallArgs,
    group_name,
    group_racks,
    group_record,
    hall_groups,
    ledger,
)
from kasbah.config import ConfigError, load_environment
from kasbah.planning import plan_environment
from kasbah.planning.halls import HALLS_PER_STACK
from kasbah.planning.model import Plan

NAMESPACE = "kasbah"


@dataclass(frozen=True)
class Settings:
    """A stack's `kasbah:*` configuration, resolved."""

    environment: Path
    phase: str
    tree: Path
    artifacts: Path
    skip_tags: tuple[str, ...]
    extra_inventories: tuple[str, ...]


def repo_root() -> Path:
    """The checkout the stacks live in (stacks/<project>/ is two levels below)."""
    return Path(__file__).resolve().parents[3]


def _path(value: str) -> Path:
    """Relative paths are relative to the checkout, whichever project directory runs the program."""
    path = Path(value)
    return path if path.is_absolute() else repo_root() / path


def settings(config: pulumi.Config | None = None) -> Settings:
    cfg = config or pulumi.Config(NAMESPACE)
    env_value = cfg.get("environment")
    phase = cfg.get("phase")
    if not env_value or not phase:
        missing = " and ".join(k for k, v in (("environment", env_value), ("phase", phase)) if not v)
        raise pulumi.RunError(
            f"kasbah:{missing} not set for stack {pulumi.get_stack()}; "
            "fix: pulumi config set kasbah:environment environments/campus; pulumi config set kasbah:phase phase-1"
        )
    environment = _path(env_value)
    if not (environment / "site.yaml").is_file():
        raise pulumi.RunError(
            f"kasbah:environment = {env_value!r}: no site.yaml at {environment}; "
            "fix: pulumi config set kasbah:environment environments/<name> (relative to the checkout)"
        )
    tree = cfg.get("renderedTree") or f"rendered/{environment.name}/{phase}"
    artifacts = cfg.get("artifacts") or ".kasbah/pulumi-runs"
    lists: dict[str, tuple[str, ...]] = {}
    for key, example in (("skipTags", "vendor"), ("extraInventories", "inventory/ssh.yml")):
        try:
            value = cfg.get_object(key) or []
        except pulumi.ConfigTypeError:  # not JSON: a bare word
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise pulumi.RunError(
                f"kasbah:{key} must be a list of strings; fix: pulumi config set --path 'kasbah:{key}[0]' {example}"
            )
        lists[key] = tuple(value)
    return Settings(
        environment,
        phase,
        _path(tree),
        _path(artifacts),
        lists["skipTags"],
        tuple(str(_path(v)) for v in lists["extraInventories"]),
    )


@functools.lru_cache(maxsize=8)
def _plans_cached(environment: Path, phase: str) -> tuple[Plan, ...]:
    try:
        return tuple(plan_environment(load_environment(environment), upto=phase))
    except KeyError as exc:
        raise pulumi.RunError(f"kasbah:phase: {exc.args[0]}") from None
    except ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None


def plans(s: Settings) -> tuple[Plan, ...]:
    """Plans of phases 1..`s.phase` (cached per process: the benchmark runs programs repeatedly)."""
    return _plans_cached(s.environment, s.phase)


def _playbooks() -> Path:
    from kasbah.runners.ansible import ConfigureError, playbooks_dir

    try:
        return playbooks_dir()
    except ConfigureError as exc:
        raise pulumi.RunError(str(exc)) from None


def _day0(cfg: pulumi.Config, plan: Plan) -> Day0 | None:
    """`kasbah:ironic` set: the stack provisions its racks through that Ironic before configuring them.

    `kasbah:bmcCredentials` names the BMC credentials file (mode 600) on the machine running pulumi up;
    `kasbah:deploy` (default true) deploys the site's node image (site.provisioning.image), false stops
    at `available`; `kasbah:sshKeys` lists public key files the configuration drive authorises.
    """
    from kasbah.runners.ironic import IronicError, load_credentials, public_keys

    url = cfg.get("ironic")
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise pulumi.RunError(
            f"kasbah:ironic = {url!r} is not Ironic's API URL; fix: pulumi config set kasbah:ironic http://<ironic>:6385"
        )
    creds = cfg.get("bmcCredentials")
    if not creds:
        raise pulumi.RunError(
            "kasbah:ironic is set but not kasbah:bmcCredentials; fix: pulumi config set kasbah:bmcCredentials "
            "/etc/kasbah/bmc.yaml (a mode-600 file: default or racks -> username, password; never the password itself)"
        )
    path = _path(creds)
    try:
        load_credentials(path)
    except IronicError as exc:
        raise pulumi.RunError(f"kasbah:bmcCredentials: {exc}") from None
    try:
        deploy = cfg.get_bool("deploy")
    except pulumi.ConfigTypeError:
        raise pulumi.RunError(
            "kasbah:deploy must be true or false; fix: pulumi config set kasbah:deploy false"
        ) from None
    if deploy is None:
        deploy = True
    if deploy and plan.image is None:
        raise pulumi.RunError(
            "kasbah:ironic deploys the node image, and site.provisioning.image is not set; fix: set it (kind, url "
            "on the site's mirror, checksum), or pulumi config set kasbah:deploy false to stop at `available`"
        )
    try:
        key_files = cfg.get_object("sshKeys") or []
    except pulumi.ConfigTypeError:
        key_files = None
    if not isinstance(key_files, list) or not all(isinstance(k, str) for k in key_files):
        raise pulumi.RunError(
            "kasbah:sshKeys must be a list of public key files; fix: pulumi config set --path 'kasbah:sshKeys[0]' "
            "~/.ssh/id_ed25519.pub"
        )
    keys: list[str] = []
    for f in key_files:
        try:
            keys.extend(public_keys(_path(f)))
        except IronicError as exc:
            raise pulumi.RunError(f"kasbah:sshKeys: {exc}") from None
    run = ProvisionRun(url, str(path), plan.image if deploy else None, tuple(keys))
    return _day0_racks(plan, run)


@functools.lru_cache(maxsize=8)
def _day0_racks(plan: Plan, run: ProvisionRun) -> Day0:
    return Day0.of(plan, run)


@functools.lru_cache(maxsize=8)
def _node_configs(plan: Plan, playbooks: Path) -> NodeConfigs:
    return NodeConfigs.of(plan, playbooks)


def capacity(plan: Plan) -> dict[str, Any]:
    return {
        "halls": len(plan.halls),
        "racks": len(plan.racks),
        "nodes": len(plan.nodes),
        "gpus": plan.gpus,
        "clusters": len(plan.clusters),
        "tenants": len(plan.tenants),
        "it_load_mw": round(plan.power.it_load_kw / 1000, 3),
        "facility_load_mw": round(plan.power.facility_load_kw / 1000, 3),
        "budget_mw": round(plan.power.budget_kw / 1000, 3),
        "supply_mw": round(plan.power.supply_kw / 1000, 3),
    }


def site_program() -> dict[str, Any]:
    """Halls and racks (ledger), fabrics and cluster address blocks, the management and storage pools."""
    s = settings()
    history = plans(s)
    plan = history[-1]
    book = ledger(history)
    groups = hall_groups(book)
    others = {group_name(g): group_record(book, g) for g in groups if g}  # each in its own stack (kasbah-halls)
    top = [plan.site, *book.fabrics, *book.clusters, *others]  # records that share the stack as parent
    clash = sorted({n for n in top if top.count(n) > 1})
    if clash:
        raise pulumi.RunError(
            f"{', '.join(clash)}: a fabric, a cluster, a hall group or the site share a name, so their ledger "
            "records would share a URN; fix: rename the cluster in the environment"
        )
    Record(plan.site, "site", book.site)
    for name, fields in book.fabrics.items():
        Record(name, "fabric", fields)
    for name, fields in book.clusters.items():
        Record(name, "cluster", fields)
    for name, fields in others.items():
        Record(name, "group", fields)
    halls = {}
    for name in groups.get(0, []):
        halls[name] = DataHall(name, DataHallArgs(book.halls[name], group_racks(book, [name])))
    run = NodeRun(str(s.tree), str(s.artifacts), skip_tags=s.skip_tags, extra_inventories=s.extra_inventories)
    configs = _node_configs(plan, _playbooks())
    day0 = _day0(pulumi.Config(NAMESPACE), plan)
    service: dict[str, ServicePool] = {}
    for pool in plan.pools:
        if pool.cluster is None:
            service[pool.name] = ServicePool(pool.name, NodePoolArgs(pool, configs, run, day0))
    # each cluster's control plane, once the racks of its hosts are configured (kubeadm init and joins run there)
    node_rack = {n.name: (n.pool, n.rack) for n in plan.nodes}
    kubeconfigs: dict[str, pulumi.Output[str]] = {}
    for c in plan.clusters:
        if not c.control_plane or not c.api_vip:
            continue
        seats = [node_rack[h] for h in c.control_plane]
        owner = service.get(seats[0][0])
        if owner is None:
            continue  # the control plane's pool is not the site's (never: control planes live on management pools)
        waits = [service[p].group_resources[r] for p, r in seats if p in service and r in service[p].group_resources]
        cp = ControlPlane(
            f"{c.name}-control-plane",
            control_plane_props(c, str(s.tree), str(s.artifacts), s.extra_inventories, plan.phase, configs.plan_sha256),
            pulumi.ResourceOptions(parent=owner, depends_on=waits),
        )
        kubeconfigs[c.name] = cp.kubeconfig
    outputs: dict[str, Any] = {
        "environment": plan.environment,
        "phase": plan.phase,
        # the last tenancy change the plan includes (tenancy.yaml); "": the phase as built
        "tenancy_revision": plan.revision,
        "plan_sha256": configs.plan_sha256,
        "capacity": capacity(plan),
        "inventory": str(s.tree / "inventory"),
        "clusters": {
            c.name: {"api": c.api_endpoint, "kubernetes": c.kubernetes_version, "gpus": c.gpus} for c in plan.clusters
        },
        "halls": {
            name: {"racks": h.racks, "it_load_kw": h.it_load_kw, "power_capacity_kw": h.power_capacity_kw}
            for name, h in halls.items()
        },
        # the other hall groups, whose halls are their own stacks' (kasbah-halls): each checks its record's digest
        "hall_groups": {
            name: {
                "halls": list(f["halls"]),
                "racks": f["racks"],
                "it_load_kw": f["it_load_kw"],
                "sha256": record_sha256(f),
            }
            for name, f in others.items()
        },
        # the ledger itself is the Record resources' state (`pulumi stack export`), which the policy
        # pack reads; as an output it would be copied into every stack that references this one
        "ledger": {kind: len(table) for kind, table in book.as_dict().items() if kind != "site"},
        # each cluster's admin kubeconfig, from its ControlPlane: the cluster stacks read it through their stack
        # reference (a secret here and there; nobody pastes it)
        "kubeconfigs": pulumi.Output.secret(kubeconfigs),
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


def _same_phase(site_stack: str, site: pulumi.StackReference, phase: str) -> pulumi.Output[str]:
    """The site stack's phase, once it is this stack's; a RunError naming the fix otherwise."""

    def check(site_phase: Any) -> str:
        if site_phase != phase:
            raise pulumi.RunError(
                f"site stack {site_stack} is at {site_phase!r}, this stack at {phase!r}; "
                f"fix: run the site stack's phase first, or set kasbah:phase to {site_phase}"
            )
        return str(site_phase)

    return site.get_output("phase").apply(check)


def halls_program() -> dict[str, Any]:
    """One hall group (`kasbah:hallGroup`, 1 and up): its halls' and racks' ledger records and its group record.

    The site stack holds hall group 0 and a record of every other group (computed from the same ledger);
    this stack refuses to run unless the site stack is at its phase and holds the same record of its group,
    so the site's budget and numbering checks saw the racks this stack adds.
    """
    cfg = pulumi.Config(NAMESPACE)
    s = settings(cfg)
    site_stack = cfg.get("siteStack")
    try:
        group = cfg.get_int("hallGroup")
    except pulumi.ConfigTypeError:
        group = None
    if group is None or not site_stack:
        raise pulumi.RunError(
            "kasbah:hallGroup (a number, 1 and up) and kasbah:siteStack must be set for a hall stack; fix: pulumi "
            "config set kasbah:hallGroup 1; pulumi config set kasbah:siteStack organization/kasbah-site/campus"
        )
    history = plans(s)
    plan = history[-1]
    book = ledger(history)
    groups = hall_groups(book)
    if group < 1 or group not in groups:
        raise pulumi.RunError(
            f"kasbah:hallGroup = {group}: {plan.environment} {plan.phase} has no hall group {group} in a stack of "
            f"its own (hall groups of {HALLS_PER_STACK} halls by index: "
            f"{', '.join(str(g) for g in groups if g) or 'only group 0, the site stack'}); "
            "a hall stack starts in the phase that commissions its group's first hall"
        )
    name = group_name(group)
    fields = group_record(book, group)
    digest = record_sha256(fields)
    Record(name, "group", fields)
    halls = {h: DataHall(h, DataHallArgs(book.halls[h], group_racks(book, [h]))) for h in groups[group]}
    site = pulumi.StackReference(site_stack)

    def same_group(given: Any) -> str:
        found = (given or {}).get(name) if isinstance(given, dict) else None
        theirs = found.get("sha256") if isinstance(found, dict) else None
        if theirs != digest:
            raise pulumi.RunError(
                f"site stack {site_stack} holds {'another' if theirs else 'no'} record of {name} than this stack "
                f"(halls {', '.join(groups[group])}); its budget and numbering checks must see these racks first; "
                "fix: run the site stack's pulumi up at the same commit first"
            )
        return digest

    outputs: dict[str, Any] = {
        "environment": plan.environment,
        "phase": _same_phase(site_stack, site, plan.phase),
        "hall_group": group,
        "record": pulumi.Output.from_input(site.get_output("hall_groups")).apply(same_group),
        "halls": {
            h: {"racks": d.racks, "it_load_kw": d.it_load_kw, "power_capacity_kw": d.power_capacity_kw}
            for h, d in halls.items()
        },
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


def cluster_program() -> dict[str, Any]:
    """One cluster: its pools' node configuration, operators, tenants and zero-trust policy."""
    cfg = pulumi.Config(NAMESPACE)
    s = settings(cfg)
    cluster = cfg.get("cluster")
    site_stack = cfg.get("siteStack")
    if not cluster or not site_stack:
        raise pulumi.RunError(
            "kasbah:cluster and kasbah:siteStack must be set for a cluster stack; fix: pulumi config set "
            "kasbah:cluster train-1; pulumi config set kasbah:siteStack organization/kasbah-site/campus"
        )
    plan = plans(s)[-1]
    if cluster not in {c.name for c in plan.clusters}:
        raise pulumi.RunError(
            f"kasbah:cluster = {cluster!r}: no such cluster in {plan.environment} {plan.phase} "
            f"(clusters: {', '.join(c.name for c in plan.clusters) or 'none'}); a cluster's stack starts in the phase that creates it"
        )
    for key in ("kubeconfig", "joinToken", "joinCaCertHash"):
        if cfg.get(key) is not None:
            raise pulumi.RunError(
                f"kasbah:{key} is no longer read: the site stack bootstraps {cluster}'s control plane and hands its "
                "kubeconfig over (output kubeconfigs), and join tokens are minted on a control-plane host during each "
                f"run; fix: pulumi config rm kasbah:{key}"
            )
    site = pulumi.StackReference(site_stack)
    phase = _same_phase(site_stack, site, plan.phase)

    def kubeconfig_of(given: Any) -> str:
        found = (given or {}).get(cluster) if isinstance(given, dict) else None
        if not found:
            raise pulumi.RunError(
                f"site stack {site_stack} holds no kubeconfig for cluster {cluster}; fix: run the site stack's "
                f"pulumi up first (its ControlPlane {cluster}-control-plane brings the control plane up and hands the "
                "credentials over)"
            )
        return str(found)

    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(site.get_output("kubeconfigs")).apply(kubeconfig_of)
    run = NodeRun(str(s.tree), str(s.artifacts), skip_tags=s.skip_tags, extra_inventories=s.extra_inventories)
    if cfg.get("charts") is not None:
        raise pulumi.RunError(
            "kasbah:charts is no longer read: the environment pins every chart (site.yaml platform.charts), "
            "so the tree, the review and this stack agree; fix: pulumi config rm kasbah:charts and set the "
            "chart or mirror there"
        )
    k = KubernetesCluster(
        cluster,
        KubernetesClusterArgs(plan, cluster, kubeconfig, _node_configs(plan, _playbooks()), run, _day0(cfg, plan)),
    )
    c = next(c for c in plan.clusters if c.name == cluster)
    outputs: dict[str, Any] = {
        "phase": phase,
        "cluster": cluster,
        "kubeconfig": k.kubeconfig,
        "api": c.api_endpoint,
        "capacity": {
            "nodes": c.nodes,
            "gpus": c.gpus,
            "pools": {p.name: {"nodes": p.nodes, "gpus": p.gpus} for p in plan.pools if p.cluster == cluster},
        },
        "tenants": k.tenants,
        "gitops": k.gitops,
        "inventory": str(s.tree / "inventory"),
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
