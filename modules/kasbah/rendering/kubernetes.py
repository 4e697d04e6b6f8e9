"""Kubernetes manifests of one cluster of a phase: tenancy, Kueue, NVIDIA operators, zero-trust policy, the platform.

Two trees per cluster, one per owner (planning.platform, DESIGN.md "One owner per object"):

* `clusters/<cluster>/`: what the GitOps controller syncs (tenants' namespaces, RBAC, quotas, network
  policies, Cilium guardrails, Kueue, the NVIDIA custom resources). It is all the published branch holds.
* `bootstrap/<cluster>/platform/`: what the cluster stack applies before the controller runs (the
  system and platform namespaces, the controller's own network policies, its sync object) and the
  Helm releases with their pinned charts and values.

Every object says its owner in the `kasbah.io/owner` annotation; the verifier and the stacks check it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from kasbah.planning import labels as lb
from kasbah.planning import platform, ports
from kasbah.planning.model import GitOpsSource, Plan, Pool
from kasbah.planning.platform import BOOTSTRAP, GITOPS
from kasbah.planning.tenancy import (
    BUILTIN_NAMESPACES,
    MONITORING_NAMESPACE,
    PLATFORM,
    SYSTEM_NAMESPACE,
    TENANT,
    ClusterView,
    cluster_view,
    tenant_namespace,
)

Obj = dict[str, Any]

RULE = "kasbah.io/rule"
ZONE = "kasbah.io/zone"
GPU = "nvidia.com/gpu"
COHORT = "shared"
TOPOLOGY_NAME = "kasbah"
LOCAL_QUEUE = "gpu"
DEVELOPER_ROLE = "kasbah:tenant-developer"
CILIUM_NS_LABEL = "k8s:io.cilium.k8s.namespace.labels."
CILIUM_NAMESPACE = "k8s:io.kubernetes.pod.namespace"
# Argo CD applies lower waves first: namespaces, then their default-deny, then everything else.
WAVE = "argocd.argoproj.io/sync-wave"
# Who applies an object: `bootstrap` (the cluster stack, or `kasbah apply --bootstrap`) or `gitops`
OWNER = "kasbah.io/owner"
PLATFORM_DIR = "platform"  # bootstrap/<cluster>/platform/
GIT_REPOSITORY = "kasbah"  # Flux's GitRepository of the published branch
GIT_CREDENTIALS = "kasbah-git"  # the Secret an ssh:// repository's key is in (never rendered)


# ---------------------------------------------------------------------------- helpers
def _meta(name: str, namespace: str | None = None, rule: str | None = None, wave: int | None = None) -> Obj:
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


def _gitops(view: ClusterView) -> GitOpsSource:
    if view.plan.gitops is None:
        raise ValueError(f"{view.plan.phase}: the Plan names no GitOps controller (plan it again)")
    return view.plan.gitops


def _host(ip: str) -> str:
    return f"{ip}/{ipaddress.ip_address(ip).max_prefixlen}"


def _ports(protocols: Iterable[str], port: int, end: int | None = None) -> list[Obj]:
    out = []
    for proto in protocols:
        p: Obj = {"protocol": proto, "port": port}
        if end is not None and end != port:
            p["endPort"] = end
        out.append(p)
    return out


def _ns_peer(**match: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": dict(match)}}


def _policy(name: str, namespace: str, rule: str, spec: Obj) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(name, namespace, rule, wave=-1),
        "spec": spec,
    }


def _dns_egress(namespace: str) -> Obj:
    return _policy(
        "allow-dns",
        namespace,
        "dns",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": SYSTEM_NAMESPACE}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": _ports(("UDP", "TCP"), ports.DNS),
                }
            ],
        },
    )


def _monitoring_scrape(namespace: str) -> Obj:
    return _policy(
        "allow-monitoring-scrape",
        namespace,
        "platform:monitoring-scrape",
        {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [_ns_peer(**{"kubernetes.io/metadata.name": MONITORING_NAMESPACE})],
                    "ports": _ports(("TCP",), *ports.METRICS),
                }
            ],
        },
    )


def _default_deny(namespace: str) -> Obj:
    return _policy("default-deny", namespace, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})


# ---------------------------------------------------------------------------- namespaces
def namespaces(view: ClusterView, owner: str) -> list[Obj]:
    """The Plan's namespaces of the cluster that `owner` applies, with zone, Pod Security level and tenant labels.

    A tenant's namespace carries the controller's keep annotation: the controller never prunes it
    (its workloads and volumes leave by a declared decommission, not by a sync).
    """
    tenants = {t.name: t for t in view.tenants}
    keep = platform.controller_of(_gitops(view).controller).keep if owner == GITOPS else None
    out = []
    for ns in view.namespaces:
        if ns.owner != owner:
            continue
        extra = {ZONE: ns.zone}
        if ns.zone == TENANT and ns.tenant:
            t = tenants[ns.tenant]
            extra.update({lb.TENANT: t.name, f"{lb.DOMAIN}/tenant-kind": t.kind})
            if t.reseller:
                extra[f"{lb.DOMAIN}/reseller"] = t.reseller
            for j in t.jurisdictions:
                extra[f"jurisdiction.{lb.DOMAIN}/{j}"] = "allowed"
        obj = _namespace(ns.name, ns.pod_security, view.version, extra)
        if keep and ns.zone == TENANT:
            obj["metadata"].setdefault("annotations", {})[keep[0]] = keep[1]
        out.append(obj)
    return out


def _namespace(name: str, level: str, version: str, extra: dict[str, str]) -> Obj:
    meta = _meta(name, wave=-2)
    meta["labels"].update(
        {
            "pod-security.kubernetes.io/enforce": level,
            "pod-security.kubernetes.io/enforce-version": version,
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
            **extra,
        }
    )
    meta["labels"] = dict(sorted(meta["labels"].items()))
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


# ---------------------------------------------------------------------------- RBAC, quotas
_DEVELOPER_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("",),
        ("pods", "pods/log", "pods/exec", "services", "configmaps", "secrets", "persistentvolumeclaims"),
        ("get", "list", "watch", "create", "update", "patch", "delete"),
    ),
    (("",), ("events", "serviceaccounts", "resourcequotas", "limitranges"), ("get", "list", "watch")),
    (
        ("apps",),
        ("deployments", "statefulsets", "replicasets"),
        ("get", "list", "watch", "create", "update", "patch", "delete"),
    ),
    (("batch",), ("jobs", "cronjobs"), ("get", "list", "watch", "create", "update", "patch", "delete")),
    (("jobset.x-k8s.io",), ("jobsets",), ("get", "list", "watch", "create", "update", "patch", "delete")),
    (
        ("resource.k8s.io",),
        ("resourceclaims", "resourceclaimtemplates"),
        ("get", "list", "watch", "create", "update", "patch", "delete"),
    ),
    (("kueue.x-k8s.io",), ("workloads", "localqueues"), ("get", "list", "watch")),
    (("resource.nvidia.com",), ("computedomains",), ("get", "list", "watch")),
    (("networking.k8s.io",), ("networkpolicies",), ("get", "list", "watch")),
)


def rbac(view: ClusterView) -> list[Obj]:
    """Tenants run workloads but never edit policy, quota or RBAC: those stay with the platform."""
    role: Obj = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(DEVELOPER_ROLE),
        "rules": [{"apiGroups": list(g), "resources": list(r), "verbs": list(v)} for g, r, v in _DEVELOPER_RULES],
    }
    out = [role, _cluster_binding("kasbah:platform-admins", "cluster-admin", "kasbah:operator:platform-admins")]
    for t in view.tenants:
        ns = tenant_namespace(t.name)
        out.append(_binding("tenant-developers", ns, "ClusterRole", DEVELOPER_ROLE, f"kasbah:{t.name}:developers"))
        out.append(_binding("tenant-viewers", ns, "ClusterRole", "view", f"kasbah:{t.name}:viewers"))
        if t.reseller:
            # the white-label reseller supports its customers: it sees, it does not change
            out.append(_binding(f"reseller-{t.reseller}", ns, "ClusterRole", "view", f"kasbah:{t.reseller}:operators"))
    return out


def _subject(group: str) -> Obj:
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": group}


def _binding(name: str, namespace: str, kind: str, role: str, group: str) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(name, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [_subject(group)],
    }


def _cluster_binding(name: str, role: str, group: str) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [_subject(group)],
    }


def quotas(view: ClusterView) -> list[Obj]:
    out: list[Obj] = []
    for t in view.tenants:
        ns = tenant_namespace(t.name)
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": _meta("tenant-quota", ns),
                "spec": {
                    "hard": {
                        f"requests.{GPU}": str(view.tenant_gpus(t.name)),
                        # no node ports or load balancers: tenants are reached through the platform's ingress
                        "services.nodeports": "0",
                        "services.loadbalancers": "0",
                    }
                },
            }
        )
        out.append(
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": _meta("container-defaults", ns),
                "spec": {
                    "limits": [
                        {
                            "type": "Container",
                            "default": {"cpu": "1", "memory": "2Gi"},
                            "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
                        }
                    ]
                },
            }
        )
    return out


# ---------------------------------------------------------------------------- Kueue
KUEUE = "kueue.x-k8s.io/v1beta1"
KUEUE_TOPOLOGY = "kueue.x-k8s.io/v1beta1"  # Kueue 0.14 serves Topology as v1beta1 only


def kueue(view: ClusterView) -> list[Obj]:
    out: list[Obj] = [
        {
            "apiVersion": KUEUE_TOPOLOGY,
            "kind": "Topology",
            "metadata": _meta(TOPOLOGY_NAME),
            "spec": {"levels": [{"nodeLabel": level} for level in lb.TOPOLOGY_LEVELS]},
        }
    ]
    for p in view.pools:
        out.append(
            {
                "apiVersion": KUEUE,
                "kind": "ResourceFlavor",
                "metadata": _meta(p.name),
                "spec": {
                    "nodeLabels": {lb.POOL: p.name},
                    "tolerations": [t.toleration() for t in lb.pool_taints(p)],
                    "topologyName": TOPOLOGY_NAME,
                },
            }
        )
    shared = [p for p in view.pools if not p.tenant]
    for t in view.tenants:
        flavors = []
        # the tenant's own pools first: Kueue tries flavors in order
        for p in sorted(view.pools, key=lambda p: p.tenant != t.name):
            if p.tenant == t.name:
                # a dedicated pool is the tenant's alone: nothing of it is lent to the cohort
                res: Obj = {"name": GPU, "nominalQuota": p.gpus, "lendingLimit": 0}
            elif p in shared:
                res = {"name": GPU, "nominalQuota": view.quota.get((t.name, p.name), 0)}
            else:
                continue
            flavors.append({"name": p.name, "resources": [res]})
        out.append(
            {
                "apiVersion": KUEUE,
                "kind": "ClusterQueue",
                "metadata": _meta(tenant_namespace(t.name)),
                "spec": {
                    "cohort": COHORT,
                    "namespaceSelector": {"matchLabels": {lb.TENANT: t.name}},
                    "queueingStrategy": "BestEffortFIFO",
                    # use the tenant's own quota in every flavor before borrowing from the cohort
                    "flavorFungibility": {"whenCanBorrow": "TryNextFlavor", "whenCanPreempt": "TryNextFlavor"},
                    "preemption": {
                        "reclaimWithinCohort": "Any",
                        "borrowWithinCohort": {"policy": "Never"},
                        "withinClusterQueue": "LowerPriority",
                    },
                    "resourceGroups": [{"coveredResources": [GPU], "flavors": flavors}],
                },
            }
        )
        out.append(
            {
                "apiVersion": KUEUE,
                "kind": "LocalQueue",
                "metadata": _meta(LOCAL_QUEUE, tenant_namespace(t.name)),
                "spec": {"clusterQueue": tenant_namespace(t.name)},
            }
        )
    return out


# ---------------------------------------------------------------------------- NVIDIA operators
def _operator_tolerations(view: ClusterView) -> list[Obj]:
    """The operators' DaemonSets run on every GPU node, whatever tenant or burn-in taint it carries."""
    taints = {lb.GPU_TAINT}
    for p in view.pools:
        taints.update(lb.pool_taints(p))
    tolerations = [t.toleration() for t in sorted(taints, key=lambda t: (t.key, t.value))]
    tolerations.append({"key": lb.BURN_IN, "operator": "Exists", "effect": "NoSchedule"})
    return tolerations


