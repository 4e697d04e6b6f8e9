"""A real VM, from an emulated BMC and an empty machine to the Plan's hostname and addresses over SSH.

A tiny-environment node (lab1-r01p03-n01) is a QEMU VM (KVM where the host's KVM boots a stock
kernel, software emulation otherwise) with no disk, its in-band NIC at the MAC of the rack's
manifest, on a bridge of the test's namespace holding the rack's in-band gateway. Its BMC is
sushy-tools' libvirt driver at the node's Plan OOB address. `kasbah provision --deploy` has
OpenStack Ironic (ramdisk deploy, Redfish virtual media) boot the project's live ISO
(tests/nodes/build_vm_iso.py) with the node's configuration drive; the node then answers SSH at its
Plan in-band address with its Plan hostname, and holds the network file the node_network role
writes, byte for byte; its BMC holds the rack profile's BIOS settings, which Ironic applied on the
way to available. Then `kasbah configure` runs the site playbook on it over real SSH, as a
runner in the admin zone does (the namespace holds an admin-zone address and the VM's default
route leads back to it), with the roles' repositories at the project's package mirror served over
HTTP from the namespace: the node firewall it loads keeps the admin zone's SSH and drops the rest.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from kasbah.planning.hostnet import gateway
from kasbah.runners.ironic import NETPLAN_FILE, targets
from tests.conftest import TINY, planned
from tests.nodes import build_image, build_vm_iso
from tests.provisioning import vm
from tests.provisioning.lab import BMC_PASSWORD, BMC_USER, FakeSystem, Lab, lab, missing, system_uuid, with_bios

NODE = "lab1-r01p03-n01"
PHASE = "lab-2"
KASBAH = str(Path(sys.executable).with_name("kasbah"))
WHY = missing() or vm.missing() or build_vm_iso.missing()
MIRROR_PORT = 8081
# no network boot on the boot NIC (virtual media only; sushy's default is NetworkBoot); turbo stays on.
# (String values: sushy-tools' libvirt driver keeps every attribute as text, so a registry Boolean reads back
# as "False" and Ironic waits for it until its cleaning times out; a real BMC answers JSON booleans.)
BIOS = {"NicBoot1": "Disabled", "ProcTurboMode": "Enabled"}


def admin_address() -> str:
    """The runner's address in the Plan's admin zone (the zone the node firewall takes SSH from)."""
    admin = planned(TINY)[-1].admin_networks[0]
    return str(ipaddress.ip_network(admin).broadcast_address - 1)


@dataclass(frozen=True)
class Booted:
    env: Lab
    key: Path
    env_dir: Path  # the tiny environment, with the GPU rack profile's BIOS settings
    tree: Path
    t0: float
    # the node passes' figures (wall s, controller CPU s, tasks), for tests/benchmarks/bench_image.py
    figures: dict[str, dict[str, float]] = field(default_factory=dict)


pytestmark = [pytest.mark.nodes, pytest.mark.skipif(WHY is not None, reason=str(WHY))]


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    plan = planned(TINY)[-1]
    node = next(n for n in plan.nodes if n.name == NODE)
    rack = next(r for r in plan.racks if r.name == node.rack)
    (target,) = [t for t in targets(plan)[0] if t.name == NODE]
    iso = build_vm_iso.ensure()
    _, mirror = build_image.current()  # the package mirror only (the container image needs Docker, a VM does not)
    if not (mirror / "Packages").exists():
        build_image.build_mirror(build_image.role_packages(), mirror)
    d = tmp_path_factory.mktemp("vm")
    # the GPU rack profile asks for BIOS settings (sushy-tools' libvirt driver keeps a BIOS per domain)
    env_dir = with_bios(TINY, d / "tiny", "lab-gpu", BIOS)
    tree = d / "tree"
    subprocess.run([KASBAH, "render", PHASE, "-e", str(env_dir), "--out", str(tree)], check=True, capture_output=True)
    domain = system_uuid(NODE)
    sushy = (
        f"SUSHY_EMULATOR_LIBVIRT_URI = {vm.URI!r}\n"
        f"SUSHY_EMULATOR_ALLOWED_INSTANCES = {[domain, NODE]!r}\n"
        "SUSHY_EMULATOR_STORAGE_POOL = 'kasbah-vm'\n"
        "SUSHY_EMULATOR_IGNORE_BOOT_DEVICE = False\n"
        "SUSHY_EMULATOR_BOOT_LOADER_MAP = {'Legacy': {'x86_64': '/usr/share/seabios/bios-256k.bin'},"
        " 'UEFI': {'x86_64': '/usr/share/OVMF/OVMF_CODE_4M.fd'}}\n"
    )
    systems = [FakeSystem(NODE, target.macs, node.oob_ip)]
    # Legacy BIOS: the live ISO boots with isolinux (a UEFI ISO would also skip sushy's SecureBoot 501 retries)
    with lab(d / "lab", "lab1", systems, sushy_extra=sushy, deploy_extra="default_boot_mode = bios") as env:
        assert rack.inband_cidr is not None
        gw = gateway(rack.inband_cidr)
        prefix = rack.inband_cidr.split("/")[1]
        subnet = str(ipaddress.ip_network(rack.inband_cidr))
        for cmd in (
            ["link", "add", "br0", "type", "bridge"],
            ["addr", "add", f"{gw}/{prefix}", "dev", "br0"],
            ["link", "set", "br0", "up"],
            # the runner speaks from the admin zone, routed to the rack's in-band network
            ["addr", "add", f"{admin_address()}/32", "dev", "lo"],
            ["route", "replace", subnet, "dev", "br0", "src", admin_address()],
        ):
            subprocess.run(["ip", "-n", env.ns, *cmd], check=True)
        env.serve(mirror, gw, MIRROR_PORT)
        live = env.dir / "http" / "live.iso"
        live.hardlink_to(iso)
        virt = vm.Libvirt(env.ns, d / "libvirt")
        try:
            virt.start()
            virt.define_pool("kasbah-vm", d / "pool")
            virt.define_domain(vm.domain_xml(NODE, domain, target.macs[0], "br0", d / "console.log", memory_mib=3072))
            key = d / "id_ed25519"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
            checksum = "sha256:" + hashlib.sha256(live.read_bytes()).hexdigest()
            t0 = time.monotonic()
            r = env.run(
                [KASBAH, "provision", PHASE, "-e", str(env_dir), "--limit", NODE, "--deploy", "--image-kind", "iso",
                 "--image-url", "http://127.0.0.1:8080/live.iso", "--image-checksum", checksum,
                 "--ssh-key", str(key.with_suffix(".pub")), "--bmc-credentials", str(env.dir / "bmc.yaml"),
                 "--timeout", "600"],
                capture_output=True,
            )  # fmt: skip
            assert BMC_PASSWORD not in r.stdout + r.stderr
            assert r.returncode == 0, (
                f"{r.stdout}\n{r.stderr}\n{(d / 'console.log').read_text(errors='replace')[-3000:]}"
            )
            yield Booted(env, key, env_dir, tree, t0)
        finally:
            virt.stop()


def ssh(env: Lab, key: Path, address: str, command: str, timeout: float = 5) -> subprocess.CompletedProcess[str]:
    return env.run(
        ["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", f"ConnectTimeout={timeout:.0f}", "-o", "BatchMode=yes", f"root@{address}", command],
        capture_output=True,
    )  # fmt: skip


def ssh_up(b: Booted, address: str, command: str, seconds: float = 600) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + seconds
    while True:
        got = ssh(b.env, b.key, address, command)
        if got.returncode == 0 or time.monotonic() > deadline:
            return got
        time.sleep(3)


def test_the_vm_comes_up_with_the_plans_name_and_addresses_over_ssh(booted: Booted) -> None:
    plan = planned(TINY)[-1]
    node = next(n for n in plan.nodes if n.name == NODE)
    (target,) = [t for t in targets(plan)[0] if t.name == NODE]
    got = ssh_up(booted, node.inband_ip, f"hostname; ip -br -4 addr; cat {NETPLAN_FILE}")
    assert got.returncode == 0, got.stderr
    print(f"deploy -> SSH: {time.monotonic() - booted.t0:.0f} s")
    hostname, rest = got.stdout.split("\n", 1)
    assert hostname == NODE
    assert f"{node.inband_ip}/" in rest  # the Plan's in-band address, from the configuration drive
    # the network file cloud-init wrote is the role's own rendering, byte for byte
    assert rest.endswith(target.network_config), rest


def test_the_bmc_holds_the_rack_profiles_bios_settings(booted: Booted) -> None:
    """Ironic's redfish BIOS interface applied them before the node was made available; kasbah recorded it."""
    node = next(n for n in planned(TINY)[-1].nodes if n.name == NODE)
    bmc, auth = f"http://{node.oob_ip}:8000", (BMC_USER, BMC_PASSWORD)
    system = booted.env.get(f"{bmc}/redfish/v1/Systems/{system_uuid(NODE)}", auth)
    bios = booted.env.get(bmc + system["Bios"]["@odata.id"], auth)
    assert {k: bios["Attributes"][k] for k in BIOS} == BIOS
    ironic = booted.env.get(f"{booted.env.ironic_url}/v1/nodes/{NODE}?fields=extra,bios_interface")
    assert ironic["bios_interface"] == "redfish" and ironic["extra"]["kasbah_bios"] == BIOS


