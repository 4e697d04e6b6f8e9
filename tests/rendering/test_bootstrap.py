"""kubeadm bootstrap files: valid YAML of the right kinds, with the Plan's networks and labels.py's labels and taints."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
import yaml

from kasbah.config import load_environment
from kasbah.planning import plan_campus
from kasbah.planning.labels import cluster_nodes, node_labels, registration_taints
from kasbah.planning.model import Plan
from kasbah.rendering.bootstrap import PLACEHOLDERS, render_bootstrap
from tests.conftest import CAMPUS, TINY
from tests.rendering.fresh import digest_in_fresh_interpreter

KUBEADM = "kubeadm.k8s.io/v1beta4"
KUBELET = "kubelet.config.k8s.io/v1beta1"


@cache
def plan(env: str) -> Plan:
    e = load_environment(TINY if env == "tiny" else CAMPUS)
    return plan_campus(e.campus, e.name, upto=None if env == "tiny" else "phase-1")[-1]


@cache
def rendered(env: str) -> dict[str, bytes]:
    return render_bootstrap(plan(env))


ENVS = ["tiny", "campus"]


_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def docs(data: bytes) -> list[dict[str, Any]]:
    """yaml.safe_load_all (the C loader when there is one), skipping empty documents."""
    return [d for d in yaml.load_all(data, Loader=_Loader) if d is not None]


def arg(args: list[dict[str, str]], name: str) -> str:
    values = [a["value"] for a in args if a["name"] == name]
    assert len(values) == 1, (name, args)
    return values[0]


def parse_labels(flag: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in flag.split(","))


@pytest.mark.parametrize("env", ENVS)
def test_every_file_is_valid_yaml_of_known_kinds(env: str) -> None:
    for path, data in rendered(env).items():
        if path.endswith(".json"):
            json.loads(data)
            continue
        kinds = [(d["apiVersion"], d["kind"]) for d in docs(data)]
        if path.endswith("kubeadm-init.yaml"):
            assert kinds == [
                (KUBEADM, "InitConfiguration"),
                (KUBEADM, "ClusterConfiguration"),
                (KUBELET, "KubeletConfiguration"),
            ]
        elif "/join/" in path:
            assert kinds == [(KUBEADM, "JoinConfiguration")]
        elif path.endswith("/authentication.yaml"):
            assert kinds == [("apiserver.config.k8s.io/v1beta1", "AuthenticationConfiguration")]
        elif path.endswith("/encryption.yaml"):
            assert kinds == [("apiserver.config.k8s.io/v1", "EncryptionConfiguration")]
        else:
            assert "/kubelet-" in path and kinds == [(KUBELET, "KubeletConfiguration")]
        # the document marker first: kubeadm reads comments before it as an empty document and refuses the file
        assert data.startswith(b"---\n# Managed by kasbah"), path
        assert None not in list(yaml.load_all(data, Loader=_Loader)), f"{path}: an empty document"


@pytest.mark.parametrize("env", ENVS)
def test_init_configuration_is_the_clusters(env: str) -> None:
    p = plan(env)
    files = rendered(env)
    for c in p.clusters:
        init, cluster, kubelet = docs(files[f"{c.name}/kubeadm-init.yaml"])
        first = next(n for n in p.nodes if n.name == c.control_plane[0])
        assert init["localAPIEndpoint"]["advertiseAddress"] == first.inband_ip
        assert init["nodeRegistration"]["name"] == first.name
        assert init["bootstrapTokens"][0]["token"] == "${KUBEADM_TOKEN}"
        assert cluster["clusterName"] == c.name
        assert cluster["kubernetesVersion"] == f"v{c.kubernetes_version}.${{KUBERNETES_PATCH}}"
        assert cluster["controlPlaneEndpoint"] == c.api_endpoint == f"api.{c.name}.{p.site}.kasbah.internal:6443"
        assert cluster["networking"] == {"podSubnet": c.pod_cidr, "serviceSubnet": c.service_cidr}
        assert arg(cluster["controllerManager"]["extraArgs"], "node-cidr-mask-size") == str(c.node_pod_prefix)
        assert "local" in cluster["etcd"]
        assert kubelet["maxPods"] == c.max_pods_per_node and kubelet["cgroupDriver"] == "systemd"


@pytest.mark.parametrize("env", ENVS)
def test_every_node_registers_with_labels_and_taints_from_labels_py(env: str) -> None:
    p = plan(env)
    files = rendered(env)
    parsed: dict[str, dict[str, Any]] = {}
    for c in p.clusters:
        index = json.loads(files[f"{c.name}/join/index.json"])
        views = cluster_nodes(p, c.name)
        assert set(index) == {v.node.name for v in views} - {c.control_plane[0]}
        for v in views:
            n = v.node
            if n.name == c.control_plane[0]:
                reg = docs(files[f"{c.name}/kubeadm-init.yaml"])[0]["nodeRegistration"]
            else:
                path = f"{c.name}/{index[n.name]}"
                if path not in parsed:
                    parsed[path] = docs(files[path])[0]
                join = parsed[path]
                reg = join["nodeRegistration"]
                assert join["discovery"]["bootstrapToken"]["caCertHashes"] == ["${KUBEADM_CA_CERT_HASH}"]
                assert ("controlPlane" in join) == (n.role == "control-plane")
                assert index[n.name] in (f"join/{n.rack}.yaml", f"join/{n.name}.yaml")
            assert parse_labels(arg(reg["kubeletExtraArgs"], "node-labels")) == node_labels(p.site, n, v.rack, v.pool)
            assert reg["taints"] == [t.as_dict() for t in registration_taints(n, v.pool)]


def test_one_join_file_serves_a_whole_nvl72_rack() -> None:
    p = plan("campus")
    files = rendered("campus")
    index = json.loads(files["train-1/join/index.json"])
    gb200 = [n for n in p.nodes if n.cluster == "train-1" and n.nvlink_domain == n.rack]
    assert gb200
    for n in gb200:
        assert index[n.name] == f"join/{n.rack}.yaml"


@pytest.mark.parametrize("env", ENVS)
def test_kubelet_configuration_per_pool(env: str) -> None:
    p = plan(env)
    files = rendered(env)
    for c in p.clusters:
        pools = {v.pool.name for v in cluster_nodes(p, c.name)}
        got = {path.split("/kubelet-")[1][: -len(".yaml")] for path in files if path.startswith(f"{c.name}/kubelet-")}
        assert got == pools
        for pool in pools:
            (k,) = docs(files[f"{c.name}/kubelet-{pool}.yaml"])
            assert k["maxPods"] == c.max_pods_per_node
            assert k["serverTLSBootstrap"] is True and k["cgroupDriver"] == "systemd"
            assert set(k["kubeReserved"]) >= {"cpu", "memory"} and set(k["systemReserved"]) >= {"cpu", "memory"}


@pytest.mark.parametrize("env", ENVS)
def test_no_secrets_only_placeholders(env: str) -> None:
    for data in rendered(env).values():
        text = data.decode()
        assert "sha256:" not in text
        for line in text.splitlines():
            if "token:" in line or "certificateKey:" in line:
                assert any(p in line for p in PLACEHOLDERS), line


@pytest.mark.parametrize("env", ENVS)
def test_bootstrap_is_deterministic(env: str) -> None:
    assert render_bootstrap(plan(env)) == rendered(env)


def test_bootstrap_is_the_same_under_any_hash_seed() -> None:
    render = "from kasbah.rendering.bootstrap import render_bootstrap; out = render_bootstrap(plan)"
    assert digest_in_fresh_interpreter(render, "1") == digest_in_fresh_interpreter(render, "2")


@pytest.mark.parametrize("env", ENVS)
def test_secrets_are_encrypted_at_rest_with_the_sites_kms(env: str) -> None:
    """Every API server reads encryption.yaml: KMS v2 first (every write encrypted), identity after it (Secrets stored
    before encryption read until rewritten), and mounts the file and the plugin's socket."""
    p = plan(env)
    files = rendered(env)
    assert p.kms is not None  # both shipped sites declare one
    for c in p.clusters:
        (config,) = docs(files[f"{c.name}/encryption.yaml"])
        (rule,) = config["resources"]
        assert rule["resources"] == ["secrets"]
        assert rule["providers"] == [
            {"kms": {"apiVersion": "v2", "name": p.kms.name, "endpoint": f"unix://{p.kms.socket}", "timeout": "3s"}},
            {"identity": {}},
        ]
        _, cluster, _ = docs(files[f"{c.name}/kubeadm-init.yaml"])
        args = {a["name"]: a["value"] for a in cluster["apiServer"]["extraArgs"]}
        assert args["encryption-provider-config"] == "/etc/kubernetes/kasbah/encryption.yaml"
        mounts = {v["name"]: v["mountPath"] for v in cluster["apiServer"]["extraVolumes"]}
        assert mounts["kasbah-encryption"] == "/etc/kubernetes/kasbah/encryption.yaml"
        assert mounts["kasbah-kms-plugin"] == p.kms.socket.rsplit("/", 1)[0]
