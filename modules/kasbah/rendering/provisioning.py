"""Day 0 data from the Plan: the BMCs' DHCP, the site's DNS zones and each node's network-config.

    provisioning/dhcp/<hall>.kea-dhcp4.json   Kea DHCPv4, one subnet per rack's out-of-band block,
                                              a reservation per BMC MAC (no pools: an unknown MAC gets nothing)
    provisioning/dns/knot.conf                Knot: the server (on the site's DNS servers) and the zones
    provisioning/dns/zones.conf               the zones alone (for a server with its own `server:` section)
    provisioning/dns/<zone>.zone              forward zone and the /16 reverse zones
    provisioning/nodes/<rack>.yaml            per node: serial, BMC, MACs, its pool's image and the cloud-init
                                              network-config (the node_network role's template: the same bytes it writes)
    provisioning/images.json                  the pool images (Plan.images): what each holds, which pools boot it;
                                              playbooks/image.yml builds one from the roles

Racks without a hardware manifest have no reservations and no network-config yet (no MAC to key
them on); their names are in DNS from the phase they are planned in. Zone serials move only
when a zone's content does: `previous` holds the zones of the tree being replaced.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml

from kasbah.planning.hostnet import HostNet, Record, gateway, records, reverse_zone
from kasbah.planning.model import Node, Plan
from kasbah.resources import roles

PART = "provisioning"
ROLE_TEMPLATE = roles() / "node_network" / "templates"
NETWORK_CONFIG = "netplan.yaml.j2"
# What `{{ ansible_managed }}` expands to (ansible-core's default; the project's ansible.cfg keeps it), so the
# file cloud-init writes and the file the role writes are the same bytes
ANSIBLE_MANAGED = "Ansible managed"
TTL = 300
# SOA timers: refresh, retry, expire, negative-answer TTL (RFC 1912 2.2 ranges)
SOA_TIMERS = (3600, 600, 1209600, 300)
_SERIAL = re.compile(rb"^@ IN SOA \S+ \S+ \( (\d+) ", re.M)
DHCP_LEASE = 86400


@functools.cache
def _role_environment() -> jinja2.Environment:
    """Jinja2 as Ansible's template module sets it up (trim_blocks, no lstrip_blocks), so both write the same bytes."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE_TEMPLATE),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=False,
    )


def network_config(network: Mapping[str, Any]) -> str:
    """A node's network-config (netplan v2, which cloud-init reads as network-config version 2)."""
    return (
        _role_environment().get_template(NETWORK_CONFIG).render(kasbah_network=network, ansible_managed=ANSIBLE_MANAGED)
    )


# ----------------------------------------------------------------------------------------- DHCP


def kea_config(plan: Plan, hall: str, net: HostNet | None = None) -> dict[str, Any]:
    """Kea DHCPv4 for one hall's out-of-band network: each rack's block, each BMC by its MAC."""
    net = net or HostNet(plan)
    subnets = []
    nodes_by_rack: dict[str, list[Node]] = {}
    for n in plan.nodes:
        if n.hall == hall:
            nodes_by_rack.setdefault(n.rack, []).append(n)
    for rack in plan.racks:
        if rack.hall != hall or rack.oob_cidr is None:
            continue
        reservations = [
            {"hw-address": hw.bmc_mac, "ip-address": n.oob_ip, "hostname": f"{n.name}-bmc"}
            for n in nodes_by_rack.get(rack.name, [])
            if (hw := net.hardware.get(n.name)) is not None
        ]
        options: list[dict[str, Any]] = [{"name": "routers", "data": gateway(rack.oob_cidr)}]
        if plan.dns_servers:
            options.append({"name": "domain-name-servers", "data": ", ".join(plan.dns_servers)})
        options.append({"name": "domain-name", "data": f"bmc.{plan.zone}"})
        subnets.append(
            {
                # stable across phases and unique on the site: the block's network address
                "id": int(ipaddress.ip_network(rack.oob_cidr).network_address),
                "subnet": rack.oob_cidr,
                "comment": f"rack {rack.name}",
                "pools": [],
                "option-data": options,
                "reservations": reservations,
            }
        )
    return {
        "Dhcp4": {
            # the racks' out-of-band leaves relay to the hall's server (each rack's block is chosen by giaddr)
            "interfaces-config": {"interfaces": ["*"], "dhcp-socket-type": "udp"},
            "lease-database": {"type": "memfile", "persist": True, "name": f"/var/lib/kea/kasbah-{hall}.leases4.csv"},
            "host-reservation-identifiers": ["hw-address"],
            "authoritative": True,
            "valid-lifetime": DHCP_LEASE,
            "renew-timer": DHCP_LEASE // 2,
            "rebind-timer": DHCP_LEASE * 7 // 8,
            "subnet4": subnets,
            "loggers": [{"name": "kea-dhcp4", "severity": "INFO", "output_options": [{"output": "stdout"}]}],
        }
    }


