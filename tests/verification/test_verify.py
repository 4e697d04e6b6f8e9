"""`kasbah verify` on rendered trees: clean trees pass, tampered, stale or broken ones are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kasbah.cli import main
from kasbah.planning.model import Plan
from kasbah.rendering.phase import render_plans
from kasbah.verification.verify import expectations, verify_files
from tests.conftest import CAMPUS, TINY, planned


def _render(tmp_path: Path, phase: str = "lab-2") -> Path:
    out = tmp_path / "tree"
    assert main(["render", phase, "-e", str(TINY), "-o", str(out)]) == 0
    return out


def _append(path: Path, obj: dict[str, object]) -> None:
    path.write_text(path.read_text() + yaml.safe_dump(obj, explicit_start=True, sort_keys=False))


@pytest.mark.parametrize(("env_dir", "phases"), [(TINY, None), (CAMPUS, None)], ids=["tiny", "campus"])
def test_every_shipped_phase_renders_and_verifies(env_dir: Path, phases: None) -> None:
    plans = list(planned(env_dir))
    for i in range(len(plans)):
        rendered = render_plans(plans[: i + 1], env_dir.name)
        result = verify_files(rendered.files, plans[i], None)
        assert result.ok, "\n".join(map(str, result.findings[:20]))
        assert [c.name for c in result.clusters] == [c.name for c in plans[i].clusters]
        for c in result.clusters:
            assert c.objects > 0 and c.reachability is not None
            assert c.reachability.ok("standard") and c.reachability.ok("cilium")


def test_verify_a_rendered_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _render(tmp_path)
    assert main(["verify", str(out), "-e", str(TINY), "--matrix"]) == 0
    text = capsys.readouterr().out
    assert "proven" in text and "tenant-ministry" in text and "standard mode" in text


def test_an_allow_all_policy_added_to_the_tree_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _render(tmp_path)
    path = out / "clusters/lab/network-policies/tenant-ministry.yaml"
    _append(
        path,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": "debug-open-up",
                "namespace": "tenant-ministry",
                "annotations": {"kasbah.io/rule": "x"},
            },
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]},
        },
    )
    assert main(["verify", str(out), "-e", str(TINY)]) == 1
    captured = capsys.readouterr()
    assert "NOT SAFE TO APPLY" in captured.err
    assert "tenant-isolation" in captured.err and "tenant-ministry/debug-open-up" in captured.err
    assert "edited since rendering" in captured.out


def test_a_schema_error_names_file_object_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _render(tmp_path)
    path = out / "clusters/lab/quotas.yaml"
    path.write_text(path.read_text().replace("defaultRequest:", "defaultRequests:", 1))
    assert main(["verify", str(out), "-e", str(TINY)]) == 1
    err = capsys.readouterr().err
    assert "clusters/lab/quotas.yaml: LimitRange tenant-" in err
    assert "spec.limits[0].defaultRequests" in err and "[schema]" in err


def test_a_manifest_outside_the_kustomization_and_a_broken_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _render(tmp_path)
    (out / "clusters/lab/extra.yaml").write_text("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: stray}\n")
    (out / "clusters/lab/rbac.yaml").write_text("---\nkind: [unclosed\n")
    assert main(["verify", str(out), "-e", str(TINY)]) == 1
    err = capsys.readouterr().err
    assert "clusters/lab/extra.yaml: [tree] a manifest the kustomization does not list" in err
    assert "clusters/lab/rbac.yaml:3:1: [yaml] not valid YAML" in err


def test_a_stale_tree_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _render(tmp_path, "lab-2")
    env = tmp_path / "env"
    for p in TINY.rglob("*"):
        if p.is_file():
            (env / p.relative_to(TINY)).parent.mkdir(parents=True, exist_ok=True)
            (env / p.relative_to(TINY)).write_bytes(p.read_bytes())
    phase = env / "phases/lab-1.yaml"
    text = phase.read_text().replace("jurisdictions: [ma, eu], gpu_quota: 2", "jurisdictions: [ma, eu], gpu_quota: 1")
    assert text != phase.read_text()
    phase.write_text(text)
    assert main(["verify", str(out), "-e", str(env)]) == 1
    assert "rendered from a different plan" in capsys.readouterr().err


def test_bad_targets_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(tmp_path / "nowhere/"), "-e", str(TINY)]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["verify", str(tmp_path), "-e", str(TINY)]) == 2
    assert "not a rendered tree" in capsys.readouterr().err
    out = _render(tmp_path)
    assert main(["verify", str(out), "-e", str(CAMPUS)]) == 2
    assert "pass the environment it came from" in capsys.readouterr().err
    assert main(["verify", "phase-9", "-e", str(TINY)]) == 2


def test_expectations_come_from_the_model() -> None:
    plan = planned(TINY)[-1]
    exp = expectations(plan, "lab")
    # telecom resells, runs nothing here; water-agency came with a tenancy change on top of lab-2
    assert set(exp.tenants) == {"operator", "ministry", "water-agency"}
    assert {d.cidr for d in exp.tenants["ministry"]} == {e.cidr for e in plan.egress if e.jurisdiction == "ma"}
    assert exp.admin_networks == plan.admin_networks
    assert {m.name for m in exp.management} == {"kube-apiserver", "bmc-oob", "nodes"}


def test_tenancy_must_be_the_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _render(tmp_path)
    path = out / "clusters/lab/namespaces.yaml"
    text = path.read_text()
    line = "    kasbah.io/tenant: ministry\n"
    assert line in text
    path.write_text(text.replace(line, "", 1))
    _append(
        path,
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "scratch", "labels": {"kasbah.io/tenant": "operator"}},
        },
    )
    assert main(["verify", str(out), "-e", str(TINY)]) == 1
    err = capsys.readouterr().err
    assert "Namespace tenant-ministry: [zero-trust] label kasbah.io/tenant is None, the model says 'ministry'" in err
    assert "Namespace scratch: [zero-trust] a namespace the model does not have" in err
    assert "Namespace scratch: [zero-trust] claims tenant 'operator'" in err


def test_a_kustomization_may_only_list_resources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _render(tmp_path)
    path = out / "clusters/lab/kustomization.yaml"
    path.write_text(
        path.read_text()
        + "patches:\n- patch: |-\n    $patch: delete\n  target: {kind: CiliumClusterwideNetworkPolicy}\n"
    )
    assert main(["verify", str(out), "-e", str(TINY)]) == 1
    assert (
        "kustomization.yaml: [tree] sets patches: a kustomization here may only list resources"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("policyEnforcementMode: default", "policyEnforcementMode: never", "policyEnforcementMode is 'never'"),
        ("  enabled: true", "  enabled: false", "hostFirewall.enabled is False"),
        ("- nodes", "- cluster", "policyCIDRMatchMode is ['cluster']"),
        # settings that keep every policy in place and enforce none of them
        (
            "policyEnforcementMode: default",
            "policyEnforcementMode: default\npolicyAuditMode: true",
            "policyAuditMode is True; the proof assumes unset or false",
        ),
        (
            "policyEnforcementMode: default",
            "policyEnforcementMode: default\nenableK8sNetworkPolicy: false",
            "enableK8sNetworkPolicy is False; the proof assumes unset or true",
        ),
        (
            "policyEnforcementMode: default",
            "policyEnforcementMode: default\nenableCiliumClusterwideNetworkPolicy: false",
            "enableCiliumClusterwideNetworkPolicy is False",
        ),
        (
            "policyEnforcementMode: default",
            "policyEnforcementMode: default\nextraConfig:\n  policy-audit-mode: 'true'",
            "extraConfig sets `policy-audit-mode`",
        ),
        (
            "policyEnforcementMode: default",
            "policyEnforcementMode: default\nextraArgs: ['--enable-k8s-networkpolicy=false']",
            "extraArgs passes `--enable-k8s-networkpolicy`",
        ),
    ],
)
def test_the_cilium_settings_the_proof_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, message: str
) -> None:
    out = _render(tmp_path)
    path = out / "bootstrap/lab/platform/helm-values/cilium.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    assert main(["verify", str(out), "-e", str(TINY)]) == 1
    assert f"helm-values/cilium.yaml: [zero-trust] {message}" in capsys.readouterr().err


def test_a_renderer_that_loses_a_tenant_is_caught_by_the_plans_expectations(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verifier's expectations are Plan facts, not the renderer's view: a tenant the renderer drops is missing."""
    import dataclasses

    import kasbah.rendering.kubernetes as manifests
    from kasbah.planning.tenancy import cluster_view

    def lossy(plan, cluster):  # type: ignore[no-untyped-def]
        view = cluster_view(plan, cluster)
        return dataclasses.replace(
            view,
            tenants=view.tenants[:-1],
            namespaces=view.namespaces[:-1],
            quota={k: v for k, v in view.quota.items() if k[0] != view.tenants[-1].name},
        )

    monkeypatch.setattr(manifests, "cluster_view", lossy)
    plans = list(planned(TINY))
    rendered = render_plans(plans, TINY.name)
    result = verify_files(rendered.files, plans[-1], None)
    lost = plans[-1].clusters[0].tenants[-1]
    assert any(f"tenant `{lost}`'s namespace tenant-{lost} is missing" in str(f) for f in result.findings), (
        result.findings
    )


