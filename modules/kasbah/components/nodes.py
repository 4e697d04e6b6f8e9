"""Node pools in Pulumi: one configuration resource per rack that runs the node playbooks when, and only when, its configuration changes.

A `NodeGroup` is the unit of node configuration: the hosts of one rack (one NVLink domain on
NVL72, the rolling-upgrade batch). Its input is a digest of everything the playbooks read for
those hosts (their inventory variables, the site-wide variables, the roles themselves), so a
`pulumi up` reconfigures exactly the racks whose digest moved and never touches the others.

Rollout rules (DESIGN.md "Rollouts"): creating a group commissions a new rack (`commission.yml`:
the node stack, then the burn-in gate, which fails the run for a node that did not pass; GPU nodes
joined tainted and take work only once it lifts). Updating one runs `rolling_upgrade.yml` on the
rack as one batch: drain, configure, health checks (a failure fails the run and leaves the rack
cordoned), uncordon. A pool's groups are chained wave after wave (`Plan.waves`, `depends_on`):
the engine starts wave k+1 only when every group of wave k succeeded, so a role edit reaches the
pool `rollout.racks` racks at a time and stops at the first failing rack. A replaced tray (its
serial or MACs changed in the rack's hardware manifest, `rollout.node_hardware`) is commissioned
again, alone, burn-in included, before it takes work; its rack is not drained for it. All run through
ansible-runner (`kasbah.runners.ansible`) over the rendered tree, limited to the rack. Deleting a
group forgets it: nodes are wiped only by the decommission playbook, a declared act, never as a
side effect of a program change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.dynamic.dynamic import PROVIDER_KEY

from kasbah.components.provisioning import Day0, RackProvisioning
from kasbah.planning.model import Plan, Pool
from kasbah.rendering.inventory import group_name
from kasbah.rendering.tree import plan_digest
from kasbah.rollout import node_hardware, rack_digests

# Inputs that say where things are on the machine running `pulumi up`, which plan rendered the
# tree (checked before a run) and the run's credentials (join tokens expire within a day), not
# what a node becomes: they never cause a run by themselves.
# Also how a change is rolled out, not what a node becomes: the wave a rack is in moves when its pool
# grows (and "playbook", which groups made before the rollout rules carried: create and update choose now).
UNDIFFED: tuple[str, ...] = (
    "tree", "artifacts", "extra_inventories", "extra_vars", "phase", "plan_sha256", PROVIDER_KEY, "wave", "playbook",
)  # fmt: skip
COMMISSION = "commission"  # a new rack: the node stack, then the burn-in gate
RECONFIGURE = "rolling-upgrade"  # a changed rack: drain, configure, health gate, uncordon


@dataclass(frozen=True)
class NodeConfigs:
    """Per-rack configuration digests of one phase, computed once for every pool component."""

    plan: Plan
    plan_sha256: str  # the digest a rendered tree's marker must carry
    digests: dict[str, str]  # rack -> sha256
    hosts: dict[str, tuple[str, ...]]  # rack -> host names
    hardware: dict[str, str]  # node -> its tray (serial and MACs), for the nodes whose rack has a manifest

    @classmethod
    def of(cls, plan: Plan, playbooks: Path) -> NodeConfigs:
        digests, hosts = rack_digests(plan, playbooks)
        return cls(plan, plan_digest(plan), digests, hosts, node_hardware(plan))


class NodeGroupProvider(dynamic.ResourceProvider):
    """Runs the playbook over one rack of a rendered tree."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        keys = (olds.keys() | news.keys()) - set(UNDIFFED)
        changed = sorted(k for k in keys if olds.get(k) != news.get(k))
        replaces = [k for k in changed if k in ("rack", "pool")]
        return dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        outs = _configure(props, COMMISSION, {"burn_in_require_pass": "true"})
        return dynamic.CreateResult(id_=f"{props['pool']}/{props['rack']}", outs={**props, **outs})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        outs: dict[str, Any] = {}
        # replaced trays first: each is a new machine in an old slot, commissioned and burned in alone
        before, after = olds.get("hardware") or {}, news.get("hardware") or {}
        replaced = sorted(h for h in after if h in before and before[h] != after[h])
        if replaced:
            outs = _configure(news, COMMISSION, {"burn_in_require_pass": "true"}, hosts=replaced)
            outs["recommissioned"] = replaced
        if olds.get("config_sha256") != news.get("config_sha256") or olds.get("hosts") != news.get("hosts"):
            # the whole rack is one batch (one NVLink domain); a failed health check fails the run
            batch = {"rolling_upgrade_batch": str(len(news["hosts"])), "rolling_upgrade_max_fail_percentage": "0"}
            ran = _configure(news, RECONFIGURE, batch)
            outs = {**ran, "recommissioned": replaced}
        return dynamic.UpdateResult(outs={**news, **outs})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Forget the group; decommissioning nodes is `kasbah configure -p decommission`, never implicit."""


def _configure(
    props: Mapping[str, Any], playbook: str, rollout_vars: Mapping[str, str], hosts: list[str] | None = None
) -> dict[str, Any]:
    """Run `playbook` limited to the rack (or to `hosts` of it); raise with each failed host's task and message."""
    from kasbah.rendering.tree import read_marker
    from kasbah.runners.ansible import PLAYBOOKS, RunOptions, run_slices

    tree = Path(str(props["tree"]))
    marker = read_marker(tree)
    if marker.get("plan_sha256") != props["plan_sha256"]:
        raise RuntimeError(
            f"{tree} was rendered from another plan than this program's; "
            f"fix: kasbah render {props['phase']} --out {tree}, then run pulumi up again"
        )
    given = {**rollout_vars, **(props.get("extra_vars") or {})}
    options = RunOptions(
        playbook=playbook,
        limit=",".join(hosts) if hosts else group_name("rack", str(props["rack"])),
        skip_tags=",".join(props.get("skip_tags") or ()) or None,
        extra_vars=tuple(f"{k}={v}" for k, v in sorted(given.items())),
        extra_inventories=tuple(Path(str(p)) for p in props.get("extra_inventories") or ()),
        parallel=1,
    )
    artifacts = Path(str(props["artifacts"])) / str(props["rack"])
    result = run_slices(tree, options, artifacts)
    if not result.ok:
        raise RuntimeError(
            f"rack {props['rack']}: {PLAYBOOKS[options.playbook]} failed (artifacts {artifacts}):\n  "
            f"{result.failure_detail()}"
        )
    return {
        "changed_hosts": sorted(h.host for h in result.hosts if h.changed),
        "changed_tasks": sum(h.changed for h in result.hosts),
    }


