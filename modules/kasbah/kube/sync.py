"""Preview (server-side dry-run) and apply (server-side apply) of a cluster's rendered objects.

Order: CustomResourceDefinitions, then Namespaces, then every other object in waves of its Argo CD
sync-wave annotation (the rendered tree sets -2, -1, 0), each wave `concurrency` objects at a time.
For each object the live one is read, the object is applied with server-side apply under one
field manager (`dryRun=All` for a preview), and the server's answer is compared with the live
object: create, change (with the fields that differ) or no change. Comparing two objects that
both went through the server's defaulting and admission means a difference is a real change,
not a default kasbah left out.

Nothing is ever deleted: objects the tree no longer holds stay, and server-side apply only
removes fields this field manager set before and no longer sets, never another manager's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kasbah.kube.client import ApiError, DiscoveryError, Kube, Obj, Resource
from kasbah.planning.platform import RELEASES

FIELD_MANAGER = "kasbah"
WAVE = "argocd.argoproj.io/sync-wave"
CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
NAMESPACE = ("v1", "Namespace")
# Which Helm release brings the CRDs of a group (the cluster stack installs them; planning.platform)
CHART_OF_GROUP = {group: spec.name for spec in RELEASES.values() for group in spec.crd_groups}
# What the server keeps for itself; never a change kasbah makes
SERVER_FIELDS = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid", "selfLink")

CREATE, CHANGE, UNCHANGED, REJECTED, MISSING_KIND = "create", "change", "unchanged", "rejected", "missing-kind"
# A dry-run cannot check an object in a namespace, or of a kind, that only this change creates
UNCHECKED_NAMESPACE = "not checked by the server: its namespace is new (checked when applied)"
UNCHECKED_CRD = "not checked by the server: its CRD is new (checked when applied)"


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str
    before: Any
    after: Any


@dataclass(slots=True)
class Outcome:
    file: str
    api_version: str
    kind: str
    namespace: str | None
    name: str
    action: str = UNCHANGED
    changes: list[FieldChange] = field(default_factory=list)
    message: str = ""  # the server's reason for a rejection, or why the server could not check it

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    @property
    def failed(self) -> bool:
        return self.action in (REJECTED, MISSING_KIND)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "action": self.action,
            "changes": [{"path": c.path, "before": c.before, "after": c.after} for c in self.changes],
            "message": self.message,
        }


@dataclass
class Report:
    server: str
    version: str
    dry_run: bool
    concurrency: int
    outcomes: list[Outcome]
    seconds: float

    def count(self, action: str) -> int:
        return sum(1 for o in self.outcomes if o.action == action)

    @property
    def ok(self) -> bool:
        return not any(o.failed for o in self.outcomes)

    @property
    def rate(self) -> float:
        return len(self.outcomes) / self.seconds if self.seconds else 0.0

    @property
    def unchecked(self) -> int:
        return sum(1 for o in self.outcomes if o.message in (UNCHECKED_NAMESPACE, UNCHECKED_CRD))

    def missing_kinds(self) -> list[str]:
        return sorted({f"{o.api_version} {o.kind}" for o in self.outcomes if o.action == MISSING_KIND})

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "version": self.version,
            "dryRun": self.dry_run,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "counts": {a: self.count(a) for a in (CREATE, CHANGE, UNCHANGED, REJECTED, MISSING_KIND)},
            "uncheckedByServer": self.unchecked,
            "objects": [o.as_dict() for o in self.outcomes],
        }


# --------------------------------------------------------------------------- ordering


def _wave(obj: Obj) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(WAVE, 0))
    except (TypeError, ValueError):
        return 0


def waves(objs: Sequence[tuple[str, Obj]]) -> list[list[tuple[str, Obj]]]:
    """CRDs, then Namespaces, then the rest by sync wave; the tree's order is kept inside a wave."""
    crds = [o for o in objs if (o[1].get("apiVersion"), o[1].get("kind")) == CRD]
    nss = [o for o in objs if (o[1].get("apiVersion"), o[1].get("kind")) == NAMESPACE]
    rest = [o for o in objs if (o[1].get("apiVersion"), o[1].get("kind")) not in (CRD, NAMESPACE)]
    by_wave: dict[int, list[tuple[str, Obj]]] = {}
    for item in rest:
        by_wave.setdefault(_wave(item[1]), []).append(item)
    return [w for w in (crds, nss, *(by_wave[k] for k in sorted(by_wave))) if w]


