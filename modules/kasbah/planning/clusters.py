"""Clusters: commissioned by index, their control planes and API addresses, upgrades and platform releases. Pure.

A cluster's pod and service ranges come from its index (handed out once); its control plane takes
one node a rack of a management pool, its API virtual IP an address of those racks' in-band
blocks. Declared upgrades move it one Kubernetes minor a phase. Also here: each cluster's Helm
releases with the charts the site pins (and the pins' own check), where its etcd snapshots go,
and the node_limit check every phase ends with.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from kasbah.config.issues import SITE_DOC, ConfigIssue, Loc
from kasbah.config.models import ClusterSpec, ClusterUpgrade, PoolPurpose
from kasbah.planning import platform, ports
from kasbah.planning.hostnet import gateway
from kasbah.planning.labels import multi_node_nvlink_domains
from kasbah.planning.mirrors import CHARTS, mirrored
from kasbah.planning.model import (
    Cluster,
    EtcdBackup,
    HelmRelease,
    KmsProvider,
    Mirror,
    Pool,
    QuotaGrant,
    Sink,
    Tenant,
    Upgrade,
    WorkloadBackup,
)
from kasbah.planning.state import ClusterState, PlanState, with_article


def check_charts(st: PlanState) -> None:
    """The site's chart pins: each names a release kasbah installs, and none another GitOps controller's."""
    charts: Loc = ("site", "platform", "charts")
    other = {c.release for c in platform.CONTROLLERS.values()} - {st.controller.release}
    for name in st.campus.site.platform.charts:
        if name not in platform.RELEASES:
            st.issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*charts, name),
                    f"no platform release `{name}`",
                    f"pin charts for the releases kasbah installs: {', '.join(platform.RELEASES)}",
                )
            )
        elif name in other:
            st.issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*charts, name),
                    f"`{name}` installs another GitOps controller than gitops.controller "
                    f"({st.controller.kind.value}): no cluster runs it",
                    "remove it, or set gitops.controller to the controller it installs",
                )
            )


def commission_cluster(st: PlanState, spec: ClusterSpec, path: Loc, phase: str) -> bool:
    """A new cluster's pod and service ranges by index; False if its name is taken."""
    if not st.claim("cluster", spec.name, (*path, "name"), phase):
        return False
    if st.next_cluster >= st.ipam.clusters_reserved():
        st.issue(
            path,
            f"no pod or service range left: the site reserves {st.ipam.clusters_reserved()} cluster ranges",
            "lower site.addressing.pods.cluster_prefix / services.cluster_prefix, or give larger supernets (before phase 1)",
        )
    if spec.node_limit > st.ipam.nodes_per_cluster_range():
        st.issue(
            (*path, "node_limit"),
            f"node_limit {spec.node_limit} is more than a cluster's pod range holds ({st.ipam.nodes_per_cluster_range()} node ranges of /{st.campus.site.addressing.pods.node_prefix})",
            f"lower node_limit to {st.ipam.nodes_per_cluster_range()} or widen site.addressing.pods.cluster_prefix",
        )
    pod_ips = 1 << (st.campus.site.addressing.pods.supernet.max_prefixlen - st.campus.site.addressing.pods.node_prefix)
    if spec.max_pods_per_node > pod_ips - 2:
        st.issue(
            (*path, "max_pods_per_node"),
            f"{spec.max_pods_per_node} pods a node do not fit a node's /{st.campus.site.addressing.pods.node_prefix} pod range ({pod_ips - 2} usable addresses)",
            f"lower max_pods_per_node to {pod_ips - 2}, or lower site.addressing.pods.node_prefix",
        )
    st.clusters[spec.name] = ClusterState(spec, st.next_cluster, phase, version=spec.kubernetes_version)
    st.next_cluster += 1
    return True


