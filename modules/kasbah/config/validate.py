"""Checks across the site and catalog that need no planning: names, references, address space."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from kasbah.config.issues import SITE_DOC, TENANCY_DOC, ConfigIssue, Loc
from kasbah.config.models import (
    Campus,
    Cooling,
    IPNetwork,
    MirrorKind,
    Network,
    RackKind,
    RackProfile,
)


def _duplicates(names: Iterable[str], path: Loc, what: str) -> list[ConfigIssue]:
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        if name in seen:
            out.append(
                ConfigIssue(
                    SITE_DOC,
                    (*path, i, "name"),
                    f"{what} `{name}` is defined twice",
                    f"give each {what} a unique name",
                )
            )
        seen.add(name)
    return out


def reserved_addresses(net: IPNetwork) -> int:
    """Addresses a subnet cannot give to hosts: network, gateway, and broadcast on IPv4."""
    return 3 if net.version == 4 else 2


def host_bits_needed(count: int) -> int:
    return max(0, (count - 1).bit_length())


def check_campus(campus: Campus) -> list[ConfigIssue]:
    """Static checks of site.yaml; the planner checks what needs the phases applied."""
    site, catalog = campus.site, campus.catalog
    issues: list[ConfigIssue] = []
    cat: Loc = ("catalog",)
    issues += _duplicates((p.name for p in catalog.rack_profiles), (*cat, "rack_profiles"), "rack profile")
    issues += _duplicates((p.name for p in catalog.hall_profiles), (*cat, "hall_profiles"), "hall profile")
    issues += _duplicates((s.name for s in catalog.switch_models), (*cat, "switch_models"), "switch model")
    issues += _duplicates((j.name for j in site.jurisdictions), ("site", "jurisdictions"), "jurisdiction")
    issues += _backups(campus)
    issues += _identity(campus)
    issues += _mirrors(campus)
    issues += _tenancy(campus)
    issues += _sinks(campus)

    racks = {p.name: p for p in catalog.rack_profiles}
    switches = {s.name for s in catalog.switch_models}
    reserve = site.addressing.reserve

    for i, rp in enumerate(catalog.rack_profiles):
        here: Loc = (*cat, "rack_profiles", i)
        if rp.cooling is Cooling.AIR and rp.power_kw > site.air_cooling_ceiling_kw:
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*here, "power_kw"),
                    f"an air-cooled rack of {rp.power_kw:g} kW is above the site's air-cooling ceiling of {site.air_cooling_ceiling_kw:g} kW",
                    "set cooling to direct-liquid or rear-door, or lower the rack's power (fewer nodes per rack)",
                )
            )
        if rp.scalable_unit_racks > reserve.racks_per_scalable_unit:
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*here, "scalable_unit_racks"),
                    f"{rp.scalable_unit_racks} racks per scalable unit, but site.addressing.reserve.racks_per_scalable_unit is {reserve.racks_per_scalable_unit}",
                    "raise the reservation (only before phase 1 is built: it renumbers) or use smaller units",
                )
            )
        if rp.compute_nics_per_node > reserve.rails:
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*here, "compute_nics_per_node"),
                    f"{rp.compute_nics_per_node} rails, but site.addressing.reserve.rails is {reserve.rails}",
                    "raise site.addressing.reserve.rails (before phase 1 is built)",
                )
            )
        if rp.compute_nics_per_node and rp.compute_nic_gbps not in site.fabrics.compute_switch:
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*here, "compute_nic_gbps"),
                    f"no default compute switch for {rp.compute_nic_gbps} Gb/s NICs",
                    f"add {rp.compute_nic_gbps} to site.fabrics.compute_switch, or set compute_switch on every pool of this profile",
                )
            )
        issues += _per_rack_fits(rp, here, site.addressing.oob, "oob", rp.oob_ports)
        issues += _per_rack_fits(rp, here, site.addressing.inband, "inband", rp.nodes)
        issues += _per_rack_fits(rp, here, site.addressing.storage, "storage", rp.nodes)
        issues += _per_rack_fits(
            rp,
            here,
            site.addressing.compute,
            "compute",
            rp.nodes if rp.compute_nics_per_node else 0,
        )

    for i, hp in enumerate(catalog.hall_profiles):
        here = (*cat, "hall_profiles", i)
        nr = hp.network_racks
        if nr is not None:
            prof = racks.get(nr.profile)
            if prof is None:
                issues.append(_unknown((*here, "network_racks", "profile"), "rack profile", nr.profile, racks))
            elif prof.kind is not RackKind.NETWORK:
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        (*here, "network_racks", "profile"),
                        f"`{nr.profile}` is a {prof.kind.value} rack, not a network rack",
                        "name a rack profile of kind network",
                    )
                )
            if nr.count >= hp.positions:
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        (*here, "network_racks", "count"),
                        f"{nr.count} network racks leave no position of the {hp.positions} for compute",
                        "reserve fewer network racks or add rows",
                    )
                )
        if hp.liquid_cooling is None and hp.air_cooling_mw == 0:
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    here,
                    "the hall has neither liquid nor air cooling",
                    "add liquid_cooling or air_cooling_mw",
                )
            )

    fab: Loc = ("site", "fabrics")
    for speed, sw in site.fabrics.compute_switch.items():
        if sw not in switches:
            issues.append(_unknown((*fab, "compute_switch", str(speed)), "switch model", sw, switches))
    for key in ("storage_switch", "oob_switch"):
        sw = getattr(site.fabrics, key)
        if sw not in switches:
            issues.append(_unknown((*fab, key), "switch model", sw, switches))

    issues += _check_addressing(campus)
    issues += check_hardware(campus)
    return issues


def check_hardware(campus: Campus) -> list[ConfigIssue]:
    """Manifests against each other: a slot described twice, a serial or MAC on two trays.

    What needs the Plan (the rack exists, the slot is one its profile has, the NIC count) is the
    planner's check.
    """
    issues: list[ConfigIssue] = []
    serials: dict[str, str] = {}  # serial -> "rack slot N"
    macs: dict[str, str] = {}  # mac -> "rack slot N bmc_mac"
    for m in campus.hardware:
        doc = f"hardware/{m.rack}.yaml"
        slots: set[int] = set()
        for i, s in enumerate(m.slots):
            here: Loc = ("hardware", "slots", i)
            where = f"{m.rack} slot {s.slot}"
            if s.slot in slots:
                issues.append(
                    ConfigIssue(doc, (*here, "slot"), f"slot {s.slot} is described twice", "keep one row per slot")
                )
                continue
            slots.add(s.slot)
            first = serials.setdefault(s.serial.upper(), where)
            if first != where:
                issues.append(
                    ConfigIssue(
                        doc,
                        (*here, "serial"),
                        f"serial `{s.serial}` is also the tray in {first}",
                        "a tray is in one slot only: correct the serial, or remove the row of the slot it left",
                    )
                )
            nics = [("bmc_mac", s.bmc_mac), ("inband_mac", s.inband_mac)]
            nics += [("storage_mac", s.storage_mac)] if s.storage_mac else []
            nics += [(f"rail_macs[{r}]", mac) for r, mac in enumerate(s.rail_macs)]
            for key, mac in nics:
                first = macs.setdefault(mac, f"{where} {key}")
                if first != f"{where} {key}":
                    path: Loc = (*here, "rail_macs", int(key[10:-1])) if key.startswith("rail") else (*here, key)
                    issues.append(
                        ConfigIssue(
                            doc,
                            path,
                            f"MAC {mac} is also {first}",
                            "a MAC address belongs to one NIC: copy it again from the integrator's manifest",
                        )
                    )
    return issues


def _per_rack_fits(rp: RackProfile, here: Loc, net: Network, name: str, hosts: int) -> list[ConfigIssue]:
    need = hosts + reserved_addresses(net.supernet)
    if hosts and need > net.per_rack:
        return [
            ConfigIssue(
                SITE_DOC,
                (*here, "name"),
                f"a `{rp.name}` rack needs {need} {name} addresses ({hosts} hosts + network, gateway{', broadcast' if net.supernet.version == 4 else ''}) but site.addressing.{name}.per_rack is {net.per_rack}",
                f"raise site.addressing.{name}.per_rack to {1 << host_bits_needed(need)} (only before phase 1 is built: it renumbers)",
            )
        ]
    return []


def _backups(campus: Campus) -> list[ConfigIssue]:
    """Backup targets name a known jurisdiction; the etcd snapshots name a known target."""
    site = campus.site
    here: Loc = ("site", "backups")
    issues = _duplicates((t.name for t in site.backups.targets), (*here, "targets"), "backup target")
    known = {j.name for j in site.jurisdictions}
    for i, t in enumerate(site.backups.targets):
        if t.jurisdiction not in known:
            issues.append(_unknown((*here, "targets", i, "jurisdiction"), "jurisdiction", t.jurisdiction, known))
    etcd = site.backups.etcd
    targets = {t.name for t in site.backups.targets}
    if etcd is not None and etcd.target not in targets:
        issues.append(_unknown((*here, "etcd", "target"), "backup target", etcd.target, targets))
    workloads = site.backups.workloads
    for i, name in enumerate(workloads.targets if workloads is not None else []):
        if name not in targets:
            issues.append(_unknown((*here, "workloads", "targets", i), "backup target", name, targets))
    return issues


def _sinks(campus: Campus) -> list[ConfigIssue]:
    """Sinks: unique names and URLs, known jurisdictions."""
    site = campus.site
    issues = _duplicates((k.name for k in site.sinks), ("site", "sinks"), "sink")
    known = {j.name for j in site.jurisdictions}
    if site.kms is not None and site.kms.jurisdiction not in known:
        issues.append(_unknown(("site", "kms", "jurisdiction"), "jurisdiction", site.kms.jurisdiction, known))
    urls: dict[str, str] = {}
    for n, k in enumerate(site.sinks):
        if k.jurisdiction not in known:
            issues.append(_unknown(("site", "sinks", n, "jurisdiction"), "jurisdiction", k.jurisdiction, known))
        if k.url in urls:
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    ("site", "sinks", n, "url"),
                    f"`{k.url}` is sink `{urls[k.url]}` already",
                    "declare each sink once; tenants name the same sink",
                )
            )
        urls.setdefault(k.url, k.name)
    return issues


def _tenancy(campus: Campus) -> list[ConfigIssue]:
    """tenancy.yaml: each change named once (never a phase's name), after a listed phase, in build order."""
    phases = [p.name for p in campus.phases]
    issues: list[ConfigIssue] = []
    seen: set[str] = set()
    last = 0
    for i, c in enumerate(campus.tenancy):
        here: Loc = ("changes", i)
        if c.name in seen or c.name in phases:
            issues.append(
                ConfigIssue(
                    TENANCY_DOC,
                    (*here, "name"),
                    f"`{c.name}` names {'a phase' if c.name in phases else 'another change'} already",
                    "give each change a name of its own: it is a plan target",
                )
            )
        seen.add(c.name)
        if c.after not in phases:
            issues.append(_unknown((*here, "after"), "phase", c.after, phases))
            issues[-1] = ConfigIssue(TENANCY_DOC, issues[-1].path, issues[-1].message, issues[-1].fix)
            continue
        at = phases.index(c.after)
        if at < last:
            issues.append(
                ConfigIssue(
                    TENANCY_DOC,
                    (*here, "after"),
                    f"change `{c.name}` applies after {c.after}, but a change above it applies after {phases[last]}",
                    "list changes in the order they are made: append new ones at the end, after the latest phase",
                )
            )
        last = max(last, at)
    return issues


def _mirrors(campus: Campus) -> list[ConfigIssue]:
    """Mirrors: unique names, known jurisdictions, upstreams written for their kind and mirrored once; the site's
    registry (the one tenants' pods pull from) is a registry mirror when the site declares one."""
    site = campus.site
    here: Loc = ("site", "mirrors")
    issues = _duplicates((m.name for m in site.mirrors), here, "mirror")
    known = {j.name for j in site.jurisdictions}
    if site.jurisdiction is not None and site.jurisdiction not in known:
        issues.append(_unknown(("site", "jurisdiction"), "jurisdiction", site.jurisdiction, known))
    seen: dict[tuple[str, str], str] = {}
    for n, m in enumerate(site.mirrors):
        if m.jurisdiction not in known:
            issues.append(_unknown((*here, n, "jurisdiction"), "jurisdiction", m.jurisdiction, known))
        registry = m.kind is MirrorKind.REGISTRY
        if registry and "/" in m.url.split("://", 1)[1].rstrip("/"):
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*here, n, "url"),
                    f"a registry mirror is a registry's root (`https://host[:port]`), not `{m.url}`: containerd and "
                    "image references name a registry by host, its projects by path",
                    "give the registry's https://host[:port]; kasbah puts each upstream under /<upstream host>",
                )
            )
        for u, up in enumerate(m.upstreams):
            if registry and "://" not in up and not re.fullmatch(r"[a-z0-9.-]+(:[0-9]{1,5})?", up):
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        (*here, n, "upstreams", u),
                        f"`{up}` is not a registry: containerd mirrors whole registries, named host[:port]",
                        f"write `{up.split('/', 1)[0]}`",
                    )
                )
                continue
            if registry == ("://" in up):
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        (*here, n, "upstreams", u),
                        f"`{up}` is not how a {m.kind.value} mirror names an upstream",
                        "write the registry's host[:port] (nvcr.io)"
                        if registry
                        else "write the repository's URL prefix with its scheme (https://pkgs.k8s.io)",
                    )
                )
            key = (m.kind.value, up.rstrip("/"))
            if key in seen:
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        (*here, n, "upstreams", u),
                        f"`{up}` is mirrored by `{seen[key]}` already",
                        "list an upstream under one mirror of a kind",
                    )
                )
            seen.setdefault(key, m.name)
    registries = [m for m in site.mirrors if m.kind is MirrorKind.REGISTRY]
    served = {m.url.split("://", 1)[1].rstrip("/") for m in registries}
    if registries and site.platform.registry not in served:
        issues.append(
            ConfigIssue(
                SITE_DOC,
                ("site", "platform", "registry"),
                f"tenants' pods pull from `{site.platform.registry}`, which is not the site's registry mirror "
                f"({', '.join(sorted(served))})",
                f"set platform.registry to {sorted(served)[0]}",
            )
        )
    return issues


