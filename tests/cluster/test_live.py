"""`kasbah preview` and `kasbah apply` against a live API server, in the order a user meets them.

The tests of this module share one cluster and run in order: an empty cluster first (no CRDs),
then the vendored CRDs, the platform part applied in the bootstrap role, the tiny environment's
GitOps tree of lab-1 previewed, applied in the break-glass role (as the GitOps controller would,
under its field manager), applied again (nothing changes) and previewed again, then lab-2 previewed (its changes predicted field by field) and
applied, then what apply must never do. The live state is read back through the official
`kubernetes` client, not through kasbah's own code.

Version skew, on purpose: the local API server is Kubernetes 1.20 (the newest whose whole source
Debian ships), the tiny cluster targets 1.33, and its policies use NetworkPolicy `endPort` (beta
in 1.22, GA in 1.25), which 1.20 refuses. `test_an_older_server_refuses_newer_fields` checks that
refusal and the warning; the rest of the flow then runs on the rendered trees with `endPort`
dropped when the server is older than 1.25 (a port range becomes its first port) and the tenant pods'
ValidatingAdmissionPolicy (built in from 1.30) left out when it is older than 1.30, and on the
trees exactly as rendered against a newer cluster (`KASBAH_TEST_KUBECONFIG`, e.g. kind).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from kasbah.cli import main
from kasbah.planning.tenancy import cluster_view
from kasbah.rendering.kubernetes import cluster_files
from kasbah.verification.schema import custom_resource_definitions
from kasbah.verification.verify import cluster_manifests, read_tree
from tests.cluster.apiserver import drop_end_ports
from tests.cluster.conftest import actions, kasbah, sync_json
from tests.conftest import NOT_APPLICABLE, TINY, planned

LAB_1 = next(p for p in planned(TINY) if p.phase == "lab-1")
assert LAB_1.gitops is not None
CONTROLLER = LAB_1.gitops.field_manager  # break-glass applies as the GitOps controller would
ENDPORT_MINOR = 25  # NetworkPolicy endPort is GA (and on by default since 1.22)
ADMISSION_POLICY_MINOR = 30  # ValidatingAdmissionPolicy (the tenant pods' admission.yaml) is served, GA, from 1.30
CRD_KINDS = {c["spec"]["names"]["kind"] for c in custom_resource_definitions()}
pytestmark = pytest.mark.cluster
STATE: dict[str, Any] = {}


@pytest.fixture(scope="module")
def api(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> k8s.ApiClient:
    client = new_client_from_config(config_file=str(kubeconfig))
    cache = tmp_path_factory.mktemp("discovery") / "cache.json"  # not the shared default in /tmp
    STATE["dynamic"] = DynamicClient(client, cache_file=str(cache))
    return client


def live(api: k8s.ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    """The live object, as plain data, read through the official client's dynamic client (not kasbah's code)."""
    dynamic: DynamicClient = STATE["dynamic"]
    resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    ns, name = obj["metadata"].get("namespace"), obj["metadata"]["name"]
    try:
        got = dynamic.get(resource, name=name, namespace=ns)
    except NotFoundError:
        raise AssertionError(f"{obj['kind']} {ns}/{name} is not there") from None
    body: dict[str, Any] = got.to_dict()
    return body


@pytest.fixture(scope="module")
def server_minor(api: k8s.ApiClient) -> int:
    return int(re.sub(r"\D", "", k8s.VersionApi(api).get_code().minor))


TREES: dict[str, Path] = {}


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory, server_minor: int) -> dict[str, Path]:
    """lab-1 and lab-2 rendered to disk; without `endPort` for a server older than 1.25, without the tenant pods'
    admission policy (a kind the API server has built in from 1.30) for one older than 1.30."""
    for phase in ("lab-1", "lab-2"):
        tree = tmp_path_factory.mktemp("trees") / phase
        assert main(["render", phase, "-e", str(TINY), "--out", str(tree)]) == 0
        if server_minor < ENDPORT_MINOR:
            policies = [
                tree / "clusters" / "lab" / "network-policies",
                tree / "bootstrap" / "lab" / "platform" / "network-policies",
            ]
            for path in (p for d in policies for p in d.glob("*.yaml")):
                docs = [drop_end_ports(d) for d in yaml.safe_load_all(path.read_text())]
                path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        if server_minor < ADMISSION_POLICY_MINOR:
            (tree / "clusters" / "lab" / "admission.yaml").write_text(
                f"---\n# the admission policy: not served by a Kubernetes 1.{server_minor} API server\n"
            )
        TREES[phase] = tree
    return TREES


@pytest.fixture(autouse=True)
def _rendered(trees: dict[str, Path]) -> None:
    """Every test here may use the trees (TREES)."""


def rendered_objects(phase: str) -> list[dict[str, Any]]:
    """The objects `kasbah apply` sends for the phase: the cluster's kustomization, read back from the tree."""
    findings: list[Any] = []
    objs = [o for _, o in cluster_manifests(read_tree(TREES[phase]), "lab", findings)]
    assert not findings
    return objs


