"""`kasbah usage` against a real Prometheus (Debian's) on loopback, fed a synthetic November.

The raw series of Kueue, kube-state-metrics and the DCGM exporter are written as OpenMetrics and turned into
TSDB blocks by `promtool tsdb create-blocks-from openmetrics`; the rendered metering rules are evaluated over
the month by `promtool tsdb create-blocks-from rules` against the running Prometheus (its own rule engine, as
the live server would record them minute by minute); Prometheus is restarted on both and `kasbah usage`
queries it. The expected figures are worked out by hand from the synthetic series.
"""

from __future__ import annotations

import csv
import datetime
import json
import shutil
import socket
import socketserver
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kasbah.rendering.metering import ksm_label, render_metering
from tests.conftest import TINY, needs, planned, run_kasbah

pytestmark = needs("prometheus", "promtool", installs="Debian's prometheus")

UTC = datetime.UTC
T0 = datetime.datetime(2026, 11, 2, tzinfo=UTC)  # the synthetic data: five days of November, a sample a minute
T1 = datetime.datetime(2026, 11, 7, tzinfo=UTC)
TENANT, POOL = ksm_label("kasbah.io/tenant"), ksm_label("node-restriction.kubernetes.io/pool")


def _at(day: int, hour: int = 0) -> datetime.datetime:
    return datetime.datetime(2026, 11, day, hour, tzinfo=UTC)


def _minutes() -> Iterator[datetime.datetime]:
    t = T0
    while t < T1:
        yield t
        t += datetime.timedelta(minutes=1)


def _between(a: datetime.datetime, b: datetime.datetime, value: float) -> object:
    return lambda t: value if a <= t < b else 0


