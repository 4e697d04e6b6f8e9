"""Every endpoint a rendered tree and the node roles' defaults refer to, each resolved to what serves it.

An endpoint is a URL (`https://...`, `oci://...`) or a container image reference in a value of a
rendered file or of a role's `defaults/main.yml` (values only: comments and keys are no endpoint).
Each is resolved once, against the Plan, to where a node or a cluster fetches it and in which
jurisdiction that lies: the site's mirrors (a URL under a mirror; an upstream the mirror lists, which
the roles' repositories and containerd's registries are pointed at), an identity issuer, a log or
telemetry sink, a name in the site's own zone or an address of the campus (on the campus:
`Plan.jurisdiction`), the cluster's own services, or nothing (undeclared). The residency proof (`kasbah verify`) judges the resolutions
against the tenants each endpoint serves; the air-gap bundle (`bundle/manifest.json`) lists what the
mirrors must hold.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kasbah.config.reading import bounded_yaml
from kasbah.planning.mirrors import PACKAGES, REGISTRY, host_of, mirror_for, mirrored_url
from kasbah.planning.model import Mirror, Plan

URL = re.compile(r"\b(?:https?|oci|ssh|git|grpcs?|s3|nfs|ldaps?|wss?)://[^\s\"'<>,;)}\]]+")
# a registry host in an image reference: a dot or a port in its first component (Docker's own rule)
_REGISTRY_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?$")
IMAGE_KEYS = ("image", "repository")
SKIPPED = ("schedules/", "report/", "bundle/")  # drawings, cabling tables, and the bundle itself
DOCS = ("README.md", ".yamllint", "kasbah.json")

CAMPUS = "campus"
ISSUER = "issuer"
SINK = "sink"
MIRROR = "mirror"
MIRRORED = "mirrored"  # an upstream a mirror lists: fetched from the mirror
UNDECLARED = "undeclared"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One reference: the value as written, where (file and YAML path), and the cluster whose file it is in."""

    value: str
    image: bool  # a container image reference, not a URL
    where: str
    cluster: str | None  # None: a site-wide file (inventory, provisioning, role defaults)
    role_default: bool = False


@dataclass(frozen=True, slots=True)
class Resolution:
    """What serves an endpoint: how it was matched, by what (mirror, issuer, ...), from where, and its jurisdiction."""

    via: str  # mirror | mirrored | issuer | sink | campus | undeclared
    by: str  # the mirror's, issuer's or sink's name, the zone, or ""
    fetched_from: str  # the URL or reference actually contacted
    jurisdiction: str | None
    tenants: tuple[str, ...] | None = None  # an issuer's or a tenant sink's tenants; None: the file's tenants


def role_defaults(roles: Path) -> dict[str, bytes]:
    """The `defaults/main.yml` of every role under `roles`, by `<role>/defaults/main.yml`."""
    return {
        f"{p.parent.parent.name}/defaults/main.yml": p.read_bytes() for p in sorted(roles.glob("*/defaults/main.yml"))
    }


def _cluster_of(path: str) -> str | None:
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[0] in ("clusters", "bootstrap") else None


def _walk(value: Any, path: str, key: Any = None) -> Iterator[tuple[str, Any, Any]]:
    """(YAML path, key, value) of every scalar; a mapping holding repository+image gives the joined reference."""
    if isinstance(value, dict):
        repo, image = value.get("repository"), value.get("image")
        joined = isinstance(repo, str) and isinstance(image, str) and "://" not in repo and "/" not in image
        if joined:
            tag = value.get("version") or value.get("tag")
            yield f"{path}.repository", "image", f"{repo}/{image}" + (f":{tag}" if isinstance(tag, str) else "")
        for k, v in value.items():
            if joined and k in ("repository", "image", "version", "tag"):
                continue
            yield from _walk(v, f"{path}.{k}" if path else str(k), k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]", key)
    else:
        yield path, key, value


def _image_reference(key: Any, value: str) -> bool:
    if not isinstance(key, str) or not (key in IMAGE_KEYS or key.endswith("_image")):
        return False
    if "://" in value or "{{" in value or not value or " " in value:
        return False
    first = value.split("/", 1)[0]
    return "/" in value and _REGISTRY_HOST.match(first) is not None and ("." in first or ":" in first)