def _tiny_files(phase: str = "lab-2") -> tuple[dict[str, bytes], Plan]:
    plans = list(planned(TINY))
    plans = plans[: [p.phase for p in plans].index(phase) + 1]
    return dict(render_plans(plans, "tiny").files), plans[-1]


def _add(files: dict[str, bytes], path: str, obj: dict[str, object]) -> None:
    files[path] = files[path] + yaml.safe_dump(obj, explicit_start=True, sort_keys=False).encode()


def _owner_findings(files: dict[str, bytes], plan: Plan) -> list[str]:
    result = verify_files(files, plan, None)
    return [str(f) for f in result.findings if f.check == "owner"]


def test_every_object_says_its_owner_and_has_one() -> None:
    files, plan = _tiny_files()
    assert _owner_findings(files, plan) == []
    meta = {"labels": {"app.kubernetes.io/managed-by": "kasbah"}}
    # a platform namespace the bootstrap applies, copied into the GitOps tree: two appliers would fight
    _add(
        files,
        "clusters/lab/namespaces.yaml",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "kueue-system", **meta, "annotations": {"kasbah.io/owner": "gitops"}},
        },
    )
    # an object that says the other owner
    _add(
        files,
        "clusters/lab/quotas.yaml",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "x",
                "namespace": "tenant-ministry",
                **meta,
                "annotations": {"kasbah.io/owner": "bootstrap"},
            },
        },
    )
    # what a Helm release creates from its values
    _add(
        files,
        "clusters/lab/nvidia/nvidia.yaml",
        {
            "apiVersion": "nvidia.com/v1",
            "kind": "ClusterPolicy",
            "metadata": {"name": "cluster-policy", **meta, "annotations": {"kasbah.io/owner": "gitops"}},
            "spec": {},
        },
    )
    found = _owner_findings(files, plan)
    assert any(
        "clusters/lab/namespaces.yaml: Namespace kueue-system: [owner] also applied by `bootstrap`" in f
        or "bootstrap/lab/platform/namespaces.yaml: Namespace kueue-system: [owner] also applied by `gitops`" in f
        for f in found
    ), found
    assert any("ConfigMap tenant-ministry/x: [owner] annotation kasbah.io/owner is 'bootstrap'" in f for f in found)
    assert any("ClusterPolicy cluster-policy: [owner] the Helm release `gpu-operator` creates it" in f for f in found)


