"""What each node is to Ironic, from the Plan and the rack's manifest: its target (BMC, MACs, network,
BIOS), the BMC credentials, the SSH keys, the deployment and the node's configuration drive."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kasbah.planning.hostnet import HostNet
from kasbah.planning.model import Plan
from kasbah.rendering.provisioning import network_config
from kasbah.runners.ironic_client import IronicError

NETPLAN_FILE = "/etc/netplan/60-kasbah.yaml"  # the node_network role's file (kasbah.campus.node_network, its vars)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def load_credentials(path: Path | None) -> Callable[[str], Credentials]:
    """rack -> its BMC credentials: a YAML file `{default: {username, password}, racks: {rack: {...}}}`,
    or KASBAH_BMC_USERNAME / KASBAH_BMC_PASSWORD. Never a command-line argument (it would show in `ps`)."""
    default: Credentials | None = None
    racks: dict[str, Credentials] = {}
    if path is not None:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise IronicError(f"{path}: cannot read the BMC credentials: {exc}") from None

        def creds(where: str, v: Any) -> Credentials:
            if (
                not isinstance(v, dict)
                or not isinstance(v.get("username"), str)
                or not isinstance(v.get("password"), str)
            ):
                raise IronicError(f"{path}: {where} needs `username` and `password` (text)")
            return Credentials(v["username"], v["password"])

        if not isinstance(doc, dict) or not (set(doc) <= {"default", "racks"}):
            raise IronicError(f"{path}: expected a mapping with `default` and/or `racks` (rack -> username, password)")
        if doc.get("default") is not None:
            default = creds("default", doc["default"])
        for rack, v in (doc.get("racks") or {}).items():
            racks[str(rack)] = creds(f"racks.{rack}", v)
        if path.stat().st_mode & 0o077:
            raise IronicError(f"{path}: readable by others; fix: chmod 600 {path}")
    elif os.environ.get("KASBAH_BMC_USERNAME") and os.environ.get("KASBAH_BMC_PASSWORD"):
        default = Credentials(os.environ["KASBAH_BMC_USERNAME"], os.environ["KASBAH_BMC_PASSWORD"])

    def lookup(rack: str) -> Credentials:
        found = racks.get(rack, default)
        if found is None:
            raise IronicError(
                f"no BMC credentials for rack {rack}; fix: --bmc-credentials FILE (mode 600) with a `default` "
                "or `racks` entry, or KASBAH_BMC_USERNAME and KASBAH_BMC_PASSWORD"
            )
        return found

    return lookup


_KEY = re.compile(r"(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-[\w@.-]+) [A-Za-z0-9+/]+=*( .*)?")


def public_keys(path: Path) -> list[str]:
    """The SSH public keys of a `.pub` or authorized_keys-style file (one per line); refuse anything else."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IronicError(f"{path}: cannot read the SSH public key: {exc}") from None
    keys = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    bad = next((i for i, k in enumerate(keys) if not _KEY.fullmatch(k)), None)
    if not keys or bad is not None:
        raise IronicError(f"{path}: not an SSH public key file (give the .pub: one `ssh-ed25519 AAAA...` line per key)")
    return keys


@dataclass(frozen=True)
class Target:
    """One node as Ironic must know it (everything from the Plan and the rack's manifest)."""

    name: str
    rack: str
    hall: str
    pool: str
    serial: str
    bmc_address: str
    system: str
    verify_tls: bool
    macs: tuple[str, ...]  # in-band first: the NIC the node boots from
    fqdn: str
    network_config: str
    bios: tuple[tuple[str, bool | int | str], ...] = ()  # the rack profile's BIOS attributes


