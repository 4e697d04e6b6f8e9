"""A thin, thread-safe door to one cluster's API server, through the `kubernetes` client.

The `kubernetes` package loads the kubeconfig (certificates, tokens, exec and auth-provider
plugins, contexts) and owns the connection pool; requests are plain REST calls on the paths the
API server serves, so any kind (built-in or from a CRD) is handled the same way. Discovery maps
`apiVersion` + `kind` to the resource path, once per group-version.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3
import yaml
from kubernetes.client import ApiClient, Configuration
from kubernetes.config import ConfigException, load_kube_config

Obj = dict[str, Any]


class KubeconfigError(Exception):
    """The kubeconfig cannot be used (missing, unreadable, unknown context): bad input, exit 2."""


class UnreachableError(Exception):
    """The API server cannot be reached or refuses our credentials: the run stops, exit 4."""


class DiscoveryError(Exception):
    """The server would not say where a kind is served (403, 5xx...): that object fails, the run goes on."""


RETRY_STATUSES = (429, 503)  # the server's priority and fairness, or a restarting server: wait and retry
RETRIES = 5


@dataclass(frozen=True, slots=True)
class Resource:
    """Where the API server serves one kind."""

    group_version: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = f"/api/{self.group_version}" if "/" not in self.group_version else f"/apis/{self.group_version}"
        if self.namespaced:
            base += f"/namespaces/{quote(namespace or 'default', safe='')}"
        base += f"/{self.plural}"
        return f"{base}/{quote(name, safe='')}" if name is not None else base


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: Obj
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def message(self) -> str:
        """The server's reason, as a `Status` object gives it (with its field causes)."""
        msg = str(self.body.get("message") or self.body.get("reason") or f"HTTP {self.status}")
        causes = (self.body.get("details") or {}).get("causes") or []
        extra = [
            f"{c.get('field')}: {c.get('message')}"
            for c in causes
            if c.get("field") and c.get("message") and str(c.get("message")) not in msg
        ]
        return msg + (f" ({'; '.join(extra)})" if extra else "")


class Kube:
    """One API server; safe to share between threads (one urllib3 pool of `pool_size` connections)."""

    def __init__(self, kubeconfig: Path, context: str | None = None, pool_size: int = 16, timeout: float = 30.0):
        if not kubeconfig.is_file():
            raise KubeconfigError(f"{kubeconfig}: no such kubeconfig; fix: pass the file `kind` or your cluster wrote")
        cfg = Configuration()
        try:
            load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig), context=context, client_configuration=cfg, persist_config=False
            )
        except (ConfigException, OSError, ValueError, TypeError, KeyError, yaml.YAMLError) as exc:
            where = f" (context `{context}`)" if context else ""
            raise KubeconfigError(f"{kubeconfig}{where}: cannot use this kubeconfig: {exc}") from None
        cfg.connection_pool_maxsize = max(1, pool_size)
        cfg.retries = 1  # an unreachable server fails in seconds, not after urllib3's default backoff
        self.host: str = cfg.host
        self.timeout = timeout
        self._api = ApiClient(cfg)
        self._gvs: dict[str, dict[str, Resource] | None] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    def request(self, method: str, path: str, query: dict[str, str] | None = None, body: Obj | None = None) -> Response:
        """One request; 429 and 503 answers are retried after the server's Retry-After (at most 5 times)."""
        for attempt in range(RETRIES):
            r = self._request(method, path, query, body)
            if r.status not in RETRY_STATUSES or attempt == RETRIES - 1:
                return r
            try:
                wait = min(float(r.retry_after or 1), 10.0)
            except ValueError:
                wait = 1.0
            time.sleep(wait * (attempt + 1))
        return r

    def _request(self, method: str, path: str, query: dict[str, str] | None, body: Obj | None) -> Response:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            # server-side apply takes the whole object; JSON is YAML
            headers["Content-Type"] = "application/apply-patch+yaml" if method == "PATCH" else "application/json"
            data = json.dumps(body)
        method, url, headers, _, _ = self._api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        try:
            raw = self._api.call_api(method, url, header_params=headers, body=data, _request_timeout=self.timeout)
            raw.read()  # type: ignore[no-untyped-call]
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise UnreachableError(
                f"cannot reach the API server at {self.host}: {reason}; fix: check that the cluster is up and that "
                "--kubeconfig/--context point at it"
            ) from None
        status = int(raw.status)
        if status == 401:
            raise UnreachableError(
                f"the API server at {self.host} refused the kubeconfig's credentials (401 Unauthorized); fix: "
                "refresh the credentials or pick another --context"
            )
        payload: bytes = raw.data or b""
        try:
            parsed = json.loads(payload) if payload else {}
        except ValueError:
            parsed = {"message": payload[:200].decode(errors="replace")}
        retry_after = raw.getheader("Retry-After") if status in RETRY_STATUSES else None  # type: ignore[no-untyped-call]
        return Response(status, parsed if isinstance(parsed, dict) else {"items": parsed}, retry_after)

    def version(self) -> str:
        r = self.request("GET", "/version")
        if not r.ok:
            raise UnreachableError(f"{self.host}/version answered {r.status}: {r.message()}")
        return str(r.body.get("gitVersion", "?"))

    # ------------------------------------------------------------------ discovery

    def forget_discovery(self) -> None:
        with self._lock:
            self._gvs.clear()

    def resource(self, api_version: str, kind: str) -> Resource | None:
        """Where `kind` of `api_version` is served, or None when the server does not serve it."""
        with self._lock:
            known = api_version in self._gvs
            kinds = self._gvs.get(api_version)
        if not known:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            r = self.request("GET", path)
            if r.status == 404:
                kinds = None
            elif not r.ok:
                raise DiscoveryError(f"the server would not list the kinds of {api_version}: {r.status} {r.message()}")
            else:
                kinds = {
                    res["kind"]: Resource(api_version, res["name"], bool(res.get("namespaced")))
                    for res in r.body.get("resources", [])
                    if "/" not in res["name"]  # subresources (status, scale...) are not kinds of their own
                }
            with self._lock:
                self._gvs[api_version] = kinds
        return None if kinds is None else kinds.get(kind)

    def other_versions(self, api_version: str, kind: str) -> list[str]:
        """The apiVersions under which the server does serve `kind` of that API group (none for the core group)."""
        if "/" not in api_version:
            return []
        group = api_version.split("/", 1)[0]
        r = self.request("GET", f"/apis/{group}")
        if not r.ok:
            return []
        out = []
        for v in r.body.get("versions", []):
            gv = str(v.get("groupVersion", "")) if isinstance(v, dict) else ""
            if gv and gv != api_version and self.resource(gv, kind) is not None:
                out.append(gv)
        return out
