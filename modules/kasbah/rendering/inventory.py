"""The phase's Ansible inventory: JSON slices of whole scalable units, a directory entry point and an index.

Layout (paths relative to the output directory):

* `all/slice-NNNN.json`: one self-contained inventory (the `yaml` plugin reads JSON) holding whole
  scalable units, at most `max_hosts` hosts; `ansible-inventory -i all/slice-0001.json --list`
  loads it alone.
* `all/`: the whole phase (`ansible-inventory -i all --list`); Ansible merges the slices.
* `index.json`: the slices with their host count, halls, clusters and scalable units.

Format: JSON, chosen by measurement (tests/benchmarks/bench_inventory.py, campus phase-4, 51,792
hosts in 28 slices, `ansible-inventory --list`, median of 3): JSON 2.4 s a slice / 61 s and 876 MB
the whole directory; YAML 7.3 s / 183 s (the `auto` plugin parses every `.yml` once before the
`yaml` plugin parses it again; `.json` it skips); INI ties JSON on time (2.2-2.9 s, within noise over
interleaved runs) but takes 994 MB whole and needs Python-literal quoting; `group_vars/` files add
nothing (2.5 s / 60 s); repeating every variable on every host costs 2.3x (4.6 s / 140 s).

Slices are packed greedily in commissioning order, so a phase's slices stay the first slices of
the next phase (growth only fills the last one and appends). A slice never splits a scalable unit
(so rolling upgrades per SU or NVLink domain stay inside one slice) unless the unit alone exceeds
`max_hosts`; then it never splits a rack.

Groups (Ansible names: `-` becomes `_`, prefixed with their kind): `hall_*` > `su_*` > `rack_*` >
hosts; `pool_*` (its scalable units), `cluster_*` (its pools and control-plane hosts),
`tenant_*` (its dedicated pools), and the roles `control_plane`, `workers`, `management`,
`storage`, `gpu`.

Variables (prefixed `kasbah_`): `ansible_host` and `kasbah_inband_ip` (in-band IP), `kasbah_bmc_ip`, `kasbah_storage_ip`,
`kasbah_rail_ips`, `kasbah_node_labels` and `kasbah_node_taints` (from planning.labels),
`kasbah_gpus`, `kasbah_nvlink_domain`, `kasbah_nvlink_fabric` (imex | fabricmanager | none),
`kasbah_rdma`, `kasbah_nvidia_driver`, `kasbah_cluster`, `kasbah_kubernetes_version`,
`kasbah_api_endpoint`, `kasbah_pod_cidr`, on control-plane hosts `kasbah_api_vip`, `kasbah_api_vrrp_id` and
`kasbah_control_plane` (the cluster's control-plane hosts and in-band addresses, the first one inits) and
`kasbah_etcd_backup` (where and how often it snapshots etcd), `kasbah_pool`, `kasbah_image` (the pool image its
nodes boot: Plan.images), `kasbah_purpose`, `kasbah_rack_profile`,
`kasbah_phase`, `kasbah_network` (the node's interfaces, planning.hostnet; only once its rack has a hardware
manifest); on `all`: `kasbah_site`, `kasbah_environment`, `kasbah_plan_phase`,
`kasbah_networks` (address ranges by network name), `kasbah_dns_resolvers` and
`kasbah_host_flows` (`Plan.host_flows`, for the host firewall). A variable
every host of a pool shares is a `pool_*` group variable, one every host of a rack shares a
`rack_*` group variable, anything else a host variable: each variable of a host is set at exactly
one level, so there is no precedence to reason about.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kasbah.planning.host_flows import as_dicts, networks
from kasbah.planning.hostnet import HostNet
from kasbah.planning.labels import Taint, multi_node_nvlink_domains, node_labels, registration_taints
from kasbah.planning.mirrors import package_prefixes, registry_hosts
from kasbah.planning.model import Node, Plan

DEFAULT_MAX_HOSTS = 2000
NVSWITCH_MIN_GPUS = 8  # HGX baseboards with NVSwitch carry 8 GPUs; smaller nodes link GPUs directly
INDEX_FORMAT = 1
ENTRY = "all"
ROLE_GROUPS = {
    "control-plane": "control_plane",
    "worker": "workers",
    "management": "management",
    "storage": "storage",
}
GPU_GROUP = "gpu"
PLAN_PHASE = "kasbah_plan_phase"

Vars = dict[str, Any]


class InventoryError(ValueError):
    """The inventory cannot be sliced as asked; the message says what to change."""


def group_name(kind: str, name: str) -> str:
    """An Ansible-valid group name: the kind as prefix, dashes as underscores (`hall_dh01`)."""
    return f"{kind}_{name.replace('-', '_')}"


@dataclass(frozen=True, slots=True)
class Slice:
    name: str
    hosts: tuple[Node, ...]

    @property
    def path(self) -> str:
        return f"{ENTRY}/{self.name}.json"


def host_vars(plan: Plan) -> dict[str, Vars]:
    """Every variable of every host, from the Plan and planning.labels; the slices only place them."""
    racks = {r.name: r for r in plan.racks}
    pools = {p.name: p for p in plan.pools}
    clusters = {c.name: c for c in plan.clusters}
    multi_node = multi_node_nvlink_domains(plan.nodes)
    taint_dicts: dict[tuple[Taint, ...], list[dict[str, str]]] = {}
    net = HostNet(plan)
    inband = {n.name: n.inband_ip for n in plan.nodes if n.role == "control-plane"}
    out: dict[str, Vars] = {}
    for n in plan.nodes:
        rack, pool = racks[n.rack], pools[n.pool]
        taints = registration_taints(n, pool)
        as_dicts = taint_dicts.get(taints)
        if as_dicts is None:
            as_dicts = taint_dicts[taints] = [t.as_dict() for t in taints]
        v: Vars = {
            "ansible_host": n.inband_ip,
            # the address the node's services bind and peers use; ansible_host may be overridden
            # (bastions, the test containers) while this stays the node's in-band IP
            "kasbah_inband_ip": n.inband_ip,
            "kasbah_bmc_ip": n.oob_ip,
            "kasbah_storage_ip": n.storage_ip,
        }
        if n.rail_ips:
            v["kasbah_rail_ips"] = list(n.rail_ips)
        v["kasbah_gpus"] = n.gpus
        if n.nvlink_domain:
            v["kasbah_nvlink_domain"] = n.nvlink_domain
        v["kasbah_nvlink_fabric"] = nvlink_fabric(n, multi_node)
        v["kasbah_rdma"] = bool(n.rail_ips)
        if pool.nvidia_driver:
            v["kasbah_nvidia_driver"] = pool.nvidia_driver
        if n.cluster:
            c = clusters[n.cluster]
            v["kasbah_cluster"] = n.cluster
            v["kasbah_kubernetes_version"] = c.kubernetes_version
            v["kasbah_api_endpoint"] = c.api_endpoint
            v["kasbah_pod_cidr"] = c.pod_cidr
            if n.role == "control-plane" and c.api_vip:
                # the control_plane role: the VIP keepalived holds, the peers HAProxy spreads to (the first inits)
                v["kasbah_api_vip"] = c.api_vip
                v["kasbah_api_vrrp_id"] = c.api_vrrp_id
                v["kasbah_control_plane"] = [
                    {"name": cp, "address": inband[cp]} for cp in c.control_plane if cp in inband
                ]
                if plan.etcd_backup is not None:
                    b = plan.etcd_backup
                    v["kasbah_etcd_backup"] = {
                        "dir": b.directory(c.name),
                        "target": b.target,
                        "every_minutes": b.every_minutes,
                        "keep": b.keep,
                    }
        v["kasbah_pool"] = n.pool
        v["kasbah_image"] = pool.image
        v["kasbah_purpose"] = pool.purpose
        v["kasbah_rack_profile"] = rack.profile
        v["kasbah_phase"] = n.phase
        v["kasbah_node_labels"] = node_labels(plan.site, n, rack, pool)
        v["kasbah_node_taints"] = as_dicts
        network = net.network(n)
        if network is not None:
            v["kasbah_network"] = network
        out[n.name] = v
    return out


def nvlink_fabric(node: Node, multi_node: frozenset[str]) -> str:
    """What runs the node's NVLink fabric: IMEX across a multi-node domain (NVL72 trays), the fabric
    manager on an NVSwitch baseboard (8-GPU HGX), nothing on smaller nodes or without GPUs."""
    if node.nvlink_domain in multi_node:
        return "imex"
    if node.gpus >= NVSWITCH_MIN_GPUS:
        return "fabricmanager"
    return "none"


def slices(plan: Plan, max_hosts: int = DEFAULT_MAX_HOSTS) -> list[Slice]:
    """Hosts in slices of at most `max_hosts`, whole scalable units (whole racks when a unit is larger)."""
    if max_hosts < 1:
        raise InventoryError(f"max_hosts is {max_hosts}; fix: pass a positive number of hosts a slice")
    by_unit: dict[str, list[Node]] = {}
    for n in plan.nodes:
        by_unit.setdefault(n.scalable_unit, []).append(n)
    blocks: list[list[Node]] = []  # the indivisible pieces, in commissioning order
    for unit, nodes in by_unit.items():
        if len(nodes) <= max_hosts:
            blocks.append(nodes)
            continue
        by_rack: dict[str, list[Node]] = {}
        for n in nodes:
            by_rack.setdefault(n.rack, []).append(n)
        for rack, members in by_rack.items():
            if len(members) > max_hosts:
                raise InventoryError(
                    f"rack {rack} (scalable unit {unit}) has {len(members)} hosts, above max_hosts={max_hosts}; "
                    f"fix: allow at least {len(members)} hosts a slice (a slice never splits a rack)"
                )
            blocks.append(members)
    out: list[list[Node]] = []
    for block in blocks:
        if out and len(out[-1]) + len(block) <= max_hosts:
            out[-1].extend(block)
        else:
            out.append(list(block))
    return [Slice(f"slice-{i + 1:04d}", tuple(hosts)) for i, hosts in enumerate(out)]


HOST_ONLY = frozenset({"ansible_host", "kasbah_inband_ip"})


def _shared(members: list[Vars], skip: Vars | None = None) -> Vars:
    """The variables every member sets to the same value (besides those in `skip`, and ansible_host)."""
    first, rest = members[0], members[1:]
    out: Vars = {}
    for key, value in first.items():
        if key in HOST_ONLY or (skip is not None and key in skip):
            continue
        if all(m.get(key, _MISSING) == value for m in rest):
            out[key] = value
    return out


_MISSING = object()


@dataclass(frozen=True, slots=True)
class _Levels:
    """Where each variable lives: pool group, rack group, or host."""

    pool: dict[str, Vars]
    rack: dict[str, Vars]
    host: dict[str, Vars]


def _levels(plan: Plan, hv: dict[str, Vars]) -> _Levels:
    by_pool: dict[str, list[Vars]] = {}
    by_rack: dict[str, list[str]] = {}
    for n in plan.nodes:
        by_pool.setdefault(n.pool, []).append(hv[n.name])
        by_rack.setdefault(n.rack, []).append(n.name)
    # ansible_host stays on the host: it is what ad-hoc tools and `--host` readers look for first
    pool = {p: _shared(members) for p, members in by_pool.items()}
    pool_of = {n.name: n.pool for n in plan.nodes}
    rack: dict[str, Vars] = {}
    host: dict[str, Vars] = {}
    for r, names in by_rack.items():
        above = pool[pool_of[names[0]]]
        shared = _shared([hv[h] for h in names], above) if len(names) > 1 else {}
        rack[r] = shared
        for h in names:
            host[h] = {k: v for k, v in hv[h].items() if k not in above and k not in shared}
    return _Levels(pool, rack, host)


def _group(hosts: Sequence[str] = (), children: Sequence[str] = (), variables: Vars | None = None) -> Vars:
    g: Vars = {}
    if hosts:
        g["hosts"] = dict.fromkeys(hosts)
    if children:
        g["children"] = dict.fromkeys(children)
    if variables:
        g["vars"] = variables
    return g


@dataclass(frozen=True, slots=True)
class _PoolShape:
    """What decides how a pool joins the role groups: whole (as a child group) or host by host."""

    role: str | None  # the role every node shares, or None when they differ
    all_gpu: bool


def _pool_shapes(plan: Plan) -> dict[str, _PoolShape]:
    roles: dict[str, set[str]] = {}
    gpu: dict[str, bool] = {}
    for n in plan.nodes:
        roles.setdefault(n.pool, set()).add(n.role)
        gpu[n.pool] = gpu.get(n.pool, True) and n.gpus > 0
    return {p: _PoolShape(next(iter(r)) if len(r) == 1 else None, gpu[p]) for p, r in roles.items()}


def _slice_inventory(plan: Plan, part: Slice, levels: _Levels, shapes: dict[str, _PoolShape]) -> Vars:
    """One self-contained inventory in the `yaml` plugin's layout (all > children, flat)."""
    pool_cluster = {p.name: p.cluster for p in plan.pools}
    halls: dict[str, dict[str, None]] = {}
    units: dict[str, dict[str, None]] = {}
    racks: dict[str, list[Node]] = {}
    pool_units: dict[str, dict[str, None]] = {}
    role_children: dict[str, list[str]] = {}
    role_hosts: dict[str, list[str]] = {}
    cluster_children: dict[str, list[str]] = {}
    cluster_hosts: dict[str, list[str]] = {}
    for n in part.hosts:
        halls.setdefault(n.hall, {})[n.scalable_unit] = None
        units.setdefault(n.scalable_unit, {})[n.rack] = None
        racks.setdefault(n.rack, []).append(n)
        if n.pool not in pool_units:
            pool_units[n.pool] = {}
            shape, pg = shapes[n.pool], group_name("pool", n.pool)
            if shape.role is not None:
                role_children.setdefault(ROLE_GROUPS[shape.role], []).append(pg)
            if shape.all_gpu:
                role_children.setdefault(GPU_GROUP, []).append(pg)
            cluster = pool_cluster[n.pool]
            if cluster is not None:
                cluster_children.setdefault(cluster, []).append(pg)
        pool_units[n.pool][n.scalable_unit] = None
        # a pool whose nodes all share a role (or all have GPUs) joins that group whole; others host by host
        if shapes[n.pool].role is None:
            role_hosts.setdefault(ROLE_GROUPS[n.role], []).append(n.name)
        if n.gpus and not shapes[n.pool].all_gpu:
            role_hosts.setdefault(GPU_GROUP, []).append(n.name)
        if n.cluster is not None and pool_cluster[n.pool] != n.cluster:
            cluster_hosts.setdefault(n.cluster, []).append(n.name)

    groups: dict[str, Vars] = {}
    for hall, members in halls.items():
        groups[group_name("hall", hall)] = _group(children=[group_name("su", u) for u in members])
    for unit, members in units.items():
        groups[group_name("su", unit)] = _group(children=[group_name("rack", r) for r in members])
    for rack, nodes in racks.items():
        g = _group(variables=levels.rack[rack])
        g["hosts"] = {n.name: levels.host[n.name] or None for n in nodes}
        groups[group_name("rack", rack)] = g
    for pool, members in pool_units.items():
        groups[group_name("pool", pool)] = _group(
            children=[group_name("su", u) for u in members], variables=levels.pool[pool]
        )
    for c in plan.clusters:
        if c.name in cluster_children or c.name in cluster_hosts:
            groups[group_name("cluster", c.name)] = _group(
                cluster_hosts.get(c.name, ()), cluster_children.get(c.name, ())
            )
    for role in (*ROLE_GROUPS.values(), GPU_GROUP):
        if role in role_children or role in role_hosts:
            groups[role] = _group(role_hosts.get(role, ()), role_children.get(role, ()))
    for t in plan.tenants:
        dedicated = [group_name("pool", p) for p in t.dedicated_pools if p in pool_units]
        if dedicated:
            groups[group_name("tenant", t.name)] = _group(children=dedicated)
    return {"all": {"vars": site_vars(plan), "children": groups}}


