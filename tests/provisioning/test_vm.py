"""A real VM, from an emulated BMC and an empty machine to the Plan's hostname and addresses over SSH.

A tiny-environment node (lab1-r01p03-n01) is a QEMU VM (KVM where the host's KVM boots a stock
kernel, software emulation otherwise) with no disk, its in-band NIC at the MAC of the rack's
manifest, on a bridge of the test's namespace holding the rack's in-band gateway. Its BMC is
sushy-tools' libvirt driver at the node's Plan OOB address. `kasbah provision --deploy` has
OpenStack Ironic (ramdisk deploy, Redfish virtual media) boot the project's live ISO
(tests/nodes/build_vm_iso.py) with the node's configuration drive; the node then answers SSH at its
Plan in-band address with its Plan hostname, and holds the network file the node_network role
writes, byte for byte.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kasbah.planning.hostnet import gateway
from kasbah.runners.ironic import NETPLAN_FILE, targets
from tests.conftest import TINY, planned
from tests.nodes import build_vm_iso
from tests.provisioning import vm
from tests.provisioning.lab import BMC_PASSWORD, FakeSystem, Lab, lab, missing, system_uuid

NODE = "lab1-r01p03-n01"
PHASE = "lab-2"
KASBAH = str(Path(sys.executable).with_name("kasbah"))
WHY = missing() or vm.missing() or build_vm_iso.missing()
pytestmark = [pytest.mark.nodes, pytest.mark.skipif(WHY is not None, reason=str(WHY))]


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Path, float]]:
    plan = planned(TINY)[-1]
    node = next(n for n in plan.nodes if n.name == NODE)
    rack = next(r for r in plan.racks if r.name == node.rack)
    (target,) = [t for t in targets(plan)[0] if t.name == NODE]
    iso = build_vm_iso.ensure()
    d = tmp_path_factory.mktemp("vm")
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
        prefix = rack.inband_cidr.split("/")[1]
        for cmd in (
            ["link", "add", "br0", "type", "bridge"],
            ["addr", "add", f"{gateway(rack.inband_cidr)}/{prefix}", "dev", "br0"],
            ["link", "set", "br0", "up"],
        ):
            subprocess.run(["ip", "-n", env.ns, *cmd], check=True)
        live = env.dir / "http" / "live.iso"
        live.hardlink_to(iso)
        virt = vm.Libvirt(env.ns, d / "libvirt")
        try:
            virt.start()
            virt.define_pool("kasbah-vm", d / "pool")
            virt.define_domain(vm.domain_xml(NODE, domain, target.macs[0], "br0", d / "console.log"))
            key = d / "id_ed25519"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
            checksum = "sha256:" + hashlib.sha256(live.read_bytes()).hexdigest()
            t0 = time.monotonic()
            r = env.run(
                [KASBAH, "provision", PHASE, "-e", str(TINY), "--limit", NODE, "--deploy", "--image-kind", "iso",
                 "--image-url", "http://127.0.0.1:8080/live.iso", "--image-checksum", checksum,
                 "--ssh-key", str(key.with_suffix(".pub")), "--bmc-credentials", str(env.dir / "bmc.yaml"),
                 "--timeout", "600"],
                capture_output=True,
            )  # fmt: skip
            assert BMC_PASSWORD not in r.stdout + r.stderr
            assert r.returncode == 0, (
                f"{r.stdout}\n{r.stderr}\n{(d / 'console.log').read_text(errors='replace')[-3000:]}"
            )
            yield env, key, t0
        finally:
            virt.stop()


def ssh(env: Lab, key: Path, address: str, command: str, timeout: float = 5) -> subprocess.CompletedProcess[str]:
    return env.run(
        ["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", f"ConnectTimeout={timeout:.0f}", "-o", "BatchMode=yes", f"root@{address}", command],
        capture_output=True,
    )  # fmt: skip


def test_the_vm_comes_up_with_the_plans_name_and_addresses_over_ssh(booted: tuple[Lab, Path, float]) -> None:
    env, key, t0 = booted
    plan = planned(TINY)[-1]
    node = next(n for n in plan.nodes if n.name == NODE)
    (target,) = [t for t in targets(plan)[0] if t.name == NODE]
    deadline = time.monotonic() + 600
    while True:
        got = ssh(env, key, node.inband_ip, f"hostname; ip -br -4 addr; cat {NETPLAN_FILE}")
        if got.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert got.returncode == 0, got.stderr
    print(f"deploy -> SSH: {time.monotonic() - t0:.0f} s")
    hostname, rest = got.stdout.split("\n", 1)
    assert hostname == NODE
    assert f"{node.inband_ip}/" in rest  # the Plan's in-band address, from the configuration drive
    # the network file cloud-init wrote is the role's own rendering, byte for byte
    assert rest.endswith(target.network_config), rest