def _gpu_pool_affinity(pools: Iterable[Pool]) -> Obj:
    return {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": lb.POOL, "operator": "In", "values": sorted(p.name for p in pools)}]}
        ]
    }


# The DCGM host engine the dcgm role runs on every GPU node; the exporter pods reach it on the node.
DCGM_HOSTENGINE = f"localhost:{ports.DCGM_HOSTENGINE}"
RDMA_SHARED_DEVICES = json.dumps(
    {"configList": [{"resourceName": "rdma_shared", "rdmaHcaMax": 63, "selectors": {"vendors": ["15b3"]}}]},
    separators=(",", ":"),
)


def nvidia(view: ClusterView) -> list[Obj]:
    """The GPU and Network Operators over a host-managed NVIDIA stack.

    The driver (pinned per pool), fabric manager / IMEX, the DCGM host engine, the container
    toolkit and DOCA-OFED are installed on the node by the Ansible roles (playbooks/), because
    the burn-in gate runs DCGM and NCCL on the node before it takes work. The operators keep
    what is per-cluster: device plugin, feature discovery, DCGM exporter (reading the host
    engine), validation and the NIC policy's device plugins. The GPU Operator's ClusterPolicy is
    rendered by its chart from the release's values (`gpu_operator_values`): the release owns it.
    """
    if not view.pools:
        return []
    tolerations = _operator_tolerations(view)
    out: list[Obj] = [
        {
            "apiVersion": "mellanox.com/v1alpha1",
            "kind": "NicClusterPolicy",
            "metadata": _meta("nic-cluster-policy"),
            "spec": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": _gpu_pool_affinity(view.pools)},
                "tolerations": tolerations,
                # DOCA-OFED is on the host (doca_ofed role): the operator only shares the RDMA devices
                "rdmaSharedDevicePlugin": {
                    "image": "k8s-rdma-shared-dev-plugin",
                    "repository": "nvcr.io/nvidia/mellanox",
                    "version": "network-operator-v25.4.0",
                    "config": RDMA_SHARED_DEVICES,
                },
            },
        },
    ]
    out.extend(compute_domains(view))
    return out


