"""The tree against the Plan: each object has one owner, the sync object is the Plan's, the namespaces'
tenancy labels are the model's, and the Cilium settings the zero-trust proof relies on are pinned."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kasbah.planning.labels import TENANT as TENANT_LABEL
from kasbah.planning.model import Cluster, ClusterNamespace, Plan
from kasbah.planning.platform import BOOTSTRAP
from kasbah.planning.tenancy import cluster_view
from kasbah.rendering.kubernetes import OWNER, owner_of, sync_objects
from kasbah.verification.manifests import Finding, documents, identity, object_name, tree_base


def check_owners(
    plan: Plan,
    cluster: str,
    parts: Mapping[str, list[tuple[str, dict[str, Any]]]],
    findings: list[Finding],
) -> None:
    """Every object has exactly one owner: the one whose part it is in, never two, never a release's.

    An object in both parts would be applied by the cluster stack and by the GitOps controller
    under two field managers (a conflict, or silent flapping); one the GitOps tree holds that a
    Helm chart creates would be fought over by the release and the controller.
    """
    seen: dict[tuple[str, str, str, str], tuple[str, str]] = {}
    for owner, objs in parts.items():
        for path, obj in objs:
            key = identity(obj)
            said = owner_of(obj)
            if said != owner:
                findings.append(
                    Finding(
                        "owner",
                        f"{path}: {object_name(obj)}",
                        f"annotation {OWNER} is {said!r} in the tree `{owner}` applies; render the phase again "
                        "(an object is moved between owners in planning.platform, not by editing the tree)",
                    )
                )
            if key in seen and seen[key][0] != owner:
                findings.append(
                    Finding(
                        "owner",
                        f"{path}: {object_name(obj)}",
                        f"also applied by `{seen[key][0]}` ({seen[key][1]}): two owners would fight over it",
                    )
                )
            seen.setdefault(key, (owner, path))
    for r in (r for r in plan.releases if r.cluster == cluster):
        for api, kind, name in r.creates:
            key = (api.split("/")[0] if "/" in api else "", kind, "", name)
            if key in seen:
                findings.append(
                    Finding(
                        "owner",
                        f"{seen[key][1]}: {kind} {name}",
                        f"the Helm release `{r.name}` creates it from its values; set it there, not in the tree",
                    )
                )


def check_sync_object(
    plan: Plan, cluster: Cluster, objs: list[tuple[str, dict[str, Any]]], findings: list[Finding]
) -> None:
    """The controller's sync object is the Plan's: its repository, branch and this cluster's path."""
    expected = sync_objects(cluster_view(plan, cluster))
    have = {identity(o): (p, o) for p, o in objs}
    base = tree_base(cluster.name, BOOTSTRAP)
    for want in expected:
        key = identity(want)
        if key not in have:
            findings.append(
                Finding(
                    "owner", f"{base}/gitops.yaml", f"no {object_name(want)}: nothing would sync {cluster.gitops_path}"
                )
            )
            continue
        path, got = have[key]
        if got.get("spec") != want["spec"]:
            findings.append(
                Finding(
                    "owner",
                    f"{path}: {object_name(got)}",
                    f"its spec differs from the Plan's (repository {plan.gitops.repository if plan.gitops else '?'}, "
                    f"branch {plan.gitops.branch if plan.gitops else '?'}, path {cluster.gitops_path}): "
                    "the cluster would sync another tree than the one verified; render the phase again",
                )
            )


