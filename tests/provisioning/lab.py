"""A day-0 lab on this machine: Redfish BMCs (sushy-tools), Ironic (standalone) and their network, in a namespace.

Everything runs inside a network namespace of the test's own: each emulated BMC's address (the
Plan's out-of-band address of its node) is local there, all served by one sushy-tools emulator; Ironic (API and conductor in one process, SQLite, no Keystone) listens on
the namespace's loopback, and `kasbah provision` runs inside it. Nothing is reachable from
outside the namespace and nothing in it has a route out.

Ironic and sushy-tools live in their own venv (`make ironic`, KASBAH_IRONIC_VENV), as a site runs
them as services: kasbah only speaks Ironic's REST API.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("KASBAH_IRONIC_VENV", ROOT / ".kasbah" / "ironic-venv"))
BMC_USER = "admin"
BMC_PASSWORD = "lab-bmc-secret-4f9a"  # the emulated BMCs' own; a test checks it never reaches a log or output
NS_UUID = uuid.UUID("6f1c0e5e-7f43-4b59-9a77-6b6173626168")


def missing() -> str | None:
    """Why the lab cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if not shutil.which("ip"):
        return "needs iproute2"
    for tool in ("ironic", "ironic-dbsync", "sushy-emulator"):
        if not (VENV / "bin" / tool).exists():
            return f"no {tool} in {VENV}; run `make ironic`"
    return None


def system_uuid(node: str) -> str:
    return str(uuid.uuid5(NS_UUID, node))


@dataclass(frozen=True)
class FakeSystem:
    name: str
    macs: Sequence[str]
    bmc: str  # the BMC's address (the Plan's out-of-band address of the node)
    power: str = "Off"