def place_control_plane(st: PlanState, spec: ClusterSpec, path: Loc) -> None:
    """A new cluster's control plane: one free node a rack of its management pool, then its API address."""
    cp = spec.control_plane
    pool = st.pools.get(cp.pool)
    if ("pool", cp.pool) in st.failed:
        return
    if pool is None:
        st.issue(
            (*path, "pool"),
            f"unknown pool `{cp.pool}`",
            f"name a management pool: {', '.join(n for n, p in st.pools.items() if p.spec.purpose is PoolPurpose.MANAGEMENT) or '(none yet)'}",
        )
        return
    if pool.spec.purpose is not PoolPurpose.MANAGEMENT:
        st.issue(
            (*path, "pool"),
            f"`{cp.pool}` is {with_article(pool.spec.purpose.value)} pool; control planes run on management pools",
            "name a pool with purpose management",
        )
        return
    if pool.spec.rollout.racks > 1:
        # one replica a rack: two racks at once would take two etcd members, quorum of 3 gone
        st.issue(
            (*st.pool_paths.get(cp.pool, (*path, "pool")), "rollout", "racks"),
            f"pool `{cp.pool}` hosts the control plane of cluster {spec.name} and rolls "
            f"{pool.spec.rollout.racks} racks at once: that can take several etcd members down together",
            "a management pool that hosts a control plane rolls one rack at a time: remove rollout.racks or set 1",
        )
    chosen: list[str] = []
    # one replica a rack, so a rack (or its A/B feed pair) failing costs at most one etcd member
    for unit in pool.units:
        for rack in st.units[unit].racks:
            for slot in range(1, st.racks[rack].nodes + 1):
                node = st.nodes[f"{rack}-n{slot:02d}"]
                if node.cluster is None:
                    chosen.append(node.name)
                    break
            if len(chosen) == cp.replicas:
                break
        if len(chosen) == cp.replicas:
            break
    if len(chosen) < cp.replicas:
        st.issue(
            (*path, "replicas"),
            f"management pool `{cp.pool}` has a free node in {len(chosen)} distinct rack(s); {cp.replicas} control-plane replicas need {cp.replicas} racks, one replica each",
            "grow the management pool (expansions) or use fewer replicas",
        )
        return
    for name in chosen:
        st.nodes[name] = replace(st.nodes[name], role="control-plane", cluster=spec.name)
    st.clusters[spec.name].control_plane = chosen
    st.clusters[spec.name].vip = _api_vip(st, spec, chosen, (*path, "api_vip"))


def _api_vip(st: PlanState, spec: ClusterSpec, chosen: list[str], path: Loc) -> str:
    """The API's virtual IP: declared, or the highest free address of the first control-plane rack's in-band block.

    VRRP moves an address between hosts of one segment, so it must be an in-band address of a rack
    holding a replica, and neither a node's, the gateway's, nor another cluster's VIP.
    """
    racks = [st.racks[st.nodes[n].rack] for n in chosen]
    taken = {c.vip for c in st.clusters.values() if c.vip}
    used = {ip_address(n.inband_ip) for n in st.nodes.values() if n.rack in {r.name for r in racks}}
    blocks = [ip_network(r.inband_cidr) for r in racks if r.inband_cidr]
    if not blocks:
        return ""

    def reserved(net: IPv4Network | IPv6Network, addr: IPv4Address | IPv6Address) -> bool:
        ends = (net.network_address, net.broadcast_address)
        return addr in ends or str(addr) == gateway(str(net))

    if spec.control_plane.api_vip is not None:
        vip = spec.control_plane.api_vip
        home = next((b for b in blocks if vip in b), None)
        fix = f"use a free address of {', '.join(map(str, blocks))}, or leave api_vip unset for the Plan to pick one"
        if home is None:
            st.issue(
                path,
                f"{vip} is outside the management network of cluster {spec.name}'s control plane "
                f"(the in-band blocks of its racks: {', '.join(map(str, blocks))}); VRRP can only move it there",
                fix,
            )
        elif reserved(home, vip):
            st.issue(path, f"{vip} is the network, gateway or broadcast address of {home}", fix)
        elif vip in used:
            owner = next(n.name for n in st.nodes.values() if ip_address(n.inband_ip) == vip)
            st.issue(path, f"{vip} is the in-band address of node {owner}", fix)
        elif str(vip) in taken:
            other = next(c.spec.name for c in st.clusters.values() if c.vip == str(vip))
            st.issue(path, f"{vip} is already the API address of cluster {other}", fix)
        else:
            return str(vip)
        return ""
    block = blocks[0]
    for offset in range(block.num_addresses - 2, 1, -1):
        addr = block[offset]
        if addr not in used and str(addr) not in taken:
            return str(addr)
    st.issue(
        path,
        f"no free in-band address left in {block} (rack {racks[0].name}) for cluster {spec.name}'s API virtual IP",
        "set clusters[].control_plane.api_vip to a free address of another control-plane rack, or raise "
        "site.addressing.inband.per_rack (only before phase 1 is built: it renumbers)",
    )
    return ""