def nvl72_pools(view: ClusterView) -> list[Pool]:
    """Pools whose GPU nodes share multi-node NVLink domains (NVL72 racks): IMEX through DRA ComputeDomains."""
    multi = lb.multi_node_nvlink_domains(view.plan.nodes)
    pools = {n.pool for n in view.plan.nodes if n.cluster == view.cluster.name and n.gpus and n.nvlink_domain in multi}
    return [p for p in view.pools if p.name in pools]


def compute_domains(view: ClusterView) -> list[Obj]:
    out = []
    trays = {r.pool: r.nodes for r in view.plan.racks if r.pool}
    for p in nvl72_pools(view):
        for t in view.tenants:
            if view.quota.get((t.name, p.name)) or p.tenant == t.name:
                out.append(
                    {
                        "apiVersion": "resource.nvidia.com/v1beta1",
                        "kind": "ComputeDomain",
                        "metadata": _meta(f"{p.name}-nvl72", tenant_namespace(t.name)),
                        "spec": {
                            "numNodes": trays[p.name],
                            "channel": {"resourceClaimTemplate": {"name": f"{p.name}-imex-channel"}},
                        },
                    }
                )
    return out


# ---------------------------------------------------------------------------- zero trust
def network_policies(view: ClusterView) -> dict[str, list[Obj]]:
    """NetworkPolicies by namespace: default-deny everywhere, then one named rule per allowed flow."""
    apiserver = [{"ipBlock": {"cidr": _host(ip)}} for ip in view.control_plane_ips]
    by_ns: dict[str, list[Obj]] = {}

    system = SYSTEM_NAMESPACE
    coredns = {"matchLabels": {"k8s-app": "kube-dns"}}
    by_ns[system] = [
        _default_deny(system),
        _dns_egress(system),
        _policy(
            "allow-dns-from-cluster",
            system,
            "dns",
            {
                "podSelector": coredns,
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {}}], "ports": _ports(("UDP", "TCP"), ports.DNS)}],
            },
        ),
        _policy(
            "allow-coredns-apiserver",
            system,
            "platform:kube-apiserver",
            {
                "podSelector": coredns,
                "policyTypes": ["Egress"],
                "egress": [{"to": apiserver, "ports": _ports(("TCP",), view.cluster.api_port)}],
            },
        ),
    ]
    if view.plan.dns_resolvers:
        by_ns[system].append(
            _policy(
                "allow-dns-upstream",
                system,
                "dns-upstream",
                {
                    "podSelector": coredns,
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [{"ipBlock": {"cidr": c}} for c in view.plan.dns_resolvers],
                            "ports": _ports(("UDP", "TCP"), ports.DNS),
                        }
                    ],
                },
            )
        )

    for ns in (n.name for n in view.namespaces if n.zone == PLATFORM):
        rules = [
            _default_deny(ns),
            _dns_egress(ns),
            _policy(
                "allow-same-namespace",
                ns,
                "platform:internal",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [{"podSelector": {}}]}],
                    "egress": [{"to": [{"podSelector": {}}]}],
                },
            ),
            _policy(
                "allow-apiserver",
                ns,
                "platform:kube-apiserver",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [{"to": apiserver, "ports": _ports(("TCP",), view.cluster.api_port)}],
                },
            ),
            _monitoring_scrape(ns),
        ]
        if ns == "kueue-system":
            # admission webhooks are called by kube-apiserver from the control-plane hosts
            rules.append(
                _policy(
                    "allow-webhooks",
                    ns,
                    "platform:webhooks",
                    {
                        "podSelector": {},
                        "policyTypes": ["Ingress"],
                        "ingress": [{"from": apiserver, "ports": _ports(("TCP",), ports.WEBHOOK)}],
                    },
                )
            )
        if ns == _gitops(view).namespace:
            rules.append(_gitops_source_egress(ns, _gitops(view)))
        if ns == MONITORING_NAMESPACE:
            rules.append(
                _policy(
                    "allow-scrape-everywhere",
                    ns,
                    "platform:monitoring-scrape",
                    {
                        "podSelector": {},
                        "policyTypes": ["Egress"],
                        "egress": [{"to": [{"namespaceSelector": {}}], "ports": _ports(("TCP",), *ports.METRICS)}],
                    },
                )
            )
        by_ns[ns] = rules

    for t in view.tenants:
        ns = tenant_namespace(t.name)
        rules = [
            _default_deny(ns),
            _dns_egress(ns),
            _policy(
                "allow-same-tenant",
                ns,
                "tenant-internal",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [_ns_peer(**{lb.TENANT: t.name})]}],
                    "egress": [{"to": [_ns_peer(**{lb.TENANT: t.name})]}],
                },
            ),
            _monitoring_scrape(ns),
        ]
        for e in view.egress[t.name]:
            rules.append(
                _policy(
                    f"allow-egress-{e.name}",
                    ns,
                    f"egress:{e.jurisdiction}/{e.name}",
                    {
                        "podSelector": {},
                        "policyTypes": ["Egress"],
                        "egress": [
                            {
                                "to": [{"ipBlock": {"cidr": e.cidr}}],
                                "ports": [p for port in e.ports for p in _ports(("TCP",), port)],
                            }
                        ],
                    },
                )
            )
        by_ns[ns] = rules
    for ns in BUILTIN_NAMESPACES:
        by_ns[ns] = [_default_deny(ns)]
    return by_ns


