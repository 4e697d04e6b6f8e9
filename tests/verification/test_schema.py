"""Schema validation of rendered objects: valid campus manifests pass, each kind of mistake is caught at its path."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from kasbah.verification import schema
from kasbah.verification.schema import SchemaIssue, SchemaValidator, UnsupportedKubernetesVersionError
from kasbah.verification.schema.catalog import catalog_for
from kasbah.verification.schema.kubernetes import path_text
from kasbah.verification.schema.structural import Compiled

Obj = dict[str, Any]

# --------------------------------------------------------------------------------------------
# Realistic objects, one per kind kasbah renders. The benchmark reuses them.

NAMESPACE: Obj = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {
        "name": "tenant-telco-a",
        "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
            "kasbah.io/tenant": "telco-a",
            "kasbah.io/jurisdiction": "eu",
        },
        "annotations": {"kasbah.io/rendered-by": "kasbah 0.1.0"},
    },
}

DEFAULT_DENY: Obj = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": "tenant-telco-a"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}

ALLOW_DNS: Obj = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-dns", "namespace": "tenant-telco-a", "labels": {"kasbah.io/rule": "dns"}},
    "spec": {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": "dns-tcp"}],
            }
        ],
    },
}

RESOURCE_QUOTA: Obj = {
    "apiVersion": "v1",
    "kind": "ResourceQuota",
    "metadata": {"name": "compute", "namespace": "tenant-telco-a"},
    "spec": {
        "hard": {
            "requests.cpu": "2000",
            "requests.memory": "16Ti",
            "requests.nvidia.com/gpu": "256",
            "limits.memory": "16Ti",
            "pods": "2000",
            "persistentvolumeclaims": 100,
        }
    },
}

LIMIT_RANGE: Obj = {
    "apiVersion": "v1",
    "kind": "LimitRange",
    "metadata": {"name": "defaults", "namespace": "tenant-telco-a"},
    "spec": {
        "limits": [
            {
                "type": "Container",
                "default": {"cpu": "2", "memory": "8Gi"},
                "defaultRequest": {"cpu": "500m", "memory": "2Gi"},
                "max": {"nvidia.com/gpu": "8"},
            }
        ]
    },
}

ROLE: Obj = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "tenant-operator", "namespace": "tenant-telco-a"},
    "rules": [
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "delete", "get", "list", "watch"]},
    ],
}

ROLE_BINDING: Obj = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "tenant-operator", "namespace": "tenant-telco-a"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant-operator"},
    "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "oidc:telco-a-operators"}],
}

RESOURCE_FLAVOR: Obj = {
    "apiVersion": "kueue.x-k8s.io/v1beta1",
    "kind": "ResourceFlavor",
    "metadata": {"name": "gb200-hall-a"},
    "spec": {
        "nodeLabels": {"nvidia.com/gpu.product": "NVIDIA-GB200", "kasbah.io/hall": "hall-a"},
        "nodeTaints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}],
        "topologyName": "campus-fabric",
    },
}

CLUSTER_QUEUE: Obj = {
    "apiVersion": "kueue.x-k8s.io/v1beta1",
    "kind": "ClusterQueue",
    "metadata": {"name": "telco-a"},
    "spec": {
        "cohort": "phase-1",
        "namespaceSelector": {"matchLabels": {"kasbah.io/tenant": "telco-a"}},
        "queueingStrategy": "BestEffortFIFO",
        "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"},
        "flavorFungibility": {"whenCanBorrow": "Borrow", "whenCanPreempt": "TryNextFlavor"},
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "memory"],
                "flavors": [
                    {
                        "name": "cpu-general",
                        "resources": [
                            {"name": "cpu", "nominalQuota": "1024"},
                            {"name": "memory", "nominalQuota": "8Ti", "borrowingLimit": "2Ti"},
                        ],
                    }
                ],
            },
            {
                "coveredResources": ["nvidia.com/gpu"],
                "flavors": [
                    {"name": "gb200-hall-a", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 512}]},
                    {
                        "name": "gb200-hall-b",
                        "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 256, "lendingLimit": 64}],
                    },
                ],
            },
        ],
    },
}

LOCAL_QUEUE: Obj = {
    "apiVersion": "kueue.x-k8s.io/v1beta1",
    "kind": "LocalQueue",
    "metadata": {"name": "training", "namespace": "tenant-telco-a"},
    "spec": {"clusterQueue": "telco-a", "stopPolicy": "None"},
}

COHORT: Obj = {
    "apiVersion": "kueue.x-k8s.io/v1alpha1",
    "kind": "Cohort",
    "metadata": {"name": "phase-1"},
    "spec": {"parent": "campus", "fairSharing": {"weight": "2"}},
}

TOPOLOGY: Obj = {
    "apiVersion": "kueue.x-k8s.io/v1beta1",
    "kind": "Topology",
    "metadata": {"name": "campus-fabric"},
    "spec": {
        "levels": [
            {"nodeLabel": "kasbah.io/data-hall"},
            {"nodeLabel": "kasbah.io/scalable-unit"},
            {"nodeLabel": "kasbah.io/rack"},
            {"nodeLabel": "kubernetes.io/hostname"},
        ]
    },
}

TENANT_ISOLATION: Obj = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumClusterwideNetworkPolicy",
    "metadata": {"name": "tenant-telco-a-isolation"},
    "spec": {
        "description": "telco-a: default deny, DNS and EU egress only",
        "endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "tenant-telco-a"}},
        "enableDefaultDeny": {"ingress": True, "egress": True},
        "ingress": [{"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "tenant-telco-a"}}]}],
        "ingressDeny": [{"fromEntities": ["world"]}],
        "egress": [
            {
                "toEndpoints": [
                    {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}}
                ],
                "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}],
            },
            {"toCIDRSet": [{"cidr": "198.51.100.0/24", "except": ["198.51.100.128/25"]}]},
            {"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "6443", "protocol": "TCP"}]}]},
        ],
        "egressDeny": [{"toCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["10.64.0.0/16"]}], "toEntities": ["host"]}],
    },
}

HOST_POLICY: Obj = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumClusterwideNetworkPolicy",
    "metadata": {"name": "gpu-node-host-firewall"},
    "spec": {
        "nodeSelector": {"matchLabels": {"nvidia.com/gpu.present": "true"}},
        "ingress": [
            {"fromEntities": ["cluster"]},
            {"fromCIDR": ["192.0.2.0/24"], "toPorts": [{"ports": [{"port": "22", "protocol": "TCP"}]}]},
        ],
        "egress": [{"toEntities": ["cluster", "kube-apiserver"]}],
    },
}

NAMESPACED_POLICY: Obj = {
    "apiVersion": "cilium.io/v2",
    "kind": "CiliumNetworkPolicy",
    "metadata": {"name": "allow-inference-gateway", "namespace": "tenant-telco-a"},
    "spec": {
        "endpointSelector": {"matchLabels": {"app": "vllm"}},
        "ingress": [
            {
                "fromEndpoints": [{"matchLabels": {"app": "gateway"}}],
                "toPorts": [{"ports": [{"port": "8000", "protocol": "TCP"}]}],
            }
        ],
    },
}

CLUSTER_POLICY: Obj = {
    "apiVersion": "nvidia.com/v1",
    "kind": "ClusterPolicy",
    "metadata": {"name": "cluster-policy"},
    "spec": {
        "operator": {"defaultRuntime": "containerd"},
        "daemonsets": {
            "priorityClassName": "system-node-critical",
            "updateStrategy": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "1"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
        "driver": {
            "enabled": True,
            "kernelModuleType": "open",
            "rdma": {"enabled": True, "useHostMofed": False},
            "upgradePolicy": {"autoUpgrade": True, "maxParallelUpgrades": 1, "maxUnavailable": "25%"},
        },
        "toolkit": {"enabled": True, "env": [{"name": "CONTAINERD_RUNTIME_CLASS", "value": "nvidia"}]},
        "devicePlugin": {"enabled": True, "config": {"name": "device-plugin-config", "default": "default"}},
        "dcgm": {"enabled": True},
        "dcgmExporter": {
            "enabled": True,
            "serviceMonitor": {"enabled": True, "interval": "15s", "honorLabels": False},
        },
        "gfd": {"enabled": True},
        "nodeStatusExporter": {"enabled": False},
        "mig": {"strategy": "single"},
        "migManager": {"enabled": False},
        "cdi": {"enabled": True, "default": False},
        "gdrcopy": {"enabled": True},
        "validator": {"plugin": {"env": [{"name": "WITH_WORKLOAD", "value": "false"}]}},
        "psa": {"enabled": True},
    },
}

NVIDIA_DRIVER: Obj = {
    "apiVersion": "nvidia.com/v1alpha1",
    "kind": "NVIDIADriver",
    "metadata": {"name": "gb200-open"},
    "spec": {
        "driverType": "gpu",
        "image": "driver",
        "repository": "nvcr.io/nvidia",
        "version": "570.124.06",
        "kernelModuleType": "open",
        "usePrecompiled": False,
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-GB200"},
        "rdma": {"enabled": True},
        "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}

NIC_CLUSTER_POLICY: Obj = {
    "apiVersion": "mellanox.com/v1alpha1",
    "kind": "NicClusterPolicy",
    "metadata": {"name": "nic-cluster-policy"},
    "spec": {
        "ofedDriver": {
            "image": "doca-driver",
            "repository": "nvcr.io/nvidia/mellanox",
            "version": "25.01-0.6.0.0-0",
            "upgradePolicy": {"autoUpgrade": True, "maxParallelUpgrades": 1, "drain": {"enable": True}},
            "startupProbe": {"initialDelaySeconds": 10, "periodSeconds": 20},
        },
        "rdmaSharedDevicePlugin": {
            "image": "k8s-rdma-shared-dev-plugin",
            "repository": "ghcr.io/mellanox",
            "version": "v1.5.2",
            "config": '{"configList": [{"resourceName": "rdma_shared_device_a", "rdmaHcaMax": 63}]}',
        },
        "secondaryNetwork": {
            "multus": {"image": "multus-cni", "repository": "ghcr.io/k8snetworkplumbingwg", "version": "v4.1.0"},
            "cniPlugins": {"image": "plugins", "repository": "ghcr.io/k8snetworkplumbingwg", "version": "v1.5.0"},
        },
        "nvIpam": {"image": "nvidia-k8s-ipam", "repository": "ghcr.io/mellanox", "version": "v0.3.5"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}

COMPUTE_DOMAIN: Obj = {
    "apiVersion": "resource.nvidia.com/v1beta1",
    "kind": "ComputeDomain",
    "metadata": {"name": "nvl72-rack-a01", "namespace": "tenant-telco-a"},
    "spec": {"numNodes": 0, "channel": {"resourceClaimTemplate": {"name": "nvl72-rack-a01-channel"}}},
}

VALID_OBJECTS: tuple[Obj, ...] = (
    NAMESPACE,
    DEFAULT_DENY,
    ALLOW_DNS,
    RESOURCE_QUOTA,
    LIMIT_RANGE,
    ROLE,
    ROLE_BINDING,
    RESOURCE_FLAVOR,
    CLUSTER_QUEUE,
    LOCAL_QUEUE,
    COHORT,
    TOPOLOGY,
    TENANT_ISOLATION,
    HOST_POLICY,
    NAMESPACED_POLICY,
    CLUSTER_POLICY,
    NVIDIA_DRIVER,
    NIC_CLUSTER_POLICY,
    COMPUTE_DOMAIN,
)


@pytest.fixture(scope="module")
def validator() -> SchemaValidator:
    return SchemaValidator("1.34")


def edited(obj: Obj, path: str | tuple[str | int, ...], value: Any = None, *, delete: bool = False) -> Obj:
    """A deep copy of obj with the field at path set to value (or deleted).

    path is dotted with [n] for list items, or a tuple of keys when a key contains a dot.
    """
    copied = copy.deepcopy(obj)
    keys: list[str | int] = []
    if isinstance(path, tuple):
        keys = list(path)
    else:
        for part in path.replace("[", ".[").split("."):
            keys.append(int(part[1:-1]) if part.startswith("[") else part)
    node: Any = copied
    for key in keys[:-1]:
        node = node[key]
    if delete:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return copied


def only_issue(validator: SchemaValidator, obj: Obj) -> SchemaIssue:
    issues = validator.validate(obj, "phase-1/tenants.yaml")
    assert len(issues) == 1, "\n".join(str(i) for i in issues)
    return issues[0]


# --------------------------------------------------------------------------------------------
# Valid objects pass.


@pytest.mark.parametrize("obj", VALID_OBJECTS, ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
@pytest.mark.parametrize("version", ["1.33", "1.34", "1.35"])
def test_valid_objects_pass(obj: Obj, version: str) -> None:
    assert SchemaValidator(version).validate(obj) == []


def test_every_vendored_crd_kind_is_known(validator: SchemaValidator) -> None:
    known = set(validator.known_kinds())
    for obj in VALID_OBJECTS:
        assert f"{obj['apiVersion']} {obj['kind']}" in known


@pytest.mark.parametrize("version", schema.supported_kubernetes_versions())
def test_every_known_kind_compiles(version: str) -> None:
    # An unsupported JSON Schema keyword in any upstream schema would raise here.
    validator = SchemaValidator(version)
    for api_version_kind in validator.known_kinds():
        api_version, kind = api_version_kind.split(" ")
        issues = validator.validate({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}})
        assert not any(i.path == "apiVersion" for i in issues), issues


def test_issue_renders_source_object_path_and_message(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(LOCAL_QUEUE, "spec.stopPolicy", "Pause"))
    assert str(issue) == (
        'phase-1/tenants.yaml: LocalQueue/training at spec.stopPolicy: "Pause" is not one of: None, Hold, HoldAndDrain'
    )
    assert (issue.source, issue.kind, issue.name) == ("phase-1/tenants.yaml", "LocalQueue", "training")


# --------------------------------------------------------------------------------------------
# Each kind of mistake, with its exact path.


def test_unknown_field_in_builtin_kind(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(DEFAULT_DENY, "spec.podSelecter", {}))
    assert issue.path == "spec.podSelecter"
    assert 'unknown field "podSelecter" (did you mean "podSelector"?)' in issue.message


def test_unknown_field_in_custom_resource(validator: SchemaValidator) -> None:
    obj = edited(CLUSTER_QUEUE, "spec.resourceGroups[1].flavors[1].resources[0].nominalQuotas", 8)
    issue = only_issue(validator, obj)
    assert issue.path == "spec.resourceGroups[1].flavors[1].resources[0].nominalQuotas"
    assert 'did you mean "nominalQuota"?' in issue.message


def test_unknown_field_lists_allowed_fields_when_nothing_is_close(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(COMPUTE_DOMAIN, "spec.channel.imex", True))
    assert issue.path == "spec.channel.imex"
    assert issue.message == 'unknown field "imex"; allowed fields: allocationMode, resourceClaimTemplate'


def test_wrong_type_in_builtin_kind(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(ALLOW_DNS, "spec.egress[0].ports[0].protocol", 17))
    assert issue.path == "spec.egress[0].ports[0].protocol"
    assert issue.message == "expected string, got integer 17"


def test_wrong_type_in_custom_resource(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(COMPUTE_DOMAIN, "spec.numNodes", "4"))
    assert issue.path == "spec.numNodes"
    assert issue.message == 'expected integer, got string "4"'


def test_int_or_string_quantity_rejects_other_types(validator: SchemaValidator) -> None:
    obj = edited(CLUSTER_QUEUE, "spec.resourceGroups[1].flavors[1].resources[0].nominalQuota", True)
    issue = only_issue(validator, obj)
    assert issue.path == "spec.resourceGroups[1].flavors[1].resources[0].nominalQuota"
    assert issue.message == "expected integer or string, got boolean true"


def test_quantity_string_is_checked(validator: SchemaValidator) -> None:
    crd = only_issue(
        validator, edited(CLUSTER_QUEUE, "spec.resourceGroups[0].flavors[0].resources[1].nominalQuota", "8TB")
    )
    assert crd.path == "spec.resourceGroups[0].flavors[0].resources[1].nominalQuota"
    assert '"8TB" is not a valid quantity' in crd.message
    core = only_issue(validator, edited(RESOURCE_QUOTA, ("spec", "hard", "requests.memory"), "16 Ti"))
    assert core.path == 'spec.hard["requests.memory"]'
    assert core.message.startswith('"16 Ti" is not a valid quantity')


def test_builtin_int_or_string(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(ALLOW_DNS, "spec.egress[0].ports[0].port", 53.5))
    assert issue.path == "spec.egress[0].ports[0].port"
    assert issue.message == "expected an integer or a string, got number 53.5"


def test_missing_required_field_in_custom_resource(validator: SchemaValidator) -> None:
    obj = edited(CLUSTER_QUEUE, "spec.resourceGroups[1].flavors[1].resources[0].nominalQuota", delete=True)
    issue = only_issue(validator, obj)
    assert issue.path == "spec.resourceGroups[1].flavors[1].resources[0].nominalQuota"
    assert issue.message == "required field is missing"


def test_required_field_set_to_null_counts_as_missing(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(ROLE_BINDING, "roleRef.name", None))
    assert issue.path == "roleRef.name"
    assert issue.message == "required field is null"


def test_missing_required_field_in_builtin_kind(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(ROLE_BINDING, "roleRef.kind", delete=True))
    assert issue.path == "roleRef.kind"
    assert issue.message == "required field is missing"


def test_bad_enum(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(TENANT_ISOLATION, "spec.egress[2].toEntities[0]", "apiserver"))
    assert issue.path == "spec.egress[2].toEntities[0]"
    assert issue.message.startswith('"apiserver" is not one of: all, world, cluster, host')


def test_bad_cidr_pattern(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(TENANT_ISOLATION, "spec.egressDeny[0].toCIDRSet[0].except[0]", "10.64.0.0/40"))
    assert issue.path == "spec.egressDeny[0].toCIDRSet[0].except[0]"
    assert issue.message == '"10.64.0.0/40" is not a valid IPv4 or IPv6 CIDR (e.g. 10.0.0.0/8, fd00::/8)'


def test_endpoint_and_node_selector_are_exclusive(validator: SchemaValidator) -> None:
    both = only_issue(validator, edited(HOST_POLICY, "spec.endpointSelector", {}))
    assert both.path == "spec"
    assert both.message == "set only one of endpointSelector, nodeSelector (found endpointSelector, nodeSelector)"
    neither = only_issue(validator, edited(HOST_POLICY, "spec.nodeSelector", delete=True))
    assert neither.message == "set exactly one of: endpointSelector, nodeSelector"


def test_duplicate_key_in_map_list(validator: SchemaValidator) -> None:
    obj = edited(CLUSTER_QUEUE, "spec.resourceGroups[1].flavors[1].name", "gb200-hall-a")
    issue = only_issue(validator, obj)
    assert issue.path == "spec.resourceGroups[1].flavors[1]"
    assert issue.message == 'duplicate entry name="gb200-hall-a" (first at [0])'


def test_bounds_and_lengths(validator: SchemaValidator) -> None:
    levels = [{"nodeLabel": f"kasbah.io/level-{n}"} for n in range(9)]
    issue = only_issue(validator, edited(TOPOLOGY, "spec.levels", levels))
    assert issue.path == "spec.levels"
    assert issue.message == "must have at most 8 items (has 9)"
    probe = only_issue(validator, edited(CLUSTER_POLICY, "spec.driver.startupProbe", {"periodSeconds": 0}))
    assert probe.path == "spec.driver.startupProbe.periodSeconds"
    assert probe.message == "must be at least 1 (got 0)"


# --------------------------------------------------------------------------------------------
# Metadata and scope.


def test_namespace_on_cluster_scoped_kind(validator: SchemaValidator) -> None:
    for obj in (NAMESPACE, CLUSTER_QUEUE, TENANT_ISOLATION, CLUSTER_POLICY):
        issue = only_issue(validator, edited(obj, "metadata.namespace", "tenant-telco-a"))
        assert issue.path == "metadata.namespace"
        assert f'{obj["kind"]} is cluster-scoped and takes no namespace; remove "tenant-telco-a"' == issue.message


def test_namespaced_kind_without_namespace(validator: SchemaValidator) -> None:
    for obj in (LOCAL_QUEUE, ROLE, NAMESPACED_POLICY, COMPUTE_DOMAIN):
        issue = only_issue(validator, edited(obj, "metadata.namespace", delete=True))
        assert issue.path == "metadata.namespace"
        assert issue.message.startswith(f"{obj['kind']} is namespaced; set metadata.namespace")


def test_metadata_name_rules(validator: SchemaValidator) -> None:
    missing = only_issue(validator, edited(COHORT, "metadata.name", delete=True))
    assert (missing.path, missing.name) == ("metadata.name", "")
    assert missing.message.startswith("required field is missing")
    subdomain = only_issue(validator, edited(CLUSTER_QUEUE, "metadata.name", "Telco_A"))
    assert subdomain.path == "metadata.name"
    assert subdomain.message.startswith('"Telco_A" must be a DNS-1123 subdomain')
    label = only_issue(validator, edited(NAMESPACE, "metadata.name", "tenant.telco-a"))
    assert label.message.startswith('"tenant.telco-a" must be a DNS-1123 label')
    assert validator.validate(edited(ROLE, "metadata.name", "system:tenant-operator")) == []


def test_label_and_annotation_maps(validator: SchemaValidator) -> None:
    value = only_issue(validator, edited(NAMESPACE, ("metadata", "labels", "kasbah.io/tenant"), "telco a"))
    assert value.path == 'metadata.labels["kasbah.io/tenant"]'
    assert value.message.startswith('label value "telco a" must be empty or alphanumerics')
    bad_value = only_issue(validator, edited(NAMESPACE, "metadata.labels", {"kasbah.io/tier": "gold silver"}))
    assert bad_value.path == 'metadata.labels["kasbah.io/tier"]'
    assert bad_value.message.startswith('label value "gold silver" must be empty or alphanumerics')
    bad_key = only_issue(validator, edited(NAMESPACE, "metadata.labels", {"-tier": "gold"}))
    assert bad_key.path == 'metadata.labels["-tier"]'
    assert bad_key.message.startswith('invalid label key "-tier"')
    not_string = only_issue(validator, edited(NAMESPACE, "metadata.annotations", {"kasbah.io/phase": 1}))
    assert not_string.path == 'metadata.annotations["kasbah.io/phase"]'
    assert not_string.message == "expected string, got integer 1"


def test_custom_resource_metadata_is_strict_object_meta(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(RESOURCE_FLAVOR, "metadata.label", {"a": "b"}))
    assert issue.path == "metadata.label"
    assert 'did you mean "labels"?' in issue.message


# --------------------------------------------------------------------------------------------
# Unknown kinds, versions of Kubernetes, lists.


def test_unknown_version_of_known_kind(validator: SchemaValidator) -> None:
    issue = only_issue(validator, edited(CLUSTER_QUEUE, "apiVersion", "kueue.x-k8s.io/v1beta2"))
    assert issue.path == "apiVersion"
    assert issue.message == (
        "no schema for kueue.x-k8s.io/v1beta2 ClusterQueue in Kubernetes 1.34; "
        "ClusterQueue is served at kueue.x-k8s.io/v1beta1"
    )


def test_unknown_kind_in_known_group_lists_the_group(validator: SchemaValidator) -> None:
    obj = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Foo", "metadata": {"name": "x"}}
    issue = only_issue(validator, obj)
    assert issue.message.startswith(
        "no schema for kueue.x-k8s.io/v1beta2 Foo in Kubernetes 1.34; known in kueue.x-k8s.io:"
    )
    assert "v1beta1 ClusterQueue" in issue.message
    assert "v1beta1 Topology" in issue.message


def test_unknown_group_lists_known_groups(validator: SchemaValidator) -> None:
    issue = only_issue(validator, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}})
    assert "known API groups:" in issue.message
    assert "cilium.io" in issue.message


def test_missing_api_version_and_non_mapping(validator: SchemaValidator) -> None:
    issue = only_issue(validator, {"kind": "Namespace", "metadata": {"name": "x"}})
    assert (issue.path, issue.message) == ("apiVersion", "required field is missing (e.g. apps/v1)")
    assert validator.validate(["not", "an", "object"])[0].message.startswith("expected a Kubernetes object")  # type: ignore[arg-type]


def test_field_added_in_a_later_kubernetes_version() -> None:
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nccl-test", "namespace": "tenant-telco-a"},
        "spec": {
            "hostnameOverride": "nccl-0",
            "containers": [{"name": "nccl", "image": "nvcr.io/nvidia/pytorch:25.01-py3"}],
        },
    }
    assert SchemaValidator("1.34").validate(pod) == []
    issue = only_issue(SchemaValidator("1.33"), pod)
    assert issue.path == "spec.hostnameOverride"
    assert issue.message.startswith('unknown field "hostnameOverride"')


def test_api_version_added_in_a_later_kubernetes_version() -> None:
    device_class: Obj = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": "gpu.nvidia.com"},
        "spec": {"selectors": [{"cel": {"expression": "device.driver == 'gpu.nvidia.com'"}}]},
    }
    assert SchemaValidator("1.34").validate(device_class) == []
    issue = only_issue(SchemaValidator("1.33"), device_class)
    assert issue.path == "apiVersion"
    assert "DeviceClass is served at resource.k8s.io/v1alpha3, resource.k8s.io/v1beta1" in issue.message


def test_unsupported_kubernetes_version_lists_supported_ones() -> None:
    with pytest.raises(
        UnsupportedKubernetesVersionError, match=r"'1\.20' is not supported; supported versions: .*1\.33, 1\.34, 1\.35"
    ):
        SchemaValidator("1.20")
    assert SchemaValidator("v1.35.2").kubernetes_version == "1.35"


def test_list_items_are_validated_with_their_index(validator: SchemaValidator) -> None:
    bad = edited(LOCAL_QUEUE, "spec.clusterQueue", "Telco A")
    issues = validator.validate({"apiVersion": "v1", "kind": "List", "items": [NAMESPACE, bad]})
    assert [(i.kind, i.path) for i in issues] == [("LocalQueue", "items[1].spec.clusterQueue")]


def test_validate_all_keeps_document_order(validator: SchemaValidator) -> None:
    docs = [edited(ROLE, "metadata.namespace", delete=True), NAMESPACE, edited(COHORT, "spec.parent", "A")]
    issues = validator.validate_all(docs, "x.yaml")
    assert [(i.kind, i.path) for i in issues] == [("Role", "metadata.namespace"), ("Cohort", "spec.parent")]


# --------------------------------------------------------------------------------------------
# Structural-schema rules, on small schemas through the compiler.


def compiled(node: dict[str, Any]) -> Compiled:
    return catalog_for("1.34").engine.structural(node)


def run(check: Compiled, value: Any) -> list[tuple[str, str]]:
    return [(path_text(p), m) for p, m in check.check(value)]


def test_preserve_unknown_fields_allows_undeclared_keys() -> None:
    check = compiled(
        {
            "type": "object",
            "properties": {"known": {"type": "string"}},
            "x-kubernetes-preserve-unknown-fields": True,
        }
    )
    assert run(check, {"known": "a", "extra": {"anything": [1, 2]}}) == []
    assert run(check, {"known": 1}) == [("known", "expected string, got integer 1")]


def test_object_without_properties_takes_no_fields_in_structural_schema() -> None:
    check = compiled({"type": "object", "properties": {"spec": {"type": "object"}}})
    assert run(check, {"spec": {"x": 1}}) == [("spec.x", 'unknown field "x": this object takes no fields here')]


def test_embedded_resource_needs_api_version_and_kind() -> None:
    check = compiled(
        {
            "type": "object",
            "properties": {
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                }
            },
        }
    )
    assert run(check, {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {}}}) == []
    assert run(check, {"template": {"apiVersion": "v1", "spec": {}}}) == [
        ("template.kind", "required field is missing (embedded objects need apiVersion and kind)")
    ]


def test_nullable_and_int_or_string() -> None:
    check = compiled(
        {
            "type": "array",
            "items": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        }
    )
    assert run(check, [1, "25%"]) == []
    assert run(check, [None]) == [("[0]", "expected integer or string, got null")]
    nullable = compiled({"type": "array", "items": {"type": "string", "nullable": True}})
    assert run(nullable, ["a", None]) == []


def test_update_script_keeps_fields_named_like_dropped_keywords() -> None:
    from tests.verification.update_crds import compact_crd

    crd = {
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget"},
            "scope": "Cluster",
            "versions": [
                {"name": "v1alpha1", "served": False, "schema": {"openAPIV3Schema": {"type": "object"}}},
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "description": "dropped",
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "x-kubernetes-validations": [{"rule": "self == oldSelf"}],
                                    "properties": {
                                        "description": {"type": "string", "description": "kept as a field"},
                                        "default": {"type": "boolean", "default": False},
                                    },
                                },
                                "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                            },
                        }
                    },
                },
            ],
        }
    }
    assert compact_crd(crd) == {
        "group": "example.com",
        "kind": "Widget",
        "scope": "Cluster",
        "versions": [
            {
                "name": "v1",
                "storage": True,
                "schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "x-kubernetes-validations": [{"rule": "self == oldSelf"}],  # CEL rules are kept
                            "properties": {"description": {"type": "string"}, "default": {"type": "boolean"}},
                        },
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                },
            }
        ],
    }


def _topology(*levels: str, api: str = "kueue.x-k8s.io/v1beta1") -> Obj:
    return {
        "apiVersion": api,
        "kind": "Topology",
        "metadata": {"name": "default"},
        "spec": {"levels": [{"nodeLabel": level} for level in levels]},
    }


def test_crd_cel_rules_are_evaluated(validator: SchemaValidator) -> None:
    """Kueue's Topology carries CEL rules the API server evaluates on create; so does verify."""
    assert validator.validate(_topology("kasbah.io/hall", "kasbah.io/rack", "kubernetes.io/hostname")) == []
    (issue,) = validator.validate(_topology("kubernetes.io/hostname", "kasbah.io/rack"))
    assert issue.path == "spec.levels"
    assert issue.message.startswith("the kubernetes.io/hostname label can only be used at the lowest level of topology")
    (issue,) = validator.validate(_topology("kasbah.io/rack", "kasbah.io/rack"))
    assert issue.message.startswith("must be unique (CEL: ")


