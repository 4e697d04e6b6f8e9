"""Pool images in the Plan: one per software profile, named from their inputs, moved only by a declared change."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from kasbah.planning.export import plan_from_dict, plan_to_dict
from kasbah.rendering.inventory import host_vars
from kasbah.rendering.provisioning import images_doc
from kasbah.resources import shipped
from kasbah.rollout import rack_digests
from tests.conftest import CAMPUS, TINY, planned


@pytest.mark.parametrize("env", [TINY, CAMPUS], ids=["tiny", "campus"])
def test_every_pool_boots_one_image_and_every_image_lists_its_pools(env: Path) -> None:
    for plan in planned(env):
        by_name = {i.name: i for i in plan.images}
        assert len(by_name) == len(plan.images)
        assert sorted(p for i in plan.images for p in i.pools) == sorted(p.name for p in plan.pools)
        for pool in plan.pools:
            image = by_name[pool.image]
            assert pool.name in image.pools
            assert image.name.startswith("gpu-" if image.gpus_per_node else "cpu-")
        # every host's variables name its pool's image: the lean pass checks the node booted it
        hv = host_vars(plan)
        pools = {p.name: p for p in plan.pools}
        assert all(hv[n.name]["kasbah_image"] == pools[n.pool].image for n in plan.nodes)


def test_images_grow_with_software_profiles_not_nodes() -> None:
    plans = planned(CAMPUS)
    last = plans[-1]
    assert len(last.nodes) > 40_000
    assert len(last.images) <= 6  # a handful of images for the whole 500 MW campus
    # pools on the same rack profile, driver and Kubernetes minor share one
    assert max(len(i.pools) for i in last.images) > 1


def test_an_image_keeps_its_name_until_its_inputs_change() -> None:
    """The same pool boots the same image in later phases unless a declared change (an upgrade) moves an input."""
    plans = planned(CAMPUS)
    for before, after in itertools.pairwise(plans):
        old = {p.name: p for p in before.pools}
        versions = {i.name: i.kubernetes_version for i in before.images}
        new_versions = {i.name: i.kubernetes_version for i in after.images}
        for pool in after.pools:
            if pool.name not in old:
                continue
            if old[pool.name].image != pool.image:
                # only a declared change of an input renames it: here the Kubernetes minor (phase-2's upgrades)
                assert versions[old[pool.name].image] != new_versions[pool.image], pool.name


def test_a_new_image_is_a_rolling_change_of_its_pools_racks(tmp_path: Path) -> None:
    plan = planned(CAMPUS)[0]
    pool = next(p for p in plan.pools if p.gpus)
    data = plan_to_dict(plan)
    for row in data["pools"]:
        if row["name"] == pool.name:
            row["image"] = "gpu-0123456789"
    changed = plan_from_dict(json.loads(json.dumps(data)))
    before, _ = rack_digests(plan, shipped("playbooks"))
    after, _ = rack_digests(changed, shipped("playbooks"))
    moved = {r for r in before if before[r] != after[r]}
    assert moved == {r.name for r in plan.racks if r.pool == pool.name and r.nodes}


def test_the_manifest_lists_what_each_image_is_built_from() -> None:
    plan = planned(TINY)[0]
    doc = images_doc(plan)
    assert doc["phase"] == plan.phase
    assert [i["name"] for i in doc["images"]] == [i.name for i in plan.images]
    gpu = next(i for i in doc["images"] if i["gpus_per_node"])
    assert gpu["nvidia_driver"] and gpu["kubernetes_version"] and gpu["rdma"] is True
    # the management pool holds the control plane, but its image no kubelet: the control-plane hosts' lean pass
    # installs theirs, so a cluster's upgrade rolls only its control-plane racks, not the whole pool
    mgmt = next(i for i in doc["images"] if "mgmt" in i["pools"])
    assert mgmt["kubernetes_version"] is None
