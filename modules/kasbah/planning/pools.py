"""Pools: commissioned on a rack profile, joined to a cluster, grown by expansions, rolled out in waves. Pure.

A pool's purpose must suit its racks; a worker pool joins the cluster it names, or the first with
room under its node_limit; a pool with compute NICs gets its compute fabric's index and switch
model. Its placements are laid out by racks.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

from kasbah.config.issues import Loc
from kasbah.config.models import PoolExpansion, PoolPurpose, PoolSpec, RackKind, RackProfile
from kasbah.planning.addresses import reserve_fabrics
from kasbah.planning.model import IMAGE_INPUTS, NODE_OS, Pool, PoolImage, Wave
from kasbah.planning.racks import place_pool
from kasbah.planning.state import PlanState, PoolState, with_article


def commission_pool(st: PlanState, spec: PoolSpec, path: Loc, phase: str) -> None:
    """A new pool: its profile and purpose checked, its cluster chosen, its compute fabric reserved, its racks placed."""
    if not st.claim("pool", spec.name, (*path, "name"), phase):
        return
    st.pool_paths[spec.name] = path
    profile = st.racks_by_name.get(spec.rack_profile)
    if profile is None:
        st.issue(
            (*path, "rack_profile"),
            f"unknown rack profile `{spec.rack_profile}`",
            f"use one of: {', '.join(st.racks_by_name)}",
        )
        st.failed.add(("pool", spec.name))
        return
    if profile.kind is RackKind.NETWORK:
        st.issue(
            (*path, "rack_profile"),
            f"`{profile.name}` is a network rack; pools hold nodes",
            "network racks are placed by the hall profile's network_racks",
        )
        st.failed.add(("pool", spec.name))
        return
    purpose = spec.purpose
    if purpose in (PoolPurpose.TRAINING, PoolPurpose.INFERENCE) and profile.kind is not RackKind.GPU:
        st.issue(
            (*path, "rack_profile"),
            f"{with_article(purpose.value)} pool needs GPU racks; `{profile.name}` is {with_article(profile.kind.value)} rack",
            "choose a GPU rack profile or change the purpose",
        )
    if purpose is PoolPurpose.MANAGEMENT and profile.kind is not RackKind.CPU:
        st.issue(
            (*path, "rack_profile"),
            f"a management pool needs CPU racks; `{profile.name}` is {with_article(profile.kind.value)} rack",
            "choose a cpu rack profile; GPUs in a management pool would serve no cluster",
        )
    if purpose is PoolPurpose.STORAGE and profile.kind is not RackKind.STORAGE:
        st.issue(
            (*path, "rack_profile"),
            f"a storage pool needs storage racks; `{profile.name}` is {with_article(profile.kind.value)} rack",
            "choose a storage rack profile",
        )
    if spec.tenant is not None and spec.tenant not in st.tenants and ("tenant", spec.tenant) not in st.failed:
        st.issue(
            (*path, "tenant"),
            f"unknown tenant `{spec.tenant}`",
            f"use one of: {', '.join(st.tenants) or '(none yet)'}; tenants must be commissioned in this phase or earlier",
        )
    elif spec.tenant is not None and spec.tenant in st.tenants and st.tenants[spec.tenant].offboarded:
        st.issue(
            (*path, "tenant"),
            f"tenant `{spec.tenant}` is being offboarded (its {st.tenants[spec.tenant].offboarded} step is done)",
            "dedicate the pool to a live tenant",
        )
    cluster = _choose_cluster(st, spec, profile, path)
    pool = PoolState(spec, profile, st.next_pool, phase, cluster)
    st.next_pool += 1
    if profile.compute_nics_per_node:
        sw_name = spec.compute_switch or st.campus.site.fabrics.compute_switch.get(profile.compute_nic_gbps)
        pool.switch = st.switch_models.get(sw_name) if sw_name else None
        if pool.switch is None:
            st.issue(
                (*path, "compute_switch"),
                f"unknown switch model `{sw_name}`",
                f"use one of: {', '.join(st.switch_models)}",
            )
        pool.fabric_index = reserve_fabrics(st, 1, (*path, "name"))
    st.pools[spec.name] = pool
    place_pool(st, pool, spec.placements, path, phase)


def _choose_cluster(st: PlanState, spec: PoolSpec, profile: RackProfile, path: Loc) -> str | None:
    if not spec.purpose.kubernetes_workers:
        if spec.cluster is not None:
            st.issue(
                (*path, "cluster"),
                f"{with_article(spec.purpose.value)} pool does not join a cluster as workers",
                "remove `cluster`; management pools host control planes through clusters[].control_plane",
            )
        return None
    nodes = profile.nodes * sum(pl.racks for pl in spec.placements)
    if spec.cluster is not None:
        if ("cluster", spec.cluster) in st.failed:
            return None
        if spec.cluster not in st.clusters and (gone := st.gone("cluster", spec.cluster)):
            st.issue((*path, "cluster"), gone, f"use a live cluster: {', '.join(st.clusters) or '(none)'}")
            return None
        if spec.cluster not in st.clusters:
            st.issue(
                (*path, "cluster"),
                f"unknown cluster `{spec.cluster}`",
                f"use one of: {', '.join(st.clusters) or '(none yet)'}; clusters must be commissioned in this phase or earlier",
            )
            return None
        return spec.cluster
    for name, c in st.clusters.items():
        if st.workers(name) + c.spec.control_plane.replicas + nodes <= c.spec.node_limit:
            return name
    st.issue(
        path,
        f"no cluster has room for this pool's {nodes} nodes",
        "commission a cluster for it, or name one under `cluster` and raise its node_limit",
    )
    return None


def expand_pool(st: PlanState, exp: PoolExpansion, path: Loc, phase: str) -> None:
    """More scalable units for a live pool."""
    pool = st.pools.get(exp.pool)
    if pool is None and ("pool", exp.pool) in st.failed:
        return
    gone = st.gone("pool", exp.pool)
    if pool is None and gone:
        st.issue((*path, "pool"), f"{gone}; a retired pool cannot grow", "commission a new pool with a new name")
        return
    if pool is None:
        st.issue(
            (*path, "pool"),
            f"no pool `{exp.pool}` to expand",
            f"expand one of: {', '.join(st.pools) or '(none yet)'}; or commission it under pools",
        )
        return
    st.pool_paths.setdefault(exp.pool, path)
    place_pool(st, pool, exp.placements, path, phase)


def pool_snapshot(st: PlanState, p: PoolState) -> Pool:
    racks = st.pool_racks(p)
    return Pool(
        name=p.spec.name,
        profile=p.profile.name,
        purpose=p.spec.purpose.value,
        cluster=p.cluster,
        tenant=p.spec.tenant,
        racks=len(racks),
        nodes=sum(r.nodes for r in racks),
        gpus=sum(r.gpus for r in racks),
        scalable_units=tuple(p.units),
        halls=tuple(dict.fromkeys(st.units[u].hall for u in p.units)),
        phase=p.phase,
        nvidia_driver=p.profile.nvidia_driver,
        rollout_racks=p.spec.rollout.racks,
        image=pool_image(st, p).name,
    )


def pool_image(st: PlanState, p: PoolState) -> PoolImage:
    """The image the pool's nodes boot (its `pools` empty: `images` fills them in)."""
    prof = p.profile
    # a worker pool's kubelet; a management pool's control-plane hosts get theirs in the lean pass (they are few, and
    # an upgrade of one cluster then rolls only its control-plane racks, not every rack of the pool)
    version = st.clusters[p.cluster].version if p.cluster in st.clusters else None
    image = PoolImage(
        name="",
        os=NODE_OS,
        gpus_per_node=prof.gpus_per_node,
        nvlink=prof.nvlink.domain.value,
        rdma=prof.compute_nics_per_node > 0,
        nvidia_driver=prof.nvidia_driver if prof.gpus_per_node else None,
        kubernetes_version=version,
        pools=(),
    )
    inputs = {f: getattr(image, f) for f in IMAGE_INPUTS}
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:10]
    return replace(image, name=f"{'gpu' if prof.gpus_per_node else 'cpu'}-{digest}")


def images(st: PlanState, pools: tuple[Pool, ...]) -> tuple[PoolImage, ...]:
    """Every image the Plan's pools boot, in the order of their first pool, each with its pools."""
    out: dict[str, PoolImage] = {}
    users: dict[str, list[str]] = {}
    for pool in pools:
        if pool.image not in out:
            out[pool.image] = pool_image(st, st.pools[pool.name])
        users.setdefault(pool.image, []).append(pool.name)
    return tuple(replace(i, pools=tuple(users[i.name])) for i in out.values())


def waves(st: PlanState, pools: tuple[Pool, ...]) -> tuple[Wave, ...]:
    """Each pool's racks in rollout waves: striped across its scalable units, `rollout.racks` at a time."""
    out: list[Wave] = []
    for pool in pools:
        by_unit = [[r for r in st.units[u].racks if st.racks[r].nodes] for u in st.pools[pool.name].units]
        order = [u[i] for i in range(max((len(u) for u in by_unit), default=0)) for u in by_unit if i < len(u)]
        size = pool.rollout_racks
        out += [Wave(pool.name, i, tuple(order[k : k + size])) for i, k in enumerate(range(0, len(order), size))]
    return tuple(out)
