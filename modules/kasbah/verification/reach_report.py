"""What the reachability verifier reports: its modes and properties, the matrix's outside rows, violations, flows, the matrix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MODES = ("standard", "cilium")

TENANT_ISOLATION = "tenant-isolation"
EGRESS_JURISDICTION = "egress-jurisdiction"
MANAGEMENT_PLANE = "management-plane"
PLATFORM_EGRESS = "platform-egress"
PLATFORM_ACCESS = "platform-access"
TRANSIT = "transit"
INBOUND = "inbound"
TRACED = "traced"
DEFAULT_DENY = "default-deny"
UNSUPPORTED = "unsupported"
PROPERTIES = (
    TENANT_ISOLATION,
    EGRESS_JURISDICTION,
    MANAGEMENT_PLANE,
    PLATFORM_EGRESS,
    PLATFORM_ACCESS,
    TRANSIT,
    INBOUND,
    TRACED,
    DEFAULT_DENY,
    UNSUPPORTED,
)

ADMIN_ROW = "admin networks"
WORLD_ROW = "world"
BMC_ROW = "bmc network"
OTHER_EXTERNAL = "other external"


@dataclass(frozen=True)
class Violation:
    mode: str
    property: str
    message: str
    policy: str | None  # "NetworkPolicy tenant-a/allow-all"; None when no single policy is to blame
    flow: str  # "tenant-a/* -> tenant-b/* tcp/1-65535"

    def __str__(self) -> str:
        return f"[{self.mode}] {self.property}: {self.message}"


@dataclass(frozen=True)
class Flow:
    """An allowed flow between a matrix row and column, with the rules that admit it."""

    mode: str
    source: str
    destination: str
    ports: str
    allowed_by: tuple[str, ...]  # "NetworkPolicy tenant-a/allow-dns (egress rule 0)"
    rules: tuple[str, ...]  # kasbah.io/rule names


@dataclass(frozen=True)
class Matrix:
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: tuple[tuple[str, ...], ...]

    def cell(self, row: str, column: str) -> str:
        return self.cells[self.rows.index(row)][self.columns.index(column)]


@dataclass(frozen=True)
class Report:
    cluster: str
    violations: tuple[Violation, ...]
    matrix: Mapping[str, Matrix]  # by mode
    flows: tuple[Flow, ...]

    def of(self, mode: str | None = None, prop: str | None = None) -> tuple[Violation, ...]:
        return tuple(
            v for v in self.violations if (mode is None or v.mode == mode) and (prop is None or v.property == prop)
        )

    def ok(self, mode: str | None = None) -> bool:
        return not self.of(mode)


def format_matrix(report: Report, mode: str) -> str:
    """The allowed ports from each source (rows) to each destination (columns); "·" where nothing is allowed."""
    m = report.matrix[mode]
    head = ("from \\ to", *m.columns)
    table = [head, *((row, *cells) for row, cells in zip(m.rows, m.cells, strict=True))]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    lines = [f"{report.cluster} — {mode} mode: allowed ports, rows = sources, columns = destinations"]
    for n, line in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"
