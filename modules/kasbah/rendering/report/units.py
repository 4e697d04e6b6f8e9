"""How the report writes its numbers (power, loads, shares) and shortens names, in the README and the pictures alike."""

from __future__ import annotations

from collections.abc import Sequence


def as_kw(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def as_power(kw: float) -> str:
    """Power in the unit a reader expects at this size: MW from 1 MW up, kW below."""
    return f"{kw / 1000:,.2f} MW" if abs(kw) >= 1000 else f"{kw:,.1f} kW"


def as_pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def unprefixed(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


def common_prefix(names: Sequence[str]) -> str:
    """The longest common prefix ending at a `-`, so labels keep whole name parts."""
    if len(names) < 2:
        return ""
    first, last = min(names), max(names)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    cut = first.rfind("-", 0, i + 1)
    return first[: cut + 1] if cut >= 0 else ""
