"""Build the live ISO a test VM boots through Ironic: Debian 12 with cloud-init, all in memory.

Nothing here reaches a registry: the root filesystem is `mmdebstrap` of Debian 12 (bookworm) from
Debian's own mirror. The ISO holds only a kernel and an initramfs that IS the whole root
filesystem (`/init` is systemd), booted by isolinux (BIOS): no disk, no installer, no overlay.
cloud-init reads Ironic's configuration drive (ConfigDrive, label config-2) for the node's
hostname, root's SSH keys and kasbah's netplan file; its own network configuration is off, so the
node's addresses are kasbah's file only, as on a deployed node.

    python tests/nodes/build_vm_iso.py            # build if the inputs changed, print the ISO's path
    python tests/nodes/build_vm_iso.py --force    # rebuild

Needs root, mmdebstrap, cpio, zstd, genisoimage and isolinux + syslinux-common (the boot loader).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_image

SUITE = "bookworm"
DEBIAN = os.environ.get("KASBAH_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("KASBAH_NODE_CACHE", Path.home() / ".cache" / "kasbah" / "nodes"))
# a bootable system with SSH and cloud-init, plus what every node has before Ansible first reaches it
# (build_image.BASE_PACKAGES: the container image's own list, so the two test nodes cannot drift apart)
BOOT_PACKAGES = (
    "linux-image-amd64", "udev", "kmod", "iproute2", "openssh-server", "cloud-init", "netplan.io",
)  # fmt: skip
PACKAGES = tuple(dict.fromkeys((*BOOT_PACKAGES, *build_image.BASE_PACKAGES)))
# the kernel modules a QEMU `pc` guest needs (NICs, CD-ROM, the configuration drive on floppy, USB or
# CD); every other module goes, with what none of these depends on
MODULES = (
    "virtio_net", "virtio_pci", "virtio_blk", "virtio_scsi", "e1000", "ata_piix", "ata_generic", "sr_mod",
    "sd_mod", "floppy", "isofs", "vfat", "nls_cp437", "nls_ascii", "nls_utf8", "nls_iso8859_1", "usb_storage",
    "uas", "ehci_pci", "uhci_hcd", "xhci_pci", "ohci_pci", "loop", "autofs4",
)  # fmt: skip
# and, whole, what a node's roles load: netfilter (the host firewall's nftables, br_netfilter), overlayfs
# (containerd), NFS (storage_client), with the crypto and library modules they need
KEEP_TREES = ("kernel/net/", "kernel/fs/", "kernel/crypto/", "kernel/lib/")
# docs, manuals and translations stay out of the image (dpkg never unpacks them)
EXCLUDE = (
    "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*", "path-exclude=/usr/share/info/*", "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/lib/firmware/*", "path-exclude=/lib/firmware/*",
)  # fmt: skip
CLOUD_CFG = """\
# kasbah's test node: the configuration drive Ironic attaches (config-2); the network is kasbah's netplan file
datasource_list: [ConfigDrive, NoCloud, None]
network: {config: disabled}
"""
# No initramfs stage loads the storage drivers before systemd's generators run, so cloud-init's
# ds-identify (a generator) would find no config-2 device and disable cloud-init: it is always on,
# and its first stage waits for the configuration drive's driver and device node.
DS_IDENTIFY = "policy: enabled\n"
MODULES_LOAD = "floppy\nisofs\nsr_mod\nusb_storage\n"
CLOUD_INIT_DROPIN = (
    "[Unit]\nAfter=systemd-modules-load.service\n[Service]\nExecStartPre=-/usr/bin/udevadm settle --timeout=30\n"
)
# cloud-init writes root's keys; sshd must start even before it made host keys
SSH_DROPIN = "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"
ISOLINUX_CFG = """\
DEFAULT live
PROMPT 0
TIMEOUT 0
LABEL live
  KERNEL /live/vmlinuz
  APPEND initrd=/live/initrd.img console=tty0 console=ttyS0,115200n8 net.ifnames=1 quiet