def _gitops_source_egress(namespace: str, gitops: GitOpsSource) -> Obj:
    """The GitOps controller reads the published branch from the site's Git servers, and nothing else outside."""
    return _policy(
        "allow-gitops-source",
        namespace,
        "platform:gitops-source",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"ipBlock": {"cidr": c}} for c in gitops.sources], "ports": _ports(("TCP",), gitops.port)}
            ],
        },
    )


def _world(cidrs: Iterable[str]) -> list[str]:
    versions = {ipaddress.ip_network(c).version for c in cidrs} | {4}
    return [("0.0.0.0/0" if v == 4 else "::/0") for v in sorted(versions)]


def cilium_guardrails(view: ClusterView) -> list[Obj]:
    """Cluster-wide deny rules a tenant's own policies cannot override, and the host firewall."""
    tenant_key = CILIUM_NS_LABEL + lb.TENANT
    off = {"ingress": False, "egress": False}  # deny-only: do not switch endpoints to default-deny
    out: list[Obj] = []
    for t in view.tenants:
        others = {
            "matchExpressions": [
                {"key": tenant_key, "operator": "Exists"},
                {"key": tenant_key, "operator": "NotIn", "values": [t.name]},
            ]
        }
        allowed = [e.cidr for e in view.egress[t.name]]
        world = []
        for w in _world(allowed):
            keep = [c for c in allowed if ipaddress.ip_network(c).version == ipaddress.ip_network(w).version]
            world.append({"cidr": w, "except": keep} if keep else {"cidr": w})
        out.append(
            {
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumClusterwideNetworkPolicy",
                "metadata": _meta(f"kasbah-isolate-{t.name}", rule="guardrail:tenant-isolation"),
                "spec": {
                    "description": f"Tenant {t.name}: no traffic with other tenants, egress only to its jurisdictions, no management plane",
                    "endpointSelector": {"matchLabels": {tenant_key: t.name}},
                    "enableDefaultDeny": off,
                    "ingressDeny": [{"fromEndpoints": [others]}],
                    "egressDeny": [
                        {"toEndpoints": [others]},
                        {"toCIDRSet": world},
                        {"toEntities": ["host", "remote-node", "kube-apiserver"]},
                    ],
                },
            }
        )
    admin = list(view.plan.admin_networks)
    host_ingress: list[Obj] = [{"fromEntities": ["cluster", "health"]}]
    if admin:
        host_ingress.append({"fromCIDR": admin})
    out.append(
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumClusterwideNetworkPolicy",
            "metadata": _meta("kasbah-host-firewall", rule="guardrail:host-firewall"),
            "spec": {
                "description": "Nodes answer the cluster and the admin zone only (SSH, kubelet, API server)",
                "nodeSelector": {},
                "ingress": host_ingress,
            },
        }
    )
    return out