def test_cel_waits_for_the_structure_and_skips_transition_rules(validator: SchemaValidator) -> None:
    """No CEL verdict on a value the schema already refused; `self == oldSelf` (update only) passes on create."""
    (issue,) = validator.validate(_topology())
    assert "at least 1 item" in issue.message
    bad = _topology("kasbah.io/rack")
    bad["spec"]["levels"][0]["nodeLabel"] = 7
    assert all("CEL" not in i.message for i in validator.validate(bad))


def test_a_version_the_pinned_release_no_longer_serves_is_named(validator: SchemaValidator) -> None:
    (issue,) = validator.validate(_topology("kasbah.io/rack", api="kueue.x-k8s.io/v1alpha1"))
    assert "Topology is served at kueue.x-k8s.io/v1beta1" in issue.message


# --------------------------------------------------------------------------------------------
# The pre-pass: what plain JSON Schema lacks, on small CRD schemas, with values that pass and fail.


def test_int_or_string_in_a_crd() -> None:
    check = compiled(
        {
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "target": {"type": "string", "format": "int-or-string"},
            },
        }
    )
    assert run(check, {"port": 8080, "target": "http"}) == []
    assert run(check, {"port": "http", "target": 8080}) == []
    assert run(check, {"port": True}) == [("port", "expected integer or string, got boolean true")]
    assert run(check, {"target": 1.5}) == [("target", "expected integer or string, got number 1.5")]
    assert run(check, {"port": {"a": 1}}) == [("port", "expected integer or string, got object {a}")]