"""
FORMAT = 2  # bump when the build below changes


def digest() -> str:
    text = json.dumps(
        {"suite": SUITE, "packages": PACKAGES, "modules": MODULES, "exclude": EXCLUDE, "cloud": CLOUD_CFG,
         "ssh": SSH_DROPIN, "isolinux": ISOLINUX_CFG, "ds": DS_IDENTIFY, "load": MODULES_LOAD,
         "local": CLOUD_INIT_DROPIN, "trees": KEEP_TREES, "format": FORMAT}
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def iso_path() -> Path:
    """Where the ISO of the current inputs is (built or not)."""
    return CACHE / f"vm-live-{digest()}.iso"


def missing() -> str | None:
    """Why the ISO cannot be built here (None when it can)."""
    if os.geteuid() != 0:
        return "needs root (mmdebstrap unpacks as root)"
    for tool in ("mmdebstrap", "cpio", "zstd", "genisoimage"):
        if not shutil.which(tool):
            return f"needs {tool}"
    if not Path("/usr/lib/ISOLINUX/isolinux.bin").exists():
        return "needs isolinux and syslinux-common (apt-get install isolinux syslinux-common)"
    return None


def _run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def _prune_modules(root: Path) -> str:
    """Keep MODULES, the KEEP_TREES and their dependencies only; the kernel's version."""
    (moddir,) = (root / "lib/modules").iterdir()
    deps: dict[str, list[str]] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
    by_name = {Path(m).name.split(".ko")[0].replace("-", "_"): m for m in deps}
    keep: set[str] = set()
    todo = [by_name[m] for m in MODULES if m in by_name] + [m for m in deps if m.startswith(KEEP_TREES)]
    while todo:
        m = todo.pop()
        if m not in keep:
            keep.add(m)
            todo.extend(deps[m])
    for ko in moddir.glob("kernel/**/*.ko*"):
        if str(ko.relative_to(moddir)) not in keep:
            ko.unlink()
    _run(["chroot", str(root), "depmod", moddir.name])
    return moddir.name


def build(dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="kasbah-vm-iso-") as tmp:
        root, iso = Path(tmp) / "root", Path(tmp) / "iso"
        _run(
            [
                "mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                *(f"--dpkgopt={e}" for e in EXCLUDE),
                "--customize-hook=rm -f $1/etc/apt/sources.list",
                SUITE, str(root), DEBIAN,
            ]
        )  # fmt: skip
        version = _prune_modules(root)
        (iso / "live").mkdir(parents=True)
        shutil.move(root / "boot" / f"vmlinuz-{version}", iso / "live" / "vmlinuz")
        for path in ("boot", "var/cache/apt", "var/lib/apt/lists", "usr/share/doc"):
            shutil.rmtree(root / path, ignore_errors=True)
        # empty, as on an installed system: apt locks and downloads there
        for path in ("boot", "var/cache/apt/archives/partial", "var/lib/apt/lists/partial"):
            (root / path).mkdir(parents=True)
        for key in (root / "etc/ssh").glob("ssh_host_*"):
            key.unlink()  # each boot makes its own
        (root / "etc/machine-id").write_text("")
        (root / "etc/hostname").write_text("localhost\n")
        (root / "etc/cloud/cloud.cfg.d/90-kasbah.cfg").write_text(CLOUD_CFG)
        (root / "etc/cloud/ds-identify.cfg").write_text(DS_IDENTIFY)
        (root / "etc/modules-load.d/kasbah.conf").write_text(MODULES_LOAD)
        (root / "etc/systemd/system/cloud-init-local.service.d").mkdir(parents=True)
        (root / "etc/systemd/system/cloud-init-local.service.d/devices.conf").write_text(CLOUD_INIT_DROPIN)
        (root / "etc/systemd/system/ssh.service.d").mkdir(parents=True)
        (root / "etc/systemd/system/ssh.service.d/keys.conf").write_text(SSH_DROPIN)
        (root / "init").symlink_to("/sbin/init")
        # the root filesystem, whole, as the initramfs (newc cpio, zstd: the kernel unpacks it into tmpfs)
        with (iso / "live" / "initrd.img").open("wb") as out:
            find = subprocess.Popen(["find", ".", "-print0"], cwd=root, stdout=subprocess.PIPE)
            cpio = subprocess.Popen(
                ["cpio", "--null", "-o", "-H", "newc", "--quiet"], cwd=root, stdin=find.stdout, stdout=subprocess.PIPE
            )
            zstd = subprocess.Popen(["zstd", "-q", "-T2", "-15", "-c"], stdin=cpio.stdout, stdout=out)
            if find.stdout and cpio.stdout:
                find.stdout.close()
                cpio.stdout.close()
            if zstd.wait() or cpio.wait() or find.wait():
                raise RuntimeError("packing the root filesystem failed")
        boot = iso / "isolinux"
        boot.mkdir()
        shutil.copy2("/usr/lib/ISOLINUX/isolinux.bin", boot)
        shutil.copy2("/usr/lib/syslinux/modules/bios/ldlinux.c32", boot)
        (boot / "isolinux.cfg").write_text(ISOLINUX_CFG)
        out_iso = Path(tmp) / "live.iso"
        _run(
            [
                "genisoimage", "-quiet", "-o", str(out_iso), "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
                "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", "-J", "-R", "-V", "KASBAH_LIVE", str(iso),
            ]
        )  # fmt: skip
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(out_iso, dest)


def ensure(force: bool = False) -> Path:
    """Build the ISO if the inputs changed (or `force`); its path."""
    dest = iso_path()
    if force or not dest.exists():
        build(dest)
        for stale in CACHE.glob("vm-live-*.iso"):
            if stale != dest:
                stale.unlink()
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild the ISO")
    args = parser.parse_args()
    why = missing()
    if why:
        print(why, file=sys.stderr)
        return 1
    print(ensure(args.force))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
