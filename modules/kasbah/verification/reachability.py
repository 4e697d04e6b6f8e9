"""Proves the zero-trust invariant (DESIGN invariant 4) on one cluster's rendered network policies, for any pods.

Two modes. ``standard`` reads NetworkPolicy objects only: what holds on any conformant CNI.
``cilium`` adds CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy as Cilium enforces them:
allows of every policy selecting a pod are unioned; a pod is default-deny in a direction once a
policy selecting it has rules there (unless it sets ``enableDefaultDeny`` false for it); deny
rules override every allow; an empty Cilium rule ``{}`` selects no peer while a NetworkPolicy
``ingress: [{}]`` allows everything; a CiliumNetworkPolicy peer selector is confined to the
policy's namespace unless it names a namespace; a clusterwide ``{}`` peer is every pod.
Cilium converts a NetworkPolicy its own way (``ParseNetworkPolicy``): it enforces the
``ingress`` and ``egress`` rules whatever ``policyTypes`` says, so rules Kubernetes ignores still
allow traffic, and any rule makes its direction default-deny; ``policyTypes`` only adds default deny
to a direction without rules (ingress when Ingress is listed or Egress is not, egress when Egress is).

No pod and no address is listed. Pods of each namespace are cut into label regions by the
requirements of every selector that can reach that namespace, one representative label-set a
region; addresses are cut into intervals at every CIDR boundary of the policies and expectations;
ports are interval sets per protocol (tcp, udp, sctp; "icmp" stands for all protocols without
ports). Cost grows with namespaces, selectors and CIDRs, never with pods.

Properties, checked per mode: tenant isolation (both sides, see below), egress only to the
tenant's destinations, management plane reachable only from the admin zone (``admin_namespaces``,
every target) and from the non-tenant namespaces whose ``PlatformAllowance`` names the target (on
its ports), no outside connection into a non-tenant namespace but from the admin networks, egress of
every non-tenant namespace (admin zone included) only to the outside destinations its allowance
declares (``platform-egress``; flows to a management target on its ports are judged by the
management-plane property alone), every connection between two namespaces that are not both
tenants' one the platform declared (``pod_flows``: DNS to CoreDNS, monitoring's scrape), on its
ports (``platform-access``), no path of allowed connections from a tenant through platform pods to
another tenant or out of its jurisdictions (``transit``: each hop may pass alone, a pod in the
middle can relay), every allow traced to a policy annotated ``kasbah.io/rule``,
default deny in every namespace; features the verifier cannot read soundly are reported as
``unsupported``. A tenant namespace (labelled ``kasbah.io/tenant``) gets tenant rules only: no
allowance or admin-zone membership applies to it. A non-tenant namespace ``platform`` does not
list may reach nothing outside.

Conservative rules — each can only add reachability, never hide it:

- An ipBlock / toCIDR / fromCIDR allow that overlaps the cluster's internal ranges (pod and
  service CIDRs) may match pod IPs on some CNIs, so it also reaches (or admits) every pod of every
  namespace unless its excepts remove the whole overlap; that alone can open a tenant-to-tenant path.
- CIDR *deny* rules count only for plain outside addresses: Cilium gives pods, nodes and the API
  server identities of their own that a CIDR deny may not match. Entity denies count exactly.
- A named port matches any port in an allow and none in a deny; a deny of some ICMP types
  denies nothing.
- In cilium mode a peer selector with only NotIn / DoesNotExist requirements may also select
  identities without labels (world, host: cilium/cilium#46949), so such an allow also admits every
  outside address.
- An L7 or TLS rule keeps its L4 part. toFQDNs, toServices, toRequires, fromRequires, toGroups,
  toNodes, fromNodes and CIDR groups are reported as unsupported and read as allowing every peer
  (ignored in deny rules).
- Outside the cluster only the pod's side is read: the far end is taken as open.
- Tenant isolation must hold on each side alone: a tenant's egress (or ingress) side that admits
  another tenant's pods is a violation even while the other tenant's side happens to block it,
  because a tenant can edit the policies of its own namespaces and zero trust relies on no side.

Inbound: a tenant's pods accept connections from outside the cluster (the world, other clusters'
pod ranges, the admin networks) only from the sources declared for it (``tenant_ingress``), and no
pod accepts one from the BMC network (``no_initiate``).

Outside the proof: namespaces absent from the manifests but for ``builtin_namespaces`` (those
every cluster has); traffic from nodes to pods
(Cilium admits the local host by default); Cilium host policies (nodeSelector, which only
restrict nodes); policy enforcement modes other than Cilium's default (the verifier pins the Helm
values that would set one).

The parts: `reach_expect` (what the caller expects), `reach_report` (properties and results),
`reach_policy` (policies read into one rule form), `reach_labels` and `reach_space` (the label,
port and address algebra), `reach_cluster` (regions, atoms, compiled rules), `reach_proofs` (the
properties) and `reach_findings` (findings and their messages); this module runs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kasbah.verification.reach_cluster import Cluster
from kasbah.verification.reach_expect import (
    NO_ALLOWANCE,
    TENANT_LABEL,
    Destination,
    Expectations,
    ManagementTarget,
    PlatformAllowance,
    PodFlow,
)
from kasbah.verification.reach_proofs import Verifier
from kasbah.verification.reach_report import (
    ADMIN_ROW,
    BMC_ROW,
    DEFAULT_DENY,
    EGRESS_JURISDICTION,
    INBOUND,
    MANAGEMENT_PLANE,
    MODES,
    OTHER_EXTERNAL,
    PLATFORM_ACCESS,
    PLATFORM_EGRESS,
    PROPERTIES,
    TENANT_ISOLATION,
    TRACED,
    TRANSIT,
    UNSUPPORTED,
    WORLD_ROW,
    Flow,
    Matrix,
    Report,
    Violation,
    format_matrix,
)

__all__ = [
    "ADMIN_ROW",
    "BMC_ROW",
    "DEFAULT_DENY",
    "EGRESS_JURISDICTION",
    "INBOUND",
    "MANAGEMENT_PLANE",
    "MODES",
    "NO_ALLOWANCE",
    "OTHER_EXTERNAL",
    "PLATFORM_ACCESS",
    "PLATFORM_EGRESS",
    "PROPERTIES",
    "TENANT_ISOLATION",
    "TENANT_LABEL",
    "TRACED",
    "TRANSIT",
    "UNSUPPORTED",
    "WORLD_ROW",
    "Destination",
    "Expectations",
    "Flow",
    "ManagementTarget",
    "Matrix",
    "PlatformAllowance",
    "PodFlow",
    "Report",
    "Violation",
    "format_matrix",
    "verify_cluster",
]


def verify_cluster(manifests: Sequence[Mapping[str, Any]], expect: Expectations) -> Report:
    """Check every property in both modes on one cluster's rendered manifests."""
    cluster = Cluster(manifests, expect)
    violations: list[Violation] = []
    matrices: dict[str, Matrix] = {}
    flows: list[Flow] = []
    for mode in MODES:
        verifier = Verifier(cluster, mode)
        verifier.run()
        violations.extend(verifier.violations())
        matrices[mode] = verifier.matrix()
        flows.extend(verifier.flows())
    order = {p: i for i, p in enumerate(PROPERTIES)}
    violations.sort(key=lambda v: (MODES.index(v.mode), order[v.property], v.flow, v.message, v.policy or ""))
    return Report(expect.cluster, tuple(violations), matrices, tuple(flows))