# ------------------------------------------------------------------------------------------ DNS


def _relative(name: str, origin: str) -> str:
    return "@" if name == origin else name.removesuffix(f".{origin}")


def _pointer(address: str) -> tuple[tuple[int, ...], str, str]:
    """(sort key, reverse zone, PTR owner relative to it) of an address; IPv4 by string (52,000 nodes, 5 names each)."""
    parts = address.split(".")
    if len(parts) == 4:
        return (4, *map(int, parts)), f"{parts[1]}.{parts[0]}.in-addr.arpa", f"{parts[3]}.{parts[2]}"
    ip = ipaddress.ip_address(address)
    rz = reverse_zone(address)
    return (ip.version, int(ip)), rz, _relative(ip.reverse_pointer, rz)


def zones(plan: Plan) -> dict[str, tuple[list[str], list[str]]]:
    """zone -> (its NS/glue lines, its records), forward zone first, then reverse zones in address order."""
    z = plan.zone
    ns_names = [(f"ns{i + 1}", a) for i, a in enumerate(plan.dns_servers)] or [("ns1", "")]
    forward_ns = [f"@ IN NS {name}" for name, _ in ns_names]
    forward_ns += [f"{name} IN {'AAAA' if ':' in a else 'A'} {a}" for name, a in ns_names if a]
    forward: list[str] = []
    reverse: dict[str, list[tuple[tuple[int, ...], str, str]]] = {}  # zone -> (address key, PTR label, name)
    rec: Record
    for rec in records(plan):
        forward.append(f"{_relative(rec.name, z)} IN {rec.kind} {rec.address}")
        if not rec.ptr:
            continue
        key, rz, label = _pointer(rec.address)
        reverse.setdefault(rz, []).append((key, label, rec.name))
    out = {z: (forward_ns, forward)}
    ns_fqdn = [f"@ IN NS {name}.{z}." for name, _ in ns_names]
    for rz in sorted(reverse, key=lambda r: min(k for k, _, _ in reverse[r])):
        rows = sorted(reverse[rz])
        out[rz] = (ns_fqdn, [f"{label} IN PTR {name}." for _, label, name in rows])
    return out


