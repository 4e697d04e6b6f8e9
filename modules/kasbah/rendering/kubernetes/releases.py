"""releases.yaml and helm-values/<release>.yaml of the bootstrap platform: the pinned charts and their values.

The releases install the CRDs and controllers the manifests need (Cilium, Kueue, the NVIDIA operators,
the DRA driver of NVL72 pools, the GitOps controller); only those the Plan lists for the cluster.
"""

from __future__ import annotations

import yaml

from kasbah.planning import labels as lb
from kasbah.planning.model import HelmRelease
from kasbah.planning.tenancy import ClusterView
from kasbah.rendering.kubernetes.nvidia import DCGM_HOSTENGINE, gpu_pool_affinity, nvl72_pools, operator_tolerations
from kasbah.rendering.kubernetes.objects import Obj


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
                        # per-queue usage and quota series: what tenants' metering reads (rendering.metering)
                        "metrics": {"enableClusterQueueResources": True},
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
                "tolerations": operator_tolerations(view),
                "affinity": {
                    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": gpu_pool_affinity(nvl72)}
                },
            },
        }
    wanted = {r.name for r in view.plan.releases if r.cluster == view.cluster.name}
    return {name: v for name, v in values.items() if name in wanted}


def gpu_operator_values(view: ClusterView) -> Obj:
    """The GPU Operator's values: its chart renders the ClusterPolicy from them over the host's NVIDIA stack."""
    return {
        "operator": {"defaultRuntime": "containerd"},
        "daemonsets": {"tolerations": operator_tolerations(view), "priorityClassName": "system-node-critical"},
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


def releases(view: ClusterView) -> Obj:
    """releases.yaml: the cluster's releases, each with its chart, version, values file and the kinds it creates."""
    return {
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
            for r in cluster_releases(view)
        ]
    }


def cluster_releases(view: ClusterView) -> list[HelmRelease]:
    """The Plan's releases of the cluster, in the Plan's order."""
    return [r for r in view.plan.releases if r.cluster == view.cluster.name]