def _values(path: str, data: bytes) -> Iterator[tuple[str, Any, Any]]:
    """The scalars of a rendered or role file; a file that does not parse is read line by line (comments off)."""
    if path.endswith(".json"):
        try:
            yield from _walk(json.loads(data), "")
            return
        except ValueError:
            pass
    elif path.endswith((".yaml", ".yml")) and bounded_yaml(data, strict=False) is None:
        try:
            for i, doc in enumerate(yaml.load_all(data, Loader=yaml.CSafeLoader)):
                yield from _walk(doc, f"[{i}]" if i else "")
            return
        except yaml.YAMLError:
            pass
    text = data.decode(errors="replace")
    for n, line in enumerate(text.splitlines(), 1):
        code = re.split(r"\s[#;]|^[#;]", line, maxsplit=1)[0]
        if code.strip():
            yield f"line {n}", None, code


def scan(files: Mapping[str, bytes], defaults: Mapping[str, bytes]) -> list[Endpoint]:
    """Every endpoint of the tree's files and of the role defaults, in file order (one per value and file)."""
    out: list[Endpoint] = []
    sources = [(p, d, False) for p, d in files.items()] + [(f"roles/{p}", d, True) for p, d in defaults.items()]
    for path, data, default in sources:
        if path.startswith(SKIPPED) or path in DOCS:
            continue
        if b"://" not in data and b"image" not in data and b"repository" not in data:
            continue  # no URL and no image key anywhere in it (DNS zones, DHCP leases, most of the tree)
        seen: set[str] = set()
        cluster = _cluster_of(path)
        for where, key, value in _values(path, data):
            if not isinstance(value, str):
                continue
            found = [(value, True)] if _image_reference(key, value) else [(u, False) for u in URL.findall(value)]
            for v, image in found:
                if v not in seen:
                    seen.add(v)
                    out.append(Endpoint(v, image, f"{path}: {where}" if where else path, cluster, default))
    return out


def _on_campus(host: str, plan: Plan) -> bool:
    if plan.zone and (host == plan.zone or host.endswith("." + plan.zone)):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    nets = [*plan.admin_networks, *plan.dns_resolvers, *(a.supernet for a in plan.addresses)]
    return any(ip in ipaddress.ip_network(n, strict=False) for n in nets)