def test_an_empty_cluster_lacks_the_operators_crds(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str], trees: dict[str, Path]
) -> None:
    code, report = sync_json(capsys, "preview", str(trees["lab-1"]), "--kubeconfig", str(kubeconfig))
    by_action = actions(report)
    missing = {k for k, a in by_action.items() if a == "missing-kind"}
    if not missing:
        pytest.skip(NOT_APPLICABLE + "the given cluster already serves the operators' CRDs")
    assert code == 1
    assert {k.split()[0] for k in missing} <= CRD_KINDS
    assert {"ClusterQueue", "ResourceFlavor", "CiliumClusterwideNetworkPolicy"} <= {k.split()[0] for k in missing}
    # the server still checked what it could: kube-system exists, so its policies were dry-run
    assert by_action["NetworkPolicy kube-system/default-deny"] == "create"
    unchecked = [o for o in report["objects"] if o["message"].startswith("not checked by the server")]
    assert unchecked and all(o["namespace"] not in (None, "kube-system") for o in unchecked)
    assert report["uncheckedByServer"] == len(unchecked)
    # the human output names each missing kind once, with the chart that brings it
    code, _, err = kasbah(capsys, "preview", str(trees["lab-1"]), "-e", str(TINY), "--kubeconfig", str(kubeconfig))
    err = " ".join(err.split())
    assert code == 1
    assert "does not serve kueue.x-k8s.io/v1beta1 ClusterQueue; fix: install the `kueue` Helm release first" in err
    assert err.count("ClusterQueue") == 1
    assert "`kasbah apply TARGET --crds-only` installs the CRDs" in err


def test_crds_only_installs_the_vendored_crds(kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = sync_json(capsys, "apply", str(TREES["lab-1"]), "--kubeconfig", str(kubeconfig), "--crds-only")
    assert code == 0
    assert {o["kind"] for o in report["objects"]} == {"CustomResourceDefinition"}
    assert {o["name"].split(".")[0] for o in report["objects"]} == {
        c["spec"]["names"]["plural"] for c in custom_resource_definitions()
    }
    code, again = sync_json(capsys, "apply", str(TREES["lab-1"]), "--kubeconfig", str(kubeconfig), "--crds-only")
    assert code == 0 and set(actions(again).values()) == {"unchanged"}


def test_bootstrap_applies_the_platform_part(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str], api: k8s.ApiClient
) -> None:
    """What the cluster stack owns, applied without Pulumi: namespaces, the controller's policies, its sync object."""
    code, applied = sync_json(capsys, "apply", str(TREES["lab-1"]), "--kubeconfig", str(kubeconfig), "--bootstrap")
    assert code == 0, [o for o in applied["objects"] if o["action"] == "rejected"]
    findings: list[Any] = []
    objs = [o for _, o in cluster_manifests(read_tree(TREES["lab-1"]), "lab", findings, "bootstrap")]
    assert not findings and len(objs) == len(applied["objects"])
    kinds = {o["kind"] for o in objs}
    assert {"Namespace", "NetworkPolicy", "GitRepository", "Kustomization"} <= kinds
    for obj in objs:
        got = live(api, obj)
        managers = {(m["manager"], m["operation"]) for m in got["metadata"].get("managedFields", [])}
        assert ("kasbah-bootstrap", "Apply") in managers, got["metadata"]["name"]
        assert got["metadata"]["annotations"]["kasbah.io/owner"] == "bootstrap"
    # no tenant namespace: those are the GitOps tree's
    with pytest.raises(AssertionError):
        live(api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-ministry"}})
    code, again = sync_json(capsys, "apply", str(TREES["lab-1"]), "--kubeconfig", str(kubeconfig), "--bootstrap")
    assert code == 0 and set(actions(again).values()) == {"unchanged"}


def test_preview_then_apply_lab_1(kubeconfig: Path, capsys: pytest.CaptureFixture[str], api: k8s.ApiClient) -> None:
    code, preview = sync_json(capsys, "preview", str(TREES["lab-1"]), "--kubeconfig", str(kubeconfig))
    assert code == 0, [o for o in preview["objects"] if o["action"] in ("rejected", "missing-kind")]
    predicted = actions(preview)
    assert set(predicted.values()) <= {"create", "change"}
    # a preview writes nothing
    with pytest.raises(AssertionError):
        live(api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-ministry"}})

    code, applied = sync_json(capsys, "apply", str(TREES["lab-1"]), "--kubeconfig", str(kubeconfig), "--break-glass")
    assert code == 0, [o for o in applied["objects"] if o["action"] == "rejected"]
    assert actions(applied) == predicted  # the preview said what the apply did
    objs = rendered_objects("lab-1")
    assert len(objs) == len(applied["objects"])
    for obj in objs:
        got = live(api, obj)
        managers = {(m["manager"], m["operation"]) for m in got["metadata"].get("managedFields", [])}
        assert (CONTROLLER, "Apply") in managers, got["metadata"]["name"]
        for key, value in (obj["metadata"].get("labels") or {}).items():
            assert got["metadata"]["labels"][key] == value
        STATE.setdefault("versions", {})[(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])] = (
            got["metadata"]["resourceVersion"]
        )


def test_a_second_apply_changes_nothing(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str], api: k8s.ApiClient
) -> None:
    code, again = sync_json(capsys, "apply", str(TREES["lab-1"]), "--kubeconfig", str(kubeconfig), "--break-glass")
    assert code == 0
    assert set(actions(again).values()) == {"unchanged"}
    for obj in rendered_objects("lab-1"):
        key = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        assert live(api, obj)["metadata"]["resourceVersion"] == STATE["versions"][key], key
    code, preview = sync_json(capsys, "preview", str(TREES["lab-1"]), "--kubeconfig", str(kubeconfig))
    assert code == 0 and set(actions(preview).values()) == {"unchanged"}
    # the human output says so in its summary line
    code, out, _ = kasbah(capsys, "preview", str(TREES["lab-1"]), "-e", str(TINY), "--kubeconfig", str(kubeconfig))
    assert code == 0 and f"0 to create, 0 to change, {len(again['objects'])} unchanged" in out