def test_preserve_unknown_fields_stops_at_a_declared_object_that_does_not_preserve() -> None:
    check = compiled(
        {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
        }
    )
    assert run(check, {"anything": [1], "spec": {"size": 3}}) == []
    assert run(check, {"spec": {"size": 3, "sise": 4}}) == [
        ("spec.sise", 'unknown field "sise" (did you mean "size"?)')
    ]


def test_list_map_keys_and_sets_are_unique() -> None:
    check = compiled(
        {
            "type": "object",
            "properties": {
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["port", "protocol"],
                    "items": {
                        "type": "object",
                        "properties": {"port": {"type": "integer"}, "protocol": {"type": "string"}},
                    },
                },
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            },
        }
    )
    ports = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert run(check, {"ports": ports, "tags": ["a", "b"]}) == []
    assert run(check, {"ports": [*ports, {"port": 53, "protocol": "UDP"}]}) == [
        ("ports[2]", 'duplicate entry port=53, protocol="UDP" (first at [0])')
    ]
    assert run(check, {"tags": ["a", "b", "a"]}) == [("tags[2]", 'duplicate entry "a" (first at [0])')]


def test_null_fields_are_dropped_unless_required() -> None:
    check = compiled(
        {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "size": {"type": "integer", "minimum": 1}},
        }
    )
    assert run(check, {"name": "a", "size": None, "other": None}) == []
    assert run(check, {"name": None}) == [("name", "required field is null")]
    assert run(check, {"size": 2}) == [("name", "required field is missing")]
    assert run(check, {"name": "a", "size": 0}) == [("size", "must be at least 1 (got 0)")]