def test_kasbah_configure_runs_the_site_playbook_over_ssh(booted: Booted) -> None:
    """The node playbooks over the transport users have: SSH from the admin zone, apt from the site's mirror."""
    plan = planned(TINY)[-1]
    node = next(n for n in plan.nodes if n.name == NODE)
    rack = next(r for r in plan.racks if r.name == node.rack)
    assert rack.inband_cidr is not None
    assert ssh_up(booted, node.inband_ip, "true").returncode == 0
    mirror = f"http://{gateway(rack.inband_cidr)}:{MIRROR_PORT}/"
    overlay = booted.tree.parent / "ssh.yml"
    overlay.write_text(
        "---\n"
        + yaml.safe_dump(
            {
                "all": {
                    "vars": {
                        "ansible_user": "root",
                        "ansible_ssh_private_key_file": str(booted.key),
                        # a fresh node's host key is new to this runner (a site pins it from the configuration drive)
                        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                        "os_baseline_repositories": [
                            {"name": "kasbah-mirror", "uris": [mirror], "suites": ["./"], "trusted": True}
                        ],
                        "os_baseline_chrony_servers": [admin_address()],
                    }
                }
            }
        )
    )
    artifacts = booted.tree.parent / "configure"
    run, summary = _configure(booted, overlay, artifacts, "full", "--skip-tags", "vendor,cluster")
    print(f"kasbah configure over SSH: {booted.figures['full']['wall_s']:.0f} s")
    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-2000:]}\n{json.dumps(summary)[:2000]}"
    # the node holds what the roles wrote: managed apt sources at the mirror, the loaded firewall
    got = ssh(booted.env, booted.key, node.inband_ip, "cat /etc/apt/sources.list.d/*.sources; nft list ruleset")
    assert got.returncode == 0, got.stderr
    assert f"URIs: {mirror}" in got.stdout
    assert "policy drop" in got.stdout
    # SSH from the admin zone still works (it just did); from the in-band gateway it is dropped
    other = booted.env.run(
        ["ssh", "-i", str(booted.key), "-b", gateway(rack.inband_cidr), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-o", "BatchMode=yes",
         f"root@{node.inband_ip}", "true"],
        capture_output=True,
    )  # fmt: skip
    assert other.returncode == 255 and "timed out" in other.stderr, other.stderr


