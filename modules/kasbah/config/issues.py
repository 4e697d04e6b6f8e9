"""Problems found in an environment, and how they are located and shown to the user."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

Loc = tuple[str | int, ...]

SITE_DOC = "site"
TENANCY_DOC = "tenancy"  # tenancy.yaml: changes of tenancy between construction phases


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem, named by document (`site` or a phase name) and path inside it."""

    doc: str
    path: Loc
    message: str
    fix: str


@dataclass(frozen=True, slots=True)
class LocatedIssue:
    """A problem with its file and line: what the user reads."""

    file: Path
    line: int | None
    column: int | None
    yaml_path: str
    message: str
    fix: str
    scope: str = "the whole file"  # what a problem without a YAML path or line is about

    def as_dict(self) -> dict[str, object]:
        """The problem for machines (`--json`): where it is, what is wrong, the fix."""
        return {
            "file": str(self.file),
            "line": self.line,
            "column": self.column,
            "yaml_path": self.yaml_path or None,
            "message": self.message,
            "fix": self.fix,
        }

    def __str__(self) -> str:
        where = str(self.file)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.yaml_path:
            head = f"{where}: {self.yaml_path}: {self.message}"
        elif self.line is None and self.scope:
            head = f"{where}: ({self.scope}) {self.message}"  # a file-level problem has no YAML path
        else:
            head = f"{where}: {self.message}"
        return f"{head}\n    fix: {self.fix}" if self.fix else head


def yaml_path(path: Loc) -> str:
    """`('phase', 'pools', 2, 'racks')` -> `phase.pools[2].racks`."""
    out = ""
    for part in path:
        if isinstance(part, str) and part.startswith("<"):
            continue  # positions of keys, duplicates and syntax errors, not YAML keys
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class ConfigError(Exception):
    """The environment is invalid; every problem found is listed."""

    def __init__(self, issues: Iterable[LocatedIssue]) -> None:
        self.issues = list(issues)
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.issues)
        lines = [f"{n} problem{'s' if n != 1 else ''} in the environment:"]
        lines.extend(str(i) for i in self.issues)
        return "\n".join(lines)


class PlanningError(Exception):
    """The planner refused the environment; issues are not yet located in files."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__(f"{len(self.issues)} problem(s): " + "; ".join(i.message for i in self.issues))