def test_integer_formats_bounds_and_exclusive_minimum() -> None:
    check = compiled(
        {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "format": "int32"},
                "weight": {"type": "integer", "format": "int32", "minimum": 0, "exclusiveMinimum": True},
            },
        }
    )
    assert run(check, {"replicas": 2**31 - 1, "weight": 1}) == []
    assert run(check, {"replicas": 2**31}) == [
        ("replicas", "2147483648 does not fit in int32 (-2147483648..2147483647)")
    ]
    assert run(check, {"weight": 0}) == [("weight", "must be greater than 0 (got 0)")]
    assert sorted(run(check, {"weight": -(2**40)})) == [
        ("weight", "-1099511627776 does not fit in int32 (-2147483648..2147483647)"),
        ("weight", "must be greater than 0 (got -1099511627776)"),
    ]
    # A number with no fraction is an integer, as it is on the way to the API server: kubectl, server-side apply
    # and the GitOps appliers turn YAML into JSON, where 3.0 is sent as 3 (a live 1.20 server stored a
    # Deployment's `replicas: 1.0` applied server-side as 1), and kube-openapi's structural validation takes
    # an integral float for `integer`. The old compiler refused 1.0, stricter than anything that applies it.
    assert run(check, {"replicas": 3.0}) == []


def test_string_formats_the_api_server_enforces() -> None:
    check = compiled(
        {
            "type": "object",
            "properties": {
                "at": {"type": "string", "format": "date-time"},
                "host": {"type": "string", "format": "idn-hostname"},  # not enforced: accepted
            },
        }
    )
    assert run(check, {"at": "2025-01-31T12:00:00Z", "host": "not a hostname!"}) == []
    assert run(check, {"at": "yesterday"}) == [
        ("at", '"yesterday" is not an RFC 3339 date-time (e.g. 2025-01-31T12:00:00Z)')
    ]


