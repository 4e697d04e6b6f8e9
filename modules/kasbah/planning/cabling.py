"""Cable endpoints and switch ports, derived from the Plan's fabrics by the rules fabric.py sized them with. Pure.

The Plan says how many leaves, spines, cores and cables each fabric has; this module says which
port goes to which port, so that the counts are exactly the Fabric's:

* Compute, rail-optimised: NIC *i* (`rail{i+1}`) of every node of a scalable unit goes to the leaf
  of rail *i* of that unit; a leaf takes whole racks (`fabric.leaf_layer`), in rack order, each
  rack's nodes in slot order on consecutive down-ports.
* Storage and in-band: each node's storage NICs (`storage{k+1}`) go to its unit's storage leaves,
  whole racks to a leaf, as the hall's storage fabric was sized.
* Out of band: each rack's OOB ports (node BMCs in slot order, then the rack's other management
  ports `oob{k}`: switch trays, power shelves, DPU BMCs) fill the rack's own OOB switches in order.
* Leaves are non-blocking: down-ports are the first half, uplinks the second (or the switch's
  dedicated uplink ports); uplink *j* of a leaf goes to spine *j mod n* of the spines it reaches,
  so every spine gets the same number of links from every leaf. The same rule takes a spine's
  uplinks to the cores of its core group.
* Two tiers: every leaf reaches every spine. Three tiers, `fat-tree`: pods of radix/2 leaves, each
  with its own spines; spine *t* of every pod goes up to core group *t*. Three tiers,
  `rail-groups` (NVIDIA's GB200 design): one spine-leaf group per rail and scalable unit; spine *t*
  of every group goes up to core group *t*. Core group *t* is every core whose index is *t* modulo
  the spines per group, so a growing core tier adds members to every group without renumbering one.

Phase stability (DESIGN.md invariant 2): an upper switch's port depends only on stable indexes,
never on how many switches the fabric has now. Where a lower switch (index *g* among those sharing
the upper switch) has *L* links to each of *n* upper switches, its uplink *j = l x n + k* goes to
upper switch *k* on port *floor(l x room / L) + g*: the upper switch's ports (`room`) fall in *L*
equal bands, one per link of a pair, and lower switch *g* takes port *g* of each band, whatever the
fabric's size. Growth appends leaves, groups and pods (new indexes, free ports). Only where the
fabric rules change *L* itself (more spines, or more cores per core group) do cables move, to the
new switches: the rules spread every lower switch evenly over every upper switch it reaches. When
the new *n* is a multiple of the old, exactly the links a pair gives up move (link *l* of *L*
becomes link *l / c* of *L / c* on the same ports); otherwise the first link of each pair stays.

Switch ports are logical ports at the link's speed: `17` on a switch run at its native speed,
`9/1`-style (physical port / breakout lane) where a faster port is split. NICs per node, OOB
ports per rack and link speeds are the Plan's (`Plan.rack_ports`, `Plan.switch_ports`, copied
from the catalog when planning), so cabling is a function of the Plan alone and `kasbah diff`
sees a cable move (`cable_moves`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from math import ceil

from kasbah.config.models import FabricDesign
from kasbah.planning import fabric as fab
from kasbah.planning.model import Fabric, Node, Plan, Rack, RackPorts, ScalableUnit, Switch, SwitchPorts

# cables run at the speed the planner sized the out-of-band aggregation tier for
OOB_UPLINK_GBPS = fab.OOB_UPLINK_GBPS

NODE_LEAF = "node-leaf"
LEAF_SPINE = "leaf-spine"
SPINE_CORE = "spine-core"


class CablingError(ValueError):
    """The Plan's fabric cannot be cabled as its counts say; the message names the fabric."""


# One cable, a-end towards the nodes: (fabric, link, a_device, a_port, b_device, b_port, gbps), where
# link is node-leaf | leaf-spine | spine-core. A plain tuple: there are about 1.1 M at 500 MW.
Cable = tuple[str, str, str, str, str, str, int]
CABLE_FIELDS = ("fabric", "link", "a_device", "a_port", "b_device", "b_port", "gbps")