# Cilium settings the proof relies on: policies enforced, host firewall on, ipBlock matching node IPs.
CILIUM_VALUES: tuple[tuple[tuple[str, ...], Callable[[object], bool], str], ...] = (
    (("policyEnforcementMode",), lambda v: v in ("default", "always"), "`default` or `always`"),
    (("hostFirewall", "enabled"), lambda v: v is True, "true"),
    (("policyCIDRMatchMode",), lambda v: isinstance(v, list) and "nodes" in v, "a list holding `nodes`"),
    # the switches that turn enforcement off while the policies stay in place: audit mode (allow all,
    # log what would drop), and ignoring Kubernetes NetworkPolicy or Cilium's own policy kinds
    (("policyAuditMode",), lambda v: v in (None, False), "unset or false (audit mode enforces nothing)"),
    (("enableK8sNetworkPolicy",), lambda v: v in (None, True), "unset or true (false ignores NetworkPolicy)"),
    (("enableCiliumNetworkPolicy",), lambda v: v in (None, True), "unset or true"),
    (("enableCiliumClusterwideNetworkPolicy",), lambda v: v in (None, True), "unset or true"),
)
# the agent options behind those values: set through extraConfig or extraArgs they would override them
CILIUM_ENFORCEMENT_OPTIONS = (
    "enable-policy",
    "policy-audit-mode",
    "enable-k8s-networkpolicy",
    "enable-cilium-network-policy",
    "enable-cilium-clusterwide-network-policy",
    "enable-host-firewall",
    "policy-cidr-match-mode",
)


def check_namespaces(
    cluster: str, planned: tuple[ClusterNamespace, ...], objs: list[tuple[str, dict[str, Any]]], findings: list[Finding]
) -> None:
    """The tenancy the proof reads from namespace labels must be the Plan's, exactly."""
    expected = {ns.name: ns.tenant for ns in planned if ns.tenant}
    known = {ns.name for ns in planned}
    seen: dict[str, str | None] = {}
    for path, obj in objs:
        if obj.get("kind") != "Namespace" or not isinstance(obj.get("metadata"), dict):
            continue
        name = str(obj["metadata"].get("name"))
        labels = obj["metadata"].get("labels") or {}
        seen[name] = labels.get(TENANT_LABEL) if isinstance(labels, dict) else None
        if name not in known:
            findings.append(
                Finding(
                    "zero-trust",
                    f"{path}: Namespace {name}",
                    "a namespace the model does not have; add it to the environment or remove it",
                )
            )
    for ns, tenant in expected.items():
        if ns not in seen:
            findings.append(
                Finding("zero-trust", f"cluster {cluster}", f"tenant `{tenant}`'s namespace {ns} is missing")
            )
        elif seen[ns] != tenant:
            findings.append(
                Finding(
                    "zero-trust",
                    f"cluster {cluster}: Namespace {ns}",
                    f"label {TENANT_LABEL} is {seen[ns]!r}, the model says {tenant!r}",
                )
            )
    for ns, claimed in seen.items():
        if claimed is not None and expected.get(ns) != claimed:
            findings.append(
                Finding(
                    "zero-trust",
                    f"cluster {cluster}: Namespace {ns}",
                    f"claims tenant {claimed!r}; the model gives that tenant no namespace {ns} here",
                )
            )


def check_cilium_values(files: Mapping[str, bytes], cluster: str, findings: list[Finding]) -> None:
    path = f"{tree_base(cluster, BOOTSTRAP)}/helm-values/cilium.yaml"
    if path not in files:
        findings.append(Finding("tree", path, "missing: the Cilium settings the proof relies on are not pinned"))
        return
    docs = documents(path, files[path], findings)
    values: Any = docs[0] if docs else {}
    for keys, ok, wanted in CILIUM_VALUES:
        v = values
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        if not ok(v):
            findings.append(Finding("zero-trust", path, f"{'.'.join(keys)} is {v!r}; the proof assumes {wanted}"))
    if not isinstance(values, dict):
        return
    extra = values.get("extraConfig")
    for option in sorted(set(extra) & set(CILIUM_ENFORCEMENT_OPTIONS) if isinstance(extra, dict) else ()):
        findings.append(
            Finding(
                "zero-trust",
                path,
                f"extraConfig sets `{option}`, which overrides the enforcement settings the proof pins; remove it",
            )
        )
    args = values.get("extraArgs")
    for arg in args if isinstance(args, list) else ():
        flag = str(arg).lstrip("-").split("=", 1)[0]
        if flag in CILIUM_ENFORCEMENT_OPTIONS:
            findings.append(
                Finding(
                    "zero-trust",
                    path,
                    f"extraArgs passes `--{flag}`, which overrides the enforcement settings the proof pins; remove it",
                )
            )