def _in_cluster(host: str) -> bool:
    """Loopback, or a name the cluster's DNS answers (a Service, a short name): never leaves the host or cluster."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or host.endswith((".svc", ".cluster.local")) or "." not in host
    return ip.is_loopback or ip.is_unspecified


def resolve(e: Endpoint, plan: Plan) -> Resolution | None:
    """What serves `e`; None for what never leaves the host or the cluster (loopback, a unix socket, a Service)."""
    v = e.value
    if v.startswith(("unix://", "file://")):
        return None
    host = host_of(v)
    if _in_cluster(host) and not e.image:
        return None
    mirrors: tuple[Mirror, ...] = plan.mirrors
    for m in mirrors:
        if m.kind == REGISTRY and (e.image or v.startswith("oci://")):
            if v.split("://", 1)[-1].startswith(m.url.split("://", 1)[1] + "/"):
                return Resolution(MIRROR, m.name, v, m.jurisdiction)
        elif not e.image and (v == m.url or v.startswith(m.url + "/")):
            return Resolution(MIRROR, m.name, v, m.jurisdiction)
    # an upstream: containerd pulls every image of a mirrored registry through the registry mirror; common's
    # repository tasks fetch every repository URL and key URL of a role from the packages mirror
    kind = REGISTRY if e.image or v.startswith("oci://") else PACKAGES if e.role_default else None
    via = mirror_for(v, mirrors, kind) if kind else None
    if via is not None:
        return Resolution(MIRRORED, via.name, mirrored_url(v, via), via.jurisdiction)
    for i in plan.issuers:
        if v == i.url or v.startswith(i.url.rstrip("/") + "/"):
            return Resolution(ISSUER, i.name, v, i.jurisdiction, i.tenants)
    for k in plan.sinks:
        if v == k.url or v.startswith(k.url.rstrip("/") + "/"):
            # a tenant's sink receives its tenants' data only (rendering.sinks filters it): judged for them
            return Resolution(SINK, k.name, v, k.jurisdiction, k.tenants if k.scope == "tenant" else None)
    if _on_campus(host, plan):
        return Resolution(CAMPUS, plan.zone, v, plan.jurisdiction)
    return Resolution(UNDECLARED, "", v, None)


def resolve_all(
    files: Mapping[str, bytes], defaults: Mapping[str, bytes], plan: Plan
) -> list[tuple[Endpoint, Resolution | None]]:
    """Every endpoint of the tree and the role defaults with what serves it (the scan, read once)."""
    return [(e, resolve(e, plan)) for e in scan(files, defaults)]


def bundle(
    plan: Plan,
    files: Mapping[str, bytes],
    defaults: Mapping[str, bytes],
    resolved: list[tuple[Endpoint, Resolution | None]] | None = None,
) -> dict[str, Any]:
    """What the site's mirrors must hold for the phase: charts, images, package repositories, the node image.

    Images are listed as referenced (a reference pinned by digest keeps it); a chart's own images are the
    chart's (`helm template` of the pinned version names them when the mirror syncs it). Packages are listed by
    role as its defaults name them (with the repositories they come from).
    """
    charts: dict[tuple[str, str], dict[str, Any]] = {}
    for r in plan.releases:
        key = (r.origin or r.repository or r.chart, r.version)
        row = charts.setdefault(
            key,
            {
                "chart": r.chart.rsplit("/", 1)[-1] if r.repository is None else r.chart,
                "version": r.version,
                "upstream": r.origin or r.repository or r.chart,
                "mirror": r.chart if r.repository is None else r.repository,
                "clusters": [],
            },
        )
        if r.cluster not in row["clusters"]:
            row["clusters"].append(r.cluster)
    images: dict[str, dict[str, Any]] = {}
    repositories: dict[str, dict[str, Any]] = {}
    for e, res in resolved if resolved is not None else resolve_all(files, defaults, plan):
        if res is None or res.via not in (MIRRORED, MIRROR):
            continue
        if e.image:
            row = images.setdefault(
                e.value,
                {
                    "reference": e.value,
                    "digest": e.value.split("@", 1)[1] if "@" in e.value else None,
                    "mirror": res.fetched_from,
                    "used_by": [],
                },
            )
            row["used_by"].append(e.where)
        elif e.role_default and res.via == MIRRORED:
            row = repositories.setdefault(e.value, {"upstream": e.value, "mirror": res.fetched_from, "used_by": []})
            row["used_by"].append(e.where)
    for row in (*images.values(), *repositories.values()):
        row["used_by"].sort()
    # the packages the roles install, as their defaults name them (a template is resolved per node: driver branch)
    packages: dict[str, dict[str, Any]] = {}
    for path, data in sorted(defaults.items()):
        try:
            doc = yaml.safe_load(data) if bounded_yaml(data, strict=False) is None else None
        except yaml.YAMLError:
            doc = None
        for key, value in doc.items() if isinstance(doc, dict) else []:
            if isinstance(key, str) and key.endswith("_packages") and isinstance(value, list | str):
                packages.setdefault(path.split("/", 1)[0], {})[key] = value
    return {
        "site": plan.site,
        "phase": plan.phase,
        "mirrors": [
            {
                "name": m.name,
                "kind": m.kind,
                "url": m.url,
                "jurisdiction": m.jurisdiction,
                "upstreams": list(m.upstreams),
            }
            for m in plan.mirrors
        ],
        "charts": sorted(charts.values(), key=lambda c: (c["upstream"], c["chart"])),
        "images": sorted(images.values(), key=lambda i: i["reference"]),
        "package_repositories": sorted(repositories.values(), key=lambda r: r["upstream"]),
        "packages": packages,
        "kubernetes_versions": sorted({c.kubernetes_version for c in plan.clusters}),
        "node_image": {"kind": plan.image[0], "url": plan.image[1], "checksum": plan.image[2]} if plan.image else None,
    }


def render_bundle(plan: Plan, files: Mapping[str, bytes], defaults: Mapping[str, bytes]) -> dict[str, bytes]:
    return {"manifest.json": (json.dumps(bundle(plan, files, defaults), indent=1) + "\n").encode()}
