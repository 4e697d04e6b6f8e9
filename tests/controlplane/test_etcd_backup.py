"""etcd snapshots and their restore, for real: Debian's etcd (3.4) and etcdctl on the etcd_backup role's scripts.

A three-member etcd cluster of the test's own runs on loopback addresses (127.0.2.1-3, plain HTTP:
kubeadm's members speak TLS, which is the scripts' `--cacert/--cert/--key` and nothing else). The
snapshot and restore scripts are the role's templates rendered for each member the way a play
renders them. A key written before the snapshot comes back after the restore; a key written
after it is gone; a snapshot whose sha256 does not match its record is refused; retention keeps
the newest snapshots only.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import needs
from tests.controlplane import roles

pytestmark = pytest.mark.nodes

TOOLS = ("etcd", "etcdctl", "sha256sum")
HOSTS = {"cp1": "127.0.2.1", "cp2": "127.0.2.2", "cp3": "127.0.2.3"}
INITIAL = ",".join(f"{n}=http://{ip}:2380" for n, ip in HOSTS.items())
TOKEN = "lab-restored"  # what the restore script names the restored cluster (kasbah_cluster-restored)


skip = needs(*TOOLS, installs="etcd-server and etcd-client")


def scripts(host: str, work: Path, keep: int = 48) -> dict[str, Path]:
    """The role's snapshot and restore scripts for one member, written under work/<host>."""
    variables: dict[str, Any] = {
        "kasbah_cluster": "lab",
        "kasbah_inband_ip": HOSTS[host],
        "kasbah_control_plane": [{"name": n, "address": ip} for n, ip in HOSTS.items()],
        "kasbah_etcd_backup": {"dir": str(work / "backups" / "etcd" / "lab"), "target": "lab-vault",
                               "every_minutes": 60, "keep": keep},
    }  # fmt: skip
    extra = {
        "etcd_backup_endpoint": f"http://{HOSTS[host]}:2379",
        "etcd_backup_cacert": "",
        "etcd_backup_peer_scheme": "http",
        "etcd_backup_root": str(work / host),
    }
    texts = roles.render(
        "etcd_backup", host, variables, extra,
        {"snapshot": "usr/local/sbin/kasbah-etcd-snapshot.j2", "restore": "usr/local/sbin/kasbah-etcd-restore.j2"},
    )  # fmt: skip
    out = {}
    for key, text in texts.items():
        path = work / host / f"{key}.sh"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o750)
        out[key] = path
    return out


@contextlib.contextmanager
def members(data: dict[str, Path]) -> Iterator[None]:
    procs = []
    try:
        for name, ip in HOSTS.items():
            argv = ["etcd", "--name", name, "--data-dir", str(data[name]),
                    "--listen-client-urls", f"http://{ip}:2379", "--advertise-client-urls", f"http://{ip}:2379",
                    "--listen-peer-urls", f"http://{ip}:2380", "--initial-advertise-peer-urls", f"http://{ip}:2380",
                    "--initial-cluster", INITIAL, "--initial-cluster-token", TOKEN, "--initial-cluster-state", "new"]  # fmt: skip
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 30
        while _ctl("endpoint", "health", check=False).returncode != 0:
            assert time.monotonic() < deadline, "the test's etcd cluster did not become healthy"
            time.sleep(0.3)
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _ctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    endpoints = ",".join(f"http://{ip}:2379" for ip in HOSTS.values())
    return subprocess.run(
        ["etcdctl", "--endpoints", endpoints, "--command-timeout=10s", *args],
        capture_output=True, text=True, check=check, env={**os.environ, "ETCDCTL_API": "3"}, timeout=60,
    )  # fmt: skip


@skip
def test_a_snapshot_restores_what_it_held_and_drops_what_came_after(tmp_path: Path) -> None:
    run = {h: scripts(h, tmp_path) for h in HOSTS}
    data = {h: tmp_path / h / "etcd" for h in HOSTS}
    with members(data):
        _ctl("put", "/registry/namespaces/ministry", "before the snapshot")
        made = subprocess.run([str(run["cp1"]["snapshot"])], capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        snapshot = Path(made.stdout.strip().splitlines()[-1])
        assert snapshot.parent == tmp_path / "backups" / "etcd" / "lab" and snapshot.name.startswith("cp1-")
        assert (
            subprocess.run(
                ["sha256sum", "--check", "--status", f"{snapshot.name}.sha256"], cwd=snapshot.parent
            ).returncode
            == 0
        )
        assert not list(snapshot.parent.glob(".*")), "no partial file is left beside the snapshot"
        _ctl("put", "/registry/namespaces/lost", "after the snapshot")
        assert _ctl("get", "/registry/namespaces/lost", "--print-value-only").stdout.strip() == "after the snapshot"
    # every member from the same snapshot, into new data directories; the old ones are kept
    restored = {h: tmp_path / h / "etcd.restored" for h in HOSTS}
    for h in HOSTS:
        done = subprocess.run([str(run[h]["restore"]), str(snapshot), str(restored[h])], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    with members(restored):
        assert (
            _ctl("get", "/registry/namespaces/ministry", "--print-value-only").stdout.strip() == "before the snapshot"
        )
        assert _ctl("get", "/registry/namespaces/lost", "--print-value-only").stdout.strip() == ""
        listed = _ctl("member", "list").stdout
        assert sorted(line.split(", ")[2] for line in listed.strip().splitlines()) == sorted(HOSTS)


@skip
def test_a_tampered_snapshot_is_refused_and_an_existing_directory_kept(tmp_path: Path) -> None:
    run = scripts("cp1", tmp_path)
    with members({h: tmp_path / h / "etcd" for h in HOSTS}):
        made = subprocess.run([str(run["snapshot"])], capture_output=True, text=True, timeout=120, check=True)
    snapshot = Path(made.stdout.strip().splitlines()[-1])
    with snapshot.open("r+b") as f:
        f.seek(4096)
        f.write(b"\0" * 16)
    target = tmp_path / "restore"
    refused = subprocess.run([str(run["restore"]), str(snapshot), str(target)], capture_output=True, text=True)
    assert refused.returncode == 3 and "does not match" in refused.stderr and not target.exists()
    target.mkdir()
    kept = subprocess.run([str(run["restore"]), str(snapshot), str(target)], capture_output=True, text=True)
    assert kept.returncode == 2 and "exists" in kept.stderr


@skip
def test_retention_keeps_the_newest_snapshots_of_the_host(tmp_path: Path) -> None:
    run = scripts("cp1", tmp_path, keep=2)
    made = []
    with members({h: tmp_path / h / "etcd" for h in HOSTS}):
        for _ in range(3):
            done = subprocess.run([str(run["snapshot"])], capture_output=True, text=True, timeout=120, check=True)
            made.append(Path(done.stdout.strip().splitlines()[-1]))
            time.sleep(1.1)  # the name's stamp has a one-second resolution
    left = sorted(p.name for p in made[0].parent.iterdir())
    assert left == sorted([made[1].name, f"{made[1].name}.sha256", made[2].name, f"{made[2].name}.sha256"])
