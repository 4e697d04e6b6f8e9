"""The NVIDIA roles' own logic, without containers: ansible-playbook on localhost (connection local, no facts
gathered) loads a role's defaults and vars, runs its preflight tasks and renders its templates with real Ansible
templating, for hosts whose facts and inventory variables the test sets. Nothing is installed or written outside
the test's directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kasbah.resources import roles
from tests.conftest import ROOT

PLAYBOOKS = ROOT / "playbooks"
ROLES = roles(PLAYBOOKS)
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

DEBIAN12_X86 = {
    "ansible_distribution": "Debian",
    "ansible_distribution_version": "12.7",
    "ansible_distribution_major_version": "12",
    "ansible_architecture": "x86_64",
}
UBUNTU2404_GRACE = {
    "ansible_distribution": "Ubuntu",
    "ansible_distribution_version": "24.04",
    "ansible_distribution_major_version": "24",
    "ansible_architecture": "aarch64",
}
UBUNTU2204_X86 = {
    "ansible_distribution": "Ubuntu",
    "ansible_distribution_version": "22.04",
    "ansible_distribution_major_version": "22",
    "ansible_architecture": "x86_64",
}
GPU_NODE = {
    "ansible_connection": "local",
    "ansible_python_interpreter": sys.executable,
    "kasbah_gpus": 4,
    "common_hardware": {"gpus": 4, "rdma_nics": 0, "has_gpus": True, "has_rdma": False, "container": False},
}


def play(role: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """A play over every test host with the role's defaults and private values loaded, as the role sees them."""
    return {
        "name": f"{role} logic",
        "hosts": "all",
        "gather_facts": False,
        "vars_files": [str(ROLES / role / "defaults/main.yml"), str(ROLES / role / "vars/main.yml")],
        "tasks": tasks,
    }