# ---------------------------------------------------------------------------- Helm values
def helm_values(view: ClusterView) -> dict[str, Obj]:
    """Values for the Helm releases that install the CRDs and controllers the manifests need."""
    nvl72 = nvl72_pools(view)
    values: dict[str, Obj] = {
        "cilium": {
            "hostFirewall": {"enabled": True},
            "policyEnforcementMode": "default",
            # ipBlock rules name the API server by its control-plane node IPs; Cilium matches node
            # IPs with CIDR rules only in this mode (otherwise they are `host`/`remote-node` entities)
            "policyCIDRMatchMode": ["nodes"],
            "ipam": {"mode": "kubernetes"},
            "k8sServiceHost": view.cluster.api_host,
            "k8sServicePort": view.cluster.api_port,
        },
        "kueue": {
            # topology-aware scheduling is on by default only from Kueue 0.14
            "controllerManager": {"featureGates": [{"name": "TopologyAwareScheduling", "enabled": True}]},
            "managerConfig": {
                "controllerManagerConfigYaml": yaml.dump(
                    {
                        "apiVersion": "config.kueue.x-k8s.io/v1beta1",
                        "kind": "Configuration",
                        # ClusterQueues meter GPUs only; CPU and memory are held by LimitRanges
                        "resources": {"excludeResourcePrefixes": ["cpu", "memory", "ephemeral-storage", "pods"]},
                        # every job in a tenant namespace goes through its queue, labelled or not
                        "manageJobsWithoutQueueName": True,
                        "managedJobsNamespaceSelector": {
                            "matchExpressions": [{"key": lb.TENANT, "operator": "Exists"}]
                        },
                        "integrations": {
                            "frameworks": ["batch/job", "jobset.x-k8s.io/jobset", "pod", "deployment", "statefulset"]
                        },
                    },
                    Dumper=yaml.CSafeDumper,
                    sort_keys=False,
                )
            },
        },
        "gpu-operator": gpu_operator_values(view),
        # deployCR off: the NicClusterPolicy is the GitOps tree's (nvidia/nvidia.yaml), not the chart's
        "network-operator": {"nfd": {"enabled": False}, "sriovNetworkOperator": {"enabled": False}, "deployCR": False},
        "argo-cd": {
            # kasbah's sync objects only: no SSO, no notifications, no ApplicationSets
            "dex": {"enabled": False},
            "notifications": {"enabled": False},
            "applicationSet": {"replicas": 0},
        },
        "flux2": {
            # sources and kustomizations only: no image automation, no Helm controller objects in the tree
            "imageAutomationController": {"create": False},
            "imageReflectionController": {"create": False},
            "notificationController": {"create": False},
        },
    }
    if nvl72:
        values["nvidia-dra-driver-gpu"] = {
            "resources": {"gpus": {"enabled": False}, "computeDomains": {"enabled": True}},
            "nvidiaDriverRoot": "/",  # the host's driver (nvidia_driver role)
            "kubeletPlugin": {
                "tolerations": _operator_tolerations(view),
                "affinity": {
                    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": _gpu_pool_affinity(nvl72)}
                },
            },
        }
    wanted = {r.name for r in view.plan.releases if r.cluster == view.cluster.name}
    return {name: v for name, v in values.items() if name in wanted}


