"""Node pools in Pulumi: one configuration resource per rack that runs the node playbooks when, and only when, its configuration changes.

A `NodeGroup` is the unit of node configuration: the hosts of one rack (one NVLink domain on
NVL72, the rolling-upgrade batch). Its input is a digest of everything the playbooks read for
those hosts (their inventory variables, the site-wide variables, the roles themselves), so a
`pulumi up` reconfigures exactly the racks whose digest moved and never touches the others.
Creating or updating a group runs `site.yml` through ansible-runner (`kasbah.runners.ansible`)
over the rendered tree, limited to the rack. Deleting one forgets it: nodes are wiped only by
the decommission playbook, a declared act, never as a side effect of a program change.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.dynamic.dynamic import PROVIDER_KEY

from kasbah.planning.model import Node, Plan, Pool
from kasbah.rendering.inventory import PLAN_PHASE, group_name, host_vars, site_vars
from kasbah.rendering.tree import plan_digest

# Inputs that say where things are on the machine running `pulumi up`, which plan rendered the
# tree (checked before a run) and the run's credentials (join tokens expire within a day), not
# what a node becomes: they never cause a run by themselves.
UNDIFFED = ("tree", "artifacts", "extra_inventories", "extra_vars", "phase", "plan_sha256", PROVIDER_KEY)


def _reaches_nodes(path: Path, root: Path) -> bool:
    """Files that decide what a node becomes: playbooks, roles, ansible.cfg; not docs, caches or hidden tool state."""
    rel = path.relative_to(root)
    if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
        return False
    return rel.parts[0] == "roles" or (len(rel.parts) == 1 and path.suffix in (".yml", ".cfg"))


@functools.cache
def playbooks_digest(root: Path) -> str:
    """sha256 over the playbook project's files that reach nodes (so a role change reconfigures its racks)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and _reaches_nodes(p, root)):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@dataclass(frozen=True)
class NodeConfigs:
    """Per-rack configuration digests of one phase, computed once for every pool component."""

    plan: Plan
    plan_sha256: str  # the digest a rendered tree's marker must carry
    digests: dict[str, str]  # rack -> sha256
    hosts: dict[str, tuple[str, ...]]  # rack -> host names

    @classmethod
    def of(cls, plan: Plan, playbooks: Path) -> NodeConfigs:
        shared = {k: v for k, v in site_vars(plan).items() if k != PLAN_PHASE}
        hv = host_vars(plan)
        roles = playbooks_digest(playbooks)
        by_rack: dict[str, list[Node]] = {}
        for n in plan.nodes:
            by_rack.setdefault(n.rack, []).append(n)
        digests: dict[str, str] = {}
        hosts: dict[str, tuple[str, ...]] = {}
        for rack, nodes in by_rack.items():
            names = tuple(sorted(n.name for n in nodes))
            doc = {"site": shared, "hosts": {h: hv[h] for h in names}, "playbooks": roles}
            digests[rack] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
            hosts[rack] = names
        return cls(plan, plan_digest(plan), digests, hosts)


class NodeGroupProvider(dynamic.ResourceProvider):
    """Runs the playbook over one rack of a rendered tree."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        keys = (olds.keys() | news.keys()) - set(UNDIFFED)
        changed = sorted(k for k in keys if olds.get(k) != news.get(k))
        replaces = [k for k in changed if k in ("rack", "pool")]
        return dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        return dynamic.CreateResult(id_=f"{props['pool']}/{props['rack']}", outs={**props, **_configure(props)})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs={**news, **_configure(news)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Forget the group; decommissioning nodes is `kasbah configure -p decommission`, never implicit."""


def _configure(props: Mapping[str, Any]) -> dict[str, Any]:
    """Run the playbook limited to the rack; raise with each failed host's task and message."""
    from kasbah.rendering.tree import read_marker
    from kasbah.runners.ansible import RunOptions, run_slices

    tree = Path(str(props["tree"]))
    marker = read_marker(tree)
    if marker.get("plan_sha256") != props["plan_sha256"]:
        raise RuntimeError(
            f"{tree} was rendered from another plan than this program's; "
            f"fix: kasbah render {props['phase']} --out {tree}, then run pulumi up again"
        )
    options = RunOptions(
        playbook=str(props["playbook"]),
        limit=group_name("rack", str(props["rack"])),
        skip_tags=",".join(props.get("skip_tags") or ()) or None,
        extra_vars=tuple(f"{k}={v}" for k, v in sorted((props.get("extra_vars") or {}).items())),
        extra_inventories=tuple(Path(str(p)) for p in props.get("extra_inventories") or ()),
        parallel=1,
    )
    artifacts = Path(str(props["artifacts"])) / str(props["rack"])
    result = run_slices(tree, options, artifacts)
    if not result.ok:
        failed = [
            f"{h.host}: {'; '.join(f'{t}: {m}' for t, m in h.failures) or ('unreachable' if h.unreachable else 'failed')}"
            for h in result.hosts
            if h.failed or h.unreachable
        ]
        detail = "\n  ".join(failed) or "; ".join(s.error or s.status for s in result.slices)
        raise RuntimeError(f"rack {props['rack']}: {options.playbook} failed (artifacts {artifacts}):\n  {detail}")
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
    playbook: str = "site"
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
        child = pulumi.ResourceOptions(parent=self)
        groups: dict[str, str] = {}
        for rack in racks:
            digest = configs.digests.get(rack.name)
            if digest is None:  # a rack without nodes (network racks are not in pools)
                continue
            NodeGroup(
                f"{name}-{rack.name}",
                {
                    "pool": pool.name,
                    "rack": rack.name,
                    "hosts": list(configs.hosts[rack.name]),
                    "config_sha256": digest,
                    "playbook": run.playbook,
                    "skip_tags": list(run.skip_tags),
                    "extra_vars": run.extra_vars or {},
                    "phase": configs.plan.phase,
                    "plan_sha256": configs.plan_sha256,
                    "tree": run.tree,
                    "artifacts": run.artifacts,
                    "extra_inventories": list(run.extra_inventories),
                },
                child,
            )
            groups[rack.name] = digest
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
