"""A real Kubernetes API server on loopback, for the preview and apply tests and the benchmark.

kind, k3s and container images cannot be installed here, but Debian ships the complete, vendored
Kubernetes source in its `kubernetes` source package (1.20.2 in Debian 12, which builds only
`kubectl` from it). `build_apiserver.sh` (`make apiserver`) builds the upstream `kube-apiserver`
from that source with Debian's Go, and Debian's `etcd-server` stores its state. This module starts
both on free loopback ports in a temporary directory and writes an admin kubeconfig:

    with LocalApiServer.start() as server:
        server.kubeconfig   # Path of a kubeconfig with a token in system:masters, TLS verified

It is the API server of a real cluster (the same admission, defaulting, validation, server-side
apply, dry-run and CRD handling), without nodes, schedulers or controllers: enough for what
`kasbah preview` and `kasbah apply` do, which is to talk to the API server.

Where a test is given a cluster (`KASBAH_TEST_KUBECONFIG`, e.g. a kind cluster), that is used
instead; see `tests/cluster/conftest.py`.
"""

from __future__ import annotations

import copy
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / ".kasbah" / "apiserver"
APISERVER_ENV = "KASBAH_KUBE_APISERVER"


def drop_end_ports(obj: dict[str, Any]) -> dict[str, Any]:
    """A NetworkPolicy without `endPort` (a port range becomes its first port): what a server older
    than Kubernetes 1.25 accepts. Other objects are returned as they are."""
    if obj.get("kind") != "NetworkPolicy":
        return obj
    out = copy.deepcopy(obj)
    for rule in (out["spec"].get("ingress") or []) + (out["spec"].get("egress") or []):
        for port in rule.get("ports") or []:
            port.pop("endPort", None)
    return out


def apiserver_binary() -> Path | None:
    """`$KASBAH_KUBE_APISERVER`, or what `make apiserver` built."""
    given = os.environ.get(APISERVER_ENV)
    path = Path(given) if given else BUILD_DIR / "kube-apiserver"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def missing() -> str | None:
    """Why a local API server cannot start here, or None."""
    if apiserver_binary() is None:
        return f"no kube-apiserver binary (build it with `make apiserver`, or set {APISERVER_ENV})"
    if shutil.which("etcd") is None:
        return "no etcd (Debian's etcd-server package)"
    return None


def free_port() -> int:
    """A loopback port free now (nothing listens on it once the probe socket closes)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _service_account_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@dataclass
class LocalApiServer:
    workdir: Path
    port: int
    token: str
    processes: list[subprocess.Popen[bytes]]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def ca(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:] for p in sorted(self.workdir.glob("*.log"))
        )

    @classmethod
    @contextmanager
    def start(cls, timeout: float = 90.0) -> Iterator[LocalApiServer]:
        why = missing()
        if why:
            raise RuntimeError(why)
        binary = apiserver_binary()
        assert binary is not None
        workdir = Path(tempfile.mkdtemp(prefix="kasbah-apiserver-"))
        server = cls(workdir, free_port(), secrets.token_hex(16), [])
        try:
            server._launch(binary)
            server._wait_ready(timeout)
            server._write_kubeconfig()
            yield server
        finally:
            for p in server.processes:
                p.terminate()
            for p in server.processes:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
            shutil.rmtree(workdir, ignore_errors=True)

    def _launch(self, binary: Path) -> None:
        etcd_port, peer_port = free_port(), free_port()
        (self.workdir / "certs").mkdir()
        sa_key = self.workdir / "sa.key"
        _service_account_key(sa_key)
        (self.workdir / "tokens.csv").write_text(f'{self.token},kasbah-admin,1,"system:masters"\n')
        etcd = [
            "etcd",
            "--name=kasbah-test",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=kasbah-test=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync",  # a throwaway store: durability buys nothing here
        ]
        apiserver = [
            str(binary),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={self.workdir / 'certs'}",  # a self-signed serving certificate for 127.0.0.1
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ]
        for name, cmd in (("etcd", etcd), ("kube-apiserver", apiserver)):
            log = (self.workdir / f"{name}.log").open("wb")
            self.processes.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir))
            if name == "etcd":
                time.sleep(0.5)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for p in self.processes:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited with {p.returncode}:\n{self.logs()}")
            if self.ca.is_file():
                try:
                    ctx = ssl.create_default_context(cafile=str(self.ca))
                    req = urllib.request.Request(
                        f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.token}"}
                    )
                    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
                        if r.status == 200:
                            return
                except (OSError, ssl.SSLError) as exc:
                    last = str(exc)
            time.sleep(0.3)
        raise RuntimeError(f"the API server was not ready after {timeout:.0f} s ({last}):\n{self.logs()}")

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": self.url, "certificate-authority": str(self.ca)}}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
            "current-context": "local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
