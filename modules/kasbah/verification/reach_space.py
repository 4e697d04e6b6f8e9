"""Interval algebra for the reachability verifier: port sets per protocol and IPv4/IPv6 address atoms."""

from __future__ import annotations

import ipaddress
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Port numbers of all protocols live in one integer line, one 65,536-wide band per protocol, so a
# port set is a single sorted interval list and union / intersection / difference stay linear.
# "icmp" stands for every protocol without ports (ICMP, ICMPv6, ...): one point, its port 0.
PROTOCOLS = ("tcp", "udp", "sctp", "icmp")
PORTED = ("tcp", "udp", "sctp")
_BAND = 1 << 16
MAX_PORT = _BAND - 1

Span = tuple[int, int]  # inclusive


def _merge(spans: Iterable[Span]) -> tuple[Span, ...]:
    out: list[Span] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PortSet:
    """A set of (protocol, port) pairs, kept as sorted disjoint inclusive spans on the banded line."""

    spans: tuple[Span, ...] = ()

    @staticmethod
    def of(protocol: str, first: int = 1, last: int = MAX_PORT) -> PortSet:
        band = PROTOCOLS.index(protocol) * _BAND
        if protocol == "icmp":
            return PortSet(((band, band),))
        return PortSet(((band + first, band + last),))

    @staticmethod
    def union_of(sets: Iterable[PortSet]) -> PortSet:
        return PortSet(_merge(span for s in sets for span in s.spans))

    def __bool__(self) -> bool:
        return bool(self.spans)

    def __or__(self, other: PortSet) -> PortSet:
        if not other.spans:
            return self
        if not self.spans:
            return other
        return PortSet(_merge(self.spans + other.spans))

    def __and__(self, other: PortSet) -> PortSet:
        out: list[Span] = []
        a, b, i, j = self.spans, other.spans, 0, 0
        while i < len(a) and j < len(b):
            lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
            if lo <= hi:
                out.append((lo, hi))
            if a[i][1] < b[j][1]:
                i += 1
            else:
                j += 1
        return PortSet(tuple(out))

    def __sub__(self, other: PortSet) -> PortSet:
        if not self.spans or not other.spans:
            return self
        out: list[Span] = []
        b = other.spans
        j = 0
        for lo, hi in self.spans:
            cur = lo
            while j < len(b) and b[j][1] < cur:
                j += 1
            k = j
            while k < len(b) and b[k][0] <= hi:
                if b[k][0] > cur:
                    out.append((cur, b[k][0] - 1))
                cur = max(cur, b[k][1] + 1)
                k += 1
            if cur <= hi:
                out.append((cur, hi))
        return PortSet(tuple(out))

    def per_protocol(self) -> Iterator[tuple[str, tuple[Span, ...]]]:
        """Each protocol present with its port spans (icmp has the single span (0, 0))."""
        for index, protocol in enumerate(PROTOCOLS):
            lo_band, hi_band = index * _BAND, index * _BAND + MAX_PORT
            spans = tuple(
                (max(lo, lo_band) - lo_band, min(hi, hi_band) - lo_band)
                for lo, hi in self.spans
                if lo <= hi_band and hi >= lo_band
            )
            if spans:
                yield protocol, spans

    def format(self) -> str:
        """Readable form: "all", "tcp/443", "tcp,udp/53", "tcp/1-65535 icmp"; "·" when empty."""
        if not self.spans:
            return "·"
        if self == ALL_PORTS:
            return "all"
        groups: dict[str, list[str]] = {}
        bare: list[str] = []
        for protocol, spans in self.per_protocol():
            if protocol == "icmp":
                bare.append("icmp")
                continue
            text = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in spans)
            groups.setdefault(text, []).append(protocol)
        return " ".join([f"{','.join(protos)}/{ports}" for ports, protos in groups.items()] + bare)


NO_PORTS = PortSet()
ALL_PORTS = PortSet.union_of(PortSet.of(p) for p in PROTOCOLS)


# Addresses of both families share one integer line too: IPv4 at [0, 2^32), IPv6 above it.
_V6_BASE = 1 << 32
_END = _V6_BASE + (1 << 128)


def _span(net: IPNetwork) -> Span:
    base = 0 if net.version == 4 else _V6_BASE
    return base + int(net.network_address), base + int(net.broadcast_address)


class AddressAtoms:
    """The address space cut at every CIDR boundary given; atom i is [starts[i], starts[i+1]).

    Any CIDR given (and any difference of them) is exactly a union of atoms, so a set of
    addresses is an int bit mask over atoms and never an enumeration of addresses.
    """

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        cuts = {0, _V6_BASE}
        for net in networks:
            lo, hi = _span(net)
            cuts.add(lo)
            cuts.add(hi + 1)
        cuts.discard(_END)
        self.starts: list[int] = sorted(cuts)
        self.count = len(self.starts)
        self.everything = (1 << self.count) - 1
        self.ipv4 = (1 << bisect_left(self.starts, _V6_BASE)) - 1
        self.ipv6 = self.everything & ~self.ipv4

    def mask(self, net: IPNetwork) -> int:
        lo, hi = _span(net)
        first = bisect_left(self.starts, lo)
        last = bisect_right(self.starts, hi) - 1
        if first >= self.count or self.starts[first] != lo:
            raise ValueError(f"{net} was not among the networks the atoms were cut for")
        return ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)

    def masks(self, nets: Iterable[IPNetwork]) -> int:
        out = 0
        for net in nets:
            out |= self.mask(net)
        return out

    def end(self, index: int) -> int:
        return self.starts[index + 1] - 1 if index + 1 < self.count else _END - 1

    def cidrs(self, mask: int) -> list[str]:
        """The smallest list of CIDRs covering exactly the atoms in mask, in address order."""
        out: list[str] = []
        run: Span | None = None
        for index in bits(mask):
            lo, hi = self.starts[index], self.end(index)
            if run is not None and run[1] + 1 == lo and lo != _V6_BASE:
                run = (run[0], hi)
                continue
            if run is not None:
                out.extend(_summarize(run))
            run = (lo, hi)
        if run is not None:
            out.extend(_summarize(run))
        return out


def _summarize(run: Span) -> list[str]:
    lo, hi = run
    if lo >= _V6_BASE:
        first: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(lo - _V6_BASE)
        last: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(hi - _V6_BASE)
    else:
        first, last = ipaddress.IPv4Address(lo), ipaddress.IPv4Address(hi)
    return [str(n) for n in ipaddress.summarize_address_range(first, last)]


def bits(mask: int) -> Iterator[int]:
    """Indexes of the set bits of mask, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
