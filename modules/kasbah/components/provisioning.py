"""Day 0 in Pulumi: one resource per rack that brings the rack's hardware to a deployed OS through Ironic.

A `RackProvisioning` is the rack's nodes as Ironic must know them (from the Plan and the rack's
hardware manifest: name, BMC address and system, MACs, the node's network configuration). Its
create and update run the same converging provisioner as `kasbah provision`
(`kasbah.runners.ironic.Provisioner`) on the rack's nodes: enrol, manage, provide, and, when the
site's node image is deployed, active with each node's configuration drive. The rack's
`NodeGroup` depends on it, so `pulumi up` goes from a powered, cabled rack to a configured node:
the playbooks only run once every node of the rack answers on its Plan address.

- A tray replaced in its slot (serial or MACs changed in the manifest) changes the resource's
  input: the update undeploys that node alone, rewrites its ports and deploys it again; its
  `NodeGroup` then commissions it again, burn-in included.
- A node that fails stops the rack (the resource fails with each failed node, its error and the
  fix; the rack's other nodes are provisioned all the same): a rack is the unit the playbooks and
  the NVLink domain work on. The next `pulumi up` converges from wherever Ironic is.
- Deleting the resource forgets it. Nodes are torn down only by a declared act (`baremetal node
  undeploy`, the decommission playbook), never as a side effect of a program change.
- The BMC password is read, when the provider runs, from the mode-600 file the stack names
  (`kasbah:bmcCredentials`): it is in no input, output, state or log. Ironic stores it and masks it.
- The image of an already deployed node is not changed by an input change: re-imaging running
  nodes is a rolling change of its own (Ironic's rebuild), not a side effect of a new image URL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.dynamic.dynamic import PROVIDER_KEY

from kasbah.planning.model import Plan
from kasbah.runners.ironic import Target

# where Ironic and the credentials are on the machine running `pulumi up`, and how hard to push it:
# never a reason to provision again
UNDIFFED: tuple[str, ...] = ("ironic", "credentials", "workers", "timeout", PROVIDER_KEY)


@dataclass(frozen=True)
class ProvisionRun:
    """How the stack reaches Ironic and what `provisioned` means (stack config `kasbah:ironic` and friends)."""

    ironic: str  # Ironic's API, e.g. http://ironic.lab1.example:6385
    credentials: str  # the BMC credentials file (mode 600), on the machine running pulumi up
    image: tuple[str, str, str] | None  # (kind, url, checksum): deploy it; None: stop at `available`
    ssh_keys: tuple[str, ...] = ()  # public keys the configuration drive authorises for root
    workers: int = 8
    timeout: float = 3600.0


@dataclass(frozen=True)
class Day0:
    """A phase's provisioning in the stacks: how to reach Ironic, and each rack's nodes (computed once per program)."""

    run: ProvisionRun
    racks: Mapping[str, tuple[Target, ...]]  # rack -> its nodes; racks without a manifest are not here

    @classmethod
    def of(cls, plan: Plan, run: ProvisionRun) -> Day0:
        from kasbah.runners.ironic import targets

        found, _missing = targets(plan)
        racks: dict[str, list[Target]] = {}
        for t in found:
            racks.setdefault(t.rack, []).append(t)
        return cls(run, {rack: tuple(ts) for rack, ts in racks.items()})

    def props(self, rack: str) -> dict[str, Any]:
        """The rack's resource inputs: what its nodes are, and where they are provisioned from."""
        return props(rack, self.racks[rack], self.run)


def props(rack: str, nodes: Sequence[Target], run: ProvisionRun) -> dict[str, Any]:
    """The resource's inputs: what the rack's nodes are, and where they are provisioned from."""
    kind, url, checksum = run.image or (None, None, None)
    return {
        "rack": rack,
        "nodes": [_node(t) for t in sorted(nodes, key=lambda t: t.name)],
        "goal": "active" if run.image else "available",
        "image": {"kind": kind, "url": url, "checksum": checksum} if run.image else None,
        "ssh_keys": list(run.ssh_keys),
        "ironic": run.ironic,
        "credentials": run.credentials,
        "workers": run.workers,
        "timeout": run.timeout,
    }


def _node(t: Target) -> dict[str, Any]:
    """A node as an input; no BIOS settings, no key (inputs of racks deployed before them stay the same)."""
    out = dataclasses.asdict(t)
    if not t.bios:
        del out["bios"]
    return out


def _target(n: Mapping[str, Any]) -> Target:
    """The node an input describes (JSON gave lists for the tuples)."""
    return Target(**{**n, "macs": tuple(n["macs"]), "bios": tuple(tuple(b) for b in n.get("bios") or ())})


class RackProvisioningProvider(dynamic.ResourceProvider):
    """Runs Ironic's provisioning of one rack's nodes (kasbah.runners.ironic)."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        keys = (olds.keys() | news.keys()) - set(UNDIFFED)
        changed = sorted(k for k in keys if olds.get(k) != news.get(k))
        return dynamic.DiffResult(changes=bool(changed), replaces=["rack"] if "rack" in changed else [])

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        return dynamic.CreateResult(id_=str(props["rack"]), outs={**props, **_provision(props)})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs={**news, **_provision(news)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Forget the rack; its nodes stay as they are in Ironic (tearing down is a declared act)."""


def _provision(props: Mapping[str, Any]) -> dict[str, Any]:
    """Bring the rack's nodes to the goal; raise naming each failed node, its error and the fix."""
    from kasbah.runners import ironic

    wanted = [_target(n) for n in props["nodes"]]
    image = props.get("image")
    deployment = (
        ironic.Deployment(image["kind"], image["url"], image["checksum"], tuple(props.get("ssh_keys") or ()))
        if image
        else None
    )
    rack = props["rack"]
    try:
        creds = ironic.load_credentials(Path(str(props["credentials"])))
        client = ironic.Ironic(str(props["ironic"]))
        results = ironic.Provisioner(
            client,
            creds,
            deployment,
            lambda line: pulumi.log.info(f"rack {rack}: {line}"),
            workers=int(props.get("workers") or 8),
            timeout=float(props.get("timeout") or 3600),
        ).run(wanted)
    except ironic.IronicError as exc:
        raise RuntimeError(f"rack {rack}: {exc}") from None
    failed = [r for r in results if not r.ok]
    if failed:
        detail = "\n  ".join(f"{r.node} ({r.state}): {r.error}; fix: {r.fix}" for r in failed)
        raise RuntimeError(
            f"rack {rack}: {len(failed)} of {len(results)} nodes not {props['goal']} "
            f"(the others are; the next pulumi up carries on from here):\n  {detail}"
        )
    return {
        "states": {r.node: r.state for r in results},
        "replaced": sorted(r.node for r in results if r.replaced),
    }


_PROVIDER = RackProvisioningProvider()


class RackProvisioning(dynamic.Resource, module="provisioning", name="RackProvisioning"):
    """`pulumi-python:dynamic/provisioning:RackProvisioning`: one rack's nodes through Ironic, to their OS."""

    def __init__(self, resource_name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(_PROVIDER, resource_name, dict(props), opts)
