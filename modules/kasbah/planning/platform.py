"""The platform every cluster runs and who owns each part of it: Helm releases and the GitOps controller. Pure.

Ownership (DESIGN.md, "One owner per object"): the cluster stack (Pulumi) owns the infrastructure
and bootstrap of a cluster: the namespaces that are not a tenant's, the Helm releases below with
their pinned charts, the GitOps controller, its own namespace's network policies and its sync
object. The GitOps controller owns every other in-cluster object of the rendered tree. A Helm
release also owns what its chart creates (`Release.creates`): such an object is never rendered
into the GitOps tree.

Which releases exist, their namespaces and what CRDs they bring is kasbah's design and lives here;
where each chart comes from and which version is pinned is the environment's (`platform.charts`).
"""

from __future__ import annotations

from dataclasses import dataclass

from kasbah.config.models import GitOpsController

BOOTSTRAP = "bootstrap"
GITOPS = "gitops"
OWNERS = (BOOTSTRAP, GITOPS)


@dataclass(frozen=True, slots=True)
class ReleaseSpec:
    """A Helm release of the platform."""

    name: str
    namespace: str
    crd_groups: tuple[str, ...]  # API groups whose CRDs the chart installs
    # objects the chart itself creates, (apiVersion, kind, name): the release owns them
    creates: tuple[tuple[str, str, str], ...] = ()


RELEASES: dict[str, ReleaseSpec] = {
    s.name: s
    for s in (
        ReleaseSpec("cilium", "kube-system", ("cilium.io",)),
        ReleaseSpec("kueue", "kueue-system", ("kueue.x-k8s.io",)),
        # The GPU Operator's chart renders its ClusterPolicy from the chart values (NVIDIA GPU Operator docs,
        # "Upgrading": the cluster policy is patched with updates from values.yaml): the release owns it.
        ReleaseSpec(
            "gpu-operator", "gpu-operator", ("nvidia.com",), (("nvidia.com/v1", "ClusterPolicy", "cluster-policy"),)
        ),
        # deployCR stays false: the NicClusterPolicy is the GitOps tree's, not the chart's
        ReleaseSpec("network-operator", "network-operator", ("mellanox.com",)),
        ReleaseSpec("nvidia-dra-driver-gpu", "nvidia-dra-driver-gpu", ("resource.nvidia.com",)),
        ReleaseSpec("argo-cd", "argocd", ("argoproj.io",)),
        ReleaseSpec("flux2", "flux-system", ("source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io")),
    )
}
# Every cluster runs these; NVL72 clusters add the DRA driver; the GitOps controller is the site's choice.
BASE_RELEASES = ("cilium", "kueue", "gpu-operator", "network-operator")
DRA_RELEASE = "nvidia-dra-driver-gpu"


@dataclass(frozen=True, slots=True)
class Controller:
    """A GitOps controller: the release that installs it and the name it server-side-applies under."""

    kind: GitOpsController
    release: str
    # Argo CD: `argocd-controller` (common.ArgoCDSSAManager, with the ServerSideApply=true sync option);
    # Flux: `kustomize-controller` (its controller name, the ssa.Owner field of every apply)
    field_manager: str
    # the annotation that keeps the controller from pruning an object the tree no longer holds
    # (a tenant's namespace: its workloads and volumes leave by a declared decommission, not a sync)
    keep: tuple[str, str]

    @property
    def namespace(self) -> str:
        return RELEASES[self.release].namespace


CONTROLLERS = {
    GitOpsController.ARGOCD: Controller(
        GitOpsController.ARGOCD, "argo-cd", "argocd-controller", ("argocd.argoproj.io/sync-options", "Prune=false")
    ),
    GitOpsController.FLUX: Controller(
        GitOpsController.FLUX, "flux2", "kustomize-controller", ("kustomize.toolkit.fluxcd.io/prune", "disabled")
    ),
}


def controller_of(name: str) -> Controller:
    """The controller a Plan names (`GitOpsSource.controller`)."""
    return CONTROLLERS[GitOpsController(name)]


def required_releases(controller: GitOpsController, nvl72: bool) -> tuple[str, ...]:
    return (*BASE_RELEASES, *((DRA_RELEASE,) if nvl72 else ()), CONTROLLERS[controller].release)