def _identity(campus: Campus) -> list[ConfigIssue]:
    """Issuers: unique names and URLs (an API server keeps one authenticator per URL), known jurisdictions, the admin
    issuer declared and never shared."""
    site = campus.site
    here: Loc = ("site", "identity")
    issuers = site.identity.issuers
    issues = _duplicates((i.name for i in issuers), (*here, "issuers"), "issuer")
    urls: dict[str, str] = {}
    known = {j.name for j in site.jurisdictions}
    for n, issuer in enumerate(issuers):
        if issuer.jurisdiction not in known:
            issues.append(_unknown((*here, "issuers", n, "jurisdiction"), "jurisdiction", issuer.jurisdiction, known))
        if issuer.url in urls:
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*here, "issuers", n, "url"),
                    f"issuer `{issuer.name}` has the URL of `{urls[issuer.url]}`: an API server trusts one issuer per URL",
                    "declare the issuer once; tenants that share it name it (with tenant_claim set on it)",
                )
            )
        urls.setdefault(issuer.url, issuer.name)
    admin = site.identity.admin_issuer
    names = {i.name: i for i in issuers}
    if admin is not None:
        if admin not in names:
            issues.append(_unknown((*here, "admin_issuer"), "issuer", admin, names))
        elif names[admin].tenant_claim is not None:
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*here, "issuers", list(names).index(admin), "tenant_claim"),
                    f"`{admin}` is the admin issuer: its users are the operator's administrators, of no tenant",
                    "remove tenant_claim, or give the administrators an issuer of their own",
                )
            )
    return issues


