"""Label-selector algebra for the reachability verifier: requirements and the pod-label regions they cut."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True, slots=True, order=True)
class Requirement:
    """One label requirement (a matchLabels entry is `In` with one value)."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "In":
            return value is not None and value in self.values
        if self.op == "NotIn":
            # Kubernetes semantics: NotIn also matches objects without the key.
            return value is None or value not in self.values
        if self.op == "Exists":
            return value is not None
        return value is None

    @property
    def positive(self) -> bool:
        """Whether only labelled objects can match (an object without any label fails it)."""
        return self.op in ("In", "Exists")

    def __str__(self) -> str:
        if self.op == "In" and len(self.values) == 1:
            return f"{self.key}={self.values[0]}"
        if self.op in ("In", "NotIn"):
            return f"{self.key} {self.op.lower()} ({','.join(self.values)})"
        return self.key if self.op == "Exists" else f"!{self.key}"


def matches_all(requirements: Iterable[Requirement], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)


@dataclass(frozen=True, slots=True)
class KeySet:
    """The label values one key may take in a region: maybe absent, plus a finite or co-finite value set.

    Every requirement, and the complement of every requirement, is one KeySet, and KeySets are
    closed under intersection: that is what keeps regions exact conjunctions per key.
    """

    absent: bool
    cofinite: bool
    values: frozenset[str]

    @staticmethod
    def of(req: Requirement) -> KeySet:
        values = frozenset(req.values)
        if req.op == "In":
            return KeySet(False, False, values)
        if req.op == "NotIn":
            return KeySet(True, True, values)
        if req.op == "Exists":
            return KeySet(False, True, frozenset())
        return KeySet(True, False, frozenset())

    @property
    def empty(self) -> bool:
        return not self.absent and not self.cofinite and not self.values

    @property
    def unconstrained(self) -> bool:
        return self.absent and self.cofinite and not self.values

    def complement(self) -> KeySet:
        return KeySet(not self.absent, not self.cofinite, self.values)

    def __and__(self, other: KeySet) -> KeySet:
        absent = self.absent and other.absent
        if self.cofinite and other.cofinite:
            return KeySet(absent, True, self.values | other.values)
        if self.cofinite:
            return KeySet(absent, False, other.values - self.values)
        if other.cofinite:
            return KeySet(absent, False, self.values - other.values)
        return KeySet(absent, False, self.values & other.values)

    def sample(self) -> str | None:
        """One label value in the set, or None for "key absent"."""
        if self.absent:
            return None
        if not self.cofinite:
            return min(self.values)
        # any value outside the excluded ones stands for all of them
        n = 0
        while f"other-{n}" in self.values:
            n += 1
        return f"other-{n}"

    def describe(self, key: str) -> str:
        listed = ",".join(sorted(self.values))
        if not self.cofinite:
            if not self.values:
                return f"!{key}"
            inside = f"{key}={listed}" if len(self.values) == 1 else f"{key} in ({listed})"
            return f"({inside} or !{key})" if self.absent else inside
        if not self.values:
            return key
        return f"{key} notin ({listed})" if self.absent else f"{key} notin ({listed}) and {key}"


Region = tuple[tuple[str, KeySet], ...]  # sorted by key; keys not listed are unconstrained
EVERY_POD: Region = ()


def _conjunction(requirements: Sequence[Requirement]) -> dict[str, KeySet] | None:
    """Per-key KeySets of a conjunction of requirements; None when it can match nothing."""
    out: dict[str, KeySet] = {}
    for req in requirements:
        ks = KeySet.of(req)
        out[req.key] = out[req.key] & ks if req.key in out else ks
        if out[req.key].empty:
            return None
    return {k: v for k, v in out.items() if not v.unconstrained}


def _restrict(region: Region, key: str, ks: KeySet) -> Region | None:
    items = dict(region)
    new = items[key] & ks if key in items else ks
    if new.empty:
        return None
    items[key] = new
    return tuple(sorted(items.items()))


def refine(regions: Sequence[Region], requirements: Sequence[Requirement]) -> list[Region]:
    """Split every region so that the conjunction holds on all of a part or on none of it.

    The parts outside are disjoint by construction: the i-th fails requirement key i and meets
    keys 0..i-1, so no label-set lands in two regions and no region is empty.
    """
    conj = _conjunction(requirements)
    if conj is None or not conj:
        return list(regions)
    out: list[Region] = []
    for region in regions:
        inside: Region | None = region
        outside: list[Region] = []
        for key, ks in conj.items():
            if inside is None:
                break
            miss = _restrict(inside, key, ks.complement())
            if miss is not None:
                outside.append(miss)
            inside = _restrict(inside, key, ks)
        if inside is None or not outside:
            out.append(region)
        else:
            out.append(inside)
            out.extend(outside)
    return out


def sample(region: Region) -> dict[str, str]:
    """A concrete pod label-set inside the region: it meets every selector the region was refined by
    exactly as every other label-set of the region does."""
    out: dict[str, str] = {}
    for key, ks in region:
        value = ks.sample()
        if value is not None:
            out[key] = value
    return out


def describe(region: Region) -> str:
    return ",".join(ks.describe(key) for key, ks in region) or "*"