def test_preview_predicts_lab_2_field_by_field(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str], api: k8s.ApiClient
) -> None:
    code, preview = sync_json(capsys, "preview", str(TREES["lab-2"]), "--kubeconfig", str(kubeconfig))
    assert code == 0
    changed = {f"{o['kind']} {o['name']}": o for o in preview["objects"] if o["action"] == "change"}
    assert changed, "lab-2 adds a pool to the cluster: the operators' policies change"
    for o in changed.values():
        assert o["changes"], o
        assert all(
            not c["path"].startswith(("metadata.managedFields", "metadata.resourceVersion", "status"))
            for c in o["changes"]
        )
    before = {(o["kind"], o["namespace"], o["name"]): o for o in preview["objects"]}
    code, applied = sync_json(capsys, "apply", str(TREES["lab-2"]), "--kubeconfig", str(kubeconfig), "--break-glass")
    assert code == 0
    assert actions(applied) == actions(preview)
    for obj in rendered_objects("lab-2"):
        key = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        got = live(api, obj)
        if before[key]["action"] == "unchanged":
            assert got["metadata"]["resourceVersion"] == STATE["versions"][key], key
        for change in before[key]["changes"]:
            # every predicted field now holds the predicted value
            node: Any = got
            for part in _path_parts(change["path"]):
                node = node.get(part) if isinstance(node, dict) else node[part] if isinstance(node, list) else None
            assert node == change["after"], (key, change["path"])


def _path_parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for m in re.finditer(r'\.?([A-Za-z0-9_-]+)|\["([^"]+)"\]|\[(\d+)\]', path):
        parts.append(m.group(1) or m.group(2) if m.group(3) is None else int(m.group(3)))
    return parts


def test_apply_never_deletes_what_it_does_not_own(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str], api: k8s.ApiClient
) -> None:
    core = k8s.CoreV1Api(api)
    core.patch_namespace("tenant-ministry", {"metadata": {"labels": {"team.example/owner": "ops"}}})
    core.create_namespaced_config_map(
        "tenant-ministry", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="someone-elses"), data={"a": "b"})
    )
    # back to lab-1: lab-2's extra objects stay (kasbah apply never deletes), others' fields stay
    code, _ = sync_json(capsys, "apply", str(TREES["lab-1"]), "--kubeconfig", str(kubeconfig), "--break-glass")
    assert code == 0
    assert core.read_namespace("tenant-ministry").metadata.labels["team.example/owner"] == "ops"
    assert core.read_namespaced_config_map("someone-elses", "tenant-ministry").data == {"a": "b"}
    lab2_only = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in rendered_objects("lab-2")
    } - {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in rendered_objects("lab-1")}
    for kind, ns, name in lab2_only:
        obj = next(
            o
            for o in rendered_objects("lab-2")
            if (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) == (kind, ns, name)
        )
        live(api, obj)  # still there