def upgrade_cluster(st: PlanState, up: ClusterUpgrade, path: Loc, phase: str, seen: set[str]) -> None:
    """A declared minor upgrade: a cluster of an earlier phase, one minor forward, once a phase."""
    c = st.clusters.get(up.cluster)
    if c is None:
        gone = st.gone("cluster", up.cluster)
        st.issue(
            (*path, "cluster"),
            gone or f"no cluster `{up.cluster}` to upgrade",
            f"upgrade one of: {', '.join(st.clusters) or '(none yet)'}",
        )
        return
    target = (*path, "kubernetes_version")
    if c.phase == phase:
        st.issue(
            (*path, "cluster"),
            f"cluster `{up.cluster}` is commissioned in this phase",
            f'set its kubernetes_version to "{up.kubernetes_version}" where it is commissioned instead',
        )
        return
    if ("cluster", up.cluster) in st.retiring:
        st.issue((*path, "cluster"), f"cluster `{up.cluster}` is decommissioned in this phase", "drop the upgrade")
        return
    if up.cluster in seen:
        st.issue(
            (*path, "cluster"),
            f"cluster `{up.cluster}` is upgraded twice in this phase",
            "one minor a phase: declare the next minor in a later phase",
        )
        return
    seen.add(up.cluster)
    old, new = (tuple(int(x) for x in v.split(".")) for v in (c.version, up.kubernetes_version))
    if new <= old:
        what = "is the version it runs" if new == old else "would be a downgrade, which kubeadm does not do"
        st.issue(
            target,
            f"{up.kubernetes_version} for cluster `{up.cluster}` (at {c.version}) {what}",
            f"declare the next minor, 1.{old[1] + 1}, or drop the upgrade",
        )
        return
    if new[0] != old[0] or new[1] != old[1] + 1:
        st.issue(
            target,
            f"{c.version} to {up.kubernetes_version} skips "
            f"{', '.join(f'1.{m}' for m in range(old[1] + 1, new[1]))} for cluster `{up.cluster}`: kubeadm upgrades "
            "one minor at a time",
            f"declare 1.{old[1] + 1} here and the next minors in later phases",
        )
        return
    st.upgrades.append(Upgrade(up.cluster, c.version, up.kubernetes_version, phase))
    c.version = up.kubernetes_version


def check_node_limits(st: PlanState) -> None:
    """Each cluster's nodes at the end of the phase against its node_limit."""
    for name, c in st.clusters.items():
        nodes = st.workers(name) + len(c.control_plane)
        if nodes > c.spec.node_limit:
            st.issue(
                ("phase",),
                f"cluster `{name}` has {nodes} nodes, above its node_limit of {c.spec.node_limit}",
                "move a pool to another cluster",
            )


def cluster_snapshot(
    st: PlanState,
    name: str,
    c: ClusterState,
    pools: tuple[Pool, ...],
    tenants: tuple[Tenant, ...],
    grants: tuple[QuotaGrant, ...],
) -> Cluster:
    mine = [p for p in pools if p.cluster == name]
    a = st.campus.site.addressing
    present = {g.tenant for g in grants if g.cluster == name and g.gpus}
    return Cluster(
        name=name,
        kubernetes_version=c.version,
        node_limit=c.spec.node_limit,
        max_pods_per_node=c.spec.max_pods_per_node,
        control_plane=tuple(c.control_plane),
        pools=tuple(p.name for p in mine),
        workers=sum(p.nodes for p in mine),
        gpus=sum(p.gpus for p in mine),
        pod_cidr=st.ipam.pod_cidr(c.index),
        node_pod_prefix=a.pods.node_prefix,
        service_cidr=st.ipam.service_cidr(c.index),
        phase=c.phase,
        api_host=f"api.{name}.{st.zone}",
        api_port=ports.KUBE_APISERVER,
        tenants=tuple(t.name for t in tenants if t.name in present),
        gitops_path="/".join(part for part in (st.environment, st.phase_name, "clusters", name) if part),
        api_vip=c.vip,
        api_vrrp_id=c.index % 255 + 1,
        commissioned_version=c.spec.kubernetes_version,
    )


