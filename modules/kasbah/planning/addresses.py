"""Address blocks as the planner hands them out, and how full each range is. Pure.

The blocks themselves are ipam.py's, placed by index; here the planner reserves fabric indexes
(each a loopback block, never reused) and sums, for the Plan's `addresses`, the blocks of each
range in use against the addresses they hold.
"""

from __future__ import annotations

from kasbah.config.issues import Loc
from kasbah.planning.model import AddressUsage, Cluster, Fabric, Rack, Switch
from kasbah.planning.state import PlanState


def reserve_fabrics(st: PlanState, count: int, path: Loc) -> int | None:
    """Reserve loopback blocks for new fabrics; indexes are never reused."""
    if st.next_fabric + count > st.reserve.fabrics:
        st.issue(
            path,
            f"no loopback block left for its fabrics: site.addressing.reserve.fabrics is {st.reserve.fabrics} and {st.next_fabric} are taken",
            "raise site.addressing.reserve.fabrics (before phase 1 is built)",
        )
        return None
    first = st.next_fabric
    st.next_fabric += count
    return first


def address_usage(
    st: PlanState,
    racks: tuple[Rack, ...],
    fabrics: tuple[Fabric, ...],
    switches: tuple[Switch, ...],
    clusters: tuple[Cluster, ...],
) -> tuple[AddressUsage, ...]:
    """Each range's blocks in use, the addresses they hold and those used (the Plan's `addresses`)."""
    a = st.campus.site.addressing
    ip = st.ipam
    with_nodes = [r for r in racks if r.nodes]
    oob_used = sum(st.racks_by_name[r.profile].oob_ports for r in with_nodes)
    nodes = sum(r.nodes for r in with_nodes)
    rail_blocks = sum(len(r.rail_cidrs) for r in with_nodes)
    rail_used = sum(r.nodes * len(r.rail_cidrs) for r in with_nodes)
    pod_block = 1 << (a.pods.supernet.max_prefixlen - a.pods.cluster_prefix)
    svc_block = 1 << (a.services.supernet.max_prefixlen - a.services.cluster_prefix)
    node_pod = 1 << (a.pods.supernet.max_prefixlen - a.pods.node_prefix)
    n = len(with_nodes)
    per_rack = (
        ("oob", a.oob, ip.oob, n, oob_used, "a rack"),
        ("inband", a.inband, ip.inband, n, nodes, "a rack"),
        ("storage", a.storage, ip.storage, n, nodes, "a rack"),
        ("compute", a.compute, ip.compute, rail_blocks, rail_used, "a rack and rail"),
    )
    return (
        *(
            AddressUsage(name, str(net.supernet), f"/{carve.prefixlen()} {unit}", blocks, blocks * net.per_rack, used)
            for name, net, carve, blocks, used, unit in per_rack
        ),
        AddressUsage(
            "loopback",
            str(a.loopback),
            f"{ip.switches_per_fabric} a fabric",
            len(fabrics),
            len(fabrics) * ip.switches_per_fabric,
            len(switches),
        ),
        AddressUsage(
            "pods",
            str(a.pods.supernet),
            f"/{a.pods.cluster_prefix} a cluster",
            len(clusters),
            len(clusters) * pod_block,
            sum(c.nodes for c in clusters) * node_pod,
        ),
        AddressUsage(
            "services",
            str(a.services.supernet),
            f"/{a.services.cluster_prefix} a cluster",
            len(clusters),
            len(clusters) * svc_block,
            len(clusters) * svc_block,
        ),
    )
