"""The residency proof: every endpoint of a rendered tree and of the node roles is declared and lies in the
jurisdictions of the tenants it serves; the air-gap bundle lists what the mirrors must hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from kasbah.planning.mirrors import PACKAGES, mirrored, package_prefixes
from kasbah.planning.model import Plan
from kasbah.rendering.endpoints import MIRRORED, bundle, resolve, role_defaults, scan
from kasbah.rendering.phase import render_plans
from kasbah.resources import COLLECTION, roles, shipped
from kasbah.verification.residency import BUNDLE, check_residency
from tests.conftest import CAMPUS, TINY, planned

DEFAULTS = role_defaults(roles())


def _tree(env: Path, index: int) -> tuple[Plan, dict[str, bytes]]:
    plans = planned(env)
    return plans[index], dict(render_plans(list(plans[: index + 1]), env.name).files)


def test_every_shipped_phase_fetches_only_from_declared_endpoints_in_its_tenants_jurisdictions() -> None:
    for env in (TINY, CAMPUS):
        plans = planned(env)
        for i, plan in enumerate(plans):
            files = dict(render_plans(list(plans[: i + 1]), env.name).files)
            report = check_residency(files, plan, DEFAULTS)
            assert report.findings == [], (env.name, plan.phase, report.findings[:3])
            vias = report.summary()
            # the charts and registries of the tree, the roles' repositories, the issuers, the Git server
            assert vias.get("mirror", 0) >= 4 and vias.get("mirrored", 0) >= 8, vias
            assert vias.get("issuer", 0) >= 2 and vias.get("campus", 0) >= 1, vias


def test_every_upstream_of_the_roles_and_the_tree_is_fetched_from_a_mirror() -> None:
    plan, files = _tree(CAMPUS, 0)
    report = check_residency(files, plan, DEFAULTS)
    by_value = {r.value: r for r in report.rows}
    pause = by_value["registry.k8s.io/pause:3.10"]  # containerd's sandbox image, a role default
    assert (pause.via, pause.fetched_from) == (
        MIRRORED,
        "registry.kasbah-campus.kasbah.internal/registry.k8s.io/pause:3.10",
    )
    kubelet = next(r for r in report.rows if r.value.startswith("https://pkgs.k8s.io/"))
    assert kubelet.fetched_from.startswith("https://mirror.kasbah-campus.kasbah.internal/pkgs.k8s.io/")
    # nothing of the tree names an upstream chart repository: the releases point at the charts mirror
    releases = [r for r in report.rows if "releases.yaml" in r.where]
    assert releases and all(r.via == "mirror" for r in releases), releases
    # comments are no endpoints (containerd's defaults show a Harbor URL as an example)
    assert not [r for r in report.rows if "harbor.site" in r.value or "registry.site.internal" in r.value]


def test_an_undeclared_url_in_the_tree_is_located() -> None:
    plan, files = _tree(TINY, 0)
    path = "clusters/lab/nvidia/nvidia.yaml"
    files[path] = files[path].replace(b"config: '", b"url: https://telemetry.vendor.example/ingest\n    config: '", 1)
    findings = check_residency(files, plan, DEFAULTS).findings
    assert [w for w, m in findings if "https://telemetry.vendor.example/ingest is served by no declared" in m] == [
        f"{path}: spec.rdmaSharedDevicePlugin.url"
    ], findings


def test_an_image_from_a_registry_no_mirror_lists_is_caught() -> None:
    plan, files = _tree(TINY, 0)
    path = "clusters/lab/nvidia/nvidia.yaml"
    files[path] = files[path].replace(b"repository: nvcr.io/nvidia/mellanox", b"repository: registry.gitlab.com/x", 1)
    findings = check_residency(files, plan, DEFAULTS).findings
    assert any(
        "registry.gitlab.com/x/k8s-rdma-shared-dev-plugin" in m and "served by no declared" in m for _, m in findings
    ), findings


def test_a_role_default_from_an_unmirrored_repository_is_caught() -> None:
    plan, files = _tree(TINY, 0)
    defaults = {
        **DEFAULTS,
        "extra/defaults/main.yml": b"---\n# https://not.an.endpoint.example/in/a/comment\n"
        b"extra_key_url: https://downloads.vendor.example/key.asc\n",
    }
    findings = check_residency(files, plan, defaults).findings
    where = [w for w, m in findings if "served by no declared" in m]
    assert where == ["roles/extra/defaults/main.yml: extra_key_url"], findings


def test_a_mirror_outside_a_tenants_jurisdictions_is_caught_for_that_tenant() -> None:
    plan, files = _tree(TINY, 0)
    moved = replace(
        plan, mirrors=tuple(replace(m, jurisdiction="eu") if m.kind == "charts" else m for m in plan.mirrors)
    )
    findings = check_residency(files, moved, DEFAULTS).findings
    charts = [(w, m) for w, m in findings if "(mirror charts) lies in eu" in m]
    assert charts and all("outside the jurisdictions of ministry (ma)" in m for _, m in charts), findings
    assert {w.split(":")[0] for w, _ in charts} == {"bootstrap/lab/platform/releases.yaml"}


def test_etcd_snapshots_outside_a_tenants_jurisdictions_are_caught() -> None:
    plan, files = _tree(TINY, 0)
    assert plan.etcd_backup is not None
    moved = replace(plan, etcd_backup=replace(plan.etcd_backup, jurisdiction="eu"))
    findings = check_residency(files, moved, DEFAULTS).findings
    assert ("cluster lab: etcd snapshots", "go to `lab-vault` in eu, outside the jurisdictions of ministry") in [
        (w, m) for w, m in findings
    ]


def test_the_bundle_lists_every_chart_image_and_repository_and_an_edit_is_caught() -> None:
    plan, files = _tree(CAMPUS, 0)
    manifest = json.loads(files[BUNDLE])
    assert manifest == bundle(plan, files, DEFAULTS)
    upstreams = {c["upstream"] for c in manifest["charts"]}
    assert {r.origin for r in plan.releases} == upstreams
    assert all(c["mirror"].split("://", 1)[1].startswith(("charts.", "registry.")) for c in manifest["charts"])
    refs = {i["reference"] for i in manifest["images"]}
    assert "registry.k8s.io/pause:3.10" in refs
    assert any(r.startswith("nvcr.io/nvidia/mellanox/") for r in refs)
    mirrored_repos = {r["upstream"] for r in manifest["package_repositories"]}
    every = {e.value for e in scan({}, DEFAULTS) if (res := resolve(e, plan)) is not None and res.via == MIRRORED}
    assert every - refs == mirrored_repos
    files[BUNDLE] = files[BUNDLE].replace(b'"version": "1.18.3"', b'"version": "1.18.2"')
    assert [m for w, m in check_residency(files, plan, DEFAULTS).findings if w == BUNDLE] == [
        "does not list what the tree refers to (edited, or stale); render the phase again"
    ]
    del files[BUNDLE]
    assert any(w == BUNDLE and "missing" in m for w, m in check_residency(files, plan, DEFAULTS).findings)


def test_the_roles_rewrite_repository_urls_as_the_planner_does(tmp_path: Path) -> None:
    """common's repository tasks rewrite every repository and key URL with the collection's `site_mirror` filter;
    run through Ansible over the real role defaults, it gives the planner's URL for each."""
    plan = planned(TINY)[0]
    prefixes = package_prefixes(plan.mirrors)
    urls = sorted(
        {
            e.value
            for e in scan({}, DEFAULTS)
            if not e.image and "{{" not in e.value and e.value.startswith(("http://", "https://"))
        }
    )
    urls += ["https://pkgs.k8s.io/core:/stable:/v1.33/deb/", "https://elsewhere.example/x"]
    play = tmp_path / "play.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": {"kasbah_package_mirrors": prefixes, "urls": urls},
                    "tasks": [
                        {
                            "ansible.builtin.copy": {
                                "dest": str(tmp_path / "out.json"),
                                "content": "{{ urls | map('kasbah.campus.site_mirror', kasbah_package_mirrors) "
                                "| list | to_json }}",
                                "mode": "0644",
                            }
                        }
                    ],
                }
            ]
        )
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)],
        capture_output=True, text=True,
        env={"ANSIBLE_COLLECTIONS_PATH": str(shipped("playbooks") / COLLECTION.parents[2]), "PATH": os.environ["PATH"],
             "HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
             "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads((tmp_path / "out.json").read_text())
    assert got == [mirrored(u, plan.mirrors, PACKAGES) for u in urls]
    assert got[-1] == "https://elsewhere.example/x" and got[-2].startswith("https://mirror.kasbah-lab.")
    assert sum(g != u for g, u in zip(got, urls, strict=True)) >= 5


def test_secrets_not_written_through_the_sites_kms_are_caught() -> None:
    plan, files = _tree(TINY, 0)
    path = "bootstrap/lab/encryption.yaml"
    assert plan.kms is not None and check_residency(files, plan, DEFAULTS).findings == []
    files[path] = files[path].replace(b"  - kms:", b"  - aescbc:", 1)  # another provider first
    assert (path, "Secrets are not written through the site's KMS v2 provider `lab-hsm` first") in check_residency(
        files, plan, DEFAULTS
    ).findings
    del files[path]
    assert (path, "missing: the cluster's Secrets would be stored unencrypted") in check_residency(
        files, plan, DEFAULTS
    ).findings
    moved = replace(plan, kms=replace(plan.kms, jurisdiction="eu"))
    assert ("cluster lab: Secrets' keys", "held in eu (lab-hsm), outside the jurisdictions of ministry") in (
        check_residency(dict(_tree(TINY, 0)[1]), moved, DEFAULTS).findings
    )


def test_every_tenant_is_backed_up_to_a_target_in_its_jurisdictions_as_rendered() -> None:
    for env in (TINY, CAMPUS):
        plan, files = _tree(env, 0)
        allowed = {t.name: t.jurisdictions for t in plan.tenants}
        # every tenant with namespaces (a reseller without workloads has nothing to back up)
        assert {b.tenant for b in plan.workload_backups} == {t for c in plan.clusters for t in c.tenants}
        for b in plan.workload_backups:
            assert b.jurisdiction in allowed[b.tenant]
        for c in plan.clusters:
            rows = yaml.safe_load(files[f"backups/{c.name}.yaml"])["schedules"]
            assert {r["tenant"] for r in rows} == set(c.tenants)
            assert all(r["namespaces"] == [f"tenant-{r['tenant']}"] for r in rows)


def test_a_backup_schedule_that_is_not_the_plans_is_caught() -> None:
    plan, files = _tree(TINY, 0)
    path = "backups/lab.yaml"
    files[path] = files[path].replace(b"/srv/backups/workloads/lab/ministry", b"/mnt/elsewhere/ministry")
    assert (
        path,
        "ministry's backups are not scheduled to /srv/backups/workloads/lab/ministry (its target `lab-vault`)",
    ) in check_residency(files, plan, DEFAULTS).findings
    del files[path]
    assert len([w for w, _ in check_residency(files, plan, DEFAULTS).findings if w == path]) == 2


def test_a_volume_policy_granting_a_class_outside_a_tenants_jurisdictions_is_caught() -> None:
    plan, files = _tree(CAMPUS, 0)
    storage, admission = "clusters/cloud-1/storage.yaml", "clusters/cloud-1/admission.yaml"
    assert check_residency(files, plan, DEFAULTS).findings == []
    # the storage-2 pool's class relabelled as the EU's: the policy still grants it to ma-only tenants
    files[storage] = files[storage].replace(
        b"kasbah.io/jurisdiction: ma\n    kasbah.io/pool: storage-2",
        b"kasbah.io/jurisdiction: eu\n    kasbah.io/pool: storage-2",
    )
    findings = [m for w, m in check_residency(files, plan, DEFAULTS).findings if w == admission]
    assert (
        "kasbah-tenant-volumes lets ministry-digital use storage class `storage-2` in eu, outside its "
        "jurisdictions (ma)" in findings
    )
    assert not [m for m in findings if "atlas-bank" in m]  # the bank's data may be in the EU
    files[admission] = files[admission].replace(b"kasbah-tenant-volumes", b"someone-elses-policy")
    assert [m for w, m in check_residency(files, plan, DEFAULTS).findings if w == admission] == [
        "no readable `kasbah-tenant-volumes` policy: tenants' volumes could use any storage class"
    ]