def test_a_sync_object_that_reads_another_tree_is_caught() -> None:
    files, plan = _tiny_files()
    path = "bootstrap/lab/platform/gitops.yaml"
    files[path] = files[path].replace(b"path: ./tiny/lab-2/clusters/lab", b"path: ./tiny/lab-1/clusters/lab")
    found = _owner_findings(files, plan)
    assert len(found) == 1 and "Kustomization flux-system/kasbah-lab" in found[0]
    assert "would sync another tree than the one verified" in found[0]
    files[path] = b"---\n"
    found = _owner_findings(files, plan)
    assert found and all("nothing would sync tiny/lab-2/clusters/lab" in f for f in found)


def test_the_gitops_controller_reaches_its_git_servers_and_nothing_else() -> None:
    _, plan = _tiny_files()
    e = expectations(plan, "lab")
    gitops = plan.gitops
    assert gitops is not None
    allowance = e.platform[gitops.namespace]
    assert allowance.management == frozenset({"kube-apiserver"})
    assert [(d.cidr, d.ports) for d in allowance.external] == [(c, (443,)) for c in gitops.sources]


# --------------------------------------------------------------------------- the tree as the appliers apply it

OPEN_UP = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "debug-open-up", "namespace": "tenant-ministry"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]},
}


def _verify(out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["verify", str(out), "-e", str(TINY)])
    return code, capsys.readouterr().err


def test_objects_inside_a_list_are_proven_as_the_appliers_apply_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kustomize and kubectl apply a List's items one by one; the proof must see them too."""
    out = _render(tmp_path)
    _append(
        out / "clusters/lab/network-policies/tenant-ministry.yaml",
        {"apiVersion": "v1", "kind": "List", "items": [OPEN_UP]},
    )
    code, err = _verify(out, capsys)
    assert code == 1
    assert "[applier] wraps 1 object(s), which the appliers apply one by one" in err
    assert "tenant-ministry/debug-open-up" in err and "tenant-isolation" in err


