"""`kasbah usage`: a month of each tenant's use, from the metering rules' series in Prometheus, per reseller
and customer (CSV an invoice is made from, and markdown to read).

The rules (`rendering.metering`) record, per cluster, tenant and pool, the GPUs Kueue admitted, the GPUs running
pods request, the queue's nominal quota, GPU utilisation and admitted workloads, once a minute. Here the
month is integrated with Prometheus's query API (`/api/v1/query`, one instant query a figure at the month's
end): GPU-hours are the recorded minute samples summed over 60. Tenants come from the Plan (reseller, display name);
a tenant Prometheus knows and the Plan does not (offboarded since) is reported, marked so, not dropped.
"""

from __future__ import annotations

import calendar
import csv
import datetime
import http.client
import io
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from kasbah.planning.model import TenancyRecord, Tenant
from kasbah.rendering.metering import USAGE_QUERIES

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TIMEOUT = 60.0
MAX_RESPONSE = 64 * 1024 * 1024
DIRECT = "(direct)"  # tenants no reseller sells: the operator's own customers


class UsageError(Exception):
    """A month, a URL or an answer that cannot be used; the message says what to fix."""


class UnreachableError(UsageError):
    """Prometheus did not answer."""


def month_range(month: str) -> tuple[datetime.datetime, datetime.datetime]:
    """[start, end) of a `YYYY-MM` month, in UTC."""
    m = MONTH.match(month)
    if not m:
        raise UsageError(f"`{month}` is not a month; write it as YYYY-MM (2026-11)")
    year, mon = int(m.group(1)), int(m.group(2))
    start = datetime.datetime(year, mon, 1, tzinfo=datetime.UTC)
    days = calendar.monthrange(year, mon)[1]
    return start, start + datetime.timedelta(days=days)