def _unknown(path: Loc, what: str, name: str, known: Iterable[str]) -> ConfigIssue:
    names = sorted(known)
    return ConfigIssue(
        SITE_DOC,
        path,
        f"unknown {what} `{name}`",
        f"use one of: {', '.join(names)}" if names else f"define the {what} first",
    )


def _special(net: IPNetwork) -> str | None:
    """What makes a range unusable as a campus network or a destination (RFC 6890 special-purpose blocks)."""
    if net.prefixlen == 0:
        return "the whole address space"
    if net.version == 4 and net.subnet_of(ipaddress.IPv4Network("0.0.0.0/8")):
        return "this-network (0.0.0.0/8)"
    for what, flag in (
        ("loopback", net.is_loopback),
        ("link-local", net.is_link_local),
        ("multicast", net.is_multicast),
        ("unspecified", net.is_unspecified),
        ("reserved", net.is_reserved),
    ):
        if flag:
            return what
    return None


def _special_ranges(campus: Campus, ranges: Sequence[tuple[str, IPNetwork]]) -> list[ConfigIssue]:
    """Loopback, link-local, multicast, unspecified and reserved ranges are no network of a campus, nor a destination."""
    site = campus.site
    given: list[tuple[Loc, IPNetwork]] = [(("site", "addressing", n), net) for n, net in ranges]
    given += [(("site", "admin_zone", "networks", i), n) for i, n in enumerate(site.admin_zone.networks)]
    given += [(("site", "admin_zone", "dns_resolvers", i), n) for i, n in enumerate(site.admin_zone.dns_resolvers)]
    given += [
        (("site", "jurisdictions", j, "egress", d, "cidr"), dest.cidr)
        for j, jur in enumerate(site.jurisdictions)
        for d, dest in enumerate(jur.egress)
    ]
    given += [(("site", "platform", "gitops", "sources", i), n) for i, n in enumerate(site.platform.gitops.sources)]
    out = []
    for path, net in given:
        what = _special(net)
        if what is not None:
            out.append(
                ConfigIssue(
                    SITE_DOC,
                    path,
                    f"{net} is {what if what.startswith('the ') else f'a {what} range'}, which no campus network or destination can be",
                    "give a routable range: RFC 1918 space (10/8, 172.16/12, 192.168/16) or the site's own public or IPv6 ULA blocks",
                )
            )
    return out


