"""The API's virtual IP, for real: keepalived and HAProxy as the control_plane role configures them, in network namespaces.

The three control-plane hosts of the campus cluster train-1 (phase 1) each get a network namespace
with their in-band address from the Plan, on one bridge (the management racks' stretched in-band
segment; the gateway side of the bridge is the client). Each runs Debian's keepalived and HAProxy on
the configuration the role's templates render from the host's inventory variables (the same
Templar, defaults, inventory and role variables as a play), and a stand-in API server
(`api_stub.py`: HTTPS, /readyz, its name). Then:

- the first control-plane host holds the VIP, and HAProxy there spreads requests over all three;
- an API server that stops being ready (/readyz 500) is taken out of rotation;
- when the host holding the VIP stops (keepalived, HAProxy and its API server killed), the next one
  takes the VIP and clients carry on;
- when HAProxy dies on the holder, keepalived's check gives the VIP away.

Only addresses of the test's own namespaces are used.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kasbah.planning.hostnet import gateway
from tests.conftest import CAMPUS, needs, planned
from tests.controlplane import roles

pytestmark = pytest.mark.nodes

STUB = Path(__file__).resolve().parent / "api_stub.py"
TOOLS = ("keepalived", "haproxy", "ip", "openssl", "curl", "sysctl")


skip = needs(*TOOLS, root=True)


def _run(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=30)


def render_role(host: str, variables: dict[str, Any], extra: dict[str, Any]) -> dict[str, str]:
    """The control_plane role's files for one host, by their path on the host (and `haproxy_pid`)."""
    files = roles.render("control_plane", host, variables, extra, {"vars:files": "_control_plane_files"})["vars:files"]
    keys = {
        "keepalived": "etc/keepalived/keepalived.conf.j2",
        "check": "etc/keepalived/kasbah-check-haproxy.sh.j2",
        "haproxy": "etc/haproxy/haproxy.cfg.j2",
        "sysctl": "etc/sysctl.d/62-kasbah-api-vip.conf.j2",
        "apiserver_patch": "etc/kubernetes/kasbah/patches/kube-apiserver+json.yaml.j2",
    }
    texts = roles.render("control_plane", host, variables, extra, keys)
    out = {files[k]: texts[k] for k in keys}
    out["haproxy_pid"] = files["haproxy_pid"]
    return out


def control_plane() -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    from kasbah.rendering.inventory import host_vars

    plan = planned(CAMPUS)[0]
    cluster = plan.clusters[0]
    every = host_vars(plan)
    return cluster, [(name, every[name]) for name in cluster.control_plane]


def test_the_plan_gives_every_control_plane_host_the_same_vip_and_peers() -> None:
    cluster, hosts = control_plane()
    assert len(hosts) == 3
    for _, v in hosts:
        assert v["kasbah_api_vip"] == cluster.api_vip and v["kasbah_api_vrrp_id"] == cluster.api_vrrp_id
        assert [p["name"] for p in v["kasbah_control_plane"]] == list(cluster.control_plane)
    rendered = {
        name: render_role(name, v, {"control_plane_vrrp_interface": "eth0", "control_plane_root": "/x"})
        for name, v in hosts
    }
    priorities = []
    for name, v in hosts:
        conf = rendered[name]["/x/etc/keepalived/keepalived.conf"]
        priorities.append(int(re.search(r"^\s*priority (\d+)$", conf, re.M)[1]))  # type: ignore[index]
        peers = conf.split("unicast_peer {")[1].split("}")[0].split()
        assert sorted(peers) == sorted(h["kasbah_inband_ip"] for n, h in hosts if n != name)
        haproxy = rendered[name]["/x/etc/haproxy/haproxy.cfg"]
        assert f"bind {cluster.api_vip}:6443" in haproxy
        assert all(f"server {n} {h['kasbah_inband_ip']}:6443" in haproxy for n, h in hosts)
        assert (
            f"--bind-address={v['kasbah_inband_ip']}"
            in rendered[name]["/x/etc/kubernetes/kasbah/patches/kube-apiserver+json.yaml"]
        )
    assert priorities == sorted(priorities, reverse=True) and len(set(priorities)) == 3  # the first inits and holds