def synthetic_openmetrics() -> str:
    gpu = 'resource="nvidia.com/gpu"'
    usage = "kueue_cluster_queue_resource_usage"
    quota = "kueue_cluster_queue_nominal_quota"
    families: dict[str, list[tuple[str, object]]] = {
        usage: [
            (f'cluster_queue="tenant-ministry",flavor="gpu-a",{gpu}', _between(_at(3), _at(5), 2)),
            (f'cluster_queue="tenant-ministry",flavor="gpu-gov",{gpu}', _between(_at(4), _at(5), 2)),
            (f'cluster_queue="tenant-operator",flavor="gpu-a",{gpu}', _between(_at(2, 12), _at(2, 22), 1)),
            # the tenant the tiny environment onboards on top of lab-2: 12 GPU-hours
            (f'cluster_queue="tenant-water-agency",flavor="gpu-a",{gpu}', _between(_at(6), _at(6, 12), 1)),
        ],
        quota: [
            (f'cluster_queue="tenant-ministry",flavor="gpu-a",{gpu}', lambda t: 2),
            (f'cluster_queue="tenant-ministry",flavor="gpu-gov",{gpu}', lambda t: 2),
            (f'cluster_queue="tenant-operator",flavor="gpu-a",{gpu}', lambda t: 2),
        ],
        # one workload admitted a minute while the ministry trains (Nov 3 and 4): 2,880
        "kueue_admitted_workloads_total": [
            (
                'cluster_queue="tenant-ministry"',
                lambda t: max(0, min((t - _at(3)) // datetime.timedelta(minutes=1), 2880)),
            )
        ],
        "kube_pod_container_resource_requests": [
            (
                'namespace="tenant-ministry",pod="train-0",container="main",node="n-a",'
                'resource="nvidia_com_gpu",unit="integer"',
                lambda t: 2,
            )
        ],
        "kube_pod_status_phase": [
            ('namespace="tenant-ministry",pod="train-0",phase="Running"', _between(_at(3), _at(5), 1))
        ],
        "kube_namespace_labels": [(f'namespace="tenant-ministry",{TENANT}="ministry"', lambda t: 1)],
        "kube_node_labels": [
            (f'node="n-a",{POOL}="gpu-a"', lambda t: 1),
            (f'node="n-g",{POOL}="gpu-gov"', lambda t: 1),
        ],
        "DCGM_FI_DEV_GPU_UTIL": [
            ('gpu="0",Hostname="n-a",namespace="tenant-ministry",pod="train-0"', _between(_at(3), _at(5), 80)),
            ('gpu="1",Hostname="n-a",namespace="tenant-ministry",pod="train-0"', _between(_at(3), _at(5), 60)),
        ],
    }
    lines: list[str] = []
    for family, series in families.items():
        lines.append(f"# TYPE {family} unknown")
        for labels, value in series:
            for t in _minutes():
                v = value(t)  # type: ignore[operator]
                # the DCGM exporter reports a pod's GPU only while the pod holds it
                if family == "DCGM_FI_DEV_GPU_UTIL" and not v:
                    continue
                lines.append(f"{family}{{{labels}}} {v} {int(t.timestamp())}")
    return "\n".join([*lines, "# EOF"]) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (root / "prometheus.yml").write_text("---\nglobal: {evaluation_interval: 1m}\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.root / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={self.root / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.root / 'data'}",
                "--storage.tsdb.retention.time=36500d",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError((self.root / "prometheus.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise AssertionError("Prometheus was not ready in 60 s: " + (self.root / "prometheus.log").read_text()[-3000:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _run(*argv: str, cwd: Path) -> None:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("prometheus")
    promtool = shutil.which("promtool") or "promtool"
    (root / "raw.om").write_text(synthetic_openmetrics())
    _run(promtool, "tsdb", "create-blocks-from", "openmetrics", "raw.om", "data", cwd=root)
    rules = root / "lab.rules.yml"
    rules.write_bytes(render_metering(planned(TINY)[-1])["lab.rules.yml"])
    server = Server(root)
    server.start()
    try:
        _run(
            promtool, "tsdb", "create-blocks-from", "rules",
            f"--url={server.url}", f"--start={int(T0.timestamp())}", f"--end={int(T1.timestamp())}",
            "--eval-interval=1m", "--output-dir=recorded", str(rules),
            cwd=root,
        )  # fmt: skip
        server.stop()
        for block in (root / "recorded").iterdir():
            shutil.move(str(block), root / "data" / block.name)
        server.start()
        yield server
    finally:
        server.stop()


def _rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open() as fh:
        return {(r["customer"], r["pool"]): r for r in csv.DictReader(fh)}


def test_the_usage_report_of_the_shipped_tenants_from_a_real_prometheus(
    prometheus: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code, _stdout, stderr = run_kasbah(
        capsys, "usage", "-e", str(TINY), "--month", "2026-11", "--prometheus", prometheus.url, "--out", str(out)
    )
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "usage-2026-11-direct.csv",
        "usage-2026-11-direct.md",
        "usage-2026-11-telecom.csv",
        "usage-2026-11-telecom.md",
        "usage-2026-11.csv",
        "usage-2026-11.md",
    ]
    rows = _rows(out / "usage-2026-11.csv")
    ministry_a = rows[("ministry", "gpu-a")]
    # 2 GPUs for 48 hours; the queue's quota of 2 GPUs over the 120 hours the series cover
    assert ministry_a["reseller"] == "telecom" and ministry_a["display_name"] == "Ministry of Digital Transition"
    assert float(ministry_a["gpu_hours"]) == pytest.approx(96, abs=0.05)
    assert float(ministry_a["gpu_hours_running"]) == pytest.approx(96, abs=0.05)
    assert float(ministry_a["quota_gpu_hours"]) == pytest.approx(240, abs=0.1)
    assert float(ministry_a["quota_use_percent"]) == pytest.approx(40, abs=0.1)
    assert float(ministry_a["gpu_utilisation_percent"]) == pytest.approx(70, abs=0.1)
    assert float(rows[("ministry", "gpu-gov")]["gpu_hours"]) == pytest.approx(48, abs=0.05)
    assert rows[("ministry", "gpu-gov")]["gpu_hours_running"] in ("0", "0.0")  # no pod of it runs there
    operator = rows[("operator", "gpu-a")]
    assert operator["reseller"] == "(direct)" and float(operator["gpu_hours"]) == pytest.approx(10, abs=0.05)
    # one admission a minute for 48 hours, from a 5-minute rate: within Prometheus's extrapolation at the edges
    assert int(rows[("ministry", "*")]["admitted_workloads"]) == pytest.approx(2880, rel=0.01)
    # the reseller's own files hold its customers only
    assert {c for c, _ in _rows(out / "usage-2026-11-telecom.csv")} == {"ministry", "water-agency"}
    assert float(rows[("water-agency", "gpu-a")]["gpu_hours"]) == pytest.approx(12, abs=0.05)
    md = (out / "usage-2026-11-telecom.md").read_text()
    assert "### Ministry of Digital Transition (`ministry`)" in md and "| lab | gpu-a | 96.0 |" in md
    assert "operator" not in md


def test_usage_as_json_and_an_empty_month(prometheus: Server, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_kasbah(
        capsys, "usage", "-e", str(TINY), "--month", "2026-11", "--prometheus", prometheus.url, "--json"
    )
    assert code == 0
    doc = json.loads(stdout)
    assert {(r["customer"], r["pool"]) for r in doc["rows"]} >= {("ministry", "gpu-a"), ("operator", "gpu-a")}
    code, stdout, _ = run_kasbah(
        capsys, "usage", "-e", str(TINY), "--month", "2026-09", "--prometheus", prometheus.url, "--json"
    )
    assert code == 0 and json.loads(stdout)["rows"] == []


def test_usage_says_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()  # nothing listens there
    code, _, stderr = run_kasbah(
        capsys, "usage", "-e", str(TINY), "--month", "2026-11", "--prometheus", f"http://127.0.0.1:{port}"
    )
    assert code == 4 and "did not answer" in stderr
    code, _, stderr = run_kasbah(capsys, "usage", "-e", str(TINY), "--month", "11-2026")
    assert code == 2 and "write it as YYYY-MM" in stderr
    code, _, stderr = run_kasbah(capsys, "usage", "-e", str(TINY), "--prometheus", "http://admin:secret@127.0.0.1:9090")
    assert code == 2 and "KASBAH_PROMETHEUS_TOKEN" in stderr and "secret" not in stderr


class _Answer(socketserver.BaseRequestHandler):
    reply = b""

    def handle(self) -> None:
        self.request.recv(65536)
        self.request.sendall(self.reply)


def _serving(reply: bytes) -> tuple[socketserver.TCPServer, str]:
    handler = type("Handler", (_Answer,), {"reply": reply})
    server = socketserver.TCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_a_server_that_is_not_prometheus_is_named_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    garbage, url = _serving(b"SSH-2.0-OpenSSH_9.2\r\n")
    page = b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<h1>401</h1>\n"
    proxy, proxy_url = _serving(page)
    try:
        code, _, stderr = run_kasbah(capsys, "usage", "-e", str(TINY), "--month", "2026-11", "--prometheus", url)
        assert code == 4 and "did not answer HTTP" in stderr, stderr
        code, _, stderr = run_kasbah(capsys, "usage", "-e", str(TINY), "--month", "2026-11", "--prometheus", proxy_url)
        assert code == 2 and "refused the query (HTTP 401)" in stderr, stderr
    finally:
        garbage.shutdown()
        proxy.shutdown()
    for bad in ("http://[::1", "http://h:port", "http://127.0.0.1:9090/?token=x", "ftp://h"):
        code, _, stderr = run_kasbah(capsys, "usage", "-e", str(TINY), "--prometheus", bad)
        assert code == 2 and "not http(s)://host[:port][/path]" in stderr and "token=x" not in stderr, (bad, stderr)


def test_two_sources_answering_one_cluster_are_refused(prometheus: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """One Prometheus a cluster, or one store of them all: never the same cluster twice (its use would double)."""
    other = prometheus.url.replace("127.0.0.1", "localhost")
    code, _, stderr = run_kasbah(
        capsys, "usage", "-e", str(TINY), "--month", "2026-11", "--prometheus", prometheus.url, "--prometheus", other
    )
    assert code == 2 and "cluster lab is answered by" in stderr, stderr


def test_a_customer_offboarded_since_stays_on_its_resellers_report(
    prometheus: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "tiny"
    shutil.copytree(TINY, env)
    with (env / "tenancy.yaml").open("a") as fh:
        for step in ("access", "workloads", "data"):
            fh.write(
                f"  - name: water-agency-{step}\n    after: lab-2\n"
                f"    offboard: [{{tenant: water-agency, step: {step}, reason: contract ended}}]\n"
            )
    code, stdout, stderr = run_kasbah(
        capsys, "usage", "-e", str(env), "--month", "2026-11", "--prometheus", prometheus.url, "--json"
    )
    assert code == 0, stderr
    row = next(r for r in json.loads(stdout)["rows"] if r["customer"] == "water-agency")
    assert row["reseller"] == "telecom" and row["note"] == "offboarded by water-agency-data (contract ended)"
    assert row["gpu_hours"] == pytest.approx(12, abs=0.05)
