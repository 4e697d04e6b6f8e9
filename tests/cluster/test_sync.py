"""Ordering, diffing and input errors of preview/apply, and the kind configuration; no cluster needed."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from kasbah.kube.client import RETRIES, Kube
from kasbah.kube.kind import kind_config
from kasbah.kube.sync import FieldChange, compare, field_changes, sync, waves
from kasbah.planning.labels import cluster_nodes, node_labels, registration_taints
from kasbah.planning.tenancy import cluster_view
from kasbah.rendering.kubernetes import cluster_files
from tests.cluster.apiserver import free_port
from tests.cluster.conftest import kasbah
from tests.conftest import CAMPUS, TINY, planned


def obj(
    kind: str, name: str, ns: str | None = None, wave: int | None = None, api: str = "v1"
) -> tuple[str, dict[str, Any]]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    if wave is not None:
        meta["annotations"] = {"argocd.argoproj.io/sync-wave": str(wave)}
    return f"{kind}.yaml", {"apiVersion": api, "kind": kind, "metadata": meta}


def test_waves_put_crds_then_namespaces_then_sync_waves_in_order() -> None:
    crd = obj("CustomResourceDefinition", "x.example.com", api="apiextensions.k8s.io/v1")
    items = [
        obj("ConfigMap", "late", "a", wave=1),
        obj("NetworkPolicy", "deny", "a", wave=-1),
        obj("Namespace", "a", wave=-2),
        crd,
        obj("ConfigMap", "plain", "a"),
        obj("Namespace", "b"),
        obj("NetworkPolicy", "deny", "b", wave=-1),
        obj("Thing", "odd", "a", wave=None),
    ]
    items[-1][1]["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": "soon"}  # unreadable: wave 0
    got = [[(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for _, o in w] for w in waves(items)]
    assert got == [
        [("CustomResourceDefinition", None, "x.example.com")],
        [("Namespace", None, "a"), ("Namespace", None, "b")],
        [("NetworkPolicy", "a", "deny"), ("NetworkPolicy", "b", "deny")],
        [("ConfigMap", "a", "plain"), ("Thing", "a", "odd")],
        [("ConfigMap", "a", "late")],
    ]


def test_waves_of_the_rendered_tree_keep_every_object_once() -> None:
    plan = planned(CAMPUS)[0]
    for cluster in plan.clusters:
        objs = [(path, o) for path, group in cluster_files(cluster_view(plan, cluster)) for o in group]
        ws = waves(objs)
        assert sorted(id(o) for w in ws for _, o in w) == sorted(id(o) for _, o in objs)
        assert {o["kind"] for _, o in ws[0]} == {"Namespace"}  # the tree holds no CRDs: they come with charts
        # every namespaced object comes after its namespace's wave
        assert all(o["kind"] != "Namespace" for w in ws[1:] for _, o in w)


def test_field_changes_name_each_differing_field() -> None:
    live = {
        "metadata": {"labels": {"kasbah.io/pool": "a", "keep": "x"}},
        "spec": {"hard": {"requests.nvidia.com/gpu": "8"}, "ports": [{"port": 53}, {"port": 80}], "gone": 1},
    }
    new = {
        "metadata": {"labels": {"kasbah.io/pool": "b", "keep": "x"}},
        "spec": {"hard": {"requests.nvidia.com/gpu": "16"}, "ports": [{"port": 53}, {"port": 443}], "added": True},
    }
    assert field_changes(live, new) == [
        FieldChange('metadata.labels["kasbah.io/pool"]', "a", "b"),
        FieldChange("spec.added", None, True),
        FieldChange("spec.gone", 1, None),
        FieldChange('spec.hard["requests.nvidia.com/gpu"]', "8", "16"),
        FieldChange("spec.ports[1].port", 80, 443),
    ]
    # a list that grows or shrinks is one change of the whole list
    assert field_changes({"a": [1]}, {"a": [1, 2]}) == [FieldChange("a", [1], [1, 2])]


def test_compare_ignores_what_the_server_keeps_for_itself() -> None:
    live = {
        "kind": "ConfigMap",
        "metadata": {"name": "x", "resourceVersion": "1", "uid": "u", "managedFields": [{"manager": "a"}]},
        "data": {"a": "1"},
        "status": {"phase": "Active"},
    }
    same = {**live, "metadata": {**live["metadata"], "resourceVersion": "2", "managedFields": []}, "status": {}}
    assert compare(live, same) == ("unchanged", [])
    assert compare(None, same) == ("create", [])
    changed = {**same, "data": {"a": "2"}}
    assert compare(live, changed) == ("change", [FieldChange("data.a", "1", "2")])


# --------------------------------------------------------------------------- input errors


def _kubeconfig(path: Path, server: str, contexts: tuple[str, ...] = ("a",)) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in contexts],
        "current-context": contexts[0],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_an_unreachable_cluster_is_exit_4_and_says_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    config = _kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{port}")
    for verb, role in (("preview", []), ("apply", ["--break-glass"]), ("apply", ["--bootstrap"])):
        code, out, err = kasbah(capsys, verb, "lab-1", "-e", str(TINY), "--kubeconfig", str(config), *role)
        assert code == 4, err
        assert f"cannot reach the API server at https://127.0.0.1:{port}" in err
        assert "Connection refused" in err and "--kubeconfig/--context" in err
        assert out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kubeconfig", "/nonexistent/kc"], "/nonexistent/kc: no such kubeconfig"),
        (["--kubeconfig", "{kc}", "--context", "nope"], "context `nope`"),
        (["--kubeconfig", "{bad}"], "cannot use this kubeconfig"),
        (["--kubeconfig", "{kc}", "--cluster", "nope"], "has no cluster `nope`; it has: lab"),
        (["--kubeconfig", "{kc}", "-j", "0"], "--concurrency 0: give 1 or more"),
        (["--kubeconfig", "{kc}", "--timeout", "-1"], "--timeout -1.0: give the seconds a request may take"),
        (["--kubeconfig", "{kc}", "--field-manager", ""], "--field-manager '': give a name of 1 to 128 printable"),
    ],
)
def test_bad_input_is_exit_2_and_names_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    kc = _kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{free_port()}")
    bad = tmp_path / "bad"
    bad.write_text("clusters: [\n")
    args = [a.format(kc=kc, bad=bad) for a in args]
    code, _, err = kasbah(capsys, "preview", "lab-1", "-e", str(TINY), *args)
    assert code == 2, err
    assert message in " ".join(err.split())


def test_a_phase_with_several_clusters_needs_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kc = _kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{free_port()}")
    code, _, err = kasbah(capsys, "preview", "phase-1", "-e", str(CAMPUS), "--kubeconfig", str(kc))
    assert code == 2 and "has 2 clusters (train-1, cloud-1); fix: pick one with --cluster" in " ".join(err.split())


def test_apply_refuses_a_stale_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "tree"
    assert kasbah(capsys, "render", "lab-1", "-e", str(TINY), "--out", str(tree))[0] == 0
    marker = tree / "kasbah.json"
    marker.write_text(marker.read_text().replace('"plan_sha256": "', '"plan_sha256": "0'))
    kc = _kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{free_port()}")
    code, _, err = kasbah(capsys, "apply", str(tree), "-e", str(TINY), "--kubeconfig", str(kc), "--break-glass")
    assert code == 2 and "rendered from a different plan" in " ".join(err.split())
    # a preview of it warns and goes on (here to the unreachable cluster)
    code, _, err = kasbah(capsys, "preview", str(tree), "-e", str(TINY), "--kubeconfig", str(kc))
    assert code == 4 and "warning" in err


# --------------------------------------------------------------------------- kind


@pytest.mark.parametrize("phase", ["lab-1", "lab-2"])
def test_kind_config_has_the_plans_nodes_labels_and_taints(phase: str) -> None:
    plan = next(p for p in planned(TINY) if p.phase == phase)
    cluster = plan.clusters[0]
    config = yaml.safe_load(kind_config(plan, cluster.name))
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["networking"] == {"podSubnet": cluster.pod_cidr, "serviceSubnet": cluster.service_cidr}
    views = sorted(cluster_nodes(plan, cluster.name), key=lambda v: (v.node.role != "control-plane", v.node.name))
    assert len(config["nodes"]) == len(views) == cluster.nodes
    for i, (node, view) in enumerate(zip(config["nodes"], views, strict=True)):
        assert node["role"] == ("control-plane" if view.node.role == "control-plane" else "worker")
        assert node["labels"] == node_labels(plan.site, view.node, view.rack, view.pool)
        (patch,) = [yaml.safe_load(p) for p in node["kubeadmConfigPatches"]]
        assert patch["kind"] == ("InitConfiguration" if i == 0 else "JoinConfiguration")
        assert patch["nodeRegistration"]["taints"] == [t.as_dict() for t in registration_taints(view.node, view.pool)]
    gpu_workers = [n for n in config["nodes"] if n["labels"].get("kasbah.io/purpose") == "training"]
    assert gpu_workers and all(
        {"key": "kasbah.io/burn-in", "value": "pending", "effect": "NoSchedule"}
        in yaml.safe_load(n["kubeadmConfigPatches"][0])["nodeRegistration"]["taints"]
        for n in gpu_workers
    )


def test_kind_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "kind.yaml"
    code, _, _ = kasbah(capsys, "kind-config", "lab-1", "-e", str(TINY), "-o", str(out))
    assert code == 0 and yaml.safe_load(out.read_text())["name"] == "kasbah-lab"
    code, _, err = kasbah(capsys, "kind-config", "phase-1", "-e", str(CAMPUS), "--cluster", "cloud-1")
    assert code == 2 and "too many for kind containers" in " ".join(err.split())
    code, _, err = kasbah(capsys, "kind-config", "lab-1", "-e", str(TINY), "--max-nodes", "0")
    assert code == 2 and "--max-nodes 0: give 1 or more" in err


# --------------------------------------------------------------------------- answers a cluster gives under load


@contextmanager
def answering(
    tmp_path: Path, answers: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]]
) -> Iterator[tuple[Kube, list[str]]]:
    """An HTTP server on loopback giving scripted answers per path (the last one repeats); yields a
    client of it and the paths it was asked.

    Not a cluster: it checks how the client treats status codes a real API server sends under load
    or policy (429 with Retry-After, 403 on discovery), which a healthy test server never sends.
    Status 0 drops the connection without an answer (a reset). Unless `answers` says otherwise, it
    serves the documents the client's discovery starts with: its version and no API group.
    """
    asked: list[str] = []
    discovery = {
        "/version": [(200, {"gitVersion": "v1.33.1"}, {})],
        "/apis": [(200, {"kind": "APIGroupList", "groups": []}, {})],
    }
    answers = {**discovery, **answers}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            queue = answers.get(self.path.split("?")[0], [(404, {"message": "not found"}, {})])
            status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
            if status == 0:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return  # closed with no answer: the client reads a reset
            data = json.dumps(body).encode()
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        kc = _kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{server.server_address[1]}")
        yield Kube(kc), asked
    finally:
        server.shutdown()
        server.server_close()


def test_throttled_requests_are_retried_after_the_servers_delay(tmp_path: Path) -> None:
    answers = {
        "/version": [
            (429, {"message": "too many requests"}, {"Retry-After": "0"}),
            (200, {"gitVersion": "v1.33.1"}, {}),
        ]
    }
    with answering(tmp_path, answers) as (kube, asked):
        assert kube.version() == "v1.33.1"
    assert asked == ["/version", "/version", "/apis"]  # then the API groups, for the dynamic client's discovery


def test_a_discovery_refusal_fails_its_objects_not_the_run(tmp_path: Path) -> None:
    forbidden = {"kind": "Status", "status": "Failure", "reason": "Forbidden", "message": "discovery is forbidden"}
    answers = {"/api/v1": [(403, forbidden, {})]}
    with answering(tmp_path, answers) as (kube, _):
        report = sync(kube, [obj("ConfigMap", "x", "a"), obj("ConfigMap", "y", "a")], dry_run=True)
    assert [o.action for o in report.outcomes] == ["rejected", "rejected"]
    assert "would not list the kinds of v1: 403 discovery is forbidden" in report.outcomes[0].message


GROUP = "widgets.example.io"
WIDGETS = f"/apis/{GROUP}/v1"


def widget_group(*list_answers: tuple[int, dict[str, Any], dict[str, str]]) -> dict[str, Any]:
    """Answers serving one API group whose list of kinds (`WIDGETS`) answers `list_answers` in turn."""
    served = {"groupVersion": f"{GROUP}/v1", "version": "v1"}
    groups = {"kind": "APIGroupList", "groups": [{"name": GROUP, "versions": [served], "preferredVersion": served}]}
    return {"/apis": [(200, groups, {})], WIDGETS: list(list_answers)}


WIDGET_LIST = (
    200,
    {"kind": "APIResourceList", "resources": [{"name": "widgets", "kind": "Widget", "namespaced": True}]},
    {},
)
UNAVAILABLE = (503, {"kind": "Status", "message": "the server is currently unable to handle the request"}, {})


def test_a_group_whose_discovery_is_unavailable_for_a_while_converges(tmp_path: Path) -> None:
    """A 503 on a group's list of kinds is retried (after Retry-After), not taken for "no kinds there"."""
    later = (*UNAVAILABLE[:2], {"Retry-After": "0"})
    # the client's first two tries answer 503: urllib3 repeats each once itself (the answer has a
    # Retry-After), so four 503s, then the list on the third try
    with answering(tmp_path, widget_group(later, later, later, later, WIDGET_LIST)) as (kube, asked):
        res = kube.resource(f"{GROUP}/v1", "Widget")
        assert res is not None and (res.plural, res.namespaced) == ("widgets", True)
        assert kube.resource(f"{GROUP}/v1", "Widget") is res  # remembered: not discovered again
    assert asked.count(WIDGETS) == 5


