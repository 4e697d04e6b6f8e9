"""Address plan: fixed-size blocks reserved by index (site → hall → scalable unit → rack), never renumbered.

Every block's place is computed from indexes that are handed out once and never reused (hall
index, scalable-unit index within its hall, rack index within its unit, cluster index), so adding
anything leaves every existing address where it was.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from kasbah.config.models import Addressing, IPNetwork

# host offsets inside a rack block: .0 is the network, .1 the gateway, hosts from .2
FIRST_HOST = 2


def _formatter(version: int) -> tuple[int, int]:
    return (socket.AF_INET, 4) if version == 4 else (socket.AF_INET6, 16)


@dataclass(frozen=True, slots=True)
class Carve:
    """One network carved into equal rack blocks by (hall, unit, rack) index, optionally per rail."""

    name: str
    supernet: IPNetwork
    block: int  # addresses a rack
    units_per_hall: int
    racks_per_unit: int
    halls: int

    @property
    def rail_span(self) -> int:
        return self.halls * self.units_per_hall * self.racks_per_unit * self.block

    def rack_base(self, hall: int, unit: int, rack: int, rail: int = 0) -> int:
        index = (hall * self.units_per_hall + unit) * self.racks_per_unit + rack
        return int(self.supernet.network_address) + rail * self.rail_span + index * self.block

    def prefixlen(self) -> int:
        return self.supernet.max_prefixlen - (self.block.bit_length() - 1)


class AddressPlan:
    """Turns indexes into addresses for one site's addressing section."""

    def __init__(self, addressing: Addressing) -> None:
        r = addressing.reserve
        self.addressing = addressing

        def carve(name: str, net: IPNetwork, block: int) -> Carve:
            return Carve(name, net, block, r.scalable_units_per_hall, r.racks_per_scalable_unit, r.halls)

        self.oob = carve("oob", addressing.oob.supernet, addressing.oob.per_rack)
        self.inband = carve("inband", addressing.inband.supernet, addressing.inband.per_rack)
        self.storage = carve("storage", addressing.storage.supernet, addressing.storage.per_rack)
        self.compute = carve("compute", addressing.compute.supernet, addressing.compute.per_rack)
        self.switches_per_fabric = r.switches_per_fabric
        self._fmt: dict[int, tuple[int, int]] = {4: _formatter(4), 6: _formatter(6)}

    def ip(self, value: int, version: int) -> str:
        family, size = self._fmt[version]
        return socket.inet_ntop(family, value.to_bytes(size, "big"))

    def cidr(self, base: int, prefixlen: int, version: int) -> str:
        return f"{self.ip(base, version)}/{prefixlen}"

    def rack_cidr(self, carve: Carve, hall: int, unit: int, rack: int, rail: int = 0) -> str:
        return self.cidr(carve.rack_base(hall, unit, rack, rail), carve.prefixlen(), carve.supernet.version)

    def host(self, carve: Carve, hall: int, unit: int, rack: int, slot: int, rail: int = 0) -> str:
        return self.ip(carve.rack_base(hall, unit, rack, rail) + FIRST_HOST + slot, carve.supernet.version)

    # clusters ---------------------------------------------------------------
    def pod_cidr(self, cluster: int) -> str:
        pods = self.addressing.pods
        net = pods.supernet
        size = 1 << (net.max_prefixlen - pods.cluster_prefix)
        return self.cidr(int(net.network_address) + cluster * size, pods.cluster_prefix, net.version)

    def service_cidr(self, cluster: int) -> str:
        svc = self.addressing.services
        net = svc.supernet
        size = 1 << (net.max_prefixlen - svc.cluster_prefix)
        return self.cidr(int(net.network_address) + cluster * size, svc.cluster_prefix, net.version)

    def clusters_reserved(self) -> int:
        pods, svc = self.addressing.pods, self.addressing.services
        return min(
            1 << (pods.cluster_prefix - pods.supernet.prefixlen),
            1 << (svc.cluster_prefix - svc.supernet.prefixlen),
        )

    def nodes_per_cluster_range(self) -> int:
        pods = self.addressing.pods
        return 1 << (pods.node_prefix - pods.cluster_prefix)

    # switch loopbacks -------------------------------------------------------
    def loopback_block(self, fabric: int) -> str:
        net = self.addressing.loopback
        size = self.switches_per_fabric
        prefix = net.max_prefixlen - (size.bit_length() - 1)
        return self.cidr(int(net.network_address) + fabric * size, prefix, net.version)

    def loopback(self, fabric: int, tier: str, index: int) -> str:
        """Leaves own the first half of a fabric's block, spines the third quarter, cores the last."""
        size = self.switches_per_fabric
        start = {"leaf": 0, "spine": size // 2, "core": size * 3 // 4}[tier]
        net = self.addressing.loopback
        return self.ip(int(net.network_address) + fabric * size + start + index, net.version)

    def loopback_room(self, tier: str) -> int:
        size = self.switches_per_fabric
        return size // 2 if tier == "leaf" else size // 4