def releases(st: PlanState, clusters: tuple[Cluster, ...]) -> tuple[HelmRelease, ...]:
    """Each cluster's Helm releases (planning.platform), with the chart the site pins for each."""
    pins = st.campus.site.platform.charts
    mirrors = site_mirrors(st)
    multi = multi_node_nvlink_domains(st.nodes.values())
    nvl72 = {n.cluster for n in st.nodes.values() if n.gpus and n.nvlink_domain in multi}
    out: list[HelmRelease] = []
    for c in clusters:
        for name in platform.required_releases(st.controller.kind, c.name in nvl72):
            spec, pin = platform.RELEASES[name], pins.get(name)
            if pin is None:
                if name not in st.unpinned:
                    st.unpinned.add(name)
                    st.issues.append(
                        ConfigIssue(
                            SITE_DOC,
                            ("site", "platform", "charts"),
                            f"cluster {c.name} runs the Helm release `{name}` and the site pins no chart for it",
                            f"add charts.{name}: {{chart, version, repository}} (the chart from your mirror)",
                        )
                    )
                continue
            origin = pin.repository or pin.chart
            out.append(
                HelmRelease(
                    c.name,
                    name,
                    spec.namespace,
                    mirrored(pin.chart, mirrors, CHARTS) if pin.repository is None else pin.chart,
                    pin.version,
                    mirrored(pin.repository, mirrors, CHARTS) if pin.repository else None,
                    spec.crd_groups,
                    spec.creates,
                    origin,
                )
            )
    return tuple(out)


def _every_tenant_allows(
    st: PlanState, key: tuple[str, str], path: Loc, what: str, jurisdiction: str, tenants: tuple[Tenant, ...], fix: str
) -> None:
    """A site service every tenant's data goes through lies in a jurisdiction every tenant allows; reported once,
    in the first phase it is outside of (`key` names the service among mirrors, sinks and the KMS)."""
    outside = [t for t in tenants if jurisdiction not in t.jurisdictions]
    if not outside or key in st.reported_outside:
        return
    st.reported_outside.add(key)
    st.issues.append(
        ConfigIssue(
            SITE_DOC,
            path,
            f"{what}, and {', '.join(t.name for t in outside)} {'allows' if len(outside) == 1 else 'allow'} only "
            f"{' / '.join(sorted({j for t in outside for j in t.jurisdictions}))}",
            fix,
        )
    )


def site_mirrors(st: PlanState, tenants: tuple[Tenant, ...] = ()) -> tuple[Mirror, ...]:
    """site.mirrors as the Plan records them (URLs without a trailing slash); each serves every tenant (its nodes
    and clusters fetch from it), so each lies in a jurisdiction every tenant allows."""
    for n, m in enumerate(st.campus.site.mirrors):
        _every_tenant_allows(
            st,
            ("mirror", m.name),
            ("site", "mirrors", n, "jurisdiction"),
            f"mirror `{m.name}` runs in {m.jurisdiction}, but every tenant's nodes and clusters fetch from it",
            m.jurisdiction,
            tenants,
            "run the mirror in a jurisdiction every tenant allows",
        )
    return tuple(
        Mirror(m.name, m.kind.value, m.url.rstrip("/"), m.jurisdiction, tuple(m.upstreams))
        for m in st.campus.site.mirrors
    )


