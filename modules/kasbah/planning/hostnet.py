"""What a node's network looks like from the node and from the site's network services. Pure.

One derivation from the Plan, read by every projection: the node's interfaces (the node playbooks'
`node_network` role and the cloud-init network-config of a freshly provisioned node render the same
template from them, so both write the same file), the DHCP reservations of the BMCs and the DNS
records of every node, BMC, switch and cluster API endpoint.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from kasbah.planning.model import Node, NodeHardware, Plan, Rack

# The first address of every rack block is the leaf's gateway (planning.ipam: .0 network, .1 gateway)
GATEWAY_OFFSET = 1
# Source-routing tables of the compute rails: rail r answers from table RAIL_TABLE + r
RAIL_TABLE = 100


@dataclass(frozen=True, slots=True)
class Route:
    to: str  # a CIDR or "default"
    via: str
    table: int | None = None


@dataclass(frozen=True, slots=True)
class Interface:
    """One NIC as the node configures it: named by its role, found by its MAC."""

    name: str  # inband | storage | rail0, rail1, ...
    mac: str
    address: str  # address/prefix
    mtu: int
    routes: tuple[Route, ...]
    table: int | None  # a rail's source-routing table: traffic from its address leaves through it


@dataclass(frozen=True, slots=True)
class Record:
    name: str  # fully qualified, no trailing dot
    kind: str  # A | AAAA
    address: str
    owner: str  # the Plan object it names: a node, BMC, switch or cluster
    ptr: bool = True  # the address's reverse name; an API name shares its addresses with the nodes' own names


@functools.cache
def gateway(cidr: str) -> str:
    net = ipaddress.ip_network(cidr)
    return str(net.network_address + GATEWAY_OFFSET)


@functools.cache
def _prefix(cidr: str) -> int:
    return ipaddress.ip_network(cidr).prefixlen


class HostNet:
    """Indexes a Plan once, then answers per node (52,000 nodes at 500 MW: no per-node scans)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.racks: dict[str, Rack] = {r.name: r for r in plan.racks}
        self.hardware: dict[str, NodeHardware] = {h.node: h for h in plan.hardware}
        self.mtu = dict(plan.mtus)
        self.supernets = {a.network: a.supernet for a in plan.addresses}

    def interfaces(self, node: Node) -> tuple[Interface, ...] | None:
        """The node's interfaces, or None while its rack has no manifest (no MAC to find a NIC by)."""
        hw = self.hardware.get(node.name)
        if hw is None:
            return None
        rack = self.racks[node.rack]
        assert rack.inband_cidr is not None and rack.storage_cidr is not None
        out = [
            Interface(
                "inband",
                hw.inband_mac,
                f"{node.inband_ip}/{_prefix(rack.inband_cidr)}",
                self.mtu.get("inband", 1500),
                (Route("default", gateway(rack.inband_cidr)),),
                None,
            )
        ]
        if hw.storage_mac is not None:
            storage = self.supernets.get("storage")
            out.append(
                Interface(
                    "storage",
                    hw.storage_mac,
                    f"{node.storage_ip}/{_prefix(rack.storage_cidr)}",
                    self.mtu.get("storage", 9000),
                    (Route(storage, gateway(rack.storage_cidr)),) if storage else (),
                    None,
                )
            )
        compute = self.supernets.get("compute")
        for r, (mac, ip, cidr) in enumerate(zip(hw.rail_macs, node.rail_ips, rack.rail_cidrs, strict=False)):
            table = RAIL_TABLE + r
            out.append(
                Interface(
                    f"rail{r}",
                    mac,
                    f"{ip}/{_prefix(cidr)}",
                    self.mtu.get("compute", 9000),
                    (Route(compute, gateway(cidr), table),) if compute else (),
                    table,
                )
            )
        return tuple(out)

    def network(self, node: Node) -> dict[str, object] | None:
        """The template's input for one node (`kasbah_network` in the inventory), or None without hardware."""
        ifaces = self.interfaces(node)
        if ifaces is None:
            return None
        return {
            "hostname": node.name,
            "fqdn": f"{node.name}.{self.plan.zone}",
            "search": [self.plan.zone],
            "nameservers": list(self.plan.dns_servers),
            "interfaces": [
                {
                    "name": i.name,
                    "mac": i.mac,
                    "address": i.address,
                    "mtu": i.mtu,
                    "routes": [{"to": r.to, "via": r.via, **({"table": r.table} if r.table else {})} for r in i.routes],
                    **({"table": i.table} if i.table else {}),
                }
                for i in ifaces
            ],
        }


def _kind(address: str) -> str:
    return "AAAA" if ":" in address else "A"


def records(plan: Plan) -> Iterator[Record]:
    """Every forward name of the site, in Plan order: nodes, their BMCs, storage and rail addresses, switches, API endpoints.

    `<node>.<zone>` is the node's in-band address (its hostname); `<node>.bmc`, `<node>.storage`
    and `<node>.rail<r>` its other addresses; `<switch>.net` a switch's loopback; `api.<cluster>`
    the control plane's virtual IP (with its PTR: the address is the cluster's alone).
    """
    z = plan.zone
    by_name = {n.name: n for n in plan.nodes}
    for n in plan.nodes:
        yield Record(f"{n.name}.{z}", _kind(n.inband_ip), n.inband_ip, n.name)
        yield Record(f"{n.name}.bmc.{z}", _kind(n.oob_ip), n.oob_ip, f"{n.name} (BMC)")
        yield Record(f"{n.name}.storage.{z}", _kind(n.storage_ip), n.storage_ip, n.name)
        for r, ip in enumerate(n.rail_ips):
            yield Record(f"{n.name}.rail{r}.{z}", _kind(ip), ip, n.name)
    for s in plan.switches:
        yield Record(f"{s.name}.net.{z}", _kind(s.loopback), s.loopback, s.name)
    for c in plan.clusters:
        if c.api_vip:  # the virtual IP keepalived moves between the control-plane hosts
            yield Record(c.api_host, _kind(c.api_vip), c.api_vip, f"cluster {c.name} (API virtual IP)")
            continue
        for cp in c.control_plane:  # a plan of format 3: every control-plane host
            node = by_name.get(cp)
            if node is not None:
                yield Record(c.api_host, _kind(node.inband_ip), node.inband_ip, f"cluster {c.name}", ptr=False)


def reverse_zone(address: str) -> str:
    """The reverse zone an address's PTR lives in: a /16 for IPv4 (`b.a.in-addr.arpa`), a /48 for IPv6."""
    ptr = ipaddress.ip_address(address).reverse_pointer
    labels = ptr.split(".")
    keep = 4 if ptr.endswith("in-addr.arpa") else 14  # 2 octets + in-addr.arpa; 12 nibbles + ip6.arpa
    return ".".join(labels[-keep:])
