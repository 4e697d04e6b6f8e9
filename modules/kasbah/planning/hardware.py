"""Hardware manifests: the integrator's serials and MACs, node by node, checked against the racks they describe. Pure.

A manifest (hardware/<rack>.yaml) names a rack of `kasbah plan --json`; its slots must fit the
rack's profile. The Plan's `hardware` holds the rows that fit nodes of the phase; the rest are
reported once the phases plan without problems.
"""

from __future__ import annotations

from kasbah.config.issues import ConfigIssue
from kasbah.config.models import RackProfile, SlotHardware
from kasbah.planning.model import NodeHardware
from kasbah.planning.state import PlanState


def node_hardware(st: PlanState) -> tuple[NodeHardware, ...]:
    """The hardware of this phase's nodes whose manifest fits them (`check_hardware` reports the rest)."""
    out: list[NodeHardware] = []
    for m in st.campus.hardware:
        rack = st.racks.get(m.rack)
        if rack is None:
            continue
        profile = st.racks_by_name[rack.profile]
        for s in m.slots:
            node = f"{rack.name}-n{s.slot:02d}"
            if node in st.nodes and not _slot_problems(s, profile):
                out.append(NodeHardware(node, s.serial, s.bmc_mac, s.inband_mac, s.storage_mac, tuple(s.rail_macs)))
    return tuple(sorted(out, key=lambda h: h.node))


def _slot_problems(s: SlotHardware, profile: RackProfile) -> list[tuple[str, str, str]]:
    """(key, what is wrong, fix) for a manifest row the rack profile contradicts."""
    out: list[tuple[str, str, str]] = []
    if s.slot > profile.nodes:
        out.append(
            (
                "slot",
                f"has no slot {s.slot}: rack profile `{profile.name}` has {profile.nodes} slot(s)",
                f"number slots 1 to {profile.nodes} as the Plan does (node n01 is slot 1), or check the rack's profile",
            )
        )
        return out
    rails = profile.compute_nics_per_node
    if len(s.rail_macs) != rails:
        out.append(
            (
                "rail_macs",
                f"slot {s.slot} lists {len(s.rail_macs)} rail NIC MAC(s); rack profile `{profile.name}` has {rails} compute rail(s)",
                f"list {rails} MAC(s) in rail order" if rails else "remove rail_macs: this profile has no compute NICs",
            )
        )
    if profile.storage_nics_per_node and s.storage_mac is None:
        out.append(
            (
                "storage_mac",
                f"slot {s.slot} has no storage NIC MAC; rack profile `{profile.name}` has a storage NIC",
                "add storage_mac from the integrator's manifest",
            )
        )
    if not profile.storage_nics_per_node and s.storage_mac is not None:
        out.append(
            (
                "storage_mac",
                f"slot {s.slot} has a storage NIC MAC, but rack profile `{profile.name}` has no storage NIC",
                "remove storage_mac, or check the rack's profile",
            )
        )
    return out


def check_hardware(st: PlanState, complete: bool) -> None:
    """Each manifest against the rack it describes: the rack exists (by the last phase planned), the slots fit.

    Only once the phases plan without problems: a rack a broken phase did not lay out is not a manifest's fault.
    """
    if st.issues:
        return
    for m in st.campus.hardware:
        doc = f"hardware/{m.rack}.yaml"
        rack = st.racks.get(m.rack)
        if rack is None:
            if m.rack in st.ever_racks:
                continue  # a decommissioned rack's manifest stays: it describes the rack in the phases before
            if complete:
                close = sorted(r for r in st.racks if r.split("-")[0] == m.rack.split("-")[0])[:4]
                st.issues.append(
                    ConfigIssue(
                        doc,
                        ("hardware", "rack"),
                        f"no rack `{m.rack}` in any phase",
                        "name the file and hardware.rack after a rack of `kasbah plan --json`"
                        + (f" (in that hall: {', '.join(close)}, ...)" if close else ""),
                    )
                )
            continue
        if not rack.nodes:
            st.issues.append(
                ConfigIssue(
                    doc,
                    ("hardware", "rack"),
                    f"rack `{m.rack}` holds no nodes (a {rack.kind} rack)",
                    "manifests describe racks of servers; remove this file",
                )
            )
            continue
        profile = st.racks_by_name[rack.profile]
        for i, s in enumerate(m.slots):
            for key, what, fix in _slot_problems(s, profile):
                st.issues.append(ConfigIssue(doc, ("hardware", "slots", i, key), f"rack {m.rack} {what}", fix))
