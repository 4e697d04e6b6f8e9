"""The host firewall's nftables rules, rendered through Ansible's own templating for real inventory hosts.

No containers and no root: the tiny and campus inventories are rendered (kasbah.rendering.inventory), loaded
with Ansible's InventoryManager and VariableManager, and the role's template is rendered with a Templar over the
host's variables and the role's defaults and vars (the precedence a play gives them). When `nft` is installed and
a network namespace can be made, the rendered files are also checked by nftables itself (`nft --check`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from kasbah.resources import roles
from tests.conftest import CAMPUS, ROOT, TINY, planned

ROLE = roles(ROOT / "playbooks") / "host_firewall"
TEMPLATE = ROLE / "templates" / "etc" / "nftables.conf.j2"
MANAGED = "Ansible managed: test"
# The campus inventory in small slices, so that a test loads a few hundred hosts rather than 2,000
CAMPUS_SLICE_HOSTS = 200
RULE = re.compile(
    r"^\s*(?P<family>ip6?) saddr \{ (?P<sources>[^}]*) \} (?P<match>.*?) counter accept comment \"(?P<name>[^\"]+)\"$"
)


@dataclass(frozen=True)
class Rule:
    family: str
    sources: frozenset[str]
    protocol: str
    ports: frozenset[str]


@dataclass(frozen=True)
class Host:
    name: str
    variables: dict[str, Any]
    text: str

    def rules(self) -> dict[str, list[Rule]]:
        out: dict[str, list[Rule]] = {}
        for line in self.text.splitlines():
            found = RULE.match(line)
            if not found:
                continue
            match = found["match"]
            ports = re.search(r"dport \{ ([^}]*) \}", match)
            protocol = "vrrp" if " 112" in match else next((p for p in ("icmp",) if p in match), match.split()[0])
            out.setdefault(found["name"], []).append(
                Rule(
                    found["family"],
                    frozenset(s.strip() for s in found["sources"].split(",")),
                    protocol,
                    frozenset(p.strip() for p in ports[1].split(",")) if ports else frozenset(),
                )
            )
        return out

    def sources(self, *networks: str) -> frozenset[str]:
        """The address ranges behind network names, as the inventory gives them to this host."""
        cidrs: set[str] = set()
        for name in networks:
            if name == "pods":
                cidrs.add(self.variables["kasbah_pod_cidr"])
            else:
                cidrs.update(self.variables["kasbah_networks"][name])
        return frozenset(cidrs)


class Inventory:
    """One rendered inventory slice, loaded the way ansible-playbook loads it."""

    def __init__(self, path: Path) -> None:
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.vars.manager import VariableManager

        self.loader = DataLoader()
        self.inventory = InventoryManager(loader=self.loader, sources=[str(path)])
        self.variables = VariableManager(loader=self.loader, inventory=self.inventory)
        # role files are trusted templates, like the role's own files in a play
        self.defaults = self.loader.load_from_file(str(ROLE / "defaults" / "main.yml"), trusted_as_template=True)
        self.private = self.loader.load_from_file(str(ROLE / "vars" / "main.yml"), trusted_as_template=True)

    def hosts(self, pattern: str) -> list[str]:
        return [h.name for h in self.inventory.get_hosts(pattern=pattern)]

    def render(self, name: str, **extra: Any) -> Host:
        from ansible.template import Templar, trust_as_template

        host = self.inventory.get_host(name)
        assert host is not None, f"{name} is not in the inventory"
        inventory_vars = self.variables.get_vars(host=host, include_hostvars=False)
        # role defaults < inventory < role vars < extra vars
        variables = {**self.defaults, **inventory_vars, **self.private, **extra, "ansible_managed": MANAGED}
        templar = Templar(loader=self.loader, variables=variables)
        text = templar.template(trust_as_template(TEMPLATE.read_text()))
        return Host(name, inventory_vars, text)


def write_slices(out: dict[str, bytes], dest: Path) -> list[Path]:
    for rel, data in out.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    index = json.loads(out["index.json"])
    return [dest / part["path"] for part in index["slices"]]


@cache
def tiny() -> Inventory:
    import tempfile

    from kasbah.rendering.inventory import render_inventory

    dest = Path(tempfile.mkdtemp(prefix="kasbah-fw-tiny-"))
    (path,) = write_slices(render_inventory(planned(TINY)[0]), dest)
    return Inventory(path)


@cache
def campus_slices() -> tuple[Path, ...]:
    import tempfile

    from kasbah.rendering.inventory import render_inventory

    dest = Path(tempfile.mkdtemp(prefix="kasbah-fw-campus-"))
    return tuple(write_slices(render_inventory(planned(CAMPUS)[0], max_hosts=CAMPUS_SLICE_HOSTS), dest))


@cache
def campus(group: str) -> tuple[Inventory, str]:
    """The first campus slice with a host of `group`, and that host."""
    for path in campus_slices():
        doc = json.loads(path.read_text())
        if group in doc["all"]["children"]:
            inventory = Inventory(path)
            hosts = inventory.hosts(group)
            if hosts:
                return inventory, hosts[0]
    raise AssertionError(f"no campus slice has a host in {group}")


# --- tiny: the lab's control plane, GPU workers and management node ---


def test_the_control_plane_admits_the_api_server_from_admin_inband_and_pods() -> None:
    host = tiny().render("lab1-r01p02-n01")
    rules = host.rules()
    assert rules["kube-apiserver"] == [Rule("ip", host.sources("admin", "inband", "pods"), "tcp", frozenset({"6443"}))]
    assert rules["etcd"] == [Rule("ip", host.sources("inband"), "tcp", frozenset({"2379-2380"}))]
    # keepalived's adverts for the API's VIP, from the in-band network only
    assert rules["vrrp"] == [Rule("ip", host.sources("inband"), "vrrp", frozenset())]


def test_a_gpu_worker_admits_roce_from_the_compute_network_and_no_control_plane_port() -> None:
    inventory = tiny()
    for name in inventory.hosts("gpu"):
        host = inventory.render(name)
        rules = host.rules()
        assert "kube-apiserver" not in rules and "etcd" not in rules and "vrrp" not in rules, f"{name} is a worker"
        assert "6443" not in host.text and "2379" not in host.text
        assert rules["roce"] == [Rule("ip", host.sources("compute"), "udp", frozenset({"4791"}))]


def test_a_host_outside_any_cluster_says_it_has_no_pod_range() -> None:
    host = tiny().render("lab1-r01p02-n02")
    assert "kasbah_pod_cidr" not in host.variables
    # metrics come from pods and inband: only inband remains, and the file says why
    assert host.rules()["metrics"] == [Rule("ip", host.sources("inband"), "tcp", frozenset({"9100", "9400"}))]
    assert "# no addresses on this host for pods (the host has no kasbah_pod_cidr)" in host.text
    assert "roce" not in host.rules()


def test_a_flow_whose_sources_resolve_to_nothing_is_left_out_with_a_comment() -> None:
    extra = [{"name": "pod-only", "sources": ["pods"], "protocol": "tcp", "ports": ["8080"], "groups": ["all"]}]
    host = tiny().render("lab1-r01p02-n02", host_firewall_extra_flows=extra)
    assert "pod-only" not in host.rules()
    assert "# pod-only, from pods" in host.text
    assert "# left out: none of its sources has addresses on this host" in host.text


def test_site_flows_and_networks_reach_only_their_groups() -> None:
    extra = {
        "host_firewall_extra_networks": {"backup": ["192.0.2.0/24", "2001:db8::/64"]},
        "host_firewall_extra_flows": [
            {"name": "backup-agent", "sources": ["backup"], "protocol": "tcp", "ports": ["9102"], "groups": ["gpu"]}
        ],
    }
    inventory = tiny()
    gpu = inventory.render("lab1-r01p03-n01", **extra).rules()
    assert gpu["backup-agent"] == [
        Rule("ip", frozenset({"192.0.2.0/24"}), "tcp", frozenset({"9102"})),
        Rule("ip6", frozenset({"2001:db8::/64"}), "tcp", frozenset({"9102"})),
    ]
    assert "backup-agent" not in inventory.render("lab1-r01p02-n01", **extra).rules()


@pytest.mark.parametrize("name", ["lab1-r01p02-n01", "lab1-r01p02-n02", "lab1-r01p03-n01", "lab1-r01p03-n02"])
def test_every_tiny_host_admits_ssh_from_the_admin_network_only(name: str) -> None:
    assert_ssh_from_admin_only(tiny().render(name))


# --- campus: phase 1 ---


@pytest.mark.parametrize("group", ["control_plane", "gpu", "management", "storage"])
def test_every_campus_role_admits_ssh_from_the_admin_network_only(group: str) -> None:
    inventory, name = campus(group)
    assert_ssh_from_admin_only(inventory.render(name))


def test_the_campus_control_plane_admits_the_api_server_and_a_storage_node_does_not() -> None:
    inventory, name = campus("control_plane")
    host = inventory.render(name)
    assert host.rules()["kube-apiserver"] == [
        Rule("ip", host.sources("admin", "inband", "pods"), "tcp", frozenset({"6443"}))
    ]
    inventory, name = campus("storage")
    rules = inventory.render(name).rules()
    assert "kube-apiserver" not in rules and "etcd" not in rules and "roce" not in rules


def test_a_campus_gpu_node_admits_roce_from_the_compute_network() -> None:
    inventory, name = campus("gpu")
    host = inventory.render(name)
    assert host.rules()["roce"] == [Rule("ip", host.sources("compute"), "udp", frozenset({"4791"}))]


# --- the file as a whole ---


def assert_ssh_from_admin_only(host: Host) -> None:
    text, rules = host.text, host.rules()
    assert text.splitlines()[0] == f"# {MANAGED}"
    assert "policy drop;" in text
    # only kasbah's table is replaced: declared, deleted and defined in the one transaction nft -f applies
    assert "table inet kasbah_host\ndelete table inet kasbah_host\n" in text
    assert "flush ruleset" not in text
    assert rules["ssh"] == [Rule("ip", host.sources("admin"), "tcp", frozenset({"22"}))]
    others = [n for n, rs in rules.items() if n != "ssh" and any("22" in r.ports for r in rs)]
    assert others == [], f"{host.name}: port 22 is also admitted by {others}"


def nft_check_command() -> list[str] | str:
    """`nft --check` in a network namespace of its own (the machine's rules are never touched), or why not."""
    if shutil.which("nft") is None:
        return "nft is not installed (Debian package nftables)"
    if shutil.which("unshare") is None:
        return "unshare is not installed (util-linux)"
    for prefix in (["unshare", "--net"], ["unshare", "--map-root-user", "--net"]):
        probe = subprocess.run([*prefix, "nft", "list", "tables"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [*prefix, "nft", "--check", "--file"]
    return "no network namespace can be made here (neither as root nor in a user namespace)"


def test_nftables_accepts_the_rendered_files(tmp_path: Path) -> None:
    command = nft_check_command()
    if isinstance(command, str):
        pytest.skip(f"checking the rules with nftables needs nft in a network namespace: {command}")
    hosts = [tiny().render(n) for n in tiny().hosts("all")]
    hosts += [inventory.render(name) for inventory, name in (campus(g) for g in ("control_plane", "gpu", "storage"))]
    for host in hosts:
        path = tmp_path / f"{host.name}.nft"
        path.write_text(host.text)
        proc = subprocess.run([*command, str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{host.name}: {proc.stderr}"