def check_url(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise UsageError(
            "the Prometheus URL is not http(s)://host[:port][/path] (no query, no fragment); "
            "write the query API's base, e.g. http://127.0.0.1:9090"
        )
    if parts.username or parts.password:
        raise UsageError(
            "credentials in the Prometheus URL end up in shell history and process lists; "
            "give a bearer token in KASBAH_PROMETHEUS_TOKEN instead"
        )
    return url.rstrip("/")


class Prometheus:
    """Prometheus's HTTP query API (instant queries)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = TIMEOUT) -> None:
        self.url = check_url(url)
        self.token = token
        self.timeout = timeout

    def query(self, expr: str, at: datetime.datetime) -> list[dict[str, Any]]:
        body = urllib.parse.urlencode({"query": expr, "time": f"{at.timestamp():.3f}"}).encode()
        req = urllib.request.Request(f"{self.url}/api/v1/query", data=body, method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read(MAX_RESPONSE + 1)
        except urllib.error.HTTPError as exc:
            try:
                said = json.loads(exc.read(MAX_RESPONSE + 1)).get("error", exc.reason)
            except (ValueError, AttributeError, OSError):
                said = exc.reason
            raise UsageError(f"Prometheus at {self.url} refused the query (HTTP {exc.code}): {said}") from None
        except http.client.HTTPException as exc:
            raise UnreachableError(f"{self.url} did not answer HTTP: {type(exc).__name__}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UnreachableError(f"Prometheus at {self.url} did not answer: {reason}") from None
        if len(raw) > MAX_RESPONSE:
            raise UsageError(f"Prometheus at {self.url} answered more than {MAX_RESPONSE >> 20} MiB")
        answer = _json(raw, self.url)
        if answer.get("status") != "success":
            raise UsageError(f"Prometheus at {self.url} failed the query: {answer.get('error', answer)}")
        data = answer.get("data") or {}
        if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
            raise UsageError(f"Prometheus at {self.url} answered no instant vector")
        result: list[dict[str, Any]] = data["result"]
        return result


def _json(raw: bytes, url: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise UsageError(f"{url} did not answer JSON: is it Prometheus's query API?") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{url} did not answer a Prometheus response")
    return doc


@dataclass
class Row:
    """One customer's use of one pool of one cluster over the month (pool `*`: the customer's workloads)."""

    month: str
    reseller: str
    customer: str
    display_name: str
    cluster: str
    pool: str
    gpu_hours: float = 0.0  # GPUs Kueue admitted, integrated: what the quota reserved
    gpu_hours_running: float = 0.0  # GPUs running pods requested, integrated
    quota_gpu_hours: float = 0.0  # the queue's nominal quota, integrated
    gpu_utilisation_percent: float | None = None  # DCGM, averaged over the month's samples
    admitted_workloads: int | None = None  # pool `*` rows only
    note: str = ""

    @property
    def quota_use_percent(self) -> float | None:
        return round(100 * self.gpu_hours / self.quota_gpu_hours, 1) if self.quota_gpu_hours else None


COLUMNS = [f.name for f in fields(Row)[:-1]] + ["quota_use_percent", "note"]


def _value(sample: Mapping[str, Any]) -> float:
    try:
        return float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        raise UsageError(f"a sample without a value: {sample}") from None


def usage(
    sources: Iterable[Prometheus], month: str, tenants: Iterable[Tenant], tenancy: Iterable[TenancyRecord] = ()
) -> list[Row]:
    """The month's rows from every source (one Prometheus a cluster, or one store of them all), sorted by
    reseller, customer, cluster and pool. A tenant offboarded since (tenancy.yaml's data step) stays on its
    reseller's report, marked."""
    start, end = month_range(month)
    hours = int((end - start).total_seconds() // 3600)
    known = {t.name: t for t in tenants}
    gone = {r.tenant: r for r in tenancy if r.action == "offboard-data"}
    rows: dict[tuple[str, str, str], Row] = {}
    answered: dict[tuple[str, str, str, str], str] = {}  # (figure, tenant, cluster, pool) -> its source

    def row(labels: Mapping[str, str], pool: str) -> Row:
        tenant, cluster = labels.get("tenant", ""), labels.get("cluster", "")
        key = (tenant, cluster, pool)
        if key not in rows:
            t = known.get(tenant)
            if t is not None:
                reseller = t.reseller or (t.name if t.kind == "reseller" else DIRECT)
                name, note = t.display_name or t.name, ""
            elif tenant in gone:
                r = gone[tenant]
                reseller, name, note = r.reseller or DIRECT, tenant, f"offboarded by {r.change} ({r.detail})"
            else:
                reseller, name, note = "(unknown)", tenant, "not in the plan (another site's tenant?)"
            rows[key] = Row(month, reseller, tenant, name, cluster, pool, note=note)
        return rows[key]

    # the month's samples: [start, end), the sample at `end` is the next month's first minute
    at = end - datetime.timedelta(milliseconds=1)
    for prometheus in sources:
        for figure, template in USAGE_QUERIES.items():
            for sample in prometheus.query(template.format(range=f"{hours}h"), at):
                labels = sample.get("metric") or {}
                key = (figure, labels.get("tenant", ""), labels.get("cluster", ""), labels.get("pool", ""))
                if answered.setdefault(key, prometheus.url) != prometheus.url:
                    raise UsageError(
                        f"cluster {key[2]} is answered by {answered[key]} and {prometheus.url}: each cluster's "
                        "series must come from one source, or its use would be counted twice"
                    )
                value = _value(sample)
                if figure == "admitted_workloads":
                    row(labels, "*").admitted_workloads = round(value)
                elif figure == "utilisation":
                    row(labels, labels.get("pool", "")).gpu_utilisation_percent = round(value, 1)
                else:
                    setattr(row(labels, labels.get("pool", "")), figure, round(value, 3))
    return sorted(rows.values(), key=lambda r: (r.reseller, r.customer, r.cluster, r.pool))


def as_dict(r: Row) -> dict[str, Any]:
    return {**asdict(r), "quota_use_percent": r.quota_use_percent}


def to_csv(rows: Iterable[Row]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        d = as_dict(r)
        w.writerow({k: "" if d[k] is None else d[k] for k in COLUMNS})
    return buf.getvalue()


def _n(v: float | int | None, unit: str = "") -> str:
    return "-" if v is None else f"{v:,.1f}{unit}" if isinstance(v, float) else f"{v:,}{unit}"


def to_markdown(rows: list[Row], month: str, site: str, reseller: str | None = None) -> str:
    title = f"GPU usage, {month}" + (f": {reseller}" if reseller else "") + f" ({site})"
    lines = [f"# {title}", ""]
    lines.append(
        "GPU-hours admitted: what Kueue reserved for the customer's workloads; running: what its running pods "
        "requested; quota: the queue's nominal quota over the month. From the clusters' metering rules."
    )
    for res in sorted({r.reseller for r in rows}):
        if reseller is None:
            lines += ["", f"## {res}"]
        for customer in sorted({r.customer for r in rows if r.reseller == res}):
            mine = [r for r in rows if r.reseller == res and r.customer == customer]
            name = mine[0].display_name
            lines += ["", f"### {name} (`{customer}`)" if name != customer else f"### `{customer}`"]
            if mine[0].note:
                lines += ["", f"Note: {mine[0].note}."]
            lines += [
                "",
                "| cluster | pool | GPU-hours admitted | GPU-hours running | quota GPU-hours | quota use | GPU util |",
                "|---|---|---:|---:|---:|---:|---:|",
            ]
            for r in mine:
                if r.pool == "*":
                    continue
                lines.append(
                    f"| {r.cluster} | {r.pool} | {_n(r.gpu_hours)} | {_n(r.gpu_hours_running)} | "
                    f"{_n(r.quota_gpu_hours)} | {_n(r.quota_use_percent, ' %')} | {_n(r.gpu_utilisation_percent, ' %')} |"
                )
            total = sum(r.gpu_hours for r in mine)
            admitted = sum(r.admitted_workloads or 0 for r in mine)
            lines += ["", f"Total: {total:,.1f} GPU-hours admitted; {admitted:,} workloads admitted."]
    return "\n".join(lines) + "\n"


def reports(rows: list[Row], month: str, site: str) -> dict[str, str]:
    """The files: the whole month (CSV, markdown), and one pair per reseller for its customers."""
    out = {f"usage-{month}.csv": to_csv(rows), f"usage-{month}.md": to_markdown(rows, month, site)}
    for res in sorted({r.reseller for r in rows}):
        mine = [r for r in rows if r.reseller == res]
        slug = re.sub(r"[^a-z0-9-]+", "-", res.lower()).strip("-") or "unknown"
        out[f"usage-{month}-{slug}.csv"] = to_csv(mine)
        out[f"usage-{month}-{slug}.md"] = to_markdown(mine, month, site, res)
    return out