def gpu_operator_values(view: ClusterView) -> Obj:
    """The GPU Operator's values: its chart renders the ClusterPolicy from them over the host's NVIDIA stack."""
    return {
        "operator": {"defaultRuntime": "containerd"},
        "daemonsets": {"tolerations": _operator_tolerations(view), "priorityClassName": "system-node-critical"},
        "driver": {"enabled": False},
        "toolkit": {"enabled": False},
        "devicePlugin": {"enabled": True},
        "dcgm": {"enabled": False},
        "dcgmExporter": {"enabled": True, "env": [{"name": "DCGM_REMOTE_HOSTENGINE_INFO", "value": DCGM_HOSTENGINE}]},
        "gfd": {"enabled": True},
        "migManager": {"enabled": False},
        "nodeStatusExporter": {"enabled": True},
        "validator": {"plugin": {"env": [{"name": "WITH_WORKLOAD", "value": "false"}]}},
    }


# ---------------------------------------------------------------------------- the tree
class _Dumper(yaml.CSafeDumper):
    """libyaml, without anchors: a shared selector is written out in full wherever it is used."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(objs: Iterable[Obj]) -> bytes:
    """Multi-document YAML through libyaml; key order as built, so output is stable."""
    text = yaml.dump_all(objs, Dumper=_Dumper, sort_keys=False, explicit_start=True, width=1000)
    return text.encode()


def cluster_files(view: ClusterView) -> Iterator[tuple[str, list[Obj]]]:
    """Manifest files of the cluster's GitOps tree, in apply order: what the GitOps controller owns."""
    controller_ns = _gitops(view).namespace
    yield "namespaces.yaml", owned(namespaces(view, GITOPS), GITOPS)
    yield "rbac.yaml", owned(rbac(view), GITOPS)
    yield "quotas.yaml", owned(quotas(view), GITOPS)
    for ns, objs in network_policies(view).items():
        if ns != controller_ns:
            yield f"network-policies/{ns}.yaml", owned(objs, GITOPS)
    yield "cilium/guardrails.yaml", owned(cilium_guardrails(view), GITOPS)
    yield "kueue/kueue.yaml", owned(kueue(view), GITOPS)
    nv = nvidia(view)
    if nv:
        yield "nvidia/nvidia.yaml", owned(nv, GITOPS)