# --------------------------------------------------------------------------- comparing


def _normalised(obj: Obj) -> Obj:
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_FIELDS}
    out["metadata"] = meta
    return out


def _key(k: str) -> str:
    return f".{k}" if k.replace("-", "").replace("_", "").isalnum() else f"[{k!r}]".replace("'", '"')


def field_changes(live: Any, new: Any, path: str = "") -> list[FieldChange]:
    """The fields that differ between two objects, as paths (`spec.hard["requests.nvidia.com/gpu"]`)."""
    if isinstance(live, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for k in sorted(set(live) | set(new)):
            sub = f"{path}{_key(k)}"
            if k not in live:
                out.append(FieldChange(sub.lstrip("."), None, new[k]))
            elif k not in new:
                out.append(FieldChange(sub.lstrip("."), live[k], None))
            else:
                out.extend(field_changes(live[k], new[k], sub))
        return out
    if isinstance(live, list) and isinstance(new, list) and len(live) == len(new):
        return [c for i, (a, b) in enumerate(zip(live, new, strict=True)) for c in field_changes(a, b, f"{path}[{i}]")]
    return [] if live == new else [FieldChange(path.lstrip("."), live, new)]


def compare(live: Obj | None, result: Obj) -> tuple[str, list[FieldChange]]:
    if live is None:
        return CREATE, []
    changes = field_changes(_normalised(live), _normalised(result))
    return (CHANGE, changes) if changes else (UNCHANGED, [])


# --------------------------------------------------------------------------- running


def missing_kind_fix(api_version: str, kind: str) -> str:
    """How to get a kind the cluster does not serve."""
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    chart = CHART_OF_GROUP.get(group)
    source = (
        f"install the `{chart}` Helm release first (the cluster stack does; its values are "
        f"bootstrap/<cluster>/platform/helm-values/{chart}.yaml)"
    )
    return source if chart else "install the CRD that defines it first"


class _Run:
    def __init__(
        self,
        kube: Kube,
        dry_run: bool,
        field_manager: str,
        force: bool,
        progress: Callable[[int, int], None],
        total: int,
    ):
        self.kube, self.dry_run, self.field_manager, self.force = kube, dry_run, field_manager, force
        self.progress, self.total = progress, total
        self.done = 0
        self.lock = threading.Lock()
        self.new_namespaces: set[str] = set()  # created by this preview, so not there to check against
        self.new_kinds: set[tuple[str, str]] = set()  # CRDs created by this preview

    def one(self, item: tuple[str, Obj]) -> Outcome:
        path, obj = item
        meta = obj.get("metadata") or {}
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        out = Outcome(path, api_version, kind, meta.get("namespace"), str(meta.get("name", "")))
        try:
            self._one(obj, out)
        finally:
            with self.lock:
                self.done += 1
                done = self.done
            self.progress(done, self.total)
        return out

    def _one(self, obj: Obj, out: Outcome) -> None:
        try:
            res: Resource | None = self.kube.resource(out.api_version, out.kind)
        except DiscoveryError as exc:
            out.action, out.message = REJECTED, str(exc)
            return
        if res is None:
            group = out.api_version.split("/", 1)[0]
            if self.dry_run and (group, out.kind) in self.new_kinds:
                out.action = CREATE
                out.message = UNCHECKED_CRD
                return
            other = self.kube.other_versions(out.api_version, out.kind)
            if other:
                # the CRD is installed, but its release serves the kind under another version
                out.action = MISSING_KIND
                out.message = (
                    f"the cluster serves {out.kind} as {', '.join(other)}, not {out.api_version}: the installed "
                    "release no longer (or not yet) serves this version; render with the version the pinned "
                    "release serves"
                )
                return
            out.action, out.message = MISSING_KIND, "the cluster does not serve this kind: its CRD is not installed"
            return
        if res.namespaced and not out.namespace:
            out.action, out.message = REJECTED, f"{out.kind} is namespaced: set metadata.namespace"
            return
        if self.dry_run and res.namespaced and out.namespace in self.new_namespaces:
            out.action = CREATE
            out.message = UNCHECKED_NAMESPACE
            return
        try:
            live = self.kube.read(res, out.namespace, out.name)
        except ApiError as exc:
            out.action, out.message = REJECTED, f"cannot read the live object: {exc.status} {exc.message()}"
            return
        try:
            applied = self.kube.apply(
                res, obj, field_manager=self.field_manager, dry_run=self.dry_run, force=self.force
            )
        except ApiError as exc:
            out.action = REJECTED
            out.message = f"{exc.status} {exc.body.get('reason', '')}: {exc.message()}".replace(" : ", ": ")
            if exc.status == 409:
                out.message += "; fix: another field manager owns these fields; `--force-conflicts` takes them over"
            return
        out.action, out.changes = compare(live, applied)
        if self.dry_run and out.action == CREATE:
            if (out.api_version, out.kind) == NAMESPACE:
                with self.lock:
                    self.new_namespaces.add(out.name)
            elif (out.api_version, out.kind) == CRD:
                spec = obj.get("spec") or {}
                with self.lock:
                    self.new_kinds.add((str(spec.get("group")), str((spec.get("names") or {}).get("kind"))))

    def wait_established(self, crds: Iterable[Obj], timeout: float = 60.0) -> None:
        """After CRDs are created for real: wait until each is Established and served."""
        deadline = time.monotonic() + timeout
        try:
            res = self.kube.resource(*CRD)
        except DiscoveryError:
            res = None  # not Established, as far as kasbah can tell: waits out the timeout
        for crd in crds:
            name = str((crd.get("metadata") or {}).get("name", ""))
            while True:
                try:
                    got = self.kube.read(res, None, name) if res is not None else None
                except ApiError:
                    got = None
                conditions = ((got or {}).get("status") or {}).get("conditions") or []
                if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"CustomResourceDefinition {name} not Established after {timeout:.0f} s")
                time.sleep(0.2)
        self.kube.forget_discovery()


def sync(
    kube: Kube,
    objs: Sequence[tuple[str, Obj]],
    *,
    dry_run: bool,
    concurrency: int = 16,
    field_manager: str = FIELD_MANAGER,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Preview (`dry_run`) or apply `objs` ((file, object) pairs, in the tree's order) on one cluster."""
    version = kube.version()  # fails fast and clearly when the server is unreachable
    start = time.perf_counter()
    run = _Run(kube, dry_run, field_manager, force, progress or (lambda done, total: None), len(objs))
    outcomes: dict[int, Outcome] = {}
    index = {id(item[1]): i for i, item in enumerate(objs)}
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="kasbah-kube") as pool:
        for wave in waves(objs):
            done = list(pool.map(run.one, wave))
            for item, outcome in zip(wave, done, strict=True):
                outcomes[index[id(item[1])]] = outcome
            # CRDs the server took: wait until they serve their kinds (refused ones keep their reason)
            crds = [o for (_, o), r in zip(wave, done, strict=True) if (r.api_version, r.kind) == CRD and not r.failed]
            if crds and not dry_run:
                run.wait_established(crds)
    return Report(
        kube.host, version, dry_run, concurrency, [outcomes[i] for i in range(len(objs))], time.perf_counter() - start
    )
