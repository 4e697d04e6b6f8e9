"""The Ansible inventory: what `ansible-inventory` loads equals the Plan; slices keep units whole and stay small."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from kasbah.config import load_environment
from kasbah.planning import plan_campus
from kasbah.planning.host_flows import FLOWS, as_dicts
from kasbah.planning.hostnet import HostNet
from kasbah.planning.labels import node_labels, registration_taints
from kasbah.planning.model import Plan
from kasbah.rendering.inventory import InventoryError, group_name, render_inventory, slices
from tests.conftest import CAMPUS, TINY
from tests.rendering.fresh import digest_in_fresh_interpreter

ANSIBLE_INVENTORY = Path(sys.executable).with_name("ansible-inventory")


@cache
def tiny() -> Plan:
    e = load_environment(TINY)
    return plan_campus(e.campus, e.name)[-1]


@cache
def campus() -> Plan:
    e = load_environment(CAMPUS)
    return plan_campus(e.campus, e.name, upto="phase-1")[-1]


def write(files: dict[str, bytes], root: Path) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def ansible_list(source: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(ANSIBLE_INVENTORY), "-i", str(source), "--list"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "ANSIBLE_NOCOLOR": "1"},
    )
    assert "WARNING" not in done.stderr, done.stderr
    listing: dict[str, Any] = json.loads(done.stdout)
    return listing


def members(listing: dict[str, Any]) -> dict[str, set[str]]:
    """Every group's hosts, through its children too."""
    groups = {g: body for g, body in listing.items() if g != "_meta"}

    def hosts(g: str) -> set[str]:
        body = groups.get(g, {})
        out = set(body.get("hosts", []))
        for child in body.get("children", []):
            out |= hosts(child)
        return out

    return {g: hosts(g) for g in groups if g not in ("all", "ungrouped")}


def expected_groups(plan: Plan) -> dict[str, set[str]]:
    want: dict[str, set[str]] = {}
    role_group = {
        "control-plane": "control_plane",
        "worker": "workers",
        "management": "management",
        "storage": "storage",
    }
    dedicated = {p: t.name for t in plan.tenants for p in t.dedicated_pools}
    for n in plan.nodes:
        keys = [
            group_name("hall", n.hall),
            group_name("su", n.scalable_unit),
            group_name("rack", n.rack),
            group_name("pool", n.pool),
            role_group[n.role],
        ]
        if n.cluster:
            keys.append(group_name("cluster", n.cluster))
        if n.gpus:
            keys.append("gpu")
        if n.pool in dedicated:
            keys.append(group_name("tenant", dedicated[n.pool]))
        for k in keys:
            want.setdefault(k, set()).add(n.name)
    return want


def expected_hostvars(plan: Plan) -> dict[str, dict[str, Any]]:
    racks = {r.name: r for r in plan.racks}
    pools = {p.name: p for p in plan.pools}
    clusters = {c.name: c for c in plan.clusters}
    domains = Counter(n.nvlink_domain for n in plan.nodes if n.nvlink_domain)
    supernets = {a.network: a.supernet for a in plan.addresses}
    hardware = {h.node for h in plan.hardware}
    net = HostNet(plan)
    out: dict[str, dict[str, Any]] = {}
    for n in plan.nodes:
        pool = pools[n.pool]
        if n.nvlink_domain and domains[n.nvlink_domain] > 1:
            fabric = "imex"
        else:
            fabric = "fabricmanager" if n.gpus >= 8 else "none"
        v: dict[str, Any] = {
            "ansible_host": n.inband_ip,
            "kasbah_inband_ip": n.inband_ip,
            "kasbah_nvlink_fabric": fabric,
            "kasbah_rdma": bool(n.rail_ips),
            "kasbah_purpose": pool.purpose,
            "kasbah_rack_profile": racks[n.rack].profile,
            "kasbah_networks": {"admin": list(plan.admin_networks)}
            | {k: [supernets[k]] for k in ("inband", "compute", "storage", "oob") if k in supernets},
            "kasbah_dns_resolvers": list(plan.dns_resolvers),
            "kasbah_host_flows": as_dicts(FLOWS),
            "kasbah_bmc_ip": n.oob_ip,
            "kasbah_storage_ip": n.storage_ip,
            "kasbah_gpus": n.gpus,
            "kasbah_pool": n.pool,
            "kasbah_image": pool.image,
            "kasbah_phase": n.phase,
            "kasbah_node_labels": node_labels(plan.site, n, racks[n.rack], pools[n.pool]),
            "kasbah_node_taints": [t.as_dict() for t in registration_taints(n, pools[n.pool])],
            "kasbah_site": plan.site,
            "kasbah_environment": plan.environment,
            "kasbah_plan_phase": plan.phase,
            # site.mirrors: each upstream repository under the packages mirror, each registry through its project
            "kasbah_package_mirrors": {
                up: f"{m.url}/{up.split('://', 1)[1]}"
                for m in plan.mirrors
                if m.kind == "packages"
                for up in m.upstreams
            },
            "containerd_registry_mirrors": [
                {"registry": up, "mirrors": [f"{m.url}/v2/{up}"], "upstream": False, "override_path": True}
                for m in plan.mirrors
                if m.kind == "registry"
                for up in m.upstreams
            ],
        }
        if n.rail_ips:
            v["kasbah_rail_ips"] = list(n.rail_ips)
        if n.name in hardware:
            v["kasbah_network"] = net.network(n)
        if n.nvlink_domain:
            v["kasbah_nvlink_domain"] = n.nvlink_domain
        if pool.nvidia_driver:
            v["kasbah_nvidia_driver"] = pool.nvidia_driver
        if n.cluster:
            c = clusters[n.cluster]
            v["kasbah_cluster"] = n.cluster
            v["kasbah_kubernetes_version"] = c.kubernetes_version
            v["kasbah_api_endpoint"] = f"api.{c.name}.{plan.site}.kasbah.internal:6443"
            v["kasbah_pod_cidr"] = c.pod_cidr
            if n.role == "control-plane":
                inband = {m.name: m.inband_ip for m in plan.nodes}
                v["kasbah_api_vip"] = c.api_vip
                v["kasbah_api_vrrp_id"] = c.api_vrrp_id
                v["kasbah_control_plane"] = [{"name": m, "address": inband[m]} for m in c.control_plane]
                assert plan.etcd_backup is not None  # the tiny site declares them
                v["kasbah_etcd_backup"] = {
                    "dir": f"{plan.etcd_backup.path}/etcd/{c.name}",
                    "target": plan.etcd_backup.target,
                    "every_minutes": plan.etcd_backup.every_minutes,
                    "keep": plan.etcd_backup.keep,
                }
        out[n.name] = v
    return out


