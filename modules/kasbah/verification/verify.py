"""`kasbah verify`: a rendered tree checked against schemas and proven zero-trust before anything is applied."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kasbah.config.files import read_regular
from kasbah.config.loader import bounded_yaml
from kasbah.planning import ports
from kasbah.planning.labels import TENANT as TENANT_LABEL
from kasbah.planning.model import Cluster, ClusterNamespace, Plan
from kasbah.planning.platform import BOOTSTRAP, GITOPS
from kasbah.planning.tenancy import (
    ADMIN_NAMESPACE,
    BUILTIN_NAMESPACES,
    MONITORING_NAMESPACE,
    PLATFORM,
    SYSTEM,
    SYSTEM_NAMESPACE,
    cluster_view,
)
from kasbah.rendering.kubernetes import OWNER, PLATFORM_DIR, owner_of, sync_objects
from kasbah.rendering.tree import MARKER
from kasbah.verification.host_firewall import check_host_firewall
from kasbah.verification.provisioning import check_provisioning
from kasbah.verification.reachability import (
    Destination,
    Expectations,
    ManagementTarget,
    PlatformAllowance,
    PodFlow,
    Report,
    verify_cluster,
)
from kasbah.verification.schema import SchemaIssue, SchemaValidator

Step = Callable[[str], None]


@dataclass(frozen=True)
class Finding:
    """One reason the tree must not be applied."""

    check: str  # tree | yaml | schema | owner | zero-trust | provisioning
    where: str  # file (and object) or cluster
    message: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.check}] {self.message}"


@dataclass
class ClusterResult:
    name: str
    kubernetes_version: str
    objects: int
    files: int
    schema_issues: list[SchemaIssue] = field(default_factory=list)
    reachability: Report | None = None


@dataclass
class Verification:
    phase: str
    clusters: list[ClusterResult]
    findings: list[Finding]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.findings


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


def _documents(path: str, data: bytes, findings: list[Finding]) -> list[dict[str, Any]]:
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


def _object_name(obj: Mapping[str, Any]) -> str:
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
    docs = _documents(kpath, files[kpath], findings)
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
        read.extend((path, obj) for obj in _documents(path, files[path], findings))
    yield from as_applied(read, findings)
    for path in files:
        if path.startswith(base + "/") and path.endswith(".yaml") and path not in listed:
            top = path[len(base) + 1 :].split("/", 1)[0]
            if top not in NOT_APPLIED:
                findings.append(
                    Finding("tree", path, "a manifest the kustomization does not list: it would never be applied")
                )


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
                    f"{path}: {_object_name(obj)}",
                    f"annotation {key}: {notes[key]}: {APPLIER_ANNOTATIONS[key][1]}; the proof leaves it out "
                    "(remove the annotation)",
                )
            )
        if skip:
            continue
        key = _identity(obj)
        if key in last:
            earlier = kept[last[key]]
            assert earlier is not None
            findings.append(
                Finding(
                    "applier",
                    f"{path}: {_object_name(obj)}",
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


def _identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
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
            key = _identity(obj)
            said = owner_of(obj)
            if said != owner:
                findings.append(
                    Finding(
                        "owner",
                        f"{path}: {_object_name(obj)}",
                        f"annotation {OWNER} is {said!r} in the tree `{owner}` applies; render the phase again "
                        "(an object is moved between owners in planning.platform, not by editing the tree)",
                    )
                )
            if key in seen and seen[key][0] != owner:
                findings.append(
                    Finding(
                        "owner",
                        f"{path}: {_object_name(obj)}",
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
    have = {_identity(o): (p, o) for p, o in objs}
    base = tree_base(cluster.name, BOOTSTRAP)
    for want in expected:
        key = _identity(want)
        if key not in have:
            findings.append(
                Finding(
                    "owner", f"{base}/gitops.yaml", f"no {_object_name(want)}: nothing would sync {cluster.gitops_path}"
                )
            )
            continue
        path, got = have[key]
        if got.get("spec") != want["spec"]:
            findings.append(
                Finding(
                    "owner",
                    f"{path}: {_object_name(got)}",
                    f"its spec differs from the Plan's (repository {plan.gitops.repository if plan.gitops else '?'}, "
                    f"branch {plan.gitops.branch if plan.gitops else '?'}, path {cluster.gitops_path}): "
                    "the cluster would sync another tree than the one verified; render the phase again",
                )
            )


KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources"}
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
    docs = _documents(path, files[path], findings)
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


def expectations(plan: Plan, cluster: str) -> Expectations:
    """What the Plan says the cluster's policies must guarantee; the proof reads the rendered policies.

    Every expectation is a Plan fact (`Cluster.tenants`, `Tenant.egress`, `Plan.namespaces`, the
    control plane's addresses and port), never the renderer's view of them: a renderer mistake
    cannot be both rendered and expected.
    """
    c = next(x for x in plan.clusters if x.name == cluster)
    by_name = {t.name: t for t in plan.tenants}
    tenants: dict[str, tuple[Destination, ...]] = {}
    for name in c.tenants:
        tenants[name] = tuple(Destination(e.name, e.cidr, e.ports) for e in plan.tenant_egress(by_name[name]))
    cp = [n.inband_ip for n in plan.nodes if n.name in c.control_plane]
    nets = {a.network: a.supernet for a in plan.addresses}

    def host(ip: str) -> str:
        return f"{ip}/{ipaddress.ip_address(ip).max_prefixlen}"

    management = [
        ManagementTarget("kube-apiserver", tuple(host(ip) for ip in cp), (c.api_port,), ("kube-apiserver",)),
        ManagementTarget("bmc-oob", (nets["oob"],), None),
        ManagementTarget("nodes", (nets["inband"],), None, ("host", "remote-node")),
    ]
    # operators, Kueue and monitoring talk to the API server and nothing else of the management
    # plane; CoreDNS also asks the site's resolvers
    api = frozenset({"kube-apiserver"})
    mine = _namespaces(plan, c)
    platform = {ns.name: PlatformAllowance(api) for ns in mine if ns.zone == PLATFORM and ns.name != ADMIN_NAMESPACE}
    dns = tuple(Destination(f"dns-{i}", r, (ports.DNS,), ("UDP", "TCP")) for i, r in enumerate(plan.dns_resolvers))
    for ns in mine:
        if ns.zone == SYSTEM:
            platform[ns.name] = PlatformAllowance(api, dns)
    if plan.gitops is not None and plan.gitops.namespace in platform:
        # the GitOps controller reads the published branch from the site's Git servers
        g = plan.gitops
        platform[g.namespace] = PlatformAllowance(
            api, tuple(Destination(f"git-{i}", c, (g.port,), ("TCP",)) for i, c in enumerate(g.sources))
        )
    # between namespaces, pods connect only for DNS (to CoreDNS) and for monitoring's scrape
    pod_flows = (
        PodFlow("dns", None, SYSTEM_NAMESPACE, ports.DNS, ports.DNS, ("UDP", "TCP")),
        PodFlow("metrics-scrape", MONITORING_NAMESPACE, None, *ports.METRICS),
    )
    return Expectations(
        cluster=cluster,
        tenants=tenants,
        admin_networks=tuple(plan.admin_networks),
        admin_namespaces=frozenset({ADMIN_NAMESPACE}),
        platform=platform,
        pod_flows=pod_flows,
        builtin_namespaces=BUILTIN_NAMESPACES,
        # the model declares no published tenant endpoint yet: nothing from outside reaches a tenant's pods
        tenant_ingress=dict.fromkeys(tenants, ()),
        no_initiate=(nets["oob"],),
        campus_services=(*plan.dns_resolvers, *(plan.gitops.sources if plan.gitops is not None else ())),
        internal_cidrs=(c.pod_cidr, c.service_cidr),
        management=tuple(management),
    )


def _namespaces(plan: Plan, cluster: Cluster) -> tuple[ClusterNamespace, ...]:
    return tuple(ns for ns in plan.namespaces if ns.cluster == cluster.name)


def verify_files(
    files: Mapping[str, bytes], plan: Plan, marker: Mapping[str, Any] | None, step: Step | None = None
) -> Verification:
    tick = step or (lambda _: None)
    findings: list[Finding] = []
    notes: list[str] = []
    if marker is not None:
        recorded: Mapping[str, str] = marker.get("files", {})
        edited = [p for p, digest in recorded.items() if p in files and hashlib.sha256(files[p]).hexdigest() != digest]
        missing = [p for p in recorded if p not in files]
        extra = [p for p in files if p not in recorded and p != MARKER]
        if edited:
            notes.append(
                f"{len(edited)} file(s) edited since rendering (verified as they are now): {', '.join(edited[:5])}"
            )
        if extra:
            notes.append(f"{len(extra)} file(s) added since rendering: {', '.join(extra[:5])}")
        for p in missing:
            findings.append(Finding("tree", p, "rendered but now missing"))
    tick("day-0 data")
    for where, message in check_provisioning(files, plan):
        findings.append(Finding("provisioning", where, message))
    tick("host firewall")
    for where, message in check_host_firewall(files, plan):
        findings.append(Finding("host-firewall", where, message))
    results: list[ClusterResult] = []
    for c in plan.clusters:
        tick(f"cluster {c.name}")
        parts = {owner: list(cluster_manifests(files, c.name, findings, owner)) for owner in (GITOPS, BOOTSTRAP)}
        check_owners(plan, c.name, parts, findings)
        check_sync_object(plan, c, parts[BOOTSTRAP], findings)
        objs = parts[GITOPS] + parts[BOOTSTRAP]
        check_namespaces(c.name, _namespaces(plan, c), objs, findings)
        check_cilium_values(files, c.name, findings)
        validator = SchemaValidator(c.kubernetes_version)
        result = ClusterResult(c.name, c.kubernetes_version, len(objs), len({p for p, _ in objs}))
        for path, obj in objs:
            issues = validator.validate(obj, source=path)
            result.schema_issues.extend(issues)
            for i in issues:
                findings.append(
                    Finding("schema", f"{path}: {_object_name(obj)}", f"{i.path or '(object)'}: {i.message}")
                )
        report = verify_cluster([o for _, o in objs], expectations(plan, c.name))
        result.reachability = report
        for v in report.violations:
            findings.append(Finding("zero-trust", f"cluster {c.name} ({v.mode})", f"{v.property}: {v.message}"))
        results.append(result)
    return Verification(plan.phase, results, findings, notes)