_PROVIDER = NodeGroupProvider()


class NodeGroup(dynamic.Resource, module="nodes", name="NodeGroup"):
    """`pulumi-python:dynamic/nodes:NodeGroup`: the configuration of one rack's hosts."""

    def __init__(self, resource_name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(_PROVIDER, resource_name, dict(props), opts)


@dataclass(frozen=True)
class NodeRun:
    """How node groups reach the nodes: the rendered tree, where run artifacts go, what to pass."""

    tree: str
    artifacts: str
    skip_tags: tuple[str, ...] = ()
    extra_vars: pulumi.Input[Mapping[str, str]] | None = None
    # inventories layered over the tree's: connection settings of the machine running pulumi up
    # (a bastion, SSH options; the test fleet's docker connection)
    extra_inventories: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodePoolArgs:
    """What a pool component is made of."""

    pool: Pool
    """The pool as the Plan lays it out (its racks are the Plan's racks with this pool)."""
    configs: NodeConfigs
    """Per-rack configuration digests of the phase (computed once per program)."""
    run: NodeRun
    """Where the rendered tree is and how the playbook runs."""
    day0: Day0 | None = None
    """Provision each rack through Ironic before its configuration (stack config `kasbah:ironic`); None: the
    nodes are installed some other way and already answer SSH."""


class _Pool(pulumi.ComponentResource):
    """The racks of one pool, each a NodeGroup; outputs what the pool offers."""

    nodes: pulumi.Output[int]
    gpus: pulumi.Output[int]
    groups: pulumi.Output[dict[str, str]]

    def __init__(self, token: str, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None) -> None:
        super().__init__(token, name, None, opts)
        pool, configs, run = args.pool, args.configs, args.run
        racks = [r for r in configs.plan.racks if r.pool == pool.name]
        if not racks:
            raise ValueError(f"pool {pool.name}: no racks in phase {configs.plan.phase}")
        waves = [w for w in configs.plan.waves if w.pool == pool.name]
        groups: dict[str, str] = {}
        self.group_resources: dict[str, NodeGroup] = {}  # rack -> its group (what a control plane waits for)
        previous: list[pulumi.Resource] = []
        for wave in waves:
            current: list[pulumi.Resource] = []
            for rack in wave.racks:
                digest = configs.digests.get(rack)
                if digest is None:  # a rack without nodes (network racks are not in pools)
                    continue
                needs = list(previous)
                if args.day0 is not None and rack in args.day0.racks:
                    # the rack's OS before its configuration; provisioning itself does not wait for earlier waves
                    needs.append(
                        RackProvisioning(f"{name}-{rack}", args.day0.props(rack), pulumi.ResourceOptions(parent=self))
                    )
                current.append(
                    NodeGroup(
                        f"{name}-{rack}",
                        {
                            "pool": pool.name,
                            "rack": rack,
                            "hosts": list(configs.hosts[rack]),
                            "config_sha256": digest,
                            "hardware": {h: configs.hardware[h] for h in configs.hosts[rack] if h in configs.hardware},
                            "wave": wave.index,
                            "skip_tags": list(run.skip_tags),
                            "extra_vars": run.extra_vars or {},
                            "phase": configs.plan.phase,
                            "plan_sha256": configs.plan_sha256,
                            "tree": run.tree,
                            "artifacts": run.artifacts,
                            "extra_inventories": list(run.extra_inventories),
                        },
                        # the next wave only after every rack of this one succeeded
                        pulumi.ResourceOptions(parent=self, depends_on=needs),
                    )
                )
                groups[rack] = digest
                self.group_resources[rack] = current[-1]  # type: ignore[assignment]
            previous = current or previous
        self.nodes = pulumi.Output.from_input(pool.nodes)
        self.gpus = pulumi.Output.from_input(pool.gpus)
        self.groups = pulumi.Output.from_input(groups)
        self.register_outputs({"nodes": self.nodes, "gpus": self.gpus, "groups": self.groups})


class GpuNodePool(_Pool):
    """A node pool of a Kubernetes cluster (GPU trays or systems, or the cluster's CPU workers).

    Its nodes register with the pool's labels and taints (rendered into their kubelet
    configuration), so the pool has no Kubernetes objects of its own: one Pulumi resource per rack.
    """

    def __init__(self, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.pool.cluster is None:
            raise ValueError(
                f"pool {args.pool.name} belongs to no cluster; management and storage pools are ServicePools"
            )
        super().__init__("kasbah:cluster:GpuNodePool", name, args, opts)


class ServicePool(_Pool):
    """A management or storage pool (control-plane hosts, storage servers), configured by the site stack."""

    def __init__(self, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.pool.cluster is not None:
            raise ValueError(
                f"pool {args.pool.name} belongs to cluster {args.pool.cluster}; its cluster stack makes a GpuNodePool"
            )
        super().__init__("kasbah:site:ServicePool", name, args, opts)
