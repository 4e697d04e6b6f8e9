"""Fabric sizing from rules: rail-optimized leaves, non-blocking spines, a core tier when two no longer reach.

The rules (REFERENCE.md, "Fabric rules"), checked in tests against NVIDIA's published DGX SuperPOD
component counts (B200, H100, B300 with Quantum-X800, GB200):

* A leaf serves whole racks of one rail: as many racks as fit in half its ports; the other half
  (as many ports as it uses down) go up, so the leaf is non-blocking.
* Every leaf spreads its uplinks evenly over every spine it reaches, so the spine count is the
  smallest divisor of the leaf's uplinks that carries the load. This is why NVIDIA's 3-SU B200
  design has 16 spines, not 12, and why the B300 Quantum-X800 design has 18 spines at 4 SU.
* Two tiers of radix-k switches reach k leaves (k**2/2 endpoints at k/2 uplinks); past that,
  pods of k/2 leaves sit under a core tier, organised in core groups (one per spine of a pod),
  reaching k pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from kasbah.config.models import FabricDesign

# The out-of-band aggregation tier runs at 100G: the SN2201's 4 x 100G uplinks (REFERENCE.md Fabric rules).
OOB_UPLINK_GBPS = 100


class FabricError(ValueError):
    """The fabric cannot be built with this switch; the message says what to change."""


@dataclass(frozen=True, slots=True)
class LeafLayer:
    """How one rail of one scalable unit lands on leaves."""

    racks_per_leaf: int
    leaves_per_rail: int  # per scalable unit
    uplinks: int  # per leaf, equal to the node ports it serves


@dataclass(frozen=True, slots=True)
class TreeSize:
    tiers: int
    leaves: int
    spines: int
    cores: int
    leaf_spine_cables: int
    spine_core_cables: int


def spread(uplinks: int, minimum: int) -> int:
    """Smallest divisor of `uplinks` that is at least `minimum`: spines each get equal links."""
    for d in range(max(1, minimum), uplinks + 1):
        if uplinks % d == 0:
            return d
    return uplinks


def leaf_layer(su_racks: int, ports_per_rack: int, radix: int) -> LeafLayer:
    """Leaves for one rail of a scalable unit: whole racks to a leaf, half the leaf's ports down."""
    half = radix // 2
    if ports_per_rack > half:
        raise FabricError(
            f"a rack brings {ports_per_rack} ports per rail but a radix-{radix} leaf has only "
            f"{half} down-ports; fix: use a higher-radix switch"
        )
    racks_per_leaf = min(su_racks, half // ports_per_rack)
    return LeafLayer(
        racks_per_leaf=racks_per_leaf,
        leaves_per_rail=ceil(su_racks / racks_per_leaf),
        uplinks=racks_per_leaf * ports_per_rack,
    )


def fat_tree(leaves: int, uplinks: int, radix: int, min_spines: int = 1) -> TreeSize:
    """Non-blocking tree over `leaves` leaves of `uplinks` uplinks each."""
    if leaves == 0:
        return TreeSize(0, 0, 0, 0, 0, 0)
    if leaves == 1 and min_spines <= 1:
        return TreeSize(1, 1, 0, 0, 0, 0)
    if leaves <= radix:
        spines = spread(uplinks, max(min_spines, ceil(leaves * uplinks / radix)))
        return TreeSize(2, leaves, spines, 0, leaves * uplinks, 0)
    half = radix // 2
    pods = ceil(leaves / half)
    if pods > radix:
        raise FabricError(
            f"{leaves} leaves need {pods} pods of {half}, beyond the {radix} a three-tier tree of "
            f"radix-{radix} switches reaches; fix: use a higher-radix switch or split the pool"
        )
    per_pod = spread(uplinks, uplinks)  # a full pod of k/2 leaves fills k/2 down-ports on each spine
    down = half * uplinks // per_pod  # each pod spine's links to its leaves, as many go up
    per_group = spread(down, ceil(pods * down / radix))
    spines = pods * per_pod
    return TreeSize(3, leaves, spines, per_pod * per_group, leaves * uplinks, spines * down)


def rail_groups(scalable_units: int, rails: int, layer: LeafLayer, radix: int) -> TreeSize:
    """NVIDIA's spine-leaf groups: one per rail and scalable unit, joined by core groups."""
    leaves = scalable_units * rails * layer.leaves_per_rail
    if scalable_units <= 1:
        return fat_tree(leaves, layer.uplinks, radix)
    half = radix // 2
    groups = scalable_units * rails
    if groups > radix:
        raise FabricError(
            f"{groups} spine-leaf groups exceed the {radix} a core switch can join; "
            f"fix: at most {radix // rails} scalable units in one rail-groups fabric (split the pool)"
        )
    per_group = spread(layer.uplinks, ceil(layer.leaves_per_rail * layer.uplinks / half))
    down = layer.leaves_per_rail * layer.uplinks // per_group
    cores_per_group = spread(down, ceil(groups * down / radix))
    spines = groups * per_group
    return TreeSize(3, leaves, spines, per_group * cores_per_group, leaves * layer.uplinks, spines * down)


def compute_fabric(
    scalable_units: int,
    su_racks: int,
    nodes_per_rack: int,
    rails: int,
    radix: int,
    design: FabricDesign,
) -> tuple[LeafLayer, TreeSize]:
    layer = leaf_layer(su_racks, nodes_per_rack, radix)
    if design is FabricDesign.RAIL_GROUPS:
        return layer, rail_groups(scalable_units, rails, layer, radix)
    leaves = scalable_units * rails * layer.leaves_per_rail
    return layer, fat_tree(leaves, layer.uplinks, radix)