def test_a_conflict_is_reported_and_force_takes_over(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str], api: k8s.ApiClient
) -> None:
    quota = next(o for o in rendered_objects("lab-1") if o["kind"] == "ResourceQuota")
    ns, name = quota["metadata"]["namespace"], quota["metadata"]["name"]
    hard = dict(quota["spec"]["hard"])
    key = next(k for k in hard if "gpu" in k)
    theirs = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name, "namespace": ns}}
    theirs["spec"] = {"hard": {key: "99"}}
    dynamic: DynamicClient = STATE["dynamic"]
    quotas = dynamic.resources.get(api_version="v1", kind="ResourceQuota")
    dynamic.server_side_apply(quotas, body=theirs, field_manager="someone-else", force_conflicts=True)
    code, preview = sync_json(capsys, "preview", str(TREES["lab-1"]), "--kubeconfig", str(kubeconfig))
    assert code == 1
    (rejected,) = [o for o in preview["objects"] if o["action"] == "rejected"]
    assert (rejected["kind"], rejected["name"]) == ("ResourceQuota", name)
    assert "409" in rejected["message"] and "someone-else" in rejected["message"]
    assert "--force-conflicts" in rejected["message"]
    code, _ = sync_json(
        capsys, "apply", str(TREES["lab-1"]), "--kubeconfig", str(kubeconfig), "--break-glass", "--force-conflicts"
    )
    assert code == 0
    assert live(api, quota)["spec"]["hard"][key] == hard[key]


def test_the_server_rejection_is_shown_with_its_reason(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tree = tmp_path / "lab-1"
    shutil.copytree(TREES["lab-1"], tree)
    quotas = tree / "clusters" / "lab" / "quotas.yaml"
    docs = list(yaml.safe_load_all(quotas.read_text()))
    limits = next(d for d in docs if d["kind"] == "LimitRange")
    limits["spec"]["limits"][0]["default"] = {"memory": "lots"}
    quotas.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    code, report = sync_json(capsys, "preview", str(tree), "--kubeconfig", str(kubeconfig))
    assert code == 1
    (rejected,) = [o for o in report["objects"] if o["action"] == "rejected"]
    assert rejected["kind"] == "LimitRange"
    assert "quantities must match the regular expression" in rejected["message"]


def test_bad_credentials_and_contexts(kubeconfig: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"].append({"name": "stranger", "user": {"token": "not-a-token"}})
    config["contexts"].append(
        {"name": "stranger", "context": {"cluster": config["clusters"][0]["name"], "user": "stranger"}}
    )
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    code, _, err = kasbah(
        capsys, "preview", "lab-1", "-e", str(TINY), "--kubeconfig", str(path), "--context", "stranger"
    )
    assert code == 4 and "refused the kubeconfig's credentials (401 Unauthorized)" in err
    code, _, err = kasbah(capsys, "preview", "lab-1", "-e", str(TINY), "--kubeconfig", str(path), "--context", "nope")
    assert code == 2 and "context `nope`" in err


def test_an_older_server_refuses_newer_fields(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str], server_minor: int
) -> None:
    if server_minor >= ENDPORT_MINOR:
        pytest.skip(
            f"{NOT_APPLICABLE}the cluster serves Kubernetes 1.{server_minor}, which knows NetworkPolicy endPort"
        )
    # lab-1 as rendered (with endPort), now that its namespaces exist and the server checks everything
    code, report = sync_json(capsys, "preview", "lab-1", "--kubeconfig", str(kubeconfig))
    refused = {(o["namespace"], o["name"]) for o in report["objects"] if o["action"] == "rejected"}
    with_end_port = {
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for _, objs in cluster_files(cluster_view(LAB_1, LAB_1.clusters[0]))
        for o in objs
        if o["kind"] == "NetworkPolicy" and "endPort" in json.dumps(o)
    }
    assert code == 1 and refused == with_end_port and with_end_port
    assert all(
        "endPort: field not declared in schema" in o["message"] for o in report["objects"] if o["action"] == "rejected"
    )
    code, _, err = kasbah(capsys, "preview", "lab-1", "-e", str(TINY), "--kubeconfig", str(kubeconfig))
    assert "the tree targets Kubernetes 1.33" in " ".join(err.split())