def site_vars(plan: Plan) -> Vars:
    """The variables every host of the phase shares (the inventory's `all` group)."""
    out: Vars = {
        "kasbah_site": plan.site,
        "kasbah_environment": plan.environment,
        # which phase the run is for: scale-out selects the hosts this phase commissions
        PLAN_PHASE: plan.phase,
        "kasbah_networks": networks(plan),
        "kasbah_dns_resolvers": list(plan.dns_resolvers),
        "kasbah_host_flows": as_dicts(plan.host_flows),
    }
    # the site's mirrors: every package repository (common's repository tasks rewrite its URLs) and every
    # upstream registry (containerd's hosts.toml, pulled through the site's registry only)
    prefixes = package_prefixes(plan.mirrors)
    if prefixes:
        out["kasbah_package_mirrors"] = prefixes
    registries = registry_hosts(plan.mirrors)
    if registries:
        out["containerd_registry_mirrors"] = registries
    return out


def slice_inventories(plan: Plan, max_hosts: int = DEFAULT_MAX_HOSTS) -> list[tuple[Slice, Vars]]:
    """Each slice with its inventory document (the structure the `yaml` plugin reads)."""
    levels = _levels(plan, host_vars(plan))
    shapes = _pool_shapes(plan)
    return [(part, _slice_inventory(plan, part, levels, shapes)) for part in slices(plan, max_hosts)]


