"""Halls: commissioned by index with their fabrics' loopback blocks and network racks, and their loads. Pure.

A hall's index and its storage and out-of-band fabric indexes are handed out once and never
reused. Each phase ends with the halls' loads (IT power, liquid and air cooling) against what
their profiles deliver; those figures are the Plan's `halls`.
"""

from __future__ import annotations

from kasbah.config.issues import Loc
from kasbah.config.models import HallSpec
from kasbah.planning.addresses import reserve_fabrics
from kasbah.planning.model import Hall
from kasbah.planning.racks import add_rack, fits_hall
from kasbah.planning.state import HallState, PlanState

# Halls per Pulumi stack: hall group g holds the halls of index g*HALLS_PER_STACK .. (g+1)*HALLS_PER_STACK-1.
# Group 0 is the site stack's, every other group has a stack of its own (`stacks/halls`). Hall indexes are
# never reused, so a hall's group never changes; changing this constant would move halls, and their ledger
# records, between stacks (tests/planning pins it).
HALLS_PER_STACK = 8


def hall_group(index: int) -> int:
    """The hall group, hence the Pulumi stack, of the hall with this index (0: the site stack)."""
    if index < 0:
        raise ValueError(f"hall index {index}: indexes start at 0")
    return index // HALLS_PER_STACK


def commission_hall(st: PlanState, spec: HallSpec, path: Loc, phase: str) -> None:
    """A new hall: its index, its two fabrics' loopback blocks and its profile's network racks."""
    if not st.claim("hall", spec.name, (*path, "name"), phase):
        return
    profile = st.halls_by_name.get(spec.profile)
    if profile is None:
        st.issue(
            (*path, "profile"),
            f"unknown hall profile `{spec.profile}`",
            f"use one of: {', '.join(st.halls_by_name)}",
        )
        st.failed.add(("hall", spec.name))
        return
    index = st.next_hall
    st.next_hall += 1
    if index >= st.reserve.halls:
        st.issue(
            path,
            f"this is hall {index + 1} but site.addressing.reserve.halls is {st.reserve.halls}",
            "raise site.addressing.reserve.halls (before phase 1 is built; hall indexes are never reused)",
        )
        st.failed.add(("hall", spec.name))
        return
    first = reserve_fabrics(st, 2, path)
    if first is None:
        st.failed.add(("hall", spec.name))
        return
    hall = HallState(spec, profile, index, phase)
    st.halls[spec.name] = hall
    st.hall_fabrics[spec.name] = (first, first + 1)
    nr = profile.network_racks
    if nr is not None and nr.count:
        net = st.racks_by_name[nr.profile]
        fits_hall(st, hall, net, path, key="profile")
        for _ in range(nr.count):
            add_rack(st, hall, net, None, None, -1, -1, phase)


def check_hall_loads(st: PlanState) -> None:
    """Each hall's IT load and cooling against what its profile delivers."""
    st.hall_loads = hall_snapshots(st)  # the snapshot of this phase reuses them
    for hall in st.hall_loads:
        where: Loc = st.hall_paths.get(hall.name, ("phase",))
        hp = st.halls[hall.name].profile
        if hall.it_load_kw > hall.power_capacity_kw:
            st.issue(
                where,
                f"hall `{hall.name}` draws {hall.it_load_kw:.0f} kW IT, above its {hall.power_capacity_kw:.0f} kW usable ({hp.power.units} x {hp.power.unit_mw:g} MW, {hp.power.redundancy.value})",
                "move racks to another hall or use a larger hall profile",
            )
        if hall.liquid_load_kw > hall.liquid_capacity_kw:
            st.issue(
                where,
                f"hall `{hall.name}` needs {hall.liquid_load_kw:.0f} kW of liquid cooling, above its {hall.liquid_capacity_kw:.0f} kW usable",
                "move liquid-cooled racks to another hall or add coolant distribution units to the hall profile",
            )
        if hall.air_load_kw > hall.air_capacity_kw:
            st.issue(
                where,
                f"hall `{hall.name}` needs {hall.air_load_kw:.0f} kW of air cooling, above its {hall.air_capacity_kw:.0f} kW",
                "move air-cooled racks to another hall or raise air_cooling_mw",
            )


def hall_snapshots(st: PlanState) -> list[Hall]:
    """Each live hall with its loads, in commissioning order (the Plan's `halls`)."""
    loads: dict[str, list[float]] = {h: [0.0, 0.0, 0.0, 0.0] for h in st.halls}
    for r in st.racks.values():
        acc = loads[r.hall]
        acc[0] += r.power_kw
        acc[1 if r.cooling != "air" else 2] += r.power_kw
        acc[3] += 1
    out = []
    for name, h in st.halls.items():
        hp = h.profile
        it, liquid, air, count = loads[name]
        out.append(
            Hall(
                name=name,
                profile=hp.name,
                index=h.index,
                rows=hp.rows,
                positions=hp.positions,
                positions_used=h.next_position,
                racks=int(count),
                power_capacity_kw=round(hp.power.usable_mw * 1000, 3),
                it_load_kw=round(it, 3),
                liquid_capacity_kw=round(hp.liquid_cooling.usable_mw * 1000, 3) if hp.liquid_cooling else 0.0,
                liquid_load_kw=round(liquid, 3),
                air_capacity_kw=round(hp.air_cooling_mw * 1000, 3),
                air_load_kw=round(air, 3),
                phase=h.phase,
            )
        )
    return out