def test_a_group_whose_discovery_stays_unavailable_rejects_its_objects(tmp_path: Path) -> None:
    forever = (*UNAVAILABLE[:2], {"Retry-After": "0"})
    objects = [obj("Widget", "a", "ns", api=f"{GROUP}/v1"), obj("Widget", "b", "ns", api=f"{GROUP}/v1")]
    with answering(tmp_path, widget_group(forever)) as (kube, asked):
        report = sync(kube, objects, dry_run=True)
    assert [o.action for o in report.outcomes] == ["rejected", "rejected"]
    for out in report.outcomes:
        assert out.message == (
            f"the server would not list the kinds of {GROUP}/v1: 503 the server is currently unable to handle the request"
        )
    # the client's 5 tries for the first object (urllib3 repeats each once itself, as the answer has a
    # Retry-After); the second object is rejected with the same answer, not tried 5 times more
    assert asked.count(WIDGETS) == 2 * RETRIES


def test_a_group_whose_discovery_connection_is_reset_is_retried(tmp_path: Path) -> None:
    """Two resets in a row (urllib3 retries the first itself), then the list: the kind is found."""
    reset = (0, {}, {})
    with answering(tmp_path, widget_group(reset, reset, WIDGET_LIST)) as (kube, asked):
        res = kube.resource(f"{GROUP}/v1", "Widget")
    assert res is not None and res.plural == "widgets"
    assert asked.count(WIDGETS) == 3