def platform_files(view: ClusterView) -> Iterator[tuple[str, list[Obj]]]:
    """Manifest files the cluster stack applies before the GitOps controller runs, in apply order.

    The system and platform namespaces (the releases install into them), the controller's own
    namespace's network policies (a sync can never cut the controller off its source or the API
    server), then its sync object, which needs the controller's CRDs (after the releases).
    """
    controller_ns = _gitops(view).namespace
    yield "namespaces.yaml", owned(namespaces(view, BOOTSTRAP), BOOTSTRAP)
    yield f"network-policies/{controller_ns}.yaml", owned(network_policies(view)[controller_ns], BOOTSTRAP)
    yield "gitops.yaml", owned(sync_objects(view), BOOTSTRAP)


def sync_objects(view: ClusterView) -> list[Obj]:
    """The controller's object that syncs this cluster's tree from the published branch."""
    g, c = _gitops(view), view.cluster
    name = f"kasbah-{c.name}"
    if g.controller == "argocd":
        return [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": _meta(name, g.namespace),
                "spec": {
                    "project": "default",
                    "source": {"repoURL": g.repository, "targetRevision": g.branch, "path": c.gitops_path},
                    "destination": {"server": "https://kubernetes.default.svc"},
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True},
                        # FailOnSharedResource: an object another Application (or owner) manages is
                        # an error, not a silent takeover
                        "syncOptions": ["ServerSideApply=true", "FailOnSharedResource=true", "PruneLast=true"],
                    },
                },
            }
        ]
    source: Obj = {"interval": "5m", "url": g.repository, "ref": {"branch": g.branch}}
    if g.port == ports.SSH:  # an ssh:// repository: Flux needs its key
        source["secretRef"] = {"name": GIT_CREDENTIALS}
    return [
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": _meta(GIT_REPOSITORY, g.namespace),
            "spec": source,
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": _meta(name, g.namespace),
            "spec": {
                "interval": "10m",
                "retryInterval": "2m",
                "timeout": "5m",
                "path": f"./{c.gitops_path}",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": GIT_REPOSITORY},
            },
        },
    ]


