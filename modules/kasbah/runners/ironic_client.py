"""A small client of Ironic's REST API (standalone, no Keystone), and what its answers mean: a refusal,
an unreachable Ironic, or an overloaded one worth asking again."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

API_VERSION = "1.96"  # Ironic 2025.x; every call below exists since 1.56 (configdrive as a dict)


def transient(text: str) -> bool:
    """An answer of an overloaded Ironic, not a verdict on the node: asking again later is right."""
    return (
        "timed out" in text
        or "database is locked" in text
        or ("answered 400" in text and "can not be performed on node" in text)  # a timed-out move that happened
    )


class IronicError(Exception):
    """Ironic refused a call or cannot be reached; the message says which and what to do."""


class Ironic:
    """A small client of Ironic's REST API: one keep-alive connection per thread."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise IronicError(f"{url}: not an Ironic API URL; fix: give http(s)://host:6385")
        self.url = url.rstrip("/")
        self.scheme, self.host, self.port = parsed.scheme, parsed.hostname, parsed.port
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def call(self, method: str, path: str, body: Any = None, ok: Iterable[int] = (200, 201, 202, 204)) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"X-OpenStack-Ironic-API-Version": API_VERSION, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, f"/v1{path}", body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise IronicError(
                        f"cannot reach Ironic at {self.url}: {exc}; fix: start it (see README, Day 0) or pass --ironic URL"
                    ) from None
        if resp.status not in ok:
            raise IronicError(f"{method} {path}: Ironic answered {resp.status}: {_fault(raw)}")
        return json.loads(raw) if raw else None

    def _paged(self, path: str, key: str) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following Ironic's `next` links."""
        while path:
            page = self.call("GET", path)
            yield from page.get(key, [])
            nxt = page.get("next")
            path = "/" + nxt.split("/v1/", 1)[1] if nxt else ""

    def nodes(self, fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Every node Ironic has, by name."""
        return {
            n["name"]: n for n in self._paged(f"/nodes?fields={','.join(fields)}&limit=1000", "nodes") if n.get("name")
        }

    def ports(self) -> dict[str, list[dict[str, Any]]]:
        """node uuid -> its ports."""
        out: dict[str, list[dict[str, Any]]] = {}
        for p in self._paged("/ports?fields=uuid,address,node_uuid,pxe_enabled&limit=1000", "ports"):
            out.setdefault(p["node_uuid"], []).append(p)
        return out


def _fault(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
        msg = json.loads(doc.get("error_message", "{}")).get("faultstring") if "error_message" in doc else None
        return str(msg or doc.get("faultstring") or doc)[:500]
    except (ValueError, AttributeError, TypeError):
        return raw.decode("utf-8", "replace")[:500]
