"""A rendered tree read as the appliers would apply it, and `Finding`, one reason the tree must not be applied.

Each owner's objects come from the files its kustomization lists, as kustomize, Argo CD, Flux and
`kasbah apply` would put them in the cluster; what an applier would change or drop is a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kasbah.config.files import read_regular
from kasbah.config.reading import bounded_yaml
from kasbah.planning.platform import GITOPS
from kasbah.rendering.kubernetes import PLATFORM_DIR


@dataclass(frozen=True)
class Finding:
    """One reason the tree must not be applied."""

    check: str  # tree | yaml | schema | owner | zero-trust | provisioning
    where: str  # file (and object) or cluster
    message: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.check}] {self.message}"


MAX_TREE_FILE = 256 * 1024 * 1024  # the largest rendered file of the 500 MW campus is a few MB


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file of a rendered tree (links followed; FIFOs and devices are no part of a tree)."""
    return {
        p.relative_to(root).as_posix(): read_regular(p, MAX_TREE_FILE, "rendered file")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class _Loader(yaml.CSafeLoader):
    """libyaml; Kubernetes YAML has no tags, anchors are allowed but resolved like kubectl does."""


def documents(path: str, data: bytes, findings: list[Finding]) -> list[dict[str, Any]]:
    # bounded before it is built: an alias bomb or a 10,000-deep nesting in a tree would hang the proof
    unbounded = bounded_yaml(data, strict=False)
    if unbounded is not None:
        problem, fix, mark = unbounded
        findings.append(Finding("yaml", f"{path}:{mark.line + 1}:{mark.column + 1}", f"{problem}; {fix}"))
        return []
    try:
        docs = [d for d in yaml.load_all(data, Loader=_Loader) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        findings.append(Finding("yaml", where, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return []
    out = []
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            findings.append(
                Finding("yaml", f"{path} document {i + 1}", f"expected a Kubernetes object, got {type(d).__name__}")
            )
        else:
            out.append(d)
    return out


def object_name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    ns = meta.get("namespace")
    name = meta.get("name", "?")
    return f"{obj.get('kind', '?')} {ns}/{name}" if ns else f"{obj.get('kind', '?')} {name}"


def cluster_manifests(
    files: Mapping[str, bytes], cluster: str, findings: list[Finding], owner: str = GITOPS
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The objects one owner applies to the cluster, read from the files its kustomization lists.

    `gitops`: the cluster's GitOps tree (clusters/<cluster>/); `bootstrap`: what the cluster stack
    applies (bootstrap/<cluster>/platform/).
    """
    base = tree_base(cluster, owner)
    kpath = f"{base}/kustomization.yaml"
    if kpath not in files:
        who = "Argo CD or Flux has nothing to sync" if owner == GITOPS else "the cluster stack has nothing to apply"
        findings.append(Finding("tree", base, f"no kustomization.yaml: {who}; render the phase again"))
        return
    docs = documents(kpath, files[kpath], findings)
    extra = sorted(set(docs[0]) - KUSTOMIZATION_KEYS) if docs else []
    if extra:
        # patches, namespace overrides, generators... would change objects after this proof
        findings.append(
            Finding(
                "tree",
                kpath,
                f"sets {', '.join(extra)}: a kustomization here may only list resources, or what is applied is not what was verified",
            )
        )
    resources = docs[0].get("resources", []) if docs else []
    if not isinstance(resources, list):
        findings.append(Finding("tree", kpath, "`resources` is not a list"))
        return
    listed = set()
    read: list[tuple[str, dict[str, Any]]] = []
    for rel in resources:
        path = f"{base}/{rel}"
        listed.add(path)
        if path not in files:
            findings.append(Finding("tree", kpath, f"lists `{rel}`, which does not exist"))
            continue
        read.extend((path, obj) for obj in documents(path, files[path], findings))
    yield from as_applied(read, findings)
    for path in files:
        if path.startswith(base + "/") and path.endswith(".yaml") and path not in listed:
            top = path[len(base) + 1 :].split("/", 1)[0]
            if top not in NOT_APPLIED:
                findings.append(
                    Finding("tree", path, "a manifest the kustomization does not list: it would never be applied")
                )


KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources"}

# Annotations with which an applier leaves an object out, applies it only once, or runs it as a
# hook instead of keeping it: the object in the file is then not the object in the cluster.
# kustomize drops local-config objects from its output; Argo CD runs hooks (its own and Helm's) at
# a sync phase and may delete them after, and skips `hook: Skip`; Flux leaves `reconcile: disabled`
# objects alone and creates `ssa: IfNotPresent` ones once, never updating them.
APPLIER_ANNOTATIONS: dict[str, tuple[Callable[[str], bool], str]] = {
    "config.kubernetes.io/local-config": (lambda v: v != "false", "kustomize leaves it out of what it builds"),
    "argocd.argoproj.io/hook": (lambda v: True, "Argo CD runs it as a hook (or skips it), not as a kept object"),
    "helm.sh/hook": (lambda v: True, "Argo CD runs it as a Helm hook, not as a kept object"),
    "argocd.argoproj.io/hook-delete-policy": (lambda v: True, "Argo CD deletes it after the sync"),
    "kustomize.toolkit.fluxcd.io/reconcile": (lambda v: v == "disabled", "Flux does not apply or update it"),
    "kustomize.toolkit.fluxcd.io/ssa": (
        lambda v: v in ("IfNotPresent", "Ignore"),
        "Flux creates it once (or never) and does not update it",
    ),
}


def as_applied(objs: list[tuple[str, dict[str, Any]]], findings: list[Finding]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The objects as kustomize, Argo CD, Flux and `kasbah apply` would put them in the cluster.

    A `List` is expanded (kustomize and kubectl apply its items, one by one); an object an applier
    would drop, skip or run as a hook is left out; of two documents with one identity the last is
    kept (kustomize refuses the tree, an applier by identity keeps the last). Each difference is
    also a finding: the renderer never writes any of them, so the tree was edited.
    """
    expanded: list[tuple[str, dict[str, Any]]] = []
    for path, obj in objs:
        kind = str(obj.get("kind", ""))
        if kind == "List" or (kind.endswith("List") and "items" in obj):
            items = obj.get("items")
            items = items if isinstance(items, list) else []
            findings.append(
                Finding(
                    "applier",
                    f"{path}: {kind}",
                    f"wraps {len(items)} object(s), which the appliers apply one by one; write each as its own document",
                )
            )
            for item in items:
                if isinstance(item, dict):
                    expanded.append((path, item))
                else:
                    findings.append(
                        Finding("yaml", f"{path}: {kind}", f"an item is {type(item).__name__}, not an object")
                    )
            continue
        expanded.append((path, obj))
    last: dict[tuple[str, str, str, str], int] = {}
    kept: list[tuple[str, dict[str, Any]] | None] = []
    for path, obj in expanded:
        meta = obj.get("metadata")
        notes = meta.get("annotations") if isinstance(meta, dict) else None
        notes = notes if isinstance(notes, dict) else {}
        skip = [k for k in sorted(notes) if k in APPLIER_ANNOTATIONS and APPLIER_ANNOTATIONS[k][0](str(notes[k]))]
        for key in skip:
            findings.append(
                Finding(
                    "applier",
                    f"{path}: {object_name(obj)}",
                    f"annotation {key}: {notes[key]}: {APPLIER_ANNOTATIONS[key][1]}; the proof leaves it out "
                    "(remove the annotation)",
                )
            )
        if skip:
            continue
        key = identity(obj)
        if key in last:
            earlier = kept[last[key]]
            assert earlier is not None
            findings.append(
                Finding(
                    "applier",
                    f"{path}: {object_name(obj)}",
                    f"defined twice (also in {earlier[0]}): kustomize refuses the tree and an applier keeps only "
                    "the last; the proof reads the last",
                )
            )
            kept[last[key]] = None
        last[key] = len(kept)
        kept.append((path, obj))
    yield from (k for k in kept if k is not None)


def tree_base(cluster: str, owner: str) -> str:
    """Where the objects `owner` applies to the cluster are in a rendered tree."""
    return f"clusters/{cluster}" if owner == GITOPS else f"bootstrap/{cluster}/{PLATFORM_DIR}"


# Files beside the manifests that are not applied as objects: Helm values, the release list, docs
NOT_APPLIED = ("helm-values", "releases.yaml", "node-pools.yaml", "kustomization.yaml")


def identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """What the API server knows an object by: API group, kind, namespace, name."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    api = str(obj.get("apiVersion", ""))
    return (
        api.split("/")[0] if "/" in api else "",
        str(obj.get("kind")),
        str(meta.get("namespace") or ""),
        str(meta.get("name")),
    )