def test_yaml_dates_and_keys_that_are_not_strings() -> None:
    """A YAML loader makes dates and integer keys; they are checked as kubectl would send them, shown as written."""
    check = compiled(
        {
            "type": "object",
            "properties": {
                "at": {"type": "string", "format": "date-time"},
                "mode": {"type": "string", "enum": ["On", "Off"]},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    )
    assert run(check, {"at": datetime.datetime(2025, 1, 31, 12, 0, tzinfo=datetime.UTC), "labels": {1: "a"}}) == []
    assert run(check, {"mode": datetime.date(2025, 1, 31), "labels": {2: 3}}) == [
        ("mode", '"2025-01-31" is not one of: On, Off'),
        ('labels["2"]', "expected string, got integer 3"),
    ]
    assert run(check, {"at": "2025-01-31T12:00:00Z", 7: "x"}) == [
        ('["7"]', 'unknown field "7"; allowed fields: at, labels, mode')
    ]


def test_embedded_resource_with_an_empty_kind_and_unknown_metadata() -> None:
    check = compiled(
        {
            "type": "object",
            "properties": {"template": {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {}}},
        }
    )
    assert run(check, {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}}) == []
    assert run(check, {"template": {"apiVersion": "v1", "kind": ""}}) == [
        ("template.kind", "required field is missing (embedded objects need apiVersion and kind)")
    ]
    issues = run(check, {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"nane": "x"}}})
    assert issues == [("template.metadata.nane", 'unknown field "nane" (did you mean "name"?)')]


def test_alternatives_that_are_not_field_choices_name_the_closest() -> None:
    check = compiled(
        {
            "type": "object",
            "properties": {
                "size": {
                    "oneOf": [
                        {"type": "object", "required": ["gpus"], "properties": {"gpus": {"type": "integer"}}},
                        {"type": "string", "minLength": 3},
                    ]
                },
                "not": {"not": {"type": "string"}},
            },
        }
    )
    assert run(check, {"size": {"gpus": 8}, "not": 1}) == []
    assert run(check, {"size": {"gpus": "8"}}) == [
        ("size", 'matches none of the 2 allowed forms (closest: size.gpus: expected integer, got string "8")')
    ]
    assert run(check, {"not": "x"}) == [("not", '"x" matches a schema it must not match')]


def test_cel_verdicts_are_kept_per_value(validator: SchemaValidator) -> None:
    bad = _topology("kubernetes.io/hostname", "kasbah.io/rack")
    first = validator.validate(bad)
    assert first and validator.validate(copy.deepcopy(bad)) == first
    assert validator.validate(_topology("kasbah.io/rack", "kubernetes.io/hostname")) == []