def _wait_http(url: str, ns: str, seconds: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        probe = subprocess.run(
            ["ip", "netns", "exec", ns, str(VENV / "bin" / "python"), "-c",
             f"import urllib.request; urllib.request.urlopen({url!r}, timeout=2)"],
            capture_output=True,
        )  # fmt: skip
        if probe.returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {seconds:.0f} s:\n{log.read_text()[-3000:]}")


class Lab:
    """sushy-tools + Ironic in a namespace; `run` executes a command inside it."""

    def __init__(
        self,
        workdir: Path,
        conductor_group: str,
        systems: Sequence[FakeSystem],
        sushy_extra: str | None = None,
        deploy_extra: str = "",
        conductor_extra: str = "",
        shards: int = 1,
    ) -> None:
        """`sushy_extra`: the emulator's settings instead of fake systems (a real VM's libvirt driver);
        `deploy_extra`, `conductor_extra`: lines for Ironic's [deploy] and [conductor] sections; `shards`:
        emulator processes the fake systems are spread over (a hall's worth: see `start`)."""
        self.sushy_extra = sushy_extra
        self.deploy_extra = deploy_extra
        self.conductor_extra = conductor_extra
        self.shards = 1 if sushy_extra else max(1, min(shards, len(systems)))
        self.dir = workdir
        self.ns = f"kasbah-day0-{os.getpid()}-{abs(hash(workdir)) % 10000}"
        self.group = conductor_group
        self.systems = systems
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ironic_url = "http://127.0.0.1:6385"

    def run(self, cmd: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns, *cmd], text=True, **kw)  # type: ignore[call-overload, no-any-return]

    def serve(self, directory: Path, address: str, port: int) -> None:
        """An HTTP server for `directory` at address:port inside the namespace (a site mirror the nodes reach)."""
        log = self.dir / f"http-{port}.log"
        web = self._spawn(
            [str(VENV / "bin" / "python"), "-m", "http.server", str(port), "--bind", address,
             "--directory", str(directory)],
            log,
        )  # fmt: skip
        _wait_http(f"http://{address}:{port}/", self.ns, 30, web, log)

    def get(self, url: str, auth: tuple[str, str] | None = None) -> Any:
        """GET a JSON document from inside the namespace (a BMC's Redfish resource: auth is sent on stdin)."""
        script = (
            "import base64,json,sys,urllib.request\n"
            "r=urllib.request.Request(sys.argv[1],headers={'X-OpenStack-Ironic-API-Version':'1.96'})\n"
            "auth=sys.stdin.read()\n"
            "if auth: r.add_header('Authorization','Basic '+base64.b64encode(auth.encode()).decode())\n"
            "print(urllib.request.urlopen(r,timeout=30).read().decode())\n"
        )
        got = self.run(
            [str(VENV / "bin" / "python"), "-c", script, url],
            input=":".join(auth) if auth else "", capture_output=True, check=True,
        )  # fmt: skip
        return json.loads(got.stdout)

    def _shard(self, name: str, k: int, suffix: str = "") -> str:
        """sushy.conf with one emulator; sushy-0.conf, sushy-1.conf... with shards."""
        return f"{name}{suffix}" if self.shards == 1 else f"{name}-{k}{suffix}"

    def _spawn(self, cmd: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        fh = log.open("wb")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *cmd], stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)
        # each emulated BMC's address is this namespace's own (one emulator answers on all of them); the
        # address of a BMC the lab leaves out is unreachable, as a BMC that never came up
        batch = d / "routes.batch"
        batch.write_text("".join(f"route add local {s.bmc}/32 dev lo\n" for s in self.systems))
        subprocess.run(["ip", "-n", self.ns, "-batch", str(batch)], check=True)
        systems = [
            {
                "uuid": system_uuid(s.name),
                "name": s.name,
                "power_state": s.power,
                "nics": [{"mac": m, "ip": "0.0.0.0"} for m in s.macs],
            }
            for s in self.systems
        ]
        # one emulator answers on every address (0.0.0.0), or `shards` emulators each hold a share of the
        # systems on an address of their own and the namespace's NAT sends each BMC address to its shard: one
        # emulator keeps its systems in one SQLite file, whose locks time out under a hall's worth of calls
        shares = [systems[k :: self.shards] for k in range(self.shards)]
        listen = ["0.0.0.0"] if self.shards == 1 else [f"127.0.1.{k + 1}" for k in range(self.shards)]
        for k, (share, ip) in enumerate(zip(shares, listen, strict=True)):
            backend = self.sushy_extra or (
                f"SUSHY_EMULATOR_FAKE_DRIVER = True\nSUSHY_EMULATOR_FAKE_SYSTEMS = {json.dumps(share)}\n"
            )
            (d / self._shard("sushy", k, ".conf")).write_text(
                f"SUSHY_EMULATOR_LISTEN_IP = {ip!r}\n"
                "SUSHY_EMULATOR_LISTEN_PORT = 8000\n"
                # the emulator's state is the lab's own (its default is one file in /tmp for every emulator)
                f"SUSHY_EMULATOR_STATE_DIR = {str(d / self._shard('sushy-state', k))!r}\n"
                + backend
                + f"SUSHY_EMULATOR_AUTH_FILE = {str(d / 'htpasswd')!r}\n"
            )
        if self.shards > 1:
            # system i is in share i % shards (the slices above)
            elements = ", ".join(f"{s.bmc} : {listen[i % self.shards]}" for i, s in enumerate(self.systems))
            (d / "nat.nft").write_text(
                "table ip kasbah_lab {\n"
                f"  map bmc {{ type ipv4_addr : ipv4_addr; elements = {{ {elements} }} }}\n"
                "  chain out { type nat hook output priority -100; tcp dport 8000 dnat to ip daddr map @bmc; }\n"
                "}\n"
            )
            subprocess.run(["ip", "netns", "exec", self.ns, "nft", "-f", str(d / "nat.nft")], check=True)
        # the BMCs' account (bcrypt htpasswd, as sushy-tools reads it; bcrypt is in the Ironic venv); the
        # password reaches Ironic from a mode-600 file only
        hashed = subprocess.run(
            [str(VENV / "bin" / "python"), "-c",
             "import bcrypt,sys; print(bcrypt.hashpw(sys.stdin.read().encode(), bcrypt.gensalt(rounds=4)).decode())"],
            input=BMC_PASSWORD, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        (d / "htpasswd").write_text(f"{BMC_USER}:{hashed}\n")
        creds = d / "bmc.yaml"
        creds.write_text(f"default: {{username: {BMC_USER}, password: {BMC_PASSWORD}}}\n")
        creds.chmod(0o600)
        http = d / "http"
        http.mkdir(exist_ok=True)
        (d / "ironic.conf").write_text(
            f"""[DEFAULT]
auth_strategy = noauth
rpc_transport = none
enabled_hardware_types = redfish
enabled_boot_interfaces = redfish-virtual-media
enabled_deploy_interfaces = ramdisk,direct
default_deploy_interface = ramdisk
enabled_power_interfaces = redfish
enabled_management_interfaces = redfish
enabled_inspect_interfaces = no-inspect
enabled_network_interfaces = noop
enabled_bios_interfaces = redfish,no-bios
default_bios_interface = no-bios
enabled_raid_interfaces = no-raid
enabled_vendor_interfaces = no-vendor
enabled_firmware_interfaces = no-firmware
host = lab-conductor
use_stderr = true
[api]
host_ip = 127.0.0.1
port = 6385
[conductor]
automated_clean = false
conductor_group = {self.group}
sync_power_state_interval = -1
{self.conductor_extra}
[database]
connection = sqlite:///{d / "ironic.db"}
[deploy]
http_root = {http}
http_url = http://127.0.0.1:8080
iso_master_path = {d / "master_iso_images"}
{self.deploy_extra}
[dhcp]
dhcp_provider = none
[redfish]
# a BMC that does not answer fails its node in seconds, not after Ironic's default 5 tries 4 s apart per call
connection_attempts = 2
connection_retry_interval = 1
# how often the conductor looks whether a BIOS change finished (the node's reboot): Ironic's default is 60 s
firmware_update_status_interval = 5
[oslo_concurrency]
lock_path = {d / "locks"}
"""
        )
        subprocess.run(
            [str(VENV / "bin" / "ironic-dbsync"), "--config-file", str(d / "ironic.conf"), "create_schema"],
            check=True, capture_output=True,
        )  # fmt: skip
        emulators = [
            self._spawn(
                [str(VENV / "bin" / "sushy-emulator"), "--config", str(d / self._shard("sushy", k, ".conf"))],
                d / self._shard("sushy", k, ".log"),
            )
            for k in range(self.shards)
        ]
        web = self._spawn(
            [
                str(VENV / "bin" / "python"),
                "-m",
                "http.server",
                "8080",
                "--bind",
                "127.0.0.1",
                "--directory",
                str(http),
            ],
            d / "http.log",
        )
        ironic = self._spawn([str(VENV / "bin" / "ironic"), "--config-file", str(d / "ironic.conf")], d / "ironic.log")
        for k, (emulator, ip) in enumerate(zip(emulators, listen, strict=True)):
            at = "127.0.0.1" if ip == "0.0.0.0" else ip
            _wait_http(f"http://{at}:8000/redfish/v1/", self.ns, 60, emulator, d / self._shard("sushy", k, ".log"))
        _wait_http("http://127.0.0.1:8080/", self.ns, 30, web, d / "http.log")
        _wait_http(self.ironic_url + "/v1/drivers", self.ns, 120, ironic, d / "ironic.log")
        # the conductor registers its drivers a moment after the API answers
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = self.run(
                [str(VENV / "bin" / "python"), "-c",
                 "import json,urllib.request;print(json.load(urllib.request.urlopen("
                 f"'{self.ironic_url}/v1/drivers'))['drivers'])"],
                capture_output=True,
            )  # fmt: skip
            if "redfish" in got.stdout:
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"Ironic's conductor did not register the redfish driver:\n{(d / 'ironic.log').read_text()[-3000:]}"
        )

    def stop(self) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)

    def power(self, node: str) -> str:
        """The node's power state as its emulated BMC reports it (the BMC's password goes on stdin, see `get`)."""
        system = self.get(f"http://127.0.0.1:8000/redfish/v1/Systems/{system_uuid(node)}", (BMC_USER, BMC_PASSWORD))
        return str(system["PowerState"])


@contextlib.contextmanager
def lab(workdir: Path, conductor_group: str, systems: Sequence[FakeSystem], **kw: Any) -> Iterator[Lab]:
    env = Lab(workdir, conductor_group, systems, **kw)
    try:
        env.start()
        yield env
    finally:
        env.stop()


def with_bios(src: Path, dest: Path, profile: str, settings: dict[str, Any]) -> Path:
    """A copy of environment `src` at `dest` whose rack profile `profile` declares BIOS `settings` (bmc.bios)."""
    shutil.copytree(src, dest)
    site = dest / "site.yaml"
    doc = yaml.safe_load(site.read_text())
    (rack,) = [p for p in doc["catalog"]["rack_profiles"] if p["name"] == profile]
    rack.setdefault("bmc", {})["bios"] = settings
    site.write_text("---\n" + yaml.safe_dump(doc, sort_keys=False))
    return dest
