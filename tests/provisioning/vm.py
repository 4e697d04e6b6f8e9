"""A real VM behind an emulated Redfish BMC: libvirt and QEMU in a test's network namespace.

libvirtd (with virtlogd) runs inside the namespace, so the VMs it starts, and their taps, are
there too: a VM's NIC sits on a bridge of the namespace and has no route out. sushy-tools'
libvirt driver is the BMC: Ironic powers the VM, inserts virtual media (the boot ISO as a CD,
the configuration drive as a floppy) and sets its boot device over Redfish, as on a real rack.

libvirtd's control socket is the host's (/run/libvirt): one daemon per machine, so one test at a
time. Everything a test defines is named by it and removed by `Libvirt.stop`.

Needs root, Debian's libvirt-daemon-system and qemu-system-x86, and libvirt-python in the Ironic
venv (sushy-tools' libvirt driver).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

URI = "qemu:///system"


def missing() -> str | None:
    """Why a VM cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("libvirtd", "virtlogd", "virsh", "qemu-system-x86_64"):
        if not shutil.which(tool) and not Path("/usr/sbin", tool).exists():
            return f"needs {tool} (apt-get install libvirt-daemon-system qemu-system-x86)"
    kvm_dev = Path("/dev/kvm")
    if kvm_dev.exists() and (kvm_dev.stat().st_mode & 0o060) != 0o060:
        # root-only /dev/kvm (no udev here to apply Debian's rule): libvirt finds KVM unusable for its
        # qemu user while its probe says otherwise, and probes QEMU again on every call (seconds each)
        return "/dev/kvm is root-only; fix: chgrp kvm /dev/kvm && chmod 660 /dev/kvm (Debian's udev rule)"
    pid = running_libvirtd()
    if pid is not None:
        return f"a libvirtd already runs on this machine (PID {pid}; its socket is shared): stop it first"
    return None


def running_libvirtd() -> int | None:
    """The PID of a libvirtd running on this machine, or None.

    A pid file or socket left by a daemon that was killed (SIGKILL leaves both) is not a daemon: the
    file names a PID that is gone or is another program, and `Libvirt.start` removes both.
    """
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if (proc / "comm").read_text().strip() == "libvirtd":
                    return int(proc.name)
    return None


def kvm() -> bool:
    """Whether hardware KVM can boot a stock Debian kernel here (else QEMU's software emulation, TCG).

    /dev/kvm opening is not enough: a PVM host (module kvm_pvm, no svm/vmx for its own guests) has
    one that only runs PVM-aware guest kernels; a stock one hangs entering protected mode. KASBAH_VM_ACCEL
    (kvm|qemu) overrides.
    """
    forced = os.environ.get("KASBAH_VM_ACCEL")
    if forced:
        return forced == "kvm"
    if not any(Path("/sys/module", m).exists() for m in ("kvm_intel", "kvm_amd")):
        return False
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        return False
    return True


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True, check=check)


