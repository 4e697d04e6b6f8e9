"""What every manifest of the package shares: metadata, the owner annotation, the GitOps source, YAML.

Every object says its owner in the `kasbah.io/owner` annotation (`owned`); the verifier and the stacks
read it back (`owner_of`). `dump` writes multi-document YAML through libyaml, key order as built.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from kasbah.planning.model import GitOpsSource
from kasbah.planning.tenancy import ClusterView

Obj = dict[str, Any]

RULE = "kasbah.io/rule"
GPU = "nvidia.com/gpu"
# Argo CD applies lower waves first: namespaces, then their default-deny, then everything else.
WAVE = "argocd.argoproj.io/sync-wave"
# Who applies an object: `bootstrap` (the cluster stack, or `kasbah apply --bootstrap`) or `gitops`
OWNER = "kasbah.io/owner"


def metadata(name: str, namespace: str | None = None, rule: str | None = None, wave: int | None = None) -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {"app.kubernetes.io/managed-by": "kasbah"}
    notes: dict[str, str] = {}
    if rule:
        notes[RULE] = rule
    if wave is not None:
        notes[WAVE] = str(wave)
    if notes:
        meta["annotations"] = notes
    return meta


def owned(objs: Iterable[Obj], owner: str) -> list[Obj]:
    """The objects with their owner annotation set."""
    out = list(objs)
    for o in out:
        o["metadata"].setdefault("annotations", {})[OWNER] = owner
    return out


def owner_of(obj: Obj) -> str | None:
    meta = obj.get("metadata")
    notes = meta.get("annotations") if isinstance(meta, dict) else None
    value = notes.get(OWNER) if isinstance(notes, dict) else None
    return value if isinstance(value, str) else None


def gitops_of(view: ClusterView) -> GitOpsSource:
    if view.plan.gitops is None:
        raise ValueError(f"{view.plan.phase}: the Plan names no GitOps controller (plan it again)")
    return view.plan.gitops


class _Dumper(yaml.CSafeDumper):
    """libyaml, without anchors: a shared selector is written out in full wherever it is used."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(objs: Iterable[Obj]) -> bytes:
    """Multi-document YAML through libyaml; key order as built, so output is stable."""
    text = yaml.dump_all(objs, Dumper=_Dumper, sort_keys=False, explicit_start=True, width=1000)
    return text.encode()


def kustomization(resources: list[str]) -> bytes:
    return dump([{"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}])
