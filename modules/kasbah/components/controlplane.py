"""A cluster's control plane in the site stack: its health gate and the admin credentials the cluster stack uses.

The control plane itself is node configuration: the management racks' `NodeGroup`s run `site.yml`,
whose `control_plane` role puts the API's virtual IP (keepalived) and load balancer (HAProxy) on the
control-plane hosts, runs `kubeadm init` on the first and control-plane joins on the others (tokens
minted inside the run), and on a declared minor upgrade `kubeadm upgrade` one rack at a time. A
`ControlPlane` resource waits for those racks (`depends_on`), then runs `credentials.yml` on the
cluster's first control-plane host: the API must answer /readyz through the VIP, and its admin
kubeconfig is fetched into a private temporary directory, read and removed. The kubeconfig is the
resource's secret output (`additional_secret_outputs`), exported by the site stack as a secret and
read by the cluster stack through its stack reference: nobody pastes it, and it is in no log.

Its inputs are the cluster's control plane as the Plan gives it (hosts, endpoint, VIP, minor): a
move of any of them (a declared upgrade) reads the credentials again once the racks are done.
Deleting the resource forgets it; the control plane is removed only by a declared decommission.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.dynamic.dynamic import PROVIDER_KEY

from kasbah.planning.model import Cluster

TOKEN = "pulumi-python:dynamic/controlplane:ControlPlane"
# where things are on the machine running pulumi up, and which plan rendered the tree: never a reason to run again
UNDIFFED: tuple[str, ...] = ("tree", "artifacts", "extra_inventories", "phase", "plan_sha256", PROVIDER_KEY)


def props(
    cluster: Cluster, tree: str, artifacts: str, extra_inventories: tuple[str, ...], phase: str, plan_sha256: str
) -> dict[str, Any]:
    """The resource's inputs: the cluster's control plane from the Plan, and where the rendered tree is."""
    return {
        "cluster": cluster.name,
        "seed": cluster.control_plane[0],
        "hosts": list(cluster.control_plane),
        "api": cluster.api_endpoint,
        "vip": cluster.api_vip,
        "version": cluster.kubernetes_version,
        "tree": tree,
        "artifacts": artifacts,
        "extra_inventories": list(extra_inventories),
        "phase": phase,
        "plan_sha256": plan_sha256,
    }


class ControlPlaneProvider(dynamic.ResourceProvider):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        keys = (olds.keys() | news.keys()) - set(UNDIFFED) - {"kubeconfig"}
        changed = sorted(k for k in keys if olds.get(k) != news.get(k))
        return dynamic.DiffResult(changes=bool(changed), replaces=[k for k in changed if k == "cluster"])

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        return dynamic.CreateResult(id_=str(props["cluster"]), outs={**props, "kubeconfig": credentials(props)})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs={**news, "kubeconfig": credentials(news)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Forget it: a control plane is removed only by a declared decommission."""


def credentials(props: Mapping[str, Any]) -> str:
    """The admin kubeconfig of the cluster, fetched from its first control-plane host once its API is ready."""
    from kasbah.rendering.tree import read_marker
    from kasbah.runners.ansible import RunOptions, run_slices

    tree = Path(str(props["tree"]))
    if read_marker(tree).get("plan_sha256") != props["plan_sha256"]:
        raise RuntimeError(
            f"{tree} was rendered from another plan than this program's; "
            f"fix: kasbah render {props['phase']} --out {tree}, then run pulumi up again"
        )
    cluster, seed = str(props["cluster"]), str(props["seed"])
    artifacts = Path(str(props["artifacts"])) / f"control-plane-{cluster}"
    with tempfile.TemporaryDirectory(prefix="kasbah-credentials-") as private:  # mode 0700, removed on exit
        options = RunOptions(
            playbook="credentials",
            limit=seed,
            extra_vars=(f"credentials_dest={private}",),
            extra_inventories=tuple(Path(str(p)) for p in props.get("extra_inventories") or ()),
            parallel=1,
        )
        result = run_slices(tree, options, artifacts)
        if not result.ok:
            raise RuntimeError(
                f"cluster {cluster}: the control plane on {seed} is not ready or its credentials could not be read "
                f"(artifacts {artifacts}):\n  {result.failure_detail()}"
            )
        path = Path(private) / f"{cluster}.conf"
        if not path.is_file():
            raise RuntimeError(
                f"cluster {cluster}: {seed} has no /etc/kubernetes/admin.conf; its kubeadm init did not run"
            )
        text = path.read_text(encoding="utf-8")
    if f"server: https://{props['api']}" not in text:
        raise RuntimeError(
            f"cluster {cluster}: the admin kubeconfig on {seed} does not point at https://{props['api']} (the Plan's "
            "endpoint); the control plane was initialised with another endpoint: fix it on the host, never by hand here"
        )
    return text


_PROVIDER = ControlPlaneProvider()


class ControlPlane(dynamic.Resource, module="controlplane", name="ControlPlane"):
    """`pulumi-python:dynamic/controlplane:ControlPlane`: a cluster's control plane, ready, and its admin credentials."""

    kubeconfig: pulumi.Output[str]

    def __init__(self, resource_name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["kubeconfig"]))
        super().__init__(_PROVIDER, resource_name, {**props, "kubeconfig": None}, opts)
