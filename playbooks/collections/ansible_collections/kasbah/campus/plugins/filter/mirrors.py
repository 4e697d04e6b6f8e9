"""`site_mirror`: an upstream repository URL as the site's mirror serves it.

`kasbah_package_mirrors` (the rendered inventory's, from site.mirrors) maps upstream URL prefixes to the
mirror's: `https://pkgs.k8s.io` → `https://mirror.<site>/pkgs.k8s.io`. The longest prefix that holds the
URL wins; a URL no mirror lists is returned as it is. kasbah's planner computes the same mapping
(`kasbah.planning.mirrors`); a test keeps the two equal.
"""

from __future__ import annotations

from typing import Any


def site_mirror(url: str, prefixes: dict[str, str] | None) -> str:
    if not url or not prefixes:
        return url
    best = ""
    for upstream in prefixes:
        up = upstream.rstrip("/")
        if (url == up or url.startswith(up + "/")) and len(up) > len(best):
            best = up
    if not best:
        return url
    return prefixes[best].rstrip("/") + url[len(best) :]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"site_mirror": site_mirror}