def targets(plan: Plan, limit: Callable[[str, str, str, str], bool] | None = None) -> tuple[list[Target], list[str]]:
    """(the nodes to provision, the nodes left out because their rack has no manifest yet)."""
    net = HostNet(plan)
    bmcs = {b.name: b for b in plan.bmcs}
    racks = {r.name: r for r in plan.racks}
    out: list[Target] = []
    missing: list[str] = []
    for n in plan.nodes:
        if limit is not None and not limit(n.name, n.rack, n.hall, n.pool):
            continue
        network = net.network(n)
        hw = net.hardware.get(n.name)
        if network is None or hw is None:
            missing.append(n.name)
            continue
        bmc = bmcs[racks[n.rack].profile]
        out.append(
            Target(
                name=n.name,
                rack=n.rack,
                hall=n.hall,
                pool=n.pool,
                serial=hw.serial,
                bmc_address=bmc.address(n.oob_ip),
                system=bmc.system.replace("{node}", n.name),
                verify_tls=bmc.verify_tls,
                macs=tuple(i.mac for i in net.interfaces(n) or ()),
                fqdn=str(network["fqdn"]),
                network_config=network_config(network),
                bios=bmc.bios,
            )
        )
    return out, missing


def limiter(spec: str | None) -> Callable[[str, str, str, str], bool] | None:
    """`--limit a,b`: node, rack, hall or pool names (a node is in if any of its names is listed)."""
    if not spec:
        return None
    wanted = {s.strip() for s in spec.split(",") if s.strip()}
    return lambda node, rack, hall, pool: bool(wanted & {node, rack, hall, pool})


@dataclass(frozen=True)
class Deployment:
    """What `active` means: the image, and what the configuration drive adds to each node."""

    kind: str  # disk | iso
    url: str
    checksum: str
    ssh_keys: tuple[str, ...] = ()
    agent: Mapping[str, str] = field(default_factory=dict)  # deploy_kernel, deploy_ramdisk (disk images)


def config_drive(t: Target, d: Deployment) -> dict[str, Any]:
    """The node's configuration drive (Ironic builds the ISO): its name, keys and the network file the role writes."""
    user_data = {
        "hostname": t.name,
        "fqdn": t.fqdn,
        "prefer_fqdn_over_hostname": False,
        "manage_etc_hosts": True,
        "ssh_pwauth": False,
        "disable_root": False,
        "users": [{"name": "root", "ssh_authorized_keys": list(d.ssh_keys)}] if d.ssh_keys else [],
        "write_files": [
            {"path": NETPLAN_FILE, "permissions": "0600", "owner": "root:root", "content": t.network_config}
        ],
        "runcmd": [["sh", "-c", "command -v netplan >/dev/null && netplan apply || true"]],
    }
    return {
        "meta_data": {
            "name": t.name,
            "hostname": t.fqdn,
            "public_keys": {f"k{i}": k for i, k in enumerate(d.ssh_keys)},
        },
        "user_data": "#cloud-config\n" + yaml.safe_dump(user_data, sort_keys=False, width=200),
    }


def recorded_bios(t: Target) -> dict[str, bool | int | str]:
    """The BIOS attributes as kasbah records them on the node (extra.kasbah_bios) once Ironic applied them."""
    return dict(t.bios)


def bios_cleaning(t: Target) -> dict[str, Any]:
    """Manual cleaning that only applies the BIOS settings: out of band, so no ramdisk boots (Ironic's
    disable_ramdisk); the redfish BIOS interface sets them, reboots the node and reads them back."""
    settings = [{"name": k, "value": v} for k, v in t.bios]
    step = {"interface": "bios", "step": "apply_configuration", "args": {"settings": settings}}
    return {"clean_steps": [step], "disable_ramdisk": True}


def driver_info(t: Target, creds: Credentials, d: Deployment | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "redfish_address": t.bmc_address,
        "redfish_system_id": t.system,
        "redfish_username": creds.username,
        "redfish_password": creds.password,
        "redfish_verify_ca": t.verify_tls,
    }
    if d is not None and d.kind == "disk":
        info.update(d.agent)
    return info
