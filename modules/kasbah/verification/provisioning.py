"""The day-0 data of a rendered tree against the Plan: DNS zones, BMC reservations, node network-config.

Read as the daemons read them: the zone files line by line (the records kasbah writes: owner,
class, type, data), Kea's JSON, the network-config YAML. What is checked: every name the Plan
gives has its address, once; every address has one PTR, back to its name; no name or address
that the Plan does not have; each BMC reserved once, in its rack's block, by its manifest MAC;
each node's network-config holds the Plan's addresses on the manifest's NICs.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import yaml

from kasbah.planning.hostnet import HostNet, records, reverse_zone
from kasbah.planning.model import Plan

PART = "provisioning"


def _fqdn(owner: str, origin: str) -> str:
    if owner == "@":
        return origin
    if owner.endswith("."):
        return owner[:-1]
    return f"{owner}.{origin}"


def zone_records(text: str) -> tuple[str, list[tuple[str, str, str]]]:
    """($ORIGIN, [(fully qualified owner, type, data)]) of a zone file in the form kasbah renders."""
    origin = ""
    out: list[tuple[str, str, str]] = []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("$ORIGIN"):
            origin = line.split()[1].rstrip(".")
            continue
        if line.startswith("$"):
            continue
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "IN":
            out.append((_fqdn(parts[0], origin), parts[2], " ".join(parts[3:])))
    return origin, out


def check_provisioning(files: Mapping[str, bytes], plan: Plan) -> list[tuple[str, str]]:
    """(where, what is wrong) for every disagreement between the day-0 files and the Plan."""
    problems: list[tuple[str, str]] = []
    problems += _check_dns(files, plan)
    net = HostNet(plan)
    problems += _check_dhcp(files, plan, net)
    problems += _check_nodes(files, plan, net)
    return problems


def _check_dns(files: Mapping[str, bytes], plan: Plan) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    forward_file = f"{PART}/dns/{plan.zone}.zone"
    if forward_file not in files:
        return [(forward_file, "missing: the site's names are not served; render the phase again")]
    want: dict[str, set[str]] = {}
    for r in records(plan):
        want.setdefault(r.name, set()).add(r.address)
    ptr_want: dict[str, str] = {}
    for r in records(plan):
        if r.ptr:
            ptr_want[ipaddress.ip_address(r.address).reverse_pointer] = r.name
    have: dict[str, list[str]] = {}
    ptrs: dict[str, list[str]] = {}
    reverse_files = {f"{PART}/dns/{reverse_zone(a)}.zone" for a in (r.address for r in records(plan))}
    for path in [forward_file, *sorted(reverse_files)]:
        data = files.get(path)
        if data is None:
            out.append((path, "missing: addresses in it have no reverse name; render the phase again"))
            continue
        _, rows = zone_records(data.decode("utf-8", "replace"))
        if not any(t == "SOA" for _, t, _ in rows):
            out.append((path, "no SOA record: the zone does not load"))
        for name, kind, value in rows:
            if kind in ("A", "AAAA") and path == forward_file:
                have.setdefault(name, []).append(value)
            elif kind == "PTR":
                ptrs.setdefault(name, []).append(value.rstrip("."))
    glue = {f"ns{i + 1}.{plan.zone}" for i in range(len(plan.dns_servers))}
    for name, addresses in have.items():
        if name in glue:
            continue
        if name not in want:
            out.append((forward_file, f"{name} is not a name of the Plan"))
            continue
        dup = [a for a, n in Counter(addresses).items() if n > 1]
        if dup:
            out.append((forward_file, f"{name} has {', '.join(dup)} more than once"))
        if set(addresses) != want[name]:
            out.append(
                (
                    forward_file,
                    f"{name} points at {', '.join(sorted(addresses))}, the Plan says {', '.join(sorted(want[name]))}",
                )
            )
    for name in sorted(set(want) - set(have)):
        out.append((forward_file, f"{name} is missing (the Plan's {', '.join(sorted(want[name]))})"))
    for ptr, name in ptr_want.items():
        got = ptrs.get(ptr, [])
        if got != [name]:
            what = "no PTR" if not got else f"PTR {', '.join(got)}"
            out.append((f"{PART}/dns/{reverse_zone(_address(ptr))}.zone", f"{ptr}: {what}, the Plan says {name}"))
    for ptr in sorted(set(ptrs) - set(ptr_want)):
        out.append((f"{PART}/dns", f"{ptr} has a PTR the Plan has no address for"))
    return out


def _address(ptr: str) -> str:
    labels = ptr.split(".")
    if ptr.endswith("in-addr.arpa"):
        return ".".join(reversed(labels[:4]))
    nibbles = "".join(reversed(labels[:32]))
    return str(ipaddress.ip_address(int(nibbles, 16)))


def _check_dhcp(files: Mapping[str, bytes], plan: Plan, net: HostNet) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    racks = {r.name: r for r in plan.racks}
    by_hall: dict[str, dict[str, tuple[str, str, str]]] = {}  # hall -> mac -> (node, ip, rack cidr)
    for n in plan.nodes:
        hw = net.hardware.get(n.name)
        if hw is not None:
            by_hall.setdefault(n.hall, {})[hw.bmc_mac] = (n.name, n.oob_ip, racks[n.rack].oob_cidr or "")
    for hall in plan.halls:
        path = f"{PART}/dhcp/{hall.name}.kea-dhcp4.json"
        data = files.get(path)
        if data is None:
            out.append((path, "missing: the hall's BMCs get no address; render the phase again"))
            continue
        try:
            subnets = json.loads(data)["Dhcp4"]["subnet4"]
        except (ValueError, KeyError, TypeError) as exc:
            out.append((path, f"not a Kea DHCPv4 configuration: {exc}"))
            continue
        seen: Counter[str] = Counter()
        addresses: Counter[str] = Counter()
        for sn in subnets:
            block = ipaddress.ip_network(sn.get("subnet", "0.0.0.0/32"), strict=False)
            for r in sn.get("reservations", []):
                mac, ip = str(r.get("hw-address", "")).lower(), str(r.get("ip-address", ""))
                seen[mac] += 1
                addresses[ip] += 1
                expected = by_hall.get(hall.name, {}).get(mac)
                if expected is None:
                    out.append((path, f"{mac} is reserved {ip} but is no BMC of the hall's manifests"))
                    continue
                node, want_ip, cidr = expected
                if ip != want_ip:
                    out.append((path, f"{node}'s BMC ({mac}) is reserved {ip}, the Plan says {want_ip}"))
                if str(block) != cidr or ipaddress.ip_address(ip) not in block:
                    out.append((path, f"{node}'s BMC ({mac}) is reserved in {block}, its rack's block is {cidr}"))
        for mac, count in seen.items():
            if count > 1:
                out.append((path, f"{mac} is reserved {count} times"))
        for ip, count in addresses.items():
            if count > 1:
                out.append((path, f"{ip} is reserved for {count} MACs"))
        for mac, (node, _, _) in by_hall.get(hall.name, {}).items():
            if mac not in seen:
                out.append((path, f"{node}'s BMC ({mac}) has no reservation"))
    return out


def _check_nodes(files: Mapping[str, bytes], plan: Plan, net: HostNet) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    want_racks = {n.rack for n in plan.nodes if n.name in net.hardware}
    by_name = {n.name: n for n in plan.nodes}
    for rack in sorted(want_racks):
        path = f"{PART}/nodes/{rack}.yaml"
        data = files.get(path)
        if data is None:
            out.append((path, "missing: the rack's nodes cannot be provisioned; render the phase again"))
            continue
        try:
            doc: Any = yaml.safe_load(data)
            entries = {e["name"]: e for e in doc["nodes"]}
        except (yaml.YAMLError, KeyError, TypeError) as exc:
            out.append((path, f"unreadable: {exc}"))
            continue
        for name, node in ((n, by_name[n]) for n in sorted(by_name) if by_name[n].rack == rack):
            ifaces = net.interfaces(node)
            if ifaces is None:
                continue
            entry = entries.get(name)
            if entry is None:
                out.append((path, f"{name} is missing"))
                continue
            try:
                config = yaml.safe_load(entry["network_config"])["network"]["ethernets"]
            except (yaml.YAMLError, KeyError, TypeError) as exc:
                out.append((path, f"{name}: network_config is not a network-config v2 document: {exc}"))
                continue
            for i in ifaces:
                got = config.get(i.name) or {}
                mac = (got.get("match") or {}).get("macaddress")
                if mac != i.mac or got.get("addresses") != [i.address]:
                    out.append(
                        (
                            path,
                            f"{name}: interface {i.name} is {mac} {got.get('addresses')}, the Plan says {i.mac} [{i.address}]",
                        )
                    )
            extra = set(config) - {i.name for i in ifaces}
            if extra:
                out.append((path, f"{name}: interfaces {', '.join(sorted(extra))} the Plan does not have"))
    return out
