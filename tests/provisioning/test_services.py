"""The rendered DHCP and DNS data served by the real daemons, to real clients, in network namespaces of the test's own.

Kea (Debian's kea-dhcp4-server) serves a hall's rendered configuration on one rack's out-of-band
segment: a BMC whose MAC the rack's manifest lists gets the Plan's address; a BMC of another rack
plugged into this segment gets nothing. Knot (Debian's knot) loads the rendered zones with its
semantic checks on, and kdig resolves names and reverse names. Only the namespaces' own
addresses are ever used.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kasbah.planning.hostnet import gateway
from tests.conftest import TINY, needs, planned

pytestmark = pytest.mark.nodes

TOOLS = ("kea-dhcp4", "dhclient", "knotd", "knotc", "kdig", "ip")


skip = needs(*TOOLS, root=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def _netns(name: str) -> Iterator[str]:
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("day0") / "tree"
    subprocess.run(
        [str(Path(os.sys.executable).parent / "kasbah"), "render", "lab-2", "-e", str(TINY), "--out", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


def _stop(pidfile: Path) -> None:
    """Stop the process a pid file names, if it still runs."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _dhcp(ns_client: str, iface: str, work: Path, seconds: int = 12) -> str | None:
    """The address a DHCP client in `ns_client` is offered on `iface` (None: no offer), via a lease file."""
    conf = work / f"dhclient-{iface}.conf"
    conf.write_text(f"timeout {seconds};\nretry 1;\nrequest subnet-mask, routers;\n")
    leases = work / f"dhclient-{iface}.leases"
    leases.unlink(missing_ok=True)
    pidfile = work / f"dhclient-{iface}.pid"
    try:
        subprocess.run(
            ["ip", "netns", "exec", ns_client, "dhclient", "-1", "-v", "-cf", str(conf), "-lf", str(leases),
             "-pf", str(pidfile), "-sf", "/bin/true", iface],
            capture_output=True, text=True, timeout=seconds + 20,
        )  # fmt: skip
    finally:
        # with a lease, dhclient goes to the background to renew it: stop it, or it outlives the namespace
        _stop(pidfile)
    text = leases.read_text() if leases.exists() else ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("fixed-address"):
            return line.split()[1].rstrip(";")
    return None