def test_a_group_whose_discovery_connection_stays_reset_rejects_its_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("kasbah.kube.client.time.sleep", waits.append)  # the client's 1 s, 2 s... between tries
    with answering(tmp_path, widget_group((0, {}, {}))) as (kube, _):
        report = sync(kube, [obj("Widget", "a", "ns", api=f"{GROUP}/v1")], dry_run=True)
    (out,) = report.outcomes
    assert (out.action, out.message) == (
        "rejected",
        f"the server would not list the kinds of {GROUP}/v1: the server dropped the connection {RETRIES} times",
    )
    assert waits == [1, 2, 3, 4]


def test_apply_states_its_role(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kc = _kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{free_port()}")
    code, _, err = kasbah(capsys, "apply", "lab-1", "-e", str(TINY), "--kubeconfig", str(kc))
    err = " ".join(err.split())
    assert code == 2 and "say which role this apply plays: --bootstrap" in err and "--break-glass" in err
    code, _, err = kasbah(
        capsys, "apply", "lab-1", "-e", str(TINY), "--kubeconfig", str(kc), "--bootstrap", "--break-glass"
    )
    assert code == 2 and "give one role" in err


def test_apply_refuses_a_tree_that_fails_verification(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Verify runs first: a tree that lets a tenant out is not applied in either role, unless --unsafe."""
    tree = tmp_path / "tree"
    assert kasbah(capsys, "render", "lab-1", "-e", str(TINY), "--out", str(tree))[0] == 0
    deny = tree / "clusters" / "lab" / "network-policies" / "tenant-ministry.yaml"
    docs = [d for d in yaml.safe_load_all(deny.read_text()) if d["metadata"]["name"] != "default-deny"]
    deny.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    kc = _kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{free_port()}")
    for role in ("--bootstrap", "--break-glass"):
        code, _, err = kasbah(capsys, "apply", str(tree), "-e", str(TINY), "--kubeconfig", str(kc), role)
        err = " ".join(err.split())
        assert code == 2 and "fails verification" in err and "nothing was applied" in err, err
        assert "--unsafe applies anyway" in err
    # told otherwise, it goes on (here to the unreachable cluster) and says what it skipped
    code, _, err = kasbah(
        capsys, "apply", str(tree), "-e", str(TINY), "--kubeconfig", str(kc), "--break-glass", "--unsafe"
    )
    assert code == 4 and "applying a tree that fails verification" in " ".join(err.split())


def test_a_kind_served_under_another_version_is_named(tmp_path: Path) -> None:
    """The CRD is installed but its release serves the kind under another version: not 'CRD not installed'."""
    group = "kueue.x-k8s.io"
    served = {"groupVersion": f"{group}/v1beta1", "version": "v1beta1"}
    answers = {
        "/apis": [
            (
                200,
                {"kind": "APIGroupList", "groups": [{"name": group, "versions": [served], "preferredVersion": served}]},
                {},
            )
        ],
        f"/apis/{group}/v1beta1": [
            (200, {"kind": "APIResourceList", "resources": [{"name": "topologies", "kind": "Topology"}]}, {})
        ],
    }
    with answering(tmp_path, answers) as (kube, _):
        report = sync(kube, [obj("Topology", "default", api=f"{group}/v1alpha1")], dry_run=True)
        missing = sync(kube, [obj("Widget", "w", api=f"{group}/v1alpha1")], dry_run=True)
    (out,) = report.outcomes
    assert out.action == "missing-kind"
    assert out.message.startswith(f"the cluster serves Topology as {group}/v1beta1, not {group}/v1alpha1")
    assert missing.outcomes[0].message == "the cluster does not serve this kind: its CRD is not installed"