def test_ansible_inventory_loads_the_plan(tmp_path: Path) -> None:
    plan = tiny()
    root = write(render_inventory(plan), tmp_path)
    listing = ansible_list(root / "all")
    assert members(listing) == expected_groups(plan)
    assert listing["_meta"]["hostvars"] == expected_hostvars(plan)


def test_each_slice_loads_on_its_own_and_together_they_are_the_whole(tmp_path: Path) -> None:
    plan = tiny()
    files = render_inventory(plan, max_hosts=2)
    root = write(files, tmp_path)
    index = json.loads(files["index.json"])
    assert len(index["slices"]) > 1
    want_vars = expected_hostvars(plan)
    seen: set[str] = set()
    for s in index["slices"]:
        listing = ansible_list(root / s["path"])
        hostvars = listing["_meta"]["hostvars"]
        assert set(hostvars) == set(s_hosts(plan, s["scalable_units"]))
        assert {h: want_vars[h] for h in hostvars} == hostvars
        assert not seen & set(hostvars)
        seen |= set(hostvars)
    assert seen == {n.name for n in plan.nodes}


def s_hosts(plan: Plan, units: list[str]) -> list[str]:
    return [n.name for n in plan.nodes if n.scalable_unit in units]


@pytest.mark.parametrize("max_hosts", [2000, 500, 150, 100, 18])
def test_slices_keep_units_whole_respect_the_maximum_and_hold_every_node_once(max_hosts: int) -> None:
    plan = campus()
    parts = slices(plan, max_hosts)
    unit_size: dict[str, int] = {}
    for n in plan.nodes:
        unit_size[n.scalable_unit] = unit_size.get(n.scalable_unit, 0) + 1
    where_unit: dict[str, set[int]] = {}
    where_rack: dict[str, set[int]] = {}
    placed: list[str] = []
    for i, part in enumerate(parts):
        assert 0 < len(part.hosts) <= max_hosts
        for n in part.hosts:
            where_unit.setdefault(n.scalable_unit, set()).add(i)
            where_rack.setdefault(n.rack, set()).add(i)
            placed.append(n.name)
    assert sorted(placed) == sorted(n.name for n in plan.nodes)
    assert all(len(s) == 1 for s in where_rack.values()), "a slice split a rack"
    for unit, where in where_unit.items():
        if unit_size[unit] <= max_hosts:
            assert len(where) == 1, f"slice split scalable unit {unit}"


def test_a_rack_larger_than_a_slice_is_refused() -> None:
    with pytest.raises(InventoryError, match="never splits a rack"):
        slices(campus(), 10)


def test_index_lists_the_slices() -> None:
    plan = campus()
    files = render_inventory(plan, max_hosts=500)
    index = json.loads(files["index.json"])
    assert index["hosts"] == len(plan.nodes) == sum(s["hosts"] for s in index["slices"])
    assert set(files) == {"index.json", *(s["path"] for s in index["slices"])}
    for s in index["slices"]:
        hosts = [n for n in plan.nodes if n.scalable_unit in s["scalable_units"]]
        assert s["hosts"] == len(hosts)
        assert s["halls"] == list(dict.fromkeys(n.hall for n in hosts))
        assert s["clusters"] == sorted({n.cluster for n in hosts if n.cluster})


def test_group_names_are_valid_ansible_names() -> None:
    plan = campus()
    files = render_inventory(plan)
    for path, data in files.items():
        if path == "index.json":
            continue
        for group in json.loads(data)["all"]["children"]:
            assert group.isidentifier() and "-" not in group, group


def test_inventory_is_deterministic() -> None:
    assert render_inventory(campus()) == render_inventory(campus())


def test_growth_keeps_earlier_slices() -> None:
    """Slices fill in commissioning order, so a phase's full slices are the next phase's first ones."""
    e = load_environment(CAMPUS)
    one, two = plan_campus(e.campus, e.name, upto="phase-2")
    a, b = slices(one), slices(two)
    for x, y in zip(a[:-1], b, strict=False):
        assert [n.name for n in x.hosts] == [n.name for n in y.hosts]


def test_inventory_is_the_same_under_any_hash_seed() -> None:
    render = "from kasbah.rendering.inventory import render_inventory; out = render_inventory(plan, max_hosts=2)"
    assert digest_in_fresh_interpreter(render, "1") == digest_in_fresh_interpreter(render, "2")
