"""`kasbah verify`: a rendered tree checked against schemas and proven zero-trust before anything is applied.

The tree is read as the appliers would apply it (`manifests`), checked against the Plan
(`plan_checks`), each object against its schema (`schema`) and each cluster's policies by the
zero-trust proof (`reachability`), whose expectations this module draws from the Plan.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kasbah.planning import ports
from kasbah.planning.model import Cluster, ClusterNamespace, Plan
from kasbah.planning.platform import BOOTSTRAP, GITOPS
from kasbah.planning.tenancy import (
    ADMIN_NAMESPACE,
    BUILTIN_NAMESPACES,
    MONITORING_NAMESPACE,
    PLATFORM,
    SYSTEM,
    SYSTEM_NAMESPACE,
)
from kasbah.rendering.tree import MARKER
from kasbah.verification.host_firewall import check_host_firewall
from kasbah.verification.identity import IdentityReport, check_identity
from kasbah.verification.manifests import (
    APPLIER_ANNOTATIONS,
    KUSTOMIZATION_KEYS,
    MAX_TREE_FILE,
    NOT_APPLIED,
    Finding,
    as_applied,
    cluster_manifests,
    object_name,
    read_tree,
    tree_base,
)
from kasbah.verification.plan_checks import (
    CILIUM_ENFORCEMENT_OPTIONS,
    CILIUM_VALUES,
    check_cilium_values,
    check_namespaces,
    check_owners,
    check_sync_object,
)
from kasbah.verification.provisioning import check_provisioning
from kasbah.verification.rdma import check_rdma
from kasbah.verification.reachability import (
    Destination,
    Expectations,
    ManagementTarget,
    PlatformAllowance,
    PodFlow,
    Report,
    verify_cluster,
)
from kasbah.verification.residency import ResidencyReport, check_residency
from kasbah.verification.schema import SchemaIssue, SchemaValidator

__all__ = [
    "APPLIER_ANNOTATIONS",
    "CILIUM_ENFORCEMENT_OPTIONS",
    "CILIUM_VALUES",
    "KUSTOMIZATION_KEYS",
    "MAX_TREE_FILE",
    "NOT_APPLIED",
    "ClusterResult",
    "Finding",
    "Step",
    "Verification",
    "as_applied",
    "check_cilium_values",
    "check_namespaces",
    "check_owners",
    "check_sync_object",
    "cluster_manifests",
    "expectations",
    "read_tree",
    "tree_base",
    "verify_files",
]

Step = Callable[[str], None]


@dataclass
class ClusterResult:
    name: str
    kubernetes_version: str
    objects: int
    files: int
    schema_issues: list[SchemaIssue] = field(default_factory=list)
    reachability: Report | None = None
    identity: IdentityReport | None = None


@dataclass
class Verification:
    phase: str
    clusters: list[ClusterResult]
    findings: list[Finding]
    notes: list[str]
    residency: ResidencyReport | None = None

    @property
    def ok(self) -> bool:
        return not self.findings


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
    tick("rdma")
    for where, message in check_rdma(files, plan):
        findings.append(Finding("rdma", where, message))
    tick("residency")
    residency = check_residency(files, plan)
    for where, message in residency.findings:
        findings.append(Finding("residency", where, message))
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
                    Finding("schema", f"{path}: {object_name(obj)}", f"{i.path or '(object)'}: {i.message}")
                )
        report = verify_cluster([o for _, o in objs], expectations(plan, c.name))
        result.reachability = report
        for v in report.violations:
            findings.append(Finding("zero-trust", f"cluster {c.name} ({v.mode})", f"{v.property}: {v.message}"))
        tick(f"cluster {c.name}: identity")
        result.identity = check_identity(files, plan, c, (o for _, o in objs))
        for iv in result.identity.violations:
            findings.append(Finding("identity", f"cluster {c.name}", f"{iv.property}: {iv.message}"))
        results.append(result)
    return Verification(plan.phase, results, findings, notes, residency)