@skip
def test_a_bmc_gets_its_reserved_address_and_a_foreign_one_nothing(tree: Path, tmp_path: Path) -> None:
    plan = planned(TINY)[-1]
    rack = next(r for r in plan.racks if r.name == "lab1-r01p03")
    assert rack.oob_cidr
    ours = next(n for n in plan.nodes if n.rack == rack.name and n.slot == 1)
    foreign = next(n for n in plan.nodes if n.rack == "lab1-r01p02" and n.slot == 1)
    macs = {h.node: h.bmc_mac for h in plan.hardware}
    rendered = json.loads((tree / "provisioning" / "dhcp" / "lab1.kea-dhcp4.json").read_text())
    # the hall's configuration as rendered; only where Kea listens and keeps leases is the test's
    conf = tmp_path / "kea.json"
    conf.write_text(json.dumps(rendered))
    check = subprocess.run(["kea-dhcp4", "-t", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr  # the hall's file as rendered
    # only where Kea listens and keeps its leases is the test's
    rendered["Dhcp4"]["interfaces-config"] = {"interfaces": ["br0"], "dhcp-socket-type": "raw"}
    rendered["Dhcp4"]["lease-database"] = {"type": "memfile", "persist": True, "name": str(tmp_path / "leases4.csv")}
    conf.write_text(json.dumps(rendered))
    prefix = rack.oob_cidr.split("/")[1]
    tag = f"{os.getpid() % 10000}"
    with _netns(f"kdhcp-s{tag}") as server, _netns(f"kdhcp-c{tag}") as client:
        # the rack's out-of-band segment (a bridge holding the leaf's gateway address) and two BMC ports on it:
        # bmc0 is the rack's own BMC, bmc1 a BMC of rack p02 plugged into p03's switch
        _ip("-n", server, "link", "add", "br0", "type", "bridge", "forward_delay", "0")
        _ip("-n", server, "addr", "add", f"{gateway(rack.oob_cidr)}/{prefix}", "dev", "br0")
        for i, node in enumerate((ours, foreign)):
            _ip("-n", server, "link", "add", f"oob{i}", "type", "veth", "peer", "name", f"bmc{i}", "netns", client)
            _ip("-n", server, "link", "set", f"oob{i}", "master", "br0", "up")
            _ip("-n", client, "link", "set", f"bmc{i}", "address", macs[node.name], "up")
        _ip("-n", server, "link", "set", "br0", "up")
        deadline = time.monotonic() + 10
        while (
            "state UP"
            not in subprocess.run(["ip", "-n", server, "link", "show", "br0"], capture_output=True, text=True).stdout
        ):
            assert time.monotonic() < deadline, "the test's bridge did not come up"
            time.sleep(0.2)
        log = tmp_path / "kea.log"
        kea = subprocess.Popen(
            ["ip", "netns", "exec", server, "kea-dhcp4", "-c", str(conf)],
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "KEA_PIDFILE_DIR": str(tmp_path), "KEA_LOCKFILE_DIR": str(tmp_path)},
        )  # fmt: skip
        try:
            time.sleep(1.5)
            assert kea.poll() is None, log.read_text()
            got = _dhcp(client, "bmc0", tmp_path)
            assert got == ours.oob_ip, log.read_text()[-2000:]
            assert _dhcp(client, "bmc1", tmp_path, seconds=8) is None, "a BMC of another rack was given an address"
        finally:
            kea.terminate()
            kea.wait(10)
    text = log.read_text()
    assert macs[ours.name] in text  # Kea logged the lease it gave


@skip
def test_zones_load_and_names_resolve(tree: Path, tmp_path: Path) -> None:
    plan = planned(TINY)[-1]
    dns = tree / "provisioning" / "dns"
    conf = (dns / "knot.conf").read_text()
    server = plan.dns_servers[0]
    # the rendered server configuration; only its state directories are the test's
    conf = conf.replace("  storage: /var/lib/knot", f"  storage: {tmp_path / 'db'}").replace(
        "    storage: .", f"    storage: {dns}"
    )
    conf = conf.replace("server:\n", f"server:\n  rundir: {tmp_path}\n", 1)
    conf = conf.replace("include: zones.conf", f"include: {dns / 'zones.conf'}")
    (tmp_path / "knot.conf").write_text(conf)
    check = subprocess.run(["knotc", "-c", str(tmp_path / "knot.conf"), "conf-check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    api = next(c for c in plan.clusters)
    gpu = next(n for n in plan.nodes if n.rail_ips)
    with _netns(f"kdns{os.getpid() % 10000}") as ns:
        _ip("-n", ns, "addr", "add", f"{server}/32", "dev", "lo")
        log = tmp_path / "knot.log"
        knot = subprocess.Popen(
            ["ip", "netns", "exec", ns, "knotd", "-c", str(tmp_path / "knot.conf")],
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip

        def dig(*q: str) -> str:
            r = subprocess.run(
                ["ip", "netns", "exec", ns, "kdig", f"@{server}", "+short", "+timeout=2", "+retry=2", *q],
                capture_output=True, text=True,
            )  # fmt: skip
            return r.stdout.strip()

        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not dig(plan.zone, "SOA"):
                time.sleep(0.3)
            status = subprocess.run(
                ["ip", "netns", "exec", ns, "knotc", "-c", str(tmp_path / "knot.conf"), "zone-status"],
                capture_output=True, text=True,
            )  # fmt: skip
            # every zone the tree renders is loaded (a zone that fails Knot's semantic checks is not)
            zones = [p.name.removesuffix(".zone") for p in dns.glob("*.zone")]
            for z in zones:
                assert f"[{z}.]" in status.stdout and "serial: 1" in status.stdout, status.stdout + log.read_text()
            assert dig(f"{gpu.name}.{plan.zone}", "A") == gpu.inband_ip
            assert dig(f"{gpu.name}.bmc.{plan.zone}", "A") == gpu.oob_ip
            assert dig(f"{gpu.name}.rail1.{plan.zone}", "A") == gpu.rail_ips[1]
            assert dig("-x", gpu.oob_ip) == f"{gpu.name}.bmc.{plan.zone}."
            assert dig("-x", gpu.inband_ip) == f"{gpu.name}.{plan.zone}."
            assert dig(api.api_host, "A").splitlines() == [api.api_vip]  # the VIP keepalived moves, not a host
            assert dig("-x", api.api_vip) == f"{api.api_host}."
            assert dig(f"nosuch.{plan.zone}", "A") == ""
        finally:
            knot.terminate()
            knot.wait(10)
