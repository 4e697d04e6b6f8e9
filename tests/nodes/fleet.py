"""Debian 12 containers standing in for the nodes of a rendered inventory, and the overlay that reaches them.

Each node is a container of the node image (tests/nodes/build_image.py) running systemd, started
without a network (`--network none`: Ansible talks to it through `docker exec`, the
`community.docker.docker` connection), with the package mirror mounted read-only at
/srv/kasbah-mirror. The overlay inventory points every host at its container and every role's
repositories at that mirror; it goes after the rendered slice (`-i slice.json -i overlay.yml`).

    python tests/nodes/fleet.py up TREE [--prefix P]     # start one container per host of TREE
    python tests/nodes/fleet.py down [--prefix P]        # remove them
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_image

MIRROR_MOUNT = "/srv/kasbah-mirror"
LABEL = "io.kasbah.test-fleet"
# Stand-ins for the site's own services, which the containers cannot reach (no network): values
# only, written into configuration files, never contacted during a run.
SITE_TIME_SERVERS = ["10.10.32.123"]


@dataclass(frozen=True)
class Fleet:
    prefix: str
    hosts: dict[str, str]  # inventory host -> container name
    overlay: Path


def inventory_hosts(tree: Path) -> list[str]:
    """Every host of a rendered tree's inventory, in slice order."""
    index = json.loads((tree / "inventory" / "index.json").read_text())
    hosts: list[str] = []
    for part in index["slices"]:
        doc = json.loads((tree / "inventory" / part["path"]).read_text())
        for group in doc["all"]["children"].values():
            for host in (group or {}).get("hosts") or {}:
                if host not in hosts:
                    hosts.append(host)
    return hosts


def inband_addresses(tree: Path) -> dict[str, str]:
    """Every host's in-band address (kasbah_inband_ip) from a rendered tree's inventory."""
    index = json.loads((tree / "inventory" / "index.json").read_text())
    out: dict[str, str] = {}
    for part in index["slices"]:
        doc = json.loads((tree / "inventory" / part["path"]).read_text())
        for group in doc["all"]["children"].values():
            for host, hostvars in ((group or {}).get("hosts") or {}).items():
                if hostvars and "kasbah_inband_ip" in hostvars:
                    out[host] = hostvars["kasbah_inband_ip"]
    return out


def mirror_repository() -> dict[str, object]:
    return {"name": "kasbah-mirror", "uris": [f"file:{MIRROR_MOUNT}"], "suites": ["./"], "trusted": True}


def overlay(hosts: dict[str, str]) -> dict[str, object]:
    """The inventory overlay: connection per host, repositories and site services for the lab."""
    return {
        "all": {
            "vars": {
                "ansible_connection": "community.docker.docker",
                "ansible_python_interpreter": "/usr/bin/python3",
                "os_baseline_repositories": [mirror_repository()],
                "os_baseline_chrony_servers": SITE_TIME_SERVERS,
            },
            "hosts": {host: {"ansible_host": container} for host, container in hosts.items()},
        }
    }


def up(
    tree: Path, prefix: str, workdir: Path, hosts: list[str] | None = None, images: dict[str, str] | None = None
) -> Fleet:
    """One container per host (of `hosts`, or the tree's inventory), of the plain node image or of `images[host]`."""
    image, mirror = build_image.ensure()
    names = hosts if hosts is not None else inventory_hosts(tree)
    mapping = {h: f"{prefix}-{h}" for h in names}
    down(prefix)
    for host, container in mapping.items():
        subprocess.run(
            [
                "docker", "run", "--detach", "--name", container, "--hostname", host,
                "--label", f"{LABEL}={prefix}",
                "--network", "none",
                "--cgroupns", "host", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
                "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
                # the node's own network namespace: nftables rules load there, not on the machine
                "--cap-add", "NET_ADMIN",
                # HAProxy binds the API's VIP before keepalived puts it on the interface (the control_plane role)
                "--sysctl", "net.ipv4.ip_nonlocal_bind=1",
                "--volume", f"{mirror}:{MIRROR_MOUNT}:ro",
                (images or {}).get(host, image), "/sbin/init",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    addresses = inband_addresses(tree)
    for host, container in mapping.items():
        # the node's in-band NIC: one end of a veth pair inside the container (a kernel without the dummy module has
        # veth, Docker's own), holding its Plan address; keepalived puts the VIP beside it
        pid = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Pid}}", container], check=True, capture_output=True, text=True
        ).stdout.strip()
        if host in addresses:
            for cmd in (
                ["ip", "link", "add", "inband0", "type", "veth", "peer", "name", "inband0-peer"],
                ["ip", "link", "set", "inband0-peer", "up"],
                ["ip", "address", "add", f"{addresses[host]}/32", "dev", "inband0"],
                ["ip", "link", "set", "inband0", "up"],
            ):
                subprocess.run(["nsenter", "--target", pid, "--net", *cmd], check=True, capture_output=True)
    for container in mapping.values():
        # systemd must be up before Ansible asks it for services
        subprocess.run(
            ["docker", "exec", container, "systemctl", "is-system-running", "--wait"],
            capture_output=True,
            timeout=120,
        )
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "fleet.yml"
    path.write_text("---\n" + yaml.safe_dump(overlay(mapping), sort_keys=False))
    return Fleet(prefix, mapping, path)


def down(prefix: str) -> None:
    listed = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"label={LABEL}={prefix}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if listed:
        subprocess.run(["docker", "rm", "--force", *listed], check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up")
    p_up.add_argument("tree", type=Path)
    p_up.add_argument("--prefix", default="kasbah-node")
    p_up.add_argument("--workdir", type=Path, default=Path("/tmp/kasbah-fleet"))
    p_down = sub.add_parser("down")
    p_down.add_argument("--prefix", default="kasbah-node")
    args = parser.parse_args()
    if args.command == "up":
        fleet = up(args.tree, args.prefix, args.workdir / args.prefix)
        print(fleet.overlay)
        for host, container in fleet.hosts.items():
            print(f"{host} -> {container}")
    else:
        down(args.prefix)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
