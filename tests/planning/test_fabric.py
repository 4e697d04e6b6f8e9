"""Fabric rules against NVIDIA's published DGX SuperPOD component counts.

Sources (read through the search tool; figures as published):
* B200: "DGX SuperPOD Architecture" page of the DGX SuperPOD B200 reference architecture,
  table "Larger SuperPOD component counts" (2-64 SU).
* H100 (same fabric shape as B200): RA-11333-001 V11, Table 4 "Compute fabric component count"
  (1-4 SU; 31 usable nodes a SU there because one slot serves UFM, so node-leaf cables differ).
* B300 with Quantum-X800: DGX SuperPOD B300-XDR reference architecture, Table 3 (1-18 SU).
* GB200: DGX SuperPOD GB200 reference architecture, "Network Fabrics": one spine-leaf group per
  rail and SU, 8 leaves and 6 spines each, joined by 6 core groups, up to 16 SU; the 2-16 SU
  switch counts come from a third-party copy of its Table 3 and agree with that rule.
"""

from __future__ import annotations

import pytest

from kasbah.config.models import FabricDesign
from kasbah.planning.fabric import FabricError, TreeSize, compute_fabric, fat_tree, leaf_layer, spread

# SU count -> (leaves, spines, cores, leaf-spine cables, spine-core cables)
B200_QM9700 = {
    1: (8, 4, 0, 256, 0),  # H100 RA Table 4
    2: (16, 8, 0, 512, 0),
    3: (24, 16, 0, 768, 0),  # H100 RA Table 4: 16 spines, not 12 (uplinks spread evenly)
    4: (32, 16, 0, 1024, 0),
    8: (64, 32, 0, 2048, 0),
    16: (128, 128, 64, 4096, 4096),
    32: (256, 256, 128, 8192, 8192),
    64: (512, 512, 256, 16384, 16384),
}
B300_Q3400 = {
    1: (8, 4, 0, 576, 0),
    2: (16, 8, 0, 1152, 0),
    4: (32, 18, 0, 2304, 0),  # as published: 18, the smallest divisor of 72 uplinks >= 16
    8: (64, 36, 0, 4608, 0),
    18: (144, 72, 0, 10368, 0),
}
GB200_RAIL_GROUPS = {  # leaves, spines, cores
    2: (64, 48, 18),
    4: (128, 96, 36),
    8: (256, 192, 72),
    16: (512, 384, 144),
}


def _counts(tree: TreeSize) -> tuple[int, ...]:
    return (tree.leaves, tree.spines, tree.cores, tree.leaf_spine_cables, tree.spine_core_cables)


@pytest.mark.parametrize(("sus", "expected"), sorted(B200_QM9700.items()))
def test_dgx_b200_superpod_counts(sus: int, expected: tuple[int, ...]) -> None:
    # SU = 32 DGX B200 nodes, four a rack; 8 rails of 400G; QM9700 is radix 64 at 400G
    layer, tree = compute_fabric(sus, su_racks=8, nodes_per_rack=4, rails=8, radix=64, design=FabricDesign.FAT_TREE)
    assert layer.leaves_per_rail == 1 and layer.uplinks == 32
    assert _counts(tree) == expected
    assert tree.tiers == (3 if sus >= 16 else 2)


@pytest.mark.parametrize(("sus", "expected"), sorted(B300_Q3400.items()))
def test_dgx_b300_quantum_x800_counts(sus: int, expected: tuple[int, ...]) -> None:
    # SU = 72 nodes (18 racks of 4), 8 rails of 800G; Q3400 is radix 144 at 800G
    _, tree = compute_fabric(sus, su_racks=18, nodes_per_rack=4, rails=8, radix=144, design=FabricDesign.FAT_TREE)
    assert _counts(tree) == expected
    assert tree.tiers == 2  # published: two tiers up to 18 SU


@pytest.mark.parametrize(("sus", "expected"), sorted(GB200_RAIL_GROUPS.items()))
def test_gb200_spine_leaf_groups(sus: int, expected: tuple[int, int, int]) -> None:
    layer, tree = compute_fabric(sus, su_racks=8, nodes_per_rack=18, rails=4, radix=64, design=FabricDesign.RAIL_GROUPS)
    # one leaf a rack and rail, 18 trays down and 18 up; 6 spines a group
    assert (layer.racks_per_leaf, layer.leaves_per_rail, layer.uplinks) == (1, 8, 18)
    assert (tree.leaves, tree.spines, tree.cores) == expected
    assert tree.spines == sus * 4 * 6
    assert tree.leaf_spine_cables == tree.spine_core_cables == sus * 576  # non-blocking: one cable a GPU


def test_gb200_rail_groups_stop_at_16_su() -> None:
    with pytest.raises(FabricError, match="at most 16 scalable units"):
        compute_fabric(17, su_racks=8, nodes_per_rack=18, rails=4, radix=64, design=FabricDesign.RAIL_GROUPS)


def test_two_tiers_reach_half_radix_squared() -> None:
    # REFERENCE.md: a two-tier non-blocking tree of radix k reaches k**2/2 endpoints
    k = 64
    at_limit = fat_tree(leaves=k, uplinks=k // 2, radix=k)
    assert at_limit.tiers == 2 and at_limit.leaves * (k // 2) == k * k // 2
    assert fat_tree(leaves=k + 1, uplinks=k // 2, radix=k).tiers == 3


def test_three_tiers_reach_a_quarter_radix_cubed() -> None:
    k = 64
    pods = k  # k pods of k/2 leaves with k/2 endpoints each = k**3/4 endpoints
    full = fat_tree(leaves=pods * k // 2, uplinks=k // 2, radix=k)
    assert full.tiers == 3 and full.leaves * k // 2 == k**3 // 4
    with pytest.raises(FabricError, match="higher-radix"):
        fat_tree(leaves=pods * k // 2 + 1, uplinks=k // 2, radix=k)


def test_single_leaf_needs_no_spine() -> None:
    tree = fat_tree(1, 8, 64)
    assert (tree.tiers, tree.spines, tree.cores) == (1, 0, 0)
    assert fat_tree(1, 4, 64, min_spines=2).spines == 2  # out of band keeps a redundant pair


def test_leaf_refuses_racks_wider_than_half_its_ports() -> None:
    with pytest.raises(FabricError, match="down-ports"):
        leaf_layer(su_racks=8, ports_per_rack=40, radix=64)


@pytest.mark.parametrize(
    ("uplinks", "minimum", "expected"),
    [(32, 12, 16), (72, 16, 18), (18, 5, 6), (18, 19, 18), (7, 1, 1)],
)
def test_spread_is_the_smallest_divisor_at_least_the_minimum(uplinks: int, minimum: int, expected: int) -> None:
    assert spread(uplinks, minimum) == expected
