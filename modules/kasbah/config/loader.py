"""Reads an environment directory into validated models, with every problem located by file and line.

Each file is read by `reading` (bounded YAML, positions) and validated by the models, whose
errors `explain` words; this module assembles the environment: site.yaml, the phases it lists,
the hardware manifests, and the campus-wide checks of `validate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from kasbah.config.explain import pydantic_issues
from kasbah.config.issues import SITE_DOC, TENANCY_DOC, ConfigError, ConfigIssue, LocatedIssue, yaml_path
from kasbah.config.models import (
    Campus,
    Catalog,
    HardwareDocument,
    Phase,
    PhaseDocument,
    RackManifest,
    Site,
    SiteDocument,
    TenancyChange,
    TenancyDocument,
)
from kasbah.config.reading import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_INT_DIGITS,
    MAX_NODES,
    SourceDoc,
    bounded_yaml,
    parse,
)

SITE_FILE = "site.yaml"
PHASE_DIR = "phases"
HARDWARE_DIR = "hardware"  # one integrator's manifest a rack: hardware/<rack>.yaml
TENANCY_FILE = "tenancy.yaml"  # tenancy changes between construction phases (optional)

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class Environment:
    """A loaded environment: the campus description and where each part of it came from."""

    root: Path
    campus: Campus
    sources: dict[str, SourceDoc]

    @property
    def name(self) -> str:
        return self.root.name

    def locate(self, issue: ConfigIssue) -> LocatedIssue:
        return locate(self.sources, issue)


def locate(sources: dict[str, SourceDoc], issue: ConfigIssue) -> LocatedIssue:
    src = sources.get(issue.doc)
    if src is None:
        return LocatedIssue(Path(issue.doc), None, None, yaml_path(issue.path), issue.message, issue.fix)
    line, col = src.locate(issue.path)
    return LocatedIssue(src.file, line, col, yaml_path(issue.path), issue.message, issue.fix)


def load_environment(root: Path | str) -> Environment:
    """Load and validate `root/site.yaml` and every phase it lists; raise ConfigError with all problems."""
    root = Path(root)
    issues: list[ConfigIssue] = []
    sources: dict[str, SourceDoc] = {SITE_DOC: SourceDoc(root / SITE_FILE)}

    if not root.is_dir():
        raise ConfigError(
            [
                LocatedIssue(
                    root,
                    None,
                    None,
                    "",
                    "no such environment directory",
                    "give the path of a directory holding site.yaml, for example environments/campus",
                    scope="",
                )
            ]
        )

    parsed = parse(root / SITE_FILE, SITE_DOC, issues)
    if parsed is None:
        raise ConfigError(
            [
                LocatedIssue(
                    root / SITE_FILE,
                    None,
                    None,
                    "",
                    "site.yaml is missing",
                    "create it; see environments/tiny/site.yaml for a small example",
                )
            ]
        )
    raw_site, sources[SITE_DOC] = parsed
    site_doc: SiteDocument | None = None
    if raw_site is not None:
        try:
            site_doc = SiteDocument.model_validate(raw_site)
        except ValidationError as exc:
            issues.extend(pydantic_issues(exc, SITE_DOC, SiteDocument))

    phases: list[Phase] = []
    listed: list[str] = []
    if site_doc is not None:
        listed = site_doc.site.phases
    elif isinstance(raw_site, dict) and isinstance(raw_site.get("site"), dict):
        declared = raw_site["site"].get("phases")
        # only valid phase names become file paths
        if isinstance(declared, list) and all(isinstance(n, str) and _NAME.fullmatch(n) for n in declared):
            listed = declared
    if listed:
        for i, name in enumerate(listed):
            if name in listed[:i]:
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        ("site", "phases", i),
                        f"phase `{name}` is listed twice",
                        "list each phase once, in build order",
                    )
                )
                continue
            file = root / PHASE_DIR / f"{name}.yaml"
            got = parse(file, name, issues)
            if got is None:
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        ("site", "phases", i),
                        f"phase `{name}` has no file {PHASE_DIR}/{name}.yaml",
                        f"create {file} or remove `{name}` from site.phases",
                    )
                )
                continue
            raw, sources[name] = got
            if raw is None:
                continue
            try:
                doc = PhaseDocument.model_validate(raw)
            except ValidationError as exc:
                issues.extend(pydantic_issues(exc, name, PhaseDocument))
                continue
            if doc.phase.name != name:
                issues.append(
                    ConfigIssue(
                        name,
                        ("phase", "name"),
                        f"the file is {name}.yaml but names phase `{doc.phase.name}`",
                        f"set phase.name to `{name}` or rename the file",
                    )
                )
            phases.append(doc.phase)
    phase_dir = root / PHASE_DIR
    if phase_dir.is_dir():
        for extra in sorted(phase_dir.glob("*.yaml")):
            if extra.stem not in listed and listed:
                issues.append(
                    ConfigIssue(
                        SITE_DOC,
                        ("site", "phases"),
                        f"{PHASE_DIR}/{extra.name} is not listed in site.phases",
                        f"add `{extra.stem}` to site.phases in build order, or delete the file",
                    )
                )

    hardware = _load_hardware(root / HARDWARE_DIR, sources, issues)
    tenancy: list[TenancyChange] = []
    if (root / TENANCY_FILE).exists():
        got = parse(root / TENANCY_FILE, TENANCY_DOC, issues)
        if got is not None:
            raw, sources[TENANCY_DOC] = got
            if raw is not None:
                try:
                    tenancy = TenancyDocument.model_validate(raw).changes
                except ValidationError as exc:
                    issues.extend(pydantic_issues(exc, TENANCY_DOC, TenancyDocument))

    if issues or site_doc is None:
        raise ConfigError(locate(sources, i) for i in issues)

    campus = Campus(
        site=site_doc.site,
        catalog=site_doc.catalog,
        phases=tuple(phases),
        hardware=hardware,
        tenancy=tuple(tenancy),
    )
    env = Environment(root=root, campus=campus, sources=sources)
    # imported here: validation depends on the loaded models, the loader must not depend on planning
    from kasbah.config.validate import check_campus

    static = check_campus(campus)
    if static:
        raise ConfigError(env.locate(i) for i in static)
    return env


def hardware_doc(rack_file: str) -> str:
    """The document name of a hardware manifest (how issues and the Plan name it)."""
    return f"{HARDWARE_DIR}/{rack_file}"


def _load_hardware(folder: Path, sources: dict[str, SourceDoc], issues: list[ConfigIssue]) -> tuple[RackManifest, ...]:
    """Every `hardware/<rack>.yaml`, in name order; a manifest's file name is its rack."""
    if not folder.is_dir():
        return ()
    out: list[RackManifest] = []
    for file in sorted(folder.iterdir()):
        doc = hardware_doc(file.name)
        if file.suffix != ".yaml" or not file.is_file():
            sources[doc] = SourceDoc(file)
            issues.append(
                ConfigIssue(
                    doc,
                    (),
                    "not a hardware manifest (only <rack>.yaml files belong here)",
                    "remove it or rename it to <rack>.yaml",
                )
            )
            continue
        got = parse(file, doc, issues)
        if got is None:
            continue
        raw, sources[doc] = got
        if raw is None:
            continue
        try:
            manifest = HardwareDocument.model_validate(raw).hardware
        except ValidationError as exc:
            issues.extend(pydantic_issues(exc, doc, HardwareDocument))
            continue
        if manifest.rack != file.stem:
            issues.append(
                ConfigIssue(
                    doc,
                    ("hardware", "rack"),
                    f"the file is {file.name} but describes rack `{manifest.rack}`",
                    f"name the file {manifest.rack}.yaml, or set hardware.rack to `{file.stem}`",
                )
            )
            continue
        out.append(manifest)
    return tuple(out)


__all__ = [
    "HARDWARE_DIR",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INT_DIGITS",
    "MAX_NODES",
    "PHASE_DIR",
    "SITE_FILE",
    "TENANCY_DOC",
    "TENANCY_FILE",
    "Campus",
    "Catalog",
    "Environment",
    "Site",
    "SourceDoc",
    "bounded_yaml",
    "hardware_doc",
    "load_environment",
    "locate",
]