def _check_addressing(campus: Campus) -> list[ConfigIssue]:
    a = campus.site.addressing
    r = a.reserve
    base: Loc = ("site", "addressing")
    issues: list[ConfigIssue] = []
    rack_blocks = r.halls * r.scalable_units_per_hall * r.racks_per_scalable_unit
    needs: list[tuple[str, IPNetwork, int, str]] = [
        (
            "oob",
            a.oob.supernet,
            rack_blocks * a.oob.per_rack,
            "halls x scalable_units_per_hall x racks_per_scalable_unit x oob.per_rack",
        ),
        (
            "inband",
            a.inband.supernet,
            rack_blocks * a.inband.per_rack,
            "halls x scalable_units_per_hall x racks_per_scalable_unit x inband.per_rack",
        ),
        (
            "storage",
            a.storage.supernet,
            rack_blocks * a.storage.per_rack,
            "halls x scalable_units_per_hall x racks_per_scalable_unit x storage.per_rack",
        ),
        (
            "compute",
            a.compute.supernet,
            r.rails * rack_blocks * a.compute.per_rack,
            "rails x halls x scalable_units_per_hall x racks_per_scalable_unit x compute.per_rack",
        ),
        (
            "loopback",
            a.loopback,
            r.fabrics * r.switches_per_fabric,
            "fabrics x switches_per_fabric",
        ),
    ]
    for name, net, need, how in needs:
        if need > net.num_addresses:
            bits = host_bits_needed(need)
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*base, name),
                    f"the {name} range {net} holds {net.num_addresses} addresses but the reservations need {need} ({how})",
                    f"give a /{net.max_prefixlen - bits} or larger, or lower site.addressing.reserve",
                )
            )
    for key in ("switches_per_fabric",):
        v = getattr(r, key)
        if v & (v - 1) or v < 4:
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*base, "reserve", key),
                    f"{key} must be a power of two of at least 4 (leaves, spines and cores get fixed shares), not {v}",
                    f"use {max(4, 1 << v.bit_length())}",
                )
            )

    # leaf loopbacks sit at fixed strides: a hall's storage leaves (one a rack at most) and
    # out-of-band leaves (as many a position as the reserved out-of-band block may need)
    oob = {s.name: s for s in campus.catalog.switch_models}.get(campus.site.fabrics.oob_switch)
    if oob is not None and campus.catalog.hall_profiles:
        down = oob.ports if oob.uplink_ports else oob.ports - oob.ports // 2
        positions = max(hp.positions for hp in campus.catalog.hall_profiles)
        need = max(r.scalable_units_per_hall * r.racks_per_scalable_unit, positions * -(-a.oob.per_rack // down))
        if need > r.switches_per_fabric // 2:
            issues.append(
                ConfigIssue(
                    SITE_DOC,
                    (*base, "reserve", "switches_per_fabric"),
                    f"a fabric's leaf loopbacks (half of {r.switches_per_fabric}) cannot hold a full hall's {need} storage or out-of-band leaves",
                    f"raise switches_per_fabric to {1 << (2 * need - 1).bit_length()} (before phase 1 is built)",
                )
            )
    pods = a.pods
    if not (pods.supernet.prefixlen <= pods.cluster_prefix < pods.node_prefix <= pods.supernet.max_prefixlen):
        issues.append(
            ConfigIssue(
                SITE_DOC,
                (*base, "pods"),
                f"pod prefixes must nest: supernet /{pods.supernet.prefixlen} <= cluster_prefix /{pods.cluster_prefix} < node_prefix /{pods.node_prefix} <= /{pods.supernet.max_prefixlen}",
                "adjust cluster_prefix and node_prefix",
            )
        )
    elif pods.node_prefix - pods.cluster_prefix > 16:
        issues.append(
            ConfigIssue(
                SITE_DOC,
                (*base, "pods", "node_prefix"),
                f"kube-controller-manager allows at most 16 bits between the cluster and node pod masks; /{pods.cluster_prefix} to /{pods.node_prefix} is {pods.node_prefix - pods.cluster_prefix}",
                "raise cluster_prefix or lower node_prefix",
            )
        )
    svc = a.services
    if not (svc.supernet.prefixlen <= svc.cluster_prefix <= svc.supernet.max_prefixlen):
        issues.append(
            ConfigIssue(
                SITE_DOC,
                (*base, "services", "cluster_prefix"),
                f"/{svc.cluster_prefix} does not fit inside {svc.supernet}",
                f"use a prefix of /{svc.supernet.prefixlen} or longer",
            )
        )
    elif svc.supernet.version == 4 and svc.cluster_prefix < 12:
        issues.append(
            ConfigIssue(
                SITE_DOC,
                (*base, "services", "cluster_prefix"),
                "kube-apiserver refuses IPv4 service ranges larger than /12",
                "use /12 or longer",
            )
        )

    ranges: Sequence[tuple[str, IPNetwork]] = [
        ("oob", a.oob.supernet),
        ("inband", a.inband.supernet),
        ("storage", a.storage.supernet),
        ("compute", a.compute.supernet),
        ("loopback", a.loopback),
        ("pods", pods.supernet),
        ("services", svc.supernet),
    ]
    for i, (n1, r1) in enumerate(ranges):
        for n2, r2 in ranges[i + 1 :]:
            if r1.version == r2.version and r1.overlaps(r2):
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        (*base, n2),
                        f"the {n2} range {r2} overlaps the {n1} range {r1}",
                        "give every network its own, non-overlapping range",
                    )
                )
    issues.extend(_special_ranges(campus, ranges))
    zone = campus.site.admin_zone
    for j, jur in enumerate(campus.site.jurisdictions):
        for d, dest in enumerate(jur.egress):
            for admin in zone.networks:
                if dest.cidr.version == admin.version and dest.cidr.overlaps(admin):
                    issues.append(
                        ConfigIssue(
                            SITE_DOC,
                            ("site", "jurisdictions", j, "egress", d, "cidr"),
                            f"egress destination {dest.cidr} overlaps the admin zone's {admin}: tenants' pods "
                            "would be allowed into the management plane's own network",
                            "give the destination's external range only; the admin zone is never a tenant's destination",
                        )
                    )
            for name, net in ranges:
                if dest.cidr.version == net.version and dest.cidr.overlaps(net):
                    issues.append(
                        ConfigIssue(
                            SITE_DOC,
                            ("site", "jurisdictions", j, "egress", d, "cidr"),
                            f"egress destination {dest.cidr} overlaps the site's own {name} range {net}",
                            "egress destinations are outside the campus; give the external range",
                        )
                    )
    for key, nets in (("networks", zone.networks), ("dns_resolvers", zone.dns_resolvers)):
        for i, admin in enumerate(nets):
            for name, net in ranges:
                if admin.version == net.version and admin.overlaps(net):
                    issues.append(
                        ConfigIssue(
                            SITE_DOC,
                            ("site", "admin_zone", key, i),
                            f"{admin} overlaps the site's {name} range {net}",
                            "the admin zone is its own network; give a range outside the campus address plan",
                        )
                    )
    for i, source in enumerate(campus.site.platform.gitops.sources):
        for name, net in ranges:
            if source.version == net.version and source.overlaps(net):
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        ("site", "platform", "gitops", "sources", i),
                        f"Git server range {source} overlaps the site's {name} range {net}",
                        "the GitOps controller may reach these addresses from every cluster: give the Git "
                        "servers' own range, outside the campus address plan (in the admin zone, for one)",
                    )
                )
    return issues
