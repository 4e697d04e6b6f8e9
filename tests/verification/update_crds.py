"""Refresh the vendored CRD schemas in modules/kasbah/verification/crds/ from upstream CRD YAML.

Each pinned upstream file (see UPSTREAM) is either downloaded from GitHub (needs internet) or read
from a directory of already fetched copies (--from-dir, file name = the last part of the path):

    .venv/bin/python tests/verification/update_crds.py                 # download the pinned files
    .venv/bin/python tests/verification/update_crds.py --from-dir DIR  # offline, from local copies

Only what validation needs is kept: group, kind, scope and every served version with its
openAPIV3Schema, CEL rules (x-kubernetes-validations) included: `kasbah verify` evaluates them.
Stripped on the way: description, default, example, title, externalDocs, and the status schema of
versions with a status subresource (the API server ignores status written through the main
resource, so rendered manifests never need it). The release of each project whose Helm chart is
pinned in the environment (Kueue, Cilium, the NVIDIA operators) is read from that pin: moving a
chart is one edit to site.yaml, then this script, then a review of the JSON diff and SOURCES.md.
`--list` prints what would be fetched. It needs GitHub; the machine these were last built on had
none (see SOURCES.md for what that left behind).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "modules" / "kasbah" / "verification" / "crds"

# Keys that carry documentation or server-side behaviour kasbah does not evaluate.
DROPPED_KEYS = frozenset({"description", "default", "example", "title", "externalDocs"})
PERMISSIVE_STATUS: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


@dataclass(frozen=True)
class Upstream:
    """One upstream YAML file and the CRDs kasbah takes from it."""

    repository: str
    ref: str  # the fallback pin, for projects whose chart version is not their release tag
    path: str
    crds: tuple[str, ...]
    release_asset: bool = False
    # the chart in the environment's site.platform.charts whose pinned version names the release
    # (tag `v<version>`): the environment is the one place that says which release runs
    chart: str | None = None

    def pinned(self, charts: dict[str, str]) -> str:
        if self.chart is not None and self.chart in charts:
            return "v" + charts[self.chart].removeprefix("v")
        return self.ref

    def url(self, charts: dict[str, str]) -> str:
        ref = self.pinned(charts)
        if self.release_asset:
            return f"https://github.com/{self.repository}/releases/download/{ref}/{self.path}"
        return f"https://raw.githubusercontent.com/{self.repository}/{ref}/{self.path}"


UPSTREAM: tuple[Upstream, ...] = (
    Upstream(
        "kubernetes-sigs/kueue",
        "v0.12.2",
        "manifests.yaml",
        (
            "resourceflavors.kueue.x-k8s.io",
            "clusterqueues.kueue.x-k8s.io",
            "localqueues.kueue.x-k8s.io",
            "cohorts.kueue.x-k8s.io",
            "topologies.kueue.x-k8s.io",
        ),
        release_asset=True,
        chart="kueue",
    ),
    Upstream(
        "cilium/cilium",
        "f2b0a66e40ef20b787fd59e08095bcc540cb087b",
        "pkg/k8s/apis/cilium.io/client/crds/v2/ciliumnetworkpolicies.yaml",
        ("ciliumnetworkpolicies.cilium.io",),
        chart="cilium",
    ),
    Upstream(
        "cilium/cilium",
        "65fc47d2ba7e249f446a0cfa87f694dd56dc006d",
        "pkg/k8s/apis/cilium.io/client/crds/v2/ciliumclusterwidenetworkpolicies.yaml",
        ("ciliumclusterwidenetworkpolicies.cilium.io",),
        chart="cilium",
    ),
    Upstream(
        "NVIDIA/gpu-operator",
        "v25.3.0",
        "deployments/gpu-operator/crds/nvidia.com_clusterpolicies.yaml",
        ("clusterpolicies.nvidia.com",),
        chart="gpu-operator",
    ),
    Upstream(
        "NVIDIA/gpu-operator",
        "v25.3.0",
        "deployments/gpu-operator/crds/nvidia.com_nvidiadrivers.yaml",
        ("nvidiadrivers.nvidia.com",),
        chart="gpu-operator",
    ),
    Upstream(
        "Mellanox/network-operator",
        "5d9186b6fb2cc853c3f0205d2cd23a8b32561207",
        "deployment/network-operator/crds/mellanox.com_nicclusterpolicies.yaml",
        ("nicclusterpolicies.mellanox.com",),
        chart="network-operator",
    ),
    Upstream(
        "NVIDIA/k8s-dra-driver-gpu",
        "5a0112cb4b3a47c9a4d8812ee3c361bae8cfee49",
        "deployments/helm/nvidia-dra-driver-gpu/crds/resource.nvidia.com_computedomains.yaml",
        ("computedomains.resource.nvidia.com",),
        chart="nvidia-dra-driver-gpu",
    ),
    Upstream(
        "argoproj/argo-cd",
        "v3.2.0-rc2",
        "manifests/crds/application-crd.yaml",
        ("applications.argoproj.io",),
    ),
    Upstream(
        "fluxcd/source-controller",
        "v1.7.4",
        "config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml",
        ("gitrepositories.source.toolkit.fluxcd.io",),
    ),
    Upstream(
        "fluxcd/kustomize-controller",
        "v1.7.3",
        "config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml",
        ("kustomizations.kustomize.toolkit.fluxcd.io",),
    ),
)


def strip(node: Any) -> Any:
    """The schema without documentation and unevaluated keys; property names are kept as they are."""
    if isinstance(node, list):
        return [strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: strip(sub) for name, sub in value.items()}
        else:
            out[key] = strip(value)
    return out


def compact_crd(crd: dict[str, Any]) -> dict[str, Any]:
    spec = crd["spec"]
    versions = []
    for version in spec["versions"]:
        if not version.get("served", False):
            continue
        schema = strip(version["schema"]["openAPIV3Schema"])
        if "status" in version.get("subresources", {}) and "status" in schema.get("properties", {}):
            schema["properties"]["status"] = dict(PERMISSIVE_STATUS)
        entry: dict[str, Any] = {"name": version["name"], "storage": bool(version.get("storage", False))}
        if version.get("deprecated"):
            entry["deprecated"] = True
        entry["schema"] = schema
        versions.append(entry)
    return {"group": spec["group"], "kind": spec["names"]["kind"], "scope": spec["scope"], "versions": versions}


def pinned_charts(environment: Path) -> dict[str, str]:
    """Chart name -> pinned version, from the environment's site.platform.charts."""
    site = yaml.safe_load((environment / "site.yaml").read_text(encoding="utf-8"))
    charts = (site.get("site", {}).get("platform", {}) or {}).get("charts", {}) or {}
    return {name: str(c["version"]) for name, c in charts.items() if isinstance(c, dict) and "version" in c}