def _configure(
    booted: Booted, overlay: Path, artifacts: Path, name: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    """`kasbah configure` on the VM from the namespace's admin address; its wall time, controller CPU and tasks."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    run = booted.env.run(
        [KASBAH, "configure", str(booted.tree), "-e", str(booted.env_dir), "--limit", NODE, "-i", str(overlay),
         "--artifacts", str(artifacts), *extra],
        capture_output=True,
    )  # fmt: skip
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads((artifacts / "summary.json").read_text()) if (artifacts / "summary.json").exists() else {}
    hosts = [r for s in summary.get("slices", []) for r in s["hosts"].values()]
    booted.figures[name] = {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "tasks": float(sum(h["ok"] + h["skipped"] for h in hosts)),
    }
    return run, summary


def test_the_lean_pass_on_the_configured_vm(booted: Booted) -> None:
    """The lean pass over SSH on the node the full pass configured: what it costs the controller beside the full pass.

    The VM boots the live ISO, not a pool image (tests/playbooks/test_pool_image.py boots those on the
    container fleet), so the check that the node booted its pool's image is skipped (`booted`); every
    other task of the lean pass runs as it would after an image boot.
    """
    if "full" not in booted.figures:
        pytest.skip("the full pass did not run (test_kasbah_configure_runs_the_site_playbook_over_ssh)")
    overlay = booted.tree.parent / "ssh.yml"
    artifacts = booted.tree.parent / "lean"
    run, summary = _configure(booted, overlay, artifacts, "lean", "-p", "node", "--skip-tags", "vendor,cluster,booted")
    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-2000:]}\n{json.dumps(summary)[:2000]}"
    full, lean = booted.figures["full"], booted.figures["lean"]
    assert 0 < lean["tasks"] * 3 < full["tasks"], booted.figures
    print(f"VM passes: {json.dumps(booted.figures)}")
    out = os.environ.get("KASBAH_BENCH_FIGURES")
    if out:
        Path(out).write_text(json.dumps(booted.figures, indent=1) + "\n")
