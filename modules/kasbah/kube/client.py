"""A thin, thread-safe door to one cluster's API server, through the `kubernetes` client's public API.

The `kubernetes` package loads the kubeconfig (certificates, tokens, exec and auth-provider
plugins, contexts) and owns the connection pool. Everything else goes through its dynamic client
(`kubernetes.dynamic.DynamicClient`), so any kind (built-in or from a CRD) is handled the same
way: its discovery maps `apiVersion` + `kind` to the resource (once per group-version, and kasbah
remembers each answer per kind), `get` reads the live object and `server_side_apply` applies one
(field manager, `force`, `dryRun=All`); the server's version is the one its discovery read.

The dynamic client's discovery takes a 503 on a group's list of kinds for "no kinds there" (the
group's objects would look like kinds the cluster does not serve): kasbah's client subclass hands it
on as a plain error of status 503 instead, so it is retried like any other 429/503 answer, and
a group that still will not list its kinds rejects its objects with the server's answer.

Only that public API is used, so no major version of the client is pinned: it has all been there,
with the same arguments, since kubernetes 25 (`server_side_apply` since 22, the request timeout
passed on since 24, an apply body serialised since 25); pyproject.toml asks for 25 or later.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import urllib3
import yaml
from kubernetes.client import ApiClient, ApiException, Configuration
from kubernetes.config import ConfigException, load_kube_config
from kubernetes.dynamic import DynamicClient, ResourceList
from kubernetes.dynamic.exceptions import (
    DynamicApiError,
    ResourceNotFoundError,
    ResourceNotUniqueError,
    ServiceUnavailableError,
)

Obj = dict[str, Any]
T = TypeVar("T")


class KubeconfigError(Exception):
    """The kubeconfig cannot be used (missing, unreadable, unknown context): bad input, exit 2."""


class UnreachableError(Exception):
    """The API server cannot be reached or refuses our credentials: the run stops, exit 4."""


class DiscoveryError(Exception):
    """The server would not say where a kind is served (403, 5xx...): that object fails, the run goes on."""


RETRY_STATUSES = (429, 503)  # the server's priority and fairness, or a restarting server: wait and retry
RETRIES = 5


class ApiError(Exception):
    """The server answered a request with an error status (after the retries)."""

    def __init__(self, status: int, body: Obj):
        super().__init__(f"{status} {body.get('message', '')}")
        self.status = status
        self.body = body

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


@dataclass(frozen=True, slots=True)
class Resource:
    """Where the API server serves one kind (and the dynamic client's resource for it)."""

    group_version: str
    plural: str
    namespaced: bool
    api: Any = field(default=None, compare=False, repr=False)


def _body(exc: ApiException) -> Obj:
    """An error answer's body as a `Status`-like dict (the client gives str or bytes, by version)."""
    raw = exc.body
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")
    try:
        parsed = json.loads(text) if text else {}
    except ValueError:
        parsed = {"message": text[:200]}
    if not isinstance(parsed, dict):
        parsed = {"message": text[:200]}
    if not parsed.get("message") and not parsed.get("reason") and exc.reason:
        parsed["reason"] = str(exc.reason)
    return parsed


def _retry_after(exc: ApiException) -> str | None:
    headers = exc.headers
    try:
        value = None if headers is None else headers.get("Retry-After")
    except AttributeError:
        return None
    return None if value is None else str(value)


def _reset(exc: BaseException) -> bool:
    """Whether a request failed because the server dropped the connection (after urllib3's own retry)."""
    reason = getattr(exc, "reason", None)
    return any(isinstance(e, urllib3.exceptions.ProtocolError | ConnectionResetError) for e in (exc, reason))


class _DynamicClient(DynamicClient):
    """The dynamic client, with a 503 kept an error: its discovery swallows ServiceUnavailableError."""

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        try:
            return super().request(method, path, body, **params)
        except ServiceUnavailableError as exc:  # same status, headers and body; no longer that class
            raise DynamicApiError(exc, exc.original_traceback) from None  # type: ignore[no-untyped-call]


def _plain(_client: Any, data: Any) -> Any:
    """The dynamic client's answer as the server sent it (parsed JSON), not wrapped in a ResourceInstance."""
    return data


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
        self._dynamic: Any = None  # DynamicClient, made on first use: making it asks the server
        self._cache_dir: str | None = None
        self._cleanup: Callable[[], object] | None = None
        # The dynamic client's discovery is not thread-safe: it is used under this lock, and kasbah
        # remembers each kind's answer, so discovery runs once per kind, not once per object.
        self._lock = threading.RLock()
        self._kinds: dict[tuple[str, str], Resource | None] = {}
        self._others: dict[tuple[str, str], list[str]] = {}
        # the group-versions whose kinds the server would not list, after the retries: their other
        # objects are rejected with the same answer at once, not retried again one by one
        self._refused: dict[tuple[tuple[str, str], ...], str] = {}

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]
        if self._cleanup is not None:
            self._cleanup()

    # ------------------------------------------------------------------ requests

    def _unreachable(self, reason: object) -> UnreachableError:
        return UnreachableError(
            f"cannot reach the API server at {self.host}: {reason}; fix: check that the cluster is up and that "
            "--kubeconfig/--context point at it"
        )

    def _call(self, request: Callable[[], T], *, resets: bool = False) -> T:
        """One request; 429 and 503 answers are retried after the server's Retry-After (at most 5 times).

        Other error answers raise ApiError; no answer, or a 401, raises UnreachableError. With `resets`,
        a connection the server dropped is retried the same way, then raises ConnectionResetError.
        """
        for attempt in range(RETRIES):
            try:
                return request()
            except ApiException as exc:  # the dynamic client's errors are ApiExceptions too
                status = int(exc.status or 0)
                if status == 0:  # no HTTP answer (TLS failure): the client says why in `reason`
                    raise self._unreachable(str(exc.reason).replace("\n", ": ")) from None
                if status == 401:
                    raise UnreachableError(
                        f"the API server at {self.host} refused the kubeconfig's credentials (401 Unauthorized); "
                        "fix: refresh the credentials or pick another --context"
                    ) from None
                if status not in RETRY_STATUSES or attempt == RETRIES - 1:
                    raise ApiError(status, _body(exc)) from None
                try:
                    wait = min(float(_retry_after(exc) or 1), 10.0)
                except ValueError:
                    wait = 1.0
                time.sleep(wait * (attempt + 1))
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if not (resets and _reset(exc)):
                    raise self._unreachable(getattr(exc, "reason", None) or exc) from None
                if attempt == RETRIES - 1:
                    raise ConnectionResetError(f"the server dropped the connection {RETRIES} times") from None
                time.sleep(attempt + 1)
        raise AssertionError("unreachable")  # the loop returns or raises

    def version(self) -> str:
        """The server's version (`gitVersion`), from the dynamic client's discovery (made here if need be)."""
        try:
            info = self._client().version
        except ApiError as exc:
            raise UnreachableError(
                f"the API server at {self.host} answered {exc.status} to discovery (/version, /apis): {exc.message()}"
            ) from None
        return str(((info or {}).get("kubernetes") or {}).get("gitVersion") or "?")

    def _object(self, request: Callable[[], Any]) -> Obj:
        got = self._call(request)
        if not isinstance(got, dict):  # the dynamic client gives the text of an answer that is not JSON
            raise ApiError(502, {"message": f"the server's answer is not a JSON object: {str(got)[:200]}"})
        return got

    def read(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        """The live object, or None when there is none. Raises ApiError."""
        try:
            return self._object(
                lambda: self._client().get(
                    res.api,
                    name=quote(name, safe=""),
                    namespace=self._ns(res, namespace),
                    serializer=_plain,
                    _request_timeout=self.timeout,
                )
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def apply(self, res: Resource, obj: Obj, *, field_manager: str, dry_run: bool, force: bool) -> Obj:
        """Server-side apply of `obj` under `field_manager`: the object as the server made it. Raises ApiError."""
        meta = obj.get("metadata") or {}
        return self._object(
            lambda: self._client().server_side_apply(
                res.api,
                body=obj,
                name=quote(str(meta.get("name", "")), safe=""),
                namespace=self._ns(res, meta.get("namespace")),
                field_manager=field_manager,
                force_conflicts=True if force else None,
                dry_run="All" if dry_run else None,
                serializer=_plain,
                _request_timeout=self.timeout,
            )
        )

    @staticmethod
    def _ns(res: Resource, namespace: str | None) -> str | None:
        return quote(namespace or "default", safe="") if res.namespaced else None

    # ------------------------------------------------------------------ discovery

    def _client(self) -> Any:
        """The dynamic client; made on first use (making it asks the server's /version and /apis)."""
        dynamic = self._dynamic
        if dynamic is not None:  # no lock: a request does not wait for another thread's discovery
            return dynamic
        with self._lock:
            if self._dynamic is None:
                self._dynamic = self._make_client()
            return self._dynamic

    def _make_client(self) -> Any:
        # Its discovery cache goes to a file: a private one, removed with this client, so nothing that
        # another process (or an older run against another server at that address) wrote is read.
        if self._cache_dir is None:
            self._cache_dir = tempfile.mkdtemp(prefix="kasbah-discovery-")
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._cache_dir, True)
        cache = Path(self._cache_dir) / "discovery.json"
        cache.unlink(missing_ok=True)  # a new client discovers anew
        try:
            return self._call(lambda: _DynamicClient(self._api, cache_file=str(cache)))  # type: ignore[no-untyped-call]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # its discovery read an answer that is not the Kubernetes API's (a proxy's, or http on an https port)
            raise self._unreachable(f"its answer is not the Kubernetes API's ({type(exc).__name__}: {exc})") from None

    def forget_discovery(self) -> None:
        """Discover again on next use (after CRDs were created)."""
        with self._lock:
            self._kinds.clear()
            self._others.clear()
            self._refused.clear()
            self._dynamic = None

    def _discover(self, asked: str, kind: str, **where: str) -> list[Any]:
        """The dynamic client's resources of `kind` that match `where` (prefix, group, api_version);
        `asked` is the apiVersion that was asked for, for the error messages."""
        searched = tuple(sorted(where.items()))
        refused = self._refused.get(searched)
        if refused is not None:
            raise DiscoveryError(refused)
        try:
            found = self._call(lambda: self._client().resources.search(kind=kind, **where), resets=True)
        except ApiError as exc:
            refused = f"the server would not list the kinds of {asked}: {exc.status} {exc.message()}"
        except ConnectionResetError as exc:
            refused = f"the server would not list the kinds of {asked}: {exc}"
        except (ResourceNotFoundError, ResourceNotUniqueError):
            return []
        except (KeyError, TypeError, AttributeError) as exc:
            raise DiscoveryError(f"the server's list of the kinds of {asked} is not understood: {exc!r}") from None
        else:
            return [r for r in found if not isinstance(r, ResourceList) and r.kind == kind]
        self._refused[searched] = refused
        raise DiscoveryError(refused)

    def resource(self, api_version: str, kind: str) -> Resource | None:
        """Where `kind` of `api_version` is served, or None when the server does not serve it."""
        key = (api_version, kind)
        with self._lock:
            if key not in self._kinds:
                group, _, version = api_version.rpartition("/")
                where = {"prefix": "apis", "group": group} if group else {"prefix": "api"}
                found = [
                    r
                    for r in self._discover(api_version, kind, api_version=version, **where)
                    if r.group_version == api_version
                ]
                self._kinds[key] = (
                    Resource(api_version, str(found[0].name), bool(found[0].namespaced), found[0]) if found else None
                )
            return self._kinds[key]

    def other_versions(self, api_version: str, kind: str) -> list[str]:
        """The apiVersions under which the server does serve `kind` of that API group (none for the core group)."""
        if "/" not in api_version:
            return []
        key = (api_version, kind)
        with self._lock:
            if key not in self._others:
                try:
                    found = self._discover(api_version, kind, prefix="apis", group=api_version.split("/", 1)[0])
                except DiscoveryError:
                    return []
                versions = [str(r.group_version) for r in found]
                self._others[key] = [v for i, v in enumerate(versions) if v != api_version and v not in versions[:i]]
            return list(self._others[key])