def run(
    tmp_path: Path, hosts: dict[str, dict[str, Any]], plays: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    inventory = {"all": {"children": {"gpu": {"hosts": {h: {**GPU_NODE, **v} for h, v in hosts.items()}}}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN": "memory",  # no facts from (or into) the operator's cache
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml"), "-e", f"out={tmp_path}"],
        cwd=PLAYBOOKS,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def write(name: str, expression: str, values: dict[str, str] | None = None) -> dict[str, Any]:
    """A task writing a rendered value to <out>/<host>.<name> (the test's directory); `values` are task variables
    (templates, resolved when the content is rendered)."""
    task: dict[str, Any] = {
        "name": f"Write {name}",
        "ansible.builtin.copy": {
            "content": expression,
            "dest": "{{ out }}/{{ inventory_hostname }}." + name,
            "mode": "0644",
        },
    }
    if values:
        task["vars"] = {"values": values}
    return task


def template(src: str) -> str:
    return "{{ lookup('ansible.builtin.template', '" + src + "') }}"


def test_imex_nodes_config_lists_the_domain_in_the_same_order_on_every_tray(tmp_path: Path) -> None:
    # two NVLink domains, their trays interleaved and out of order in the inventory
    trays = {
        "rack1-tray3": ("rack1", "10.0.0.10"),
        "rack2-tray1": ("rack2", "10.0.1.1"),
        "rack1-tray1": ("rack1", "10.0.0.9"),
        "rack1-tray2": ("rack1", "10.0.0.100"),
        "rack2-tray2": ("rack2", "10.0.1.2"),
    }
    hosts = {
        h: {
            **UBUNTU2404_GRACE,
            "kasbah_nvlink_fabric": "imex",
            "kasbah_nvlink_domain": d,
            "kasbah_inband_ip": ip,
            "kasbah_nvidia_driver": "580.95.05",
            "ansible_host": "192.0.2.1",
        }  # ansible_host is not what IMEX uses
        for h, (d, ip) in trays.items()
    }
    role = ROLES / "nvidia_fabric"
    proc = run(
        tmp_path,
        hosts,
        [
            play(
                "nvidia_fabric",
                [
                    {"name": "Preflight", "ansible.builtin.include_tasks": str(role / "tasks/preflight.yml")},
                    write("nodes", template(str(role / "templates/etc/nvidia-imex/nodes_config.cfg.j2"))),
                ],
            )
        ],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def addresses(host: str) -> list[str]:
        text = (tmp_path / f"{host}.nodes").read_text()
        assert text.startswith("# Ansible managed"), text
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    rack1 = ["10.0.0.9", "10.0.0.10", "10.0.0.100"]  # numeric order, not text order
    for host in ("rack1-tray1", "rack1-tray2", "rack1-tray3"):
        assert addresses(host) == rack1
    for host in ("rack2-tray1", "rack2-tray2"):
        assert addresses(host) == ["10.0.1.1", "10.0.1.2"]
    # IMEX compares the lists: the files of one domain are byte-identical
    assert len({(tmp_path / f"{h}.nodes").read_bytes() for h in ("rack1-tray1", "rack1-tray2", "rack1-tray3")}) == 1


def test_driver_preflight_refuses_a_gpu_node_without_a_driver_version(tmp_path: Path) -> None:
    hosts = {
        "good": {**DEBIAN12_X86, "kasbah_nvidia_driver": "580.95.05"},
        "branch-only": {**DEBIAN12_X86, "kasbah_nvidia_driver": "580"},
        "unset": {**DEBIAN12_X86},
    }
    role = ROLES / "nvidia_driver"
    proc = run(
        tmp_path,
        hosts,
        [
            play(
                "nvidia_driver",
                [
                    {"name": "Preflight", "ansible.builtin.include_tasks": str(role / "tasks/preflight.yml")},
                    write("passed", "yes"),
                ],
            )
        ],
    )
    assert proc.returncode != 0
    assert (tmp_path / "good.passed").exists()
    for host in ("branch-only", "unset"):
        assert not (tmp_path / f"{host}.passed").exists()
    assert "kasbah_nvidia_driver is '580'" in proc.stdout
    assert "kasbah_nvidia_driver is ''" in proc.stdout


def test_packages_and_repositories_follow_the_distribution_the_architecture_and_the_branch(tmp_path: Path) -> None:
    hosts = {
        "debian12-580": {**DEBIAN12_X86, "kasbah_nvidia_driver": "580.95.05"},
        "noble-grace-580": {**UBUNTU2404_GRACE, "kasbah_nvidia_driver": "580.95.05"},
        "jammy-570": {**UBUNTU2204_X86, "kasbah_nvidia_driver": "570.172.08"},
        "noble-grace-590": {**UBUNTU2404_GRACE, "kasbah_nvidia_driver": "590.44.01"},
    }
    values = {
        "nvidia_driver": {
            "uris": "{{ nvidia_driver_repository.uris }}",
            "install": "{{ _nvidia_driver_install }}",
        },
        "nvidia_fabric": {
            "uris": "{{ nvidia_fabric_repository.uris }}",
            "fabricmanager": "{{ _nvidia_fabric_install }}",
        },
        "dcgm": {"uris": "{{ dcgm_repository.uris }}", "install": "{{ _dcgm_install }}"},
        "nvidia_container_toolkit": {"uris": "{{ nvidia_container_toolkit_repository.uris }}"},
    }
    plays = [play(role, [write(role, "{{ values | to_json }}", exprs)]) for role, exprs in values.items()]
    # the fabric's packages are the fabric manager's here (an 8-GPU NVSwitch baseboard)
    plays[1]["vars"] = {"kasbah_nvlink_fabric": "fabricmanager"}
    proc = run(tmp_path, hosts, plays)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def got(host: str, role: str) -> dict[str, Any]:
        return json.loads((tmp_path / f"{host}.{role}").read_text())

    cuda = "https://developer.download.nvidia.com/compute/cuda/repos/"
    assert got("debian12-580", "nvidia_driver") == {
        "uris": [cuda + "debian12/x86_64"],
        "install": [
            "nvidia-driver-cuda=580.95.05-*",
            "nvidia-kernel-open-dkms=580.95.05-*",
            "nvidia-persistenced=580.95.05-*",
            "nvidia-modprobe=580.95.05-*",
        ],
    }
    assert got("noble-grace-580", "nvidia_driver") == {
        "uris": [cuda + "ubuntu2404/sbsa"],
        "install": [
            "nvidia-dkms-580-open=580.95.05-*",
            "libnvidia-compute-580=580.95.05-*",
            "nvidia-utils-580=580.95.05-*",
            "nvidia-compute-utils-580=580.95.05-*",
            "nvidia-modprobe=580.95.05-*",
        ],
    }
    # from 590 the Ubuntu packages drop the branch from their names
    assert got("noble-grace-590", "nvidia_driver")["install"][:2] == [
        "nvidia-dkms-open=590.44.01-*",
        "libnvidia-compute=590.44.01-*",
    ]
    assert got("jammy-570", "nvidia_driver")["uris"] == [cuda + "ubuntu2204/x86_64"]
    # the fabric manager and its NVSwitch libraries come at the driver's version, named with the branch before 580
    assert got("noble-grace-580", "nvidia_fabric")["fabricmanager"] == [
        "nvidia-fabricmanager=580.95.05-*",
        "libnvidia-nscq=580.95.05-*",
        "libnvsdm=580.95.05-*",
        "nvlsm",
    ]
    assert got("jammy-570", "nvidia_fabric")["fabricmanager"][0] == "nvidia-fabricmanager-570=570.172.08-*"
    # one repository for driver, fabric and DCGM
    for host in hosts:
        assert got(host, "nvidia_fabric")["uris"] == got(host, "dcgm")["uris"] == got(host, "nvidia_driver")["uris"]
    # DCGM's diagnostics follow the driver's CUDA major: 13 from branch 580, 12 before
    assert "datacenter-gpu-manager-4-cuda13=1:4.5.2-1" in got("debian12-580", "dcgm")["install"]
    assert "datacenter-gpu-manager-4-proprietary-cuda12=1:4.5.2-1" in got("jammy-570", "dcgm")["install"]
    assert got("noble-grace-580", "nvidia_container_toolkit")["uris"] == [
        "https://nvidia.github.io/libnvidia-container/stable/deb/arm64"
    ]
    assert got("debian12-580", "nvidia_container_toolkit")["uris"] == [
        "https://nvidia.github.io/libnvidia-container/stable/deb/amd64"
    ]


def test_pins_and_unit_drop_ins_carry_the_versions_and_the_listener(tmp_path: Path) -> None:
    hosts = {"node": {**DEBIAN12_X86, "kasbah_nvidia_driver": "580.95.05", "kasbah_pool": "gpu-a"}}
    renders = {
        "nvidia_driver": ["etc/apt/preferences.d/60-kasbah-nvidia-driver.pref.j2"],
        "dcgm": [
            "etc/apt/preferences.d/60-kasbah-dcgm.pref.j2",
            "etc/systemd/system/nvidia-dcgm.service.d/60-kasbah.conf.j2",
        ],
        "nvidia_container_toolkit": ["etc/apt/preferences.d/60-kasbah-nvidia-container-toolkit.pref.j2"],
    }
    plays = [
        play(role, [write(Path(src).name, template(str(ROLES / role / "templates" / src))) for src in sources])
        for role, sources in renders.items()
    ]
    proc = run(tmp_path, hosts, plays)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def stanza(name: str) -> dict[str, str]:
        lines = (tmp_path / f"node.{name}").read_text().splitlines()
        return dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))

    driver = stanza("60-kasbah-nvidia-driver.pref.j2")
    assert driver["Pin"] == "version 580.95.05-*" and driver["Pin-Priority"] == "1001"
    assert "/^(lib)?nvidia-/" in driver["Package"].split()
    assert stanza("60-kasbah-dcgm.pref.j2")["Pin"] == "version 1:4.5.2-1"
    toolkit = stanza("60-kasbah-nvidia-container-toolkit.pref.j2")
    assert toolkit["Pin"] == "version 1.18.2-1"
    assert toolkit["Package"].split() == [
        "nvidia-container-toolkit",
        "nvidia-container-toolkit-base",
        "libnvidia-container-tools",
        "libnvidia-container1",
    ]
    unit = (tmp_path / "node.60-kasbah.conf.j2").read_text().splitlines()
    assert "ExecStart=" in unit  # the package's command is replaced, not appended to
    assert (
        "ExecStart=/usr/bin/nv-hostengine -n --service-account nvidia-dcgm --port 5555 --bind-interface 127.0.0.1"
        in unit
    )


@pytest.mark.parametrize("role", ["nvidia_driver", "nvidia_fabric", "dcgm", "nvidia_container_toolkit"])
def test_roles_skip_hosts_the_plan_gives_no_gpus(role: str) -> None:
    """Every NVIDIA role's phases are gated on the plan's GPUs and the hardware facts, in tasks/groups.yml (which the
    full pass's tasks/main.yml and the lean pass's tasks/node.yml import)."""
    main = yaml.safe_load((ROLES / role / "tasks/groups.yml").read_text())
    phases = [
        t for t in main if "ansible.builtin.import_tasks" in t and t["ansible.builtin.import_tasks"] != "preflight.yml"
    ]
    assert phases, role
    assert all(t.get("when") == f"_{role}_enabled | bool" for t in phases), phases
    enabled = yaml.safe_load((ROLES / role / "vars/main.yml").read_text())[f"_{role}_enabled"]
    assert "kasbah_gpus" in enabled and "common_hardware.has_gpus" in enabled