def read_source(upstream: Upstream, from_dir: Path | None, charts: dict[str, str]) -> str:
    if from_dir is not None:
        return (from_dir / Path(upstream.path).name).read_text(encoding="utf-8")
    with urllib.request.urlopen(upstream.url(charts), timeout=60) as response:
        body: bytes = response.read()
    return body.decode("utf-8")


def crds_in(text: str) -> Iterator[dict[str, Any]]:
    for document in yaml.safe_load_all(text):
        if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
            yield document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-dir", type=Path, help="read upstream files from this directory instead of GitHub")
    parser.add_argument("--out", type=Path, default=CRD_DIR, help="where the JSON files go")
    parser.add_argument(
        "--environment",
        type=Path,
        default=ROOT / "environments" / "campus",
        help="whose site.platform.charts pin the releases (default: environments/campus)",
    )
    parser.add_argument("--list", action="store_true", help="print each upstream file's pinned URL and stop")
    args = parser.parse_args()
    charts = pinned_charts(args.environment)
    if args.list:
        for upstream in UPSTREAM:
            print(f"{upstream.url(charts)}  ->  {', '.join(upstream.crds)}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    for upstream in UPSTREAM:
        wanted = set(upstream.crds)
        try:
            text = read_source(upstream, args.from_dir, charts)
        except OSError as error:
            missing.extend(f"{name} ({error})" for name in sorted(wanted))
            continue
        for crd in crds_in(text):
            name = crd["metadata"]["name"]
            if name not in wanted:
                continue
            wanted.discard(name)
            target = args.out / f"{name}.json"
            target.write_text(json.dumps(compact_crd(crd), indent=1, sort_keys=True) + "\n", encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        missing.extend(f"{name} (from {upstream.url(charts)})" for name in sorted(wanted))
    if missing:
        print("not found upstream: " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
