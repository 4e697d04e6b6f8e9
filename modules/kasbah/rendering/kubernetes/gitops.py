"""gitops.yaml of the bootstrap platform: the controller's object that syncs the cluster's tree from the published branch."""

from __future__ import annotations

from kasbah.planning import ports
from kasbah.planning.tenancy import ClusterView
from kasbah.rendering.kubernetes.objects import Obj, gitops_of, metadata

GIT_REPOSITORY = "kasbah"  # Flux's GitRepository of the published branch
GIT_CREDENTIALS = "kasbah-git"  # the Secret an ssh:// repository's key is in (never rendered)


def sync_objects(view: ClusterView) -> list[Obj]:
    """The controller's object that syncs this cluster's tree from the published branch."""
    g, c = gitops_of(view), view.cluster
    name = f"kasbah-{c.name}"
    if g.controller == "argocd":
        return [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": metadata(name, g.namespace),
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
            "metadata": metadata(GIT_REPOSITORY, g.namespace),
            "spec": source,
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": metadata(name, g.namespace),
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