@dataclass
class Libvirt:
    """virtlogd + libvirtd running inside network namespace `ns`; what they run is the test's."""

    ns: str
    dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    pools: list[str] = field(default_factory=list)

    def _spawn(self, cmd: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *cmd], stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def start(self, seconds: float = 30) -> None:
        """Start the daemons in the foreground (their PIDs are ours to stop); wait for libvirtd's socket."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for d in ("/var/log/libvirt", "/run/libvirt"):
            Path(d).mkdir(parents=True, exist_ok=True)
        # left by a daemon that was killed (missing() found none running): libvirtd refuses a live-looking pid file
        for stale in (
            "/run/libvirtd.pid",
            "/run/libvirt/libvirt-sock",
            "/run/libvirt/libvirt-sock-ro",
            "/run/libvirt/libvirt-admin-sock",
        ):
            Path(stale).unlink(missing_ok=True)
        self._spawn(["virtlogd"], self.dir / "virtlogd.log")
        time.sleep(0.3)
        daemon = self._spawn(["libvirtd"], self.dir / "libvirtd.log")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if daemon.poll() is not None:
                raise RuntimeError(f"libvirtd exited:\n{(self.dir / 'libvirtd.log').read_text()[-3000:]}")
            if virsh("version", check=False).returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError(f"libvirtd did not answer in {seconds:.0f} s")

    def define_pool(self, name: str, path: Path) -> None:
        """A transient directory pool: where sushy-tools uploads the virtual media it inserts."""
        path.mkdir(parents=True, exist_ok=True)
        xml = self.dir / f"pool-{name}.xml"
        xml.write_text(
            f"<pool type='dir'><name>{escape(name)}</name><target><path>{escape(str(path))}</path></target></pool>"
        )
        virsh("pool-destroy", name, check=False)  # left over by a run that was killed before it cleaned up
        virsh("pool-create", str(xml))
        self.pools.append(name)

    def define_domain(self, xml: str) -> None:
        """Define (not start) a persistent domain: the BMC powers it on."""
        path = self.dir / "domain.xml"
        path.write_text(xml)
        virsh("define", str(path))
        self.domains.append(xml.split("<name>", 1)[1].split("</name>", 1)[0])

    def stop(self) -> None:
        """Destroy and undefine the test's domains and pools, then stop both daemons by PID."""
        for name in self.domains:
            virsh("destroy", name, check=False)
            virsh("undefine", name, "--nvram", check=False)
            virsh("undefine", name, check=False)
        for name in self.pools:
            virsh("pool-destroy", name, check=False)
        for p in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def domain_xml(
    name: str,
    uuid: str,
    mac: str,
    bridge: str,
    console: Path,
    memory_mib: int = 2048,
    vcpus: int = 1,
) -> str:
    """A diskless BIOS VM (`pc` machine): one virtio NIC with `mac` on `bridge`, its serial console in a file.

    One vCPU by default: under TCG each vCPU is a host core kept busy.

    No firmware named: SeaBIOS, QEMU's default (libvirt 9's `firmware='bios'` autoselection finds no
    descriptor for it on Debian); sushy-tools writes `<loader type='rom'/>` when Ironic asks for
    Legacy boot. The BMC adds the CD (ide, hdc) and floppy (fdc, fda) of its virtual media.
    QEMU runs as root (a test's files are under root's private temporary directory).
    """
    accel = "kvm" if kvm() else "qemu"
    return f"""<domain type='{accel}'>
  <name>{escape(name)}</name>
  <uuid>{uuid}</uuid>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='cdrom'/>
    <boot dev='hd'/>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <devices>
    <interface type='bridge'>
      <mac address='{mac}'/>
      <source bridge='{escape(bridge)}'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='{escape(str(console))}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
</domain>
"""


def sushy_config(listen: str, port: int, auth_file: Path, pool: str, domains: Sequence[str]) -> str:
    """sushy-tools with its libvirt driver: only `domains` (UUIDs) are its systems, behind basic auth.

    `auth_file` is an htpasswd file (bcrypt), as lab.py writes it.
    """
    return (
        f"SUSHY_EMULATOR_LISTEN_IP = {listen!r}\n"
        f"SUSHY_EMULATOR_LISTEN_PORT = {port}\n"
        f"SUSHY_EMULATOR_LIBVIRT_URI = {URI!r}\n"
        f"SUSHY_EMULATOR_ALLOWED_INSTANCES = {list(domains)!r}\n"
        f"SUSHY_EMULATOR_STORAGE_POOL = {pool!r}\n"
        f"SUSHY_EMULATOR_AUTH_FILE = {str(auth_file)!r}\n"
        "SUSHY_EMULATOR_IGNORE_BOOT_DEVICE = False\n"
        # Ironic sets the boot mode; libvirt 9 needs a firmware path for either (SeaBIOS, OVMF without secure boot)
        "SUSHY_EMULATOR_BOOT_LOADER_MAP = {'Legacy': {'x86_64': '/usr/share/seabios/bios-256k.bin'},"
        " 'UEFI': {'x86_64': '/usr/share/OVMF/OVMF_CODE_4M.fd'}}\n"
    )