@dataclass(frozen=True, slots=True)
class _Tree:
    """A fabric's switches and how its leaves reach up, ready to cable."""

    fabric: Fabric
    leaves: list[str]
    spines: list[str]
    cores: list[str]
    uplinks: int  # per leaf
    leaf_up_ports: list[str]  # labels of a leaf's uplink ports, in uplink order
    upper_ports: list[str]  # labels of a spine's or core's ports
    gbps: int
    groups: int  # rail-groups: spine-leaf groups; 0 for a fat tree
    upper_radix: int


def port_labels(model: SwitchPorts, gbps: int) -> list[str]:
    """Labels of a switch's logical ports at `gbps`: `n`, or `n/lane` where a port is broken out."""
    radix = model.radix(gbps)
    split = max(1, radix // model.ports)
    if split == 1:
        return [str(i + 1) for i in range(radix)]
    return [f"{i // split + 1}/{i % split + 1}" for i in range(radix)]


class _Context:
    """Lookups shared by every fabric of one plan."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.profiles: dict[str, RackPorts] = {p.name: p for p in plan.rack_ports}
        self.models: dict[str, SwitchPorts] = {m.name: m for m in plan.switch_ports}
        self.racks: dict[str, Rack] = {r.name: r for r in plan.racks}
        self.units = {u.name: u for u in plan.scalable_units}
        self.pools = {p.name: p for p in plan.pools}
        self.nodes: dict[str, list[Node]] = {}
        for n in plan.nodes:
            self.nodes.setdefault(n.rack, []).append(n)
        self.switches: dict[str, dict[str, list[Switch]]] = {}
        for s in plan.switches:
            self.switches.setdefault(s.fabric, {}).setdefault(s.tier, []).append(s)
        self._labels: dict[tuple[str, int], list[str]] = {}

    def labels(self, model: str, gbps: int) -> list[str]:
        key = (model, gbps)
        got = self._labels.get(key)
        if got is None:
            got = self._labels[key] = port_labels(self.models[model], gbps)
        return got

    def tier(self, fabric: Fabric, tier: str) -> list[Switch]:
        return self.switches.get(fabric.name, {}).get(tier, [])

    def leaf_names(self, fabric: Fabric, expected: list[str]) -> list[str]:
        """The fabric's leaves in cabling order, checked against the Plan's switches."""
        have = {s.name for s in self.tier(fabric, "leaf")}
        missing = [n for n in expected if n not in have]
        if missing or len(have) != len(expected):
            raise CablingError(
                f"fabric {fabric.name}: the Plan has {len(have)} leaves, cabling expects {len(expected)} "
                f"(missing: {', '.join(missing[:3]) or 'none'}); the planner's leaf naming changed"
            )
        return expected

    def profile(self, rack: Rack) -> RackPorts:
        try:
            return self.profiles[rack.profile]
        except KeyError:
            raise CablingError(f"rack {rack.name}: the Plan has no ports for profile {rack.profile}") from None


def _leaf_ports(ctx: _Context, model: str, gbps: int) -> tuple[list[str], list[str]]:
    """A non-blocking leaf's down-port and up-port labels: the first half faces nodes, the second spines."""
    labels = ctx.labels(model, gbps)
    half = len(labels) // 2
    return labels[:half], labels[half:]


def _tree_cables(t: _Tree) -> Iterator[Cable]:
    """Leaf-spine and spine-core cables of a fabric whose leaves each have `t.uplinks` uplinks."""
    f, leaves, spines, cores = t.fabric, t.leaves, t.spines, t.cores
    if (len(leaves), len(spines), len(cores)) != (f.leaves, f.spines, f.cores):
        raise CablingError(
            f"fabric {f.name}: counts {f.leaves} leaves, {f.spines} spines, {f.cores} cores but the Plan "
            f"has {len(leaves)}, {len(spines)}, {len(cores)} such switches"
        )
    if not spines:
        return
    up = t.leaf_up_ports
    name, gbps, ports = f.name, t.gbps, t.upper_ports
    if not cores:  # two tiers: every leaf reaches every spine
        ns = len(spines)
        bands = _bands(t.uplinks, ns, len(ports), len(leaves), f, "leaf uplinks over spines")
        for li, leaf in enumerate(leaves):
            for j in range(t.uplinks):
                lane, k = divmod(j, ns)
                yield (name, LEAF_SPINE, leaf, up[j], spines[k], ports[bands[lane] + li], gbps)
        return
    # three tiers: leaves in groups (pods of radix/2 leaves, or rail groups) under their own spines
    if t.groups:
        groups = t.groups
        per_leaf_group = _div(len(leaves), groups, f, "leaves over rail groups")
    else:
        per_leaf_group = t.upper_radix // 2
        groups = ceil(len(leaves) / per_leaf_group)
    per_group = _div(len(spines), groups, f, "spines over leaf groups")
    per = _div(t.uplinks, per_group, f, "leaf uplinks over a group's spines")
    down = per_leaf_group * per  # a spine's links to its leaves; as many go up
    bands = _bands(t.uplinks, per_group, down, per_leaf_group, f, "leaf uplinks over a group's spines")
    for li, leaf in enumerate(leaves):
        g, i = divmod(li, per_leaf_group)
        first = g * per_group
        for j in range(t.uplinks):
            lane, k = divmod(j, per_group)
            yield (name, LEAF_SPINE, leaf, up[j], spines[first + k], ports[bands[lane] + i], gbps)
    # core group t (cores t, t + per_group, t + 2 per_group, ...) serves spine t of every leaf group
    per_core_group = _div(len(cores), per_group, f, "cores over core groups")
    bands = _bands(down, per_core_group, len(ports), groups, f, "spine uplinks over a core group")
    for si, spine in enumerate(spines):
        g, tpos = divmod(si, per_group)
        for m in range(down):
            lane, k = divmod(m, per_core_group)
            yield (
                name, SPINE_CORE, spine, ports[down + m], cores[k * per_group + tpos],
                ports[bands[lane] + g], gbps,
            )  # fmt: skip


def _bands(uplinks: int, uppers: int, room: int, lowers: int, f: Fabric, what: str) -> list[int]:
    """First port of each band of an upper switch: link *l* of lower switch *g* lands on port bands[l] + g.

    A lower switch has `uplinks // uppers` links (L) to each of `uppers` upper switches, which keep
    `room` ports for the `lowers` lower switches sharing them. Band *l* starts at floor(l x room / L):
    set by the upper switch and L, not by how many lower switches there are now.
    """
    lanes = _div(uplinks, uppers, f, what)
    if lowers > room // lanes:
        raise CablingError(
            f"fabric {f.name}: {lowers} switches with {lanes} links each to an upper switch of {room} ports "
            f"do not fit; its counts break the fabric rules"
        )
    return [lane * room // lanes for lane in range(lanes)]


def _div(a: int, b: int, f: Fabric, what: str) -> int:
    if b <= 0 or a % b:
        raise CablingError(
            f"fabric {f.name}: {a} {what} do not divide evenly by {b}; its counts break the fabric rules"
        )
    return a // b


def _uplinks(f: Fabric) -> int:
    return f.leaf_spine_cables // f.leaves if f.leaves and f.spines else 0


def _compute_layout(ctx: _Context, f: Fabric) -> tuple[list[ScalableUnit], RackPorts, fab.LeafLayer, list[str]]:
    """A compute fabric's units, rack profile, leaf layer and leaves (unit by unit, rail by rail)."""
    pool = ctx.pools[f.scope]
    units = [ctx.units[u] for u in pool.scalable_units]
    prof = ctx.profile(ctx.racks[units[0].racks[0]])
    layer = fab.leaf_layer(prof.scalable_unit_racks, prof.nodes, f.radix)
    names = [
        f"{u.name}-r{rail + 1}-leaf{i + 1}"
        for u in units
        for rail in range(f.rails)
        for i in range(layer.leaves_per_rail)
    ]  # the planner's order and names (switches._compute_fabric)
    return units, prof, layer, ctx.leaf_names(f, names)


def _compute(ctx: _Context, f: Fabric) -> Iterator[Cable]:
    units, prof, layer, leaves = _compute_layout(ctx, f)
    gbps = prof.compute_nic_gbps
    down, up = _leaf_ports(ctx, f.switch_model, gbps)
    nics = [f"rail{r + 1}" for r in range(f.rails)]
    lpr = layer.leaves_per_rail
    for ui, u in enumerate(units):
        for ri, rack_name in enumerate(u.racks):
            which, pos = divmod(ri, layer.racks_per_leaf)
            first = pos * prof.nodes - 1
            for node in ctx.nodes.get(rack_name, []):
                port = down[first + node.slot]
                for rail in range(f.rails):
                    leaf = leaves[(ui * f.rails + rail) * lpr + which]
                    yield (f.name, NODE_LEAF, node.name, nics[rail], leaf, port, gbps)
    rail_groups = f.design == FabricDesign.RAIL_GROUPS.value and len(units) > 1
    yield from _tree_cables(
        _Tree(
            f, leaves, _names(ctx.tier(f, "spine")), _names(ctx.tier(f, "core")), _uplinks(f), up,
            ctx.labels(f.switch_model, gbps), gbps, len(units) * f.rails if rail_groups else 0, f.radix,
        )
    )  # fmt: skip


def _names(switches: list[Switch]) -> list[str]:
    return [s.name for s in switches]


def _hall_racks(ctx: _Context, hall: str) -> list[Rack]:
    return [r for r in ctx.plan.racks if r.hall == hall and r.nodes]


def _storage(ctx: _Context, f: Fabric) -> Iterator[Cable]:
    units: dict[str, list[Rack]] = {}
    for r in _hall_racks(ctx, f.scope):
        units.setdefault(r.scalable_unit or "", []).append(r)
    names: list[str] = []
    plan_rows: list[tuple[Rack, RackPorts, int, int]] = []  # rack, profile, first leaf, first port
    for unit, members in units.items():
        prof = ctx.profile(members[0])
        if not prof.storage_nics_per_node:
            continue
        per_rack = prof.nodes * prof.storage_nics_per_node
        layer = fab.leaf_layer(len(members), per_rack, f.radix)
        first = len(names)
        names += [f"{unit}-storage-leaf{i + 1}" for i in range(layer.leaves_per_rail)]
        for ri, r in enumerate(members):
            which, pos = divmod(ri, layer.racks_per_leaf)
            plan_rows.append((r, prof, first + which, pos * per_rack))
    leaves = ctx.leaf_names(f, names)
    gbps = 0
    up: list[str] = []
    for r, prof, leaf_index, first_port in plan_rows:
        gbps = prof.storage_nic_gbps
        down, up = _leaf_ports(ctx, f.switch_model, gbps)
        s = prof.storage_nics_per_node
        nics = [f"storage{k + 1}" for k in range(s)]
        leaf = leaves[leaf_index]
        for node in ctx.nodes.get(r.name, []):
            first = first_port + (node.slot - 1) * s
            for nic in range(s):
                yield (f.name, NODE_LEAF, node.name, nics[nic], leaf, down[first + nic], gbps)
    if gbps:
        yield from _tree_cables(
            _Tree(
                f, leaves, _names(ctx.tier(f, "spine")), _names(ctx.tier(f, "core")), _uplinks(f), up,
                ctx.labels(f.switch_model, gbps), gbps, 0, f.radix,
            )
        )  # fmt: skip


def _oob(ctx: _Context, f: Fabric) -> Iterator[Cable]:
    model = ctx.models[f.switch_model]
    up_count = model.uplink_ports or model.ports // 2
    down_count = model.ports if model.uplink_ports else model.ports - up_count
    native = ctx.labels(f.switch_model, model.port_gbps)
    down = native[:down_count]
    up = [str(model.ports + j + 1) for j in range(up_count)] if model.uplink_ports else native[down_count:]
    racks = _hall_racks(ctx, f.scope)
    names = [f"{r.name}-oob{i + 1}" for r in racks for i in range(ceil(ctx.profile(r).oob_ports / down_count))]
    leaves = ctx.leaf_names(f, names)
    li = 0
    for r in racks:
        prof = ctx.profile(r)
        nodes = ctx.nodes.get(r.name, [])
        ends = [(n.slot - 1, n.name, "bmc") for n in nodes]
        ends += [(prof.nodes + k, r.name, f"oob{k + 1}") for k in range(prof.oob_ports - prof.nodes)]
        for p, device, port in ends:
            which, pos = divmod(p, down_count)
            yield (f.name, NODE_LEAF, device, port, leaves[li + which], down[pos], model.port_gbps)
        li += ceil(prof.oob_ports / down_count)
    spines = ctx.tier(f, "spine")
    if spines:
        upper = spines[0].model
        labels = ctx.labels(upper, OOB_UPLINK_GBPS)
        yield from _tree_cables(
            _Tree(
                f, leaves, _names(spines), _names(ctx.tier(f, "core")), _uplinks(f), up, labels, OOB_UPLINK_GBPS, 0,
                len(labels),
            )
        )  # fmt: skip


def plan_cables(plan: Plan) -> Iterator[Cable]:
    """Every cable of the phase, fabric by fabric in the Plan's order (a generator: ~1 M at 500 MW)."""
    ctx = _Context(plan)
    for f in plan.fabrics:
        yield from fabric_cables(ctx, f)


def fabric_cables(ctx: _Context, f: Fabric) -> Iterator[Cable]:
    if f.kind == "compute":
        return _compute(ctx, f)
    if f.kind == "storage":
        return _storage(ctx, f)
    if f.kind == "oob":
        return _oob(ctx, f)
    raise CablingError(f"fabric {f.name}: unknown kind {f.kind}")


def cables_by_fabric(plan: Plan) -> Iterator[tuple[Fabric, Iterator[Cable]]]:
    """Each fabric with its cables (a generator per fabric), in the Plan's order."""
    ctx = _Context(plan)
    for f in plan.fabrics:
        yield f, fabric_cables(ctx, f)


def switch_halls(plan: Plan) -> dict[str, str]:
    """The hall of each switch, where the Plan says it: hall fabrics' switches, and compute leaves by their unit.

    Spines and cores of a compute fabric whose pool spans several halls get no hall ("").
    """
    ctx = _Context(plan)
    out: dict[str, str] = {}
    for f in plan.fabrics:
        switches = [s for tier in ctx.switches.get(f.name, {}).values() for s in tier]
        if f.kind != "compute":
            out.update((s.name, f.scope) for s in switches)
            continue
        halls = ctx.pools[f.scope].halls
        out.update((s.name, halls[0] if len(halls) == 1 else "") for s in switches)
        units, _, layer, leaves = _compute_layout(ctx, f)
        per_unit = f.rails * layer.leaves_per_rail
        for i, leaf in enumerate(leaves):
            out[leaf] = units[i // per_unit].hall
    return out


@dataclass(frozen=True, slots=True)
class CableMove:
    """A cable of the earlier plan whose two devices are both still there but which lands elsewhere (or nowhere)."""

    fabric: str
    link: str
    a_device: str
    a_port: str
    before: tuple[str, str, int]  # b_device, b_port, gbps
    after: tuple[str, str, int] | None  # None: unplugged
    forced: bool  # the fabric's spine or core count changed, and its rules re-spread the uplinks

    @property
    def change(self) -> str:
        b = f"{self.before[0]}:{self.before[1]}"
        a = f"{self.after[0]}:{self.after[1]}" if self.after else "nothing"
        speed = f" ({self.before[2]} -> {self.after[2]} Gb/s)" if self.after and self.after[2] != self.before[2] else ""
        return f"moves from {b} to {a}{speed}"

    def __str__(self) -> str:
        return f"{self.fabric} {self.link} {self.a_device}:{self.a_port} {self.change}"


def cable_moves(old: Plan, new: Plan) -> list[CableMove]:
    """Cables of `old` that `new` re-patches although both their ends remain (phase stability, DESIGN invariant 2).

    A cable is keyed by its a-end (the device and port towards the nodes). Where a fabric's spine or
    core count changed, the fabric rules may re-spread uplinks (`forced`); anywhere else a move
    means the layout changed under a device that stayed, which a phase must not do.
    """
    devices = {n.name for n in new.nodes} | {s.name for s in new.switches} | {r.name for r in new.racks}
    now = {f.name: (f, cables) for f, cables in cables_by_fabric(new)}
    out: list[CableMove] = []
    for f, cables in cables_by_fabric(old):
        if f.name not in now:
            continue
        g, new_cables = now[f.name]
        before, later = list(cables), list(new_cables)
        if later[: len(before)] == before or set(later).issuperset(before):  # growth only adds cables
            continue
        kept = {(c[2], c[3]): c for c in before if c[2] in devices and c[4] in devices}
        after = {(c[2], c[3]): (c[4], c[5], c[6]) for c in later}
        forced = (f.spines, f.cores) != (g.spines, g.cores)
        for key, c in kept.items():
            was = (c[4], c[5], c[6])
            got = after.get(key)
            if got != was:
                out.append(CableMove(f.name, c[1], key[0], key[1], was, got, forced))
    return out
