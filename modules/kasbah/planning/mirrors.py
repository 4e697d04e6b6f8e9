"""The site's mirrors: where a node or a cluster fetches an upstream artifact on a sovereign campus.

One layout, read by every projection (the releases' chart URLs, the inventory's package and registry
mirrors, the residency proof, the air-gap bundle): an upstream URL `<scheme>://<host><path>` is served
by a packages or charts mirror as `<mirror url>/<host><path>`; an image `<host>/<path>:<tag>` of a
mirrored registry by the registry mirror as `<mirror host>/<mirror path>/<host>/<path>:<tag>` (one
proxy-cache project per upstream registry, containerd's hosts.toml with `override_path`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from kasbah.planning.model import Mirror

PACKAGES = "packages"
CHARTS = "charts"
REGISTRY = "registry"

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def host_of(url: str) -> str:
    """The host (without port or credentials) of a URL or of an image reference / registry host."""
    rest = _SCHEME.sub("", url)
    authority = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if authority.startswith("["):
        return authority[1 : authority.find("]")]
    return authority.split(":", 1)[0].lower()


def _under(url: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return url == prefix or url.startswith(prefix + "/")


def _without_scheme(url: str) -> str:
    return _SCHEME.sub("", url).rstrip("/")


def mirror_for(url: str, mirrors: Iterable[Mirror], kind: str) -> Mirror | None:
    """The mirror of `kind` whose upstreams hold `url` (the longest upstream that is a prefix of it wins)."""
    best: tuple[int, Mirror] | None = None
    for m in mirrors:
        if m.kind != kind:
            continue
        for up in m.upstreams:
            hit = _without_scheme(url).split("/", 1)[0] == up if kind == REGISTRY else _under(url, up)
            if hit and (best is None or len(up) > best[0]):
                best = (len(up), m)
    return best[1] if best else None


def mirrored_url(url: str, mirror: Mirror) -> str:
    """`url` (an upstream of `mirror`) as the mirror serves it."""
    if mirror.kind == REGISTRY:
        scheme = "oci://" if url.startswith("oci://") else ""
        return f"{scheme}{_without_scheme(mirror.url)}/{_without_scheme(url)}"
    tail = "/" if url.endswith("/") else ""
    return f"{mirror.url}/{_without_scheme(url)}{tail}"


def mirrored(url: str, mirrors: Iterable[Mirror], kind: str) -> str:
    """`url` from the site's mirror of `kind` when one lists it, else `url` itself."""
    m = mirror_for(url, mirrors, REGISTRY if url.startswith("oci://") else kind)
    return mirrored_url(url, m) if m else url


def package_prefixes(mirrors: Iterable[Mirror]) -> dict[str, str]:
    """Upstream URL prefix → the mirror's URL prefix, for every packages mirror (what the roles rewrite)."""
    out: dict[str, str] = {}
    for m in mirrors:
        if m.kind == PACKAGES:
            for up in m.upstreams:
                out[up.rstrip("/")] = mirrored_url(up.rstrip("/"), m)
    return out


def registry_hosts(mirrors: Iterable[Mirror]) -> list[dict[str, object]]:
    """containerd_registry_mirrors for the registry mirrors: each upstream registry pulled through its project only."""
    out: list[dict[str, object]] = []
    for m in mirrors:
        if m.kind == REGISTRY:
            for up in m.upstreams:
                out.append(
                    {
                        "registry": up,
                        "mirrors": [f"{m.url}/v2/{up}"],
                        "upstream": False,
                        "override_path": True,
                    }
                )
    return out