@contextlib.contextmanager
def _namespaces(names: list[str]) -> Iterator[None]:
    for ns in names:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        _run("ip", "netns", "add", ns)
        _run("ip", "-n", ns, "link", "set", "lo", "up")
    try:
        yield
    finally:
        for ns in names:
            for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _wait(what: str, check: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out after {seconds:g} s waiting for {what}"
        time.sleep(0.3)


@skip
def test_the_vip_fails_over_and_haproxy_drops_an_unready_server(tmp_path: Path) -> None:
    cluster, hosts = control_plane()
    vip = cluster.api_vip
    tag = f"{os.getpid() % 10000}"
    hub = f"kvip-b{tag}"
    names = [f"kvip-h{i}{tag}" for i in range(len(hosts))]
    cert, key = tmp_path / "api.crt", tmp_path / "api.key"
    _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", f"/CN={cluster.api_host}", "-keyout", str(key), "-out", str(cert))  # fmt: skip
    procs: dict[str, dict[str, subprocess.Popen[bytes]]] = {}
    with _namespaces([hub, *names]):
        _run("ip", "-n", hub, "link", "add", "br0", "type", "bridge", "forward_delay", "0")
        plan = planned(CAMPUS)[0]
        racks = {r.name: r for r in plan.racks}
        blocks = {n.name: racks[n.rack].inband_cidr or "" for n in plan.nodes if n.name in cluster.control_plane}
        first_block = blocks[cluster.control_plane[0]]
        # the client: the first control-plane rack's gateway, where kubelets and operators come from
        _run("ip", "-n", hub, "addr", "add", f"{gateway(first_block)}/{first_block.split('/')[1]}", "dev", "br0")
        _run("ip", "-n", hub, "link", "set", "br0", "up")
        supernet = "10.16.0.0/14"  # the campus in-band network: the racks' subnets, one stretched segment here
        _run("ip", "-n", hub, "route", "add", supernet, "dev", "br0")
        for i, ((name, v), ns) in enumerate(zip(hosts, names, strict=True)):
            root = tmp_path / name
            files = render_role(name, v, {"control_plane_vrrp_interface": "eth0", "control_plane_root": str(root)})
            pidfile = files.pop("haproxy_pid")
            for path, text in files.items():
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(text)
            (root / "run").mkdir(exist_ok=True)
            (root / "etc" / "keepalived" / "kasbah-check-haproxy.sh").chmod(0o755)
            _run("ip", "-n", hub, "link", "add", f"h{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "-n", hub, "link", "set", f"h{i}", "master", "br0", "up")
            _run("ip", "-n", ns, "addr", "add", f"{v['kasbah_inband_ip']}/{blocks[name].split('/')[1]}", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "route", "add", supernet, "dev", "eth0")
            _run("sysctl", "--load", str(root / "etc" / "sysctl.d" / "62-kasbah-api-vip.conf"), ns=ns)
            haproxy_cfg = root / "etc" / "haproxy" / "haproxy.cfg"
            keepalived_conf = root / "etc" / "keepalived" / "keepalived.conf"
            # the files as rendered pass the daemons' own checks (the role's `validate`)
            _run("haproxy", "-c", "-q", "-f", str(haproxy_cfg), ns=ns)
            _run("keepalived", "--config-test", "--use-file", str(keepalived_conf), ns=ns)
            flag = root / "not-ready"
            ip = v["kasbah_inband_ip"]
            netns = ["ip", "netns", "exec", ns]
            stub = [sys.executable, str(STUB), name, ip, "6443", str(cert), str(key), str(flag)]
            haproxy = ["haproxy", "-W", "-db", "-p", pidfile, "-f", str(haproxy_cfg)]
            keepalived = ["keepalived", "--dont-fork", "--log-console", "--vrrp", "--use-file", str(keepalived_conf),
                          "--pid", str(root / "run" / "keepalived.pid"), "--vrrp_pid", str(root / "run" / "vrrp.pid")]  # fmt: skip
            procs[name] = {
                "api": subprocess.Popen([*netns, *stub]),
                "haproxy": subprocess.Popen([*netns, *haproxy], stdout=subprocess.DEVNULL),
                "keepalived": subprocess.Popen(
                    [*netns, *keepalived], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                ),
            }

        def holders() -> list[str]:
            return [
                name
                for (name, _), ns in zip(hosts, names, strict=True)
                if f"inet {vip}/32" in _run("ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0").stdout
            ]

        def ask(n: int = 9) -> list[str]:
            got = []
            for _ in range(n):
                r = _run(
                    "curl", "--silent", "--insecure", "--max-time", "2", f"https://{vip}:6443/", ns=hub, check=False
                )
                got.append(r.stdout if r.returncode == 0 else f"error {r.returncode}")
            return got

        first, second, third = (name for name, _ in hosts)
        # 1. the first control-plane host holds the VIP, and its HAProxy spreads over every ready API server
        _wait("one holder of the VIP", lambda: holders() == [first])
        _wait("requests to every API server", lambda: set(ask()) == {first, second, third})

        # 2. an API server that is up but not ready leaves the rotation; nothing fails meanwhile
        (tmp_path / third / "not-ready").touch()
        _wait(f"{third} out of rotation", lambda: set(ask()) == {first, second})

        # 3. the holder stops: the next host takes the VIP, and clients carry on with the live servers
        for proc in procs[first].values():
            proc.kill()
            proc.wait(timeout=10)  # reaped: a zombie would still pass `kill -0`
        _wait(f"{second} to hold the VIP", lambda: holders() == [second], seconds=15)
        _wait(f"requests served without {first}", lambda: set(ask()) == {second})

        # 4. HAProxy dies on the holder: keepalived's check gives the VIP to the last host (its HAProxy runs)
        procs[second]["haproxy"].kill()
        procs[second]["haproxy"].wait(timeout=10)
        _wait(f"{third} to hold the VIP", lambda: holders() == [third], seconds=15)
        _wait(f"requests through {third}'s HAProxy", lambda: set(ask()) == {second})
        for group in procs.values():
            for proc in group.values():
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=10)