def zone_files(plan: Plan, previous: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    """`<zone>.zone` -> text; a zone keeps its previous serial while its records are the same, else serial + 1."""
    primary = f"ns1.{plan.zone}."
    out: dict[str, bytes] = {}
    for origin, (ns, rows) in zones(plan).items():
        name = f"{origin}.zone"
        serial = 1
        old = (previous or {}).get(name)
        m = _SERIAL.search(old) if old is not None else None
        if old is not None and m is not None:
            serial = int(m.group(1))
            if _SERIAL.sub(b"", old) != _SERIAL.sub(b"", _zone(origin, primary, ns, rows, serial).encode()):
                serial = serial % 0xFFFFFFFF + 1  # RFC 1982 arithmetic, never 0
        out[name] = _zone(origin, primary, ns, rows, serial).encode()
    return out


def _zone(origin: str, primary: str, ns: list[str], rows: list[str], serial: int) -> str:
    """A zone file; the SOA line is the only one that holds the serial (zone_files reads it there)."""
    head = [
        f"$ORIGIN {origin}.",
        f"$TTL {TTL}",
        f"@ IN SOA {primary} hostmaster.{plan_zone(origin, primary)}. ( {serial} {' '.join(map(str, SOA_TIMERS))} )",
    ]
    return "\n".join([*head, *ns, *rows]) + "\n"


def plan_zone(origin: str, primary: str) -> str:
    """The forward zone (where hostmaster@ lives), from the primary server's name `ns1.<zone>.`."""
    return primary.removeprefix("ns1.").rstrip(".")


def knot_conf(plan: Plan, zone_names: Iterable[str]) -> tuple[str, str]:
    """(knot.conf, zones.conf): the server on the site's DNS servers, and the zones with Knot's semantic checks."""
    listen = [f"{a}@53" for a in plan.dns_servers] or ["127.0.0.1@53"]
    zones_conf = ["# The site's zones, rendered by kasbah from the Plan (include it in a Knot configuration).", "zone:"]
    for name in zone_names:
        zones_conf += [f"  - domain: {name}", f"    file: {name}.zone", "    semantic-checks: on"]
    server = [
        "# Knot DNS: the authoritative server of the site's zones, rendered by kasbah from the Plan.",
        "# Run it with the zone files beside this file: knotd --config knot.conf",
        "server:",
        f"  listen: [{', '.join(listen)}]",
        "database:",
        "  storage: /var/lib/knot",
        "template:",
        "  - id: default",
        "    storage: .",
        # the rendered file is the truth: never write back to it, load it whole
        "    zonefile-sync: -1",
        "    zonefile-load: whole",
        "    journal-content: none",
        "include: zones.conf",
    ]
    return "\n".join(server) + "\n", "\n".join(zones_conf) + "\n"


# ---------------------------------------------------------------------------------- node records


def rack_nodes(plan: Plan, net: HostNet | None = None) -> dict[str, dict[str, Any]]:
    """rack -> what provisioning needs of each of its nodes with hardware: identity, BMC, MACs, network-config."""
    net = net or HostNet(plan)
    pools = {p.name: p for p in plan.pools}
    out: dict[str, dict[str, Any]] = {}
    for n in plan.nodes:
        hw = net.hardware.get(n.name)
        network = net.network(n)
        if hw is None or network is None:
            continue
        rack = out.setdefault(n.rack, {"rack": n.rack, "hall": n.hall, "nodes": []})
        rack["nodes"].append(
            {
                "name": n.name,
                "fqdn": network["fqdn"],
                "slot": n.slot,
                "serial": hw.serial,
                "pool": n.pool,
                "image": pools[n.pool].image,
                "bmc": {"address": n.oob_ip, "mac": hw.bmc_mac},
                "macs": [i.mac for i in net.interfaces(n) or ()],
                "network_config": network_config(network),
            }
        )
    return out


def images_doc(plan: Plan) -> dict[str, Any]:
    """The pool images of the Plan: the inputs each is built from and the pools whose nodes boot it."""
    return {
        "format": 1,
        "site": plan.site,
        "phase": plan.phase,
        "images": [
            {
                "name": i.name,
                "os": i.os,
                "gpus_per_node": i.gpus_per_node,
                "nvlink": i.nvlink,
                "rdma": i.rdma,
                "nvidia_driver": i.nvidia_driver,
                "kubernetes_version": i.kubernetes_version,
                "pools": list(i.pools),
            }
            for i in plan.images
        ],
    }


class _Literal(str):
    pass


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """libyaml's emitter where PyYAML has it (50,000 node records at 500 MW), the same YAML either way."""


_Dumper.add_representer(_Literal, _literal)


def render_provisioning(plan: Plan, previous: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    """The `provisioning/` part of the tree (paths relative to it); `previous`: its files in the tree being replaced."""
    files: dict[str, bytes] = {}
    net = HostNet(plan)  # indexes the Plan once for every hall and rack
    for hall in plan.halls:
        doc = kea_config(plan, hall.name, net)
        files[f"dhcp/{hall.name}.kea-dhcp4.json"] = (json.dumps(doc, indent=1) + "\n").encode()
    old_zones = {k.removeprefix("dns/"): v for k, v in (previous or {}).items() if k.startswith("dns/")}
    zfiles = zone_files(plan, old_zones)
    for name, data in zfiles.items():
        files[f"dns/{name}"] = data
    server, zone_list = knot_conf(plan, (n.removesuffix(".zone") for n in zfiles))
    files["dns/knot.conf"] = server.encode()
    files["dns/zones.conf"] = zone_list.encode()
    files["images.json"] = (json.dumps(images_doc(plan), indent=1) + "\n").encode()
    for rack, doc in rack_nodes(plan, net).items():
        for node in doc["nodes"]:
            node["network_config"] = _Literal(node["network_config"])
        header = f"# Rack {rack}: what Ironic enrols and deploys for each node (kasbah provision).\n---\n"
        files[f"nodes/{rack}.yaml"] = (
            header + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=200)
        ).encode()
    return dict(sorted(files.items()))


def previous_files(root: Path | None) -> dict[str, bytes]:
    """The `provisioning/dns` files of an existing tree (for zone serials), or nothing."""
    if root is None:
        return {}
    folder = root / PART / "dns"
    if not folder.is_dir():
        return {}
    return {f"dns/{p.name}": p.read_bytes() for p in sorted(folder.glob("*.zone")) if p.is_file()}