@pytest.mark.parametrize(
    ("annotation", "value"),
    [
        ("config.kubernetes.io/local-config", "true"),
        ("argocd.argoproj.io/hook", "PreSync"),
        ("helm.sh/hook", "pre-install"),
        ("kustomize.toolkit.fluxcd.io/reconcile", "disabled"),
    ],
)
def test_a_policy_an_applier_would_drop_is_not_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], annotation: str, value: str
) -> None:
    """A tenant's default-deny that kustomize drops (or Argo CD runs as a hook) isolates nothing in the cluster."""
    out = _render(tmp_path)
    path = out / "clusters/lab/network-policies/tenant-ministry.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    deny = next(d for d in docs if d["metadata"]["name"] == "default-deny")
    deny["metadata"]["annotations"][annotation] = value
    path.write_text(yaml.safe_dump_all(docs, explicit_start=True, sort_keys=False))
    code, err = _verify(out, capsys)
    assert code == 1
    assert f"NetworkPolicy tenant-ministry/default-deny: [applier] annotation {annotation}: {value}" in err


def test_the_last_of_two_documents_with_one_identity_is_what_is_proven(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second `default-deny` selecting no pod replaces the first in the cluster; a proof that unions both
    would still see every pod isolated."""
    out = _render(tmp_path)
    path = out / "clusters/lab/network-policies/tenant-ministry.yaml"
    hollow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "tenant-ministry"},
        "spec": {"podSelector": {"matchLabels": {"selects": "nothing"}}, "policyTypes": ["Ingress", "Egress"]},
    }
    _append(path, hollow)
    code, err = _verify(out, capsys)
    assert code == 1
    assert "NetworkPolicy tenant-ministry/default-deny: [applier] defined twice" in err
    assert "namespace tenant-ministry has no default-deny NetworkPolicy" in err


# --------------------------------------------------------------------------- the host firewall


def _slice(out: Path) -> tuple[Path, dict[str, object]]:
    path = out / "inventory/all/slice-0001.json"
    return path, json.loads(path.read_text())


@pytest.mark.parametrize("change", ["widen", "add", "drop", "networks"])
def test_a_host_firewall_table_that_is_not_the_plans_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    """What reaches a node from outside is the host firewall's table: an edited slice opens nodes the Plan does not know."""
    out = _render(tmp_path)
    path, doc = _slice(out)
    shared = doc["all"]["vars"]  # type: ignore[index]
    flows = shared["kasbah_host_flows"]
    ssh = next(f for f in flows if f["name"] == "ssh")
    if change == "widen":
        ssh["ports"] = ["1-65535"]
        expected = "host flow `ssh` differs from the Plan's in ports"
    elif change == "add":
        flows.append({**ssh, "name": "debug-kubelet", "ports": ["10250"]})
        expected = "host flow `debug-kubelet` is not the Plan's"
    elif change == "drop":
        flows.remove(ssh)
        expected = "host flow `ssh` of the Plan is missing"
    else:
        shared["kasbah_networks"]["admin"] = ["0.0.0.0/0"]
        expected = "kasbah_networks differs from the Plan's address plan"
    path.write_text(json.dumps(doc))
    assert main(["verify", str(out), "-e", str(TINY)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"inventory/all/slice-0001.json: [host-firewall] {expected}" in err


def test_a_namespace_every_cluster_has_is_in_the_proof(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`default` exists in every cluster although the tree holds no Namespace for it: without its
    default deny, a pod started there would be open; the proof counts it all the same."""
    out = _render(tmp_path)
    kustomization = out / "clusters/lab/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("- network-policies/default.yaml\n", ""))
    (out / "clusters/lab/network-policies/default.yaml").unlink()
    code, err = _verify(out, capsys)
    assert code == 1
    assert "namespace default has no default-deny NetworkPolicy for ingress and egress" in " ".join(err.split())


@pytest.mark.parametrize("hostile", ["alias-bomb", "deep", "fifo"])
def test_a_hostile_tree_is_refused_not_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], hostile: str
) -> None:
    """A tree is input too: a file that would expand without bound, nest without end or never end is a finding or
    a refusal, in seconds, never a hang or a traceback."""
    import os

    out = _render(tmp_path)
    path = out / "clusters/lab/network-policies/tenant-ministry.yaml"
    if hostile == "alias-bomb":
        lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
        path.write_text(path.read_text() + "---\n" + "\n".join(lines) + "\n")
    elif hostile == "deep":
        path.write_text(path.read_text() + "---\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    else:
        path.unlink()
        os.mkfifo(path)
    code = main(["verify", str(out), "-e", str(TINY)])
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err
    if hostile == "fifo":
        assert code == 1 and "lists `network-policies/tenant-ministry.yaml`, which does not exist" in err
    else:
        assert code == 1 and "tenant-ministry.yaml" in err and "[yaml]" in err
        if hostile == "alias-bomb":
            assert "expands to more than 200,000 values" in err
        else:  # libyaml itself stops at 1,000 levels, sometimes before kasbah's own bound is met
            assert "nested more than 32 deep" in err or "not valid YAML" in err