def render_inventory(plan: Plan, max_hosts: int = DEFAULT_MAX_HOSTS) -> dict[str, bytes]:
    """The phase's inventory: `all/slice-NNNN.json` slices, `all/` as the entry point, `index.json`."""
    out: dict[str, bytes] = {}
    index: list[Vars] = []
    for part, doc in slice_inventories(plan, max_hosts):
        out[part.path] = (json.dumps(doc, separators=(",", ":")) + "\n").encode()
        index.append(
            {
                "name": part.name,
                "path": part.path,
                "hosts": len(part.hosts),
                "halls": list(dict.fromkeys(n.hall for n in part.hosts)),
                "clusters": sorted({n.cluster for n in part.hosts if n.cluster}),
                "pools": list(dict.fromkeys(n.pool for n in part.hosts)),
                "scalable_units": list(dict.fromkeys(n.scalable_unit for n in part.hosts)),
            }
        )
    out["index.json"] = (
        json.dumps(
            {
                "format": INDEX_FORMAT,
                "environment": plan.environment,
                "site": plan.site,
                "phase": plan.phase,
                "entry_point": ENTRY,
                "max_hosts": max_hosts,
                "hosts": len(plan.nodes),
                "slices": index,
            },
            indent=2,
        )
        + "\n"
    ).encode()
    return out