def _kustomization(resources: list[str]) -> bytes:
    return dump([{"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}])


def render_cluster(view: ClusterView) -> dict[str, bytes]:
    """The cluster's GitOps tree (clusters/<cluster>/)."""
    files: dict[str, bytes] = {}
    for path, objs in cluster_files(view):
        files[path] = dump(objs)
    files["kustomization.yaml"] = _kustomization(list(files))
    files["node-pools.yaml"] = dump([node_pools(view)])
    return files


def render_platform(view: ClusterView) -> dict[str, bytes]:
    """The cluster's bootstrap platform (bootstrap/<cluster>/platform/): objects, releases, their values."""
    files: dict[str, bytes] = {}
    for path, objs in platform_files(view):
        files[path] = dump(objs)
    files["kustomization.yaml"] = _kustomization(list(files))
    values = helm_values(view)
    releases = [r for r in view.plan.releases if r.cluster == view.cluster.name]
    files["releases.yaml"] = dump(
        [
            {
                "releases": [
                    {
                        "name": r.name,
                        "namespace": r.namespace,
                        "chart": r.chart,
                        "version": r.version,
                        "repository": r.repository,
                        "values": f"helm-values/{r.name}.yaml",
                        "creates": [{"apiVersion": a, "kind": k, "name": n} for a, k, n in r.creates],
                    }
                    for r in releases
                ]
            }
        ]
    )
    for r in releases:
        files[f"helm-values/{r.name}.yaml"] = dump([values.get(r.name, {})])
    return files


def node_pools(view: ClusterView) -> Obj:
    """What the kubelets of each pool register with (documentation for GitOps readers; not applied)."""
    pools = [p for p in view.plan.pools if p.cluster == view.cluster.name]
    return {
        "cluster": view.cluster.name,
        "pools": [
            {
                "name": p.name,
                "purpose": p.purpose,
                "tenant": p.tenant,
                "nodes": p.nodes,
                "gpus": p.gpus,
                "labels": {lb.POOL: p.name, lb.PURPOSE: p.purpose, **({lb.TENANT: p.tenant} if p.tenant else {})},
                "per_node_labels": [lb.HALL, lb.ROW, lb.RACK, lb.SCALABLE_UNIT, lb.NVLINK_DOMAIN],
                "taints": [t.as_flag() for t in lb.pool_taints(p)],
                "join_taints": [lb.Taint(lb.BURN_IN, "pending", "NoSchedule").as_flag()] if p.gpus else [],
            }
            for p in pools
        ],
        "kueue_topology": list(lb.TOPOLOGY_LEVELS),
    }


def render_clusters(plan: Plan) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Every cluster's GitOps tree (under clusters/) and bootstrap platform (under bootstrap/)."""
    trees: dict[str, bytes] = {}
    platforms: dict[str, bytes] = {}
    for c in plan.clusters:
        view = cluster_view(plan, c)
        for path, data in render_cluster(view).items():
            trees[f"{c.name}/{path}"] = data
        for path, data in render_platform(view).items():
            platforms[f"{c.name}/{PLATFORM_DIR}/{path}"] = data
    return trees, platforms