def site_sinks(st: PlanState, tenants: tuple[Tenant, ...]) -> tuple[Sink, ...]:
    """site.sinks with their tenants; a platform sink receives every tenant's data, so every tenant allows it."""
    out = []
    for n, k in enumerate(st.campus.site.sinks):
        if k.scope.value == "platform":
            _every_tenant_allows(
                st,
                ("sink", k.name),
                ("site", "sinks", n, "jurisdiction"),
                f"sink `{k.name}` stores in {k.jurisdiction} every tenant's {k.kind.value}",
                k.jurisdiction,
                tenants,
                "store the platform's sink in a jurisdiction every tenant allows (a tenant's own data can go to a "
                "sink of scope tenant)",
            )
        users = tuple(t.name for t in tenants if k.name in t.sinks)
        out.append(Sink(k.name, k.kind.value, k.url, k.jurisdiction, k.scope.value, users))
    return tuple(out)


def kms_provider(st: PlanState, tenants: tuple[Tenant, ...]) -> KmsProvider | None:
    """The Secrets' KMS provider; its keys decrypt every tenant's Secrets, so every tenant allows where they are."""
    kms = st.campus.site.kms
    if kms is None:
        return None
    _every_tenant_allows(
        st,
        ("kms", kms.name),
        ("site", "kms", "jurisdiction"),
        f"the keys of every cluster's Secrets would be held in {kms.jurisdiction}",
        kms.jurisdiction,
        tenants,
        "hold the keys in a jurisdiction every tenant allows (the campus's own HSM)",
    )
    return KmsProvider(kms.name, kms.socket, kms.jurisdiction, kms.timeout_seconds)


def workload_backups(
    st: PlanState, tenants: tuple[Tenant, ...], clusters: tuple[Cluster, ...]
) -> tuple[WorkloadBackup, ...]:
    """Each tenant with namespaces (in some cluster): its backups to the first target of site.backups.workloads in
    its jurisdictions (none: refused)."""
    backups = st.campus.site.backups
    if backups.workloads is None:
        return ()
    targets = {t.name: t for t in backups.targets}
    order = [targets[n] for n in backups.workloads.targets if n in targets]
    present = {name for c in clusters for name in c.tenants}
    out = []
    for t in (t for t in tenants if t.name in present):
        target = next((x for x in order if x.jurisdiction in t.jurisdictions), None)
        if target is None:
            if ("backup", t.name) not in st.reported_outside:
                st.reported_outside.add(("backup", t.name))
                st.issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        ("site", "backups", "workloads", "targets"),
                        f"no backup target in `{t.name}`'s jurisdictions ({', '.join(t.jurisdictions)}): its data "
                        "would be backed up nowhere it may go",
                        "add a target in one of its jurisdictions to site.backups.targets and list it here",
                    )
                )
            continue
        w = backups.workloads
        out.append(WorkloadBackup(t.name, target.name, target.jurisdiction, target.path, w.every_minutes, w.keep))
    return tuple(out)


def etcd_backup(st: PlanState, clusters: tuple[Cluster, ...], tenants: tuple[Tenant, ...]) -> EtcdBackup | None:
    """The etcd snapshots' target; it must lie where every tenant with objects in a cluster allows its data."""
    backups = st.campus.site.backups
    if backups.etcd is None:
        return None
    target = next((t for t in backups.targets if t.name == backups.etcd.target), None)
    if target is None:
        return None  # reported by the static checks
    allowed = {t.name: set(t.jurisdictions) for t in tenants}
    for c in clusters:
        outside = [t for t in c.tenants if target.jurisdiction not in allowed.get(t, {target.jurisdiction})]
        if outside:
            st.issues.append(
                ConfigIssue(
                    SITE_DOC,
                    ("site", "backups", "etcd", "target"),
                    f"etcd snapshots of cluster {c.name} would go to `{target.name}` in {target.jurisdiction}, "
                    f"but its etcd holds objects of {', '.join(outside)}, whose data stays in "
                    f"{' / '.join(sorted(set.union(*(allowed[t] for t in outside))))}",
                    "name a target in a jurisdiction every tenant of the cluster allows",
                )
            )
    return EtcdBackup(target.name, target.jurisdiction, target.path, backups.etcd.every_minutes, backups.etcd.keep)
