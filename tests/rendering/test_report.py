"""The phase report: README numbers match the Plan, pictures are valid SVG, output is deterministic."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest
import yaml

from kasbah.config import load_environment
from kasbah.planning import plan_campus
from kasbah.planning.model import Plan
from kasbah.rendering.report import MAX_BOXES, render_report, templates_dir
from tests.conftest import CAMPUS, TINY

SVG = "{http://www.w3.org/2000/svg}"
CASES = [(TINY, None), (CAMPUS, "phase-1")]
IDS = ["tiny", "campus-phase-1"]


@cache
def _plans(root: Path, upto: str | None = None) -> tuple[Plan, ...]:
    env = load_environment(root)
    return tuple(plan_campus(env.campus, env.name, upto=upto))


@cache
def _report(root: Path, upto: str | None = None) -> dict[str, bytes]:
    return render_report(_plans(root, upto))


def _svg(data: bytes) -> ET.Element:
    root = ET.fromstring(data)
    assert root.tag == f"{SVG}svg"
    return root


def _classed(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == cls]


def _table(readme: str, heading: str) -> list[list[str]]:
    """The rows of the first markdown table under `## heading`, header and separator dropped."""
    section = readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines: list[str] = []
    for line in section.splitlines():
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[2:]]


def _with_decommission(tmp_path: Path) -> Path:
    """The tiny environment plus a phase that retires the ministry's pool (its reason holds a pipe)."""
    root = tmp_path / "tiny"
    shutil.copytree(TINY, root)
    site = yaml.safe_load((root / "site.yaml").read_text())
    site["site"]["phases"].append("lab-3")
    phase = {
        "name": "lab-3",
        "facility_budget_mw": 0.05,
        "decommissions": [{"kind": "pool", "name": "gpu-gov", "reason": "moved to shared quota | see ticket"}],
    }
    (root / "phases" / "lab-3.yaml").write_text(yaml.safe_dump({"phase": phase}, sort_keys=False))
    (root / "site.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    return root


def test_templates_are_found() -> None:
    assert (templates_dir() / "report" / "README.md.j2").is_file()


@pytest.mark.parametrize(("root", "upto"), CASES, ids=IDS)
def test_every_picture_is_titled_svg_with_a_viewbox(root: Path, upto: str | None) -> None:
    plan = _plans(root, upto)[-1]
    files = _report(root, upto)
    expected = {"README.md", "capacity.svg", "hall-power.svg", "racks.svg", "addresses.svg"}
    expected |= {f"halls/{h.name}.svg" for h in plan.halls}
    expected |= {f"fabrics/{f.name}.svg" for f in plan.fabrics}
    expected |= {f"rail-groups/{f.name}.svg" for f in plan.fabrics if f.kind == "compute" and f.leaves}
    assert set(files) == expected
    for name, data in files.items():
        if not name.endswith(".svg"):
            continue
        svg = _svg(data)
        assert re.fullmatch(r"0 0 [\d.]+ [\d.]+", svg.get("viewBox", "")), name
        title = svg.find(f"{SVG}title")
        assert title is not None and title.text, name
    readme = files["README.md"].decode()
    for name in files:
        if name != "README.md":
            assert f"]({name})" in readme, f"README does not link {name}"


@pytest.mark.parametrize(("root", "upto"), CASES, ids=IDS)
def test_hall_plans_draw_one_rack_element_per_standing_rack(root: Path, upto: str | None) -> None:
    plan = _plans(root, upto)[-1]
    files = _report(root, upto)
    for hall in plan.halls:
        svg = _svg(files[f"halls/{hall.name}.svg"])
        racks = _classed(svg, "rack")
        expected = sorted(r.name for r in plan.racks if r.hall == hall.name)
        assert len(racks) == hall.racks == len(expected)
        tips = sorted((e.findtext(f"{SVG}title") or "").split(" · ")[0] for e in racks)
        assert tips == expected
        cells = len(racks) + len(_classed(svg, "empty")) + len(_classed(svg, "retired"))
        assert cells == hall.positions
        units = {u.name for u in plan.scalable_units if u.hall == hall.name}
        assert len(_classed(svg, "su")) >= len(units)


@pytest.mark.parametrize(("root", "upto"), CASES, ids=IDS)
def test_readme_names_everything_and_the_plans_totals(root: Path, upto: str | None) -> None:
    plan = _plans(root, upto)[-1]
    readme = _report(root, upto)["README.md"].decode()
    summary = {row[0]: row[1] for row in _table(readme, "Summary")}
    assert summary["GPUs"] == f"{plan.gpus:,}"
    assert summary["nodes"] == f"{len(plan.nodes):,}"
    assert summary["racks"].startswith(f"{len(plan.racks):,} (")
    assert summary["switches"].startswith(f"{len(plan.switches):,} in {len(plan.fabrics):,} fabrics")
    assert summary["data halls"] == f"{len(plan.halls):,}"
    it, facility = plan.power.it_load_kw, plan.power.facility_load_kw

    def unit(kw: float) -> str:
        return f"{kw / 1000:,.2f} MW" if it >= 1000 else f"{kw:,.1f} kW"

    assert summary["IT load"] == unit(it)
    assert summary["facility load (IT x PUE)"] == unit(facility)
    assert abs(facility - it * plan.power.pue) < 1e-6 * max(1.0, facility)

    halls = {row[0]: row for row in _table(readme, "Power and cooling per hall")}
    for hall in plan.halls:
        row = halls[f"[{hall.name}](halls/{hall.name}.svg)"]
        assert row[2] == f"{hall.racks:,}"
    assert halls["**all**"][4] == f"**{plan.gpus:,}**"
    pools = {row[0]: row for row in _table(readme, "Pools")}
    assert set(pools) == {p.name for p in plan.pools}
    for p in plan.pools:
        assert pools[p.name][8] == f"{p.gpus:,}"
    assert sum(int(row[8].replace(",", "")) for row in pools.values()) == plan.gpus
    clusters = {row[0]: row for row in _table(readme, "Clusters")}
    assert set(clusters) == {c.name for c in plan.clusters}
    for c in plan.clusters:
        assert clusters[c.name][5].startswith(f"{c.nodes:,} / {c.node_limit:,}")
        assert clusters[c.name][7] == c.pod_cidr and clusters[c.name][9] == c.service_cidr
    tenants = {row[0] for row in _table(readme, "Tenants")}
    assert tenants == {t.name for t in plan.tenants}
    networks = {row[0]: row for row in _table(readme, "Address usage")}
    assert set(networks) == {a.network for a in plan.addresses}
    for a in plan.addresses:
        assert networks[a.network][5] == f"{a.used:,}"
    compute = {row[0] for row in _table(readme, "Fabrics")}
    assert compute == {f.name for f in plan.fabrics if f.kind == "compute"}


@pytest.mark.parametrize(("root", "upto"), CASES, ids=IDS)
def test_capacity_has_one_bar_group_a_phase(root: Path, upto: str | None) -> None:
    plans = _plans(root, upto)
    svg = _svg(_report(root, upto)["capacity.svg"])
    groups = _classed(svg, "phase")
    assert [g.get("data-phase") for g in groups] == [p.phase for p in plans]
    for g in groups:
        assert len(_classed(g, "bar")) == 3  # IT, facility, GPUs


def test_capacity_shows_every_phase_up_to_the_last() -> None:
    plans = _plans(TINY)
    assert len(plans) >= 2
    svg = _svg(render_report(plans[:1])["capacity.svg"])
    assert len(_classed(svg, "phase")) == 1


@pytest.mark.parametrize(("root", "upto"), CASES, ids=IDS)
def test_fabric_tiers_stay_small(root: Path, upto: str | None) -> None:
    plan = _plans(root, upto)[-1]
    files = _report(root, upto)
    for fabric in plan.fabrics:
        svg = _svg(files[f"fabrics/{fabric.name}.svg"])
        counts = {g.get("data-tier"): g for g in _classed(svg, "tier")}
        wanted = {"leaf": fabric.leaves, "spine": fabric.spines, "core": fabric.cores}
        assert set(counts) == {t for t, n in wanted.items() if n}
        for tier, group in counts.items():
            assert tier is not None and group.get("data-count") == str(wanted[tier])
            boxes = _classed(group, "switch")
            summarised = sum(
                int(re.sub(r"\D", "", (e.findtext(f"{SVG}title") or "").split(" ")[0])) for e in _classed(group, "more")
            )
            assert len(boxes) + len(_classed(group, "more")) <= MAX_BOXES + fabric.rails
            assert len(boxes) + summarised == wanted[tier], (fabric.name, tier)


def test_same_plans_give_identical_bytes() -> None:
    first = render_report(_plans(CAMPUS, "phase-1"))
    env = load_environment(CAMPUS)
    again = render_report(plan_campus(env.campus, env.name, upto="phase-1"))
    assert list(first) == list(again)
    for name, data in first.items():
        assert again[name] == data, name
    assert b"<svg" in first["capacity.svg"] and not re.search(rb"\d{4}-\d\d-\d\dT", first["README.md"])


def test_a_decommission_is_reported(tmp_path: Path) -> None:
    env = load_environment(_with_decommission(tmp_path))
    plans = plan_campus(env.campus, env.name)
    plan, before = plans[-1], plans[-2]
    gone = [r for r in before.racks if r.pool == "gpu-gov"]
    assert gone and plan.retired
    files = render_report(plans)
    readme = files["README.md"].decode()
    retired = _table(readme, "Retired")
    assert ["pool", "gpu-gov", "moved to shared quota \\| see ticket"] in retired
    assert f"{len(gone)} rack(s), {sum(r.nodes for r in gone)} node(s), {sum(r.gpus for r in gone)} GPU(s)" in readme
    assert "gpu-gov" not in {row[0] for row in _table(readme, "Pools")}

    hall = gone[0].hall
    svg = _svg(files[f"halls/{hall}.svg"])
    marked = _classed(svg, "retired")
    assert len(marked) == len(gone)
    assert {(e.findtext(f"{SVG}title") or "").split(":")[0] for e in marked} == {r.name for r in gone}
    assert len(_classed(svg, "rack")) == sum(1 for r in plan.racks if r.hall == hall)

    # the phase before the decommission does not show it
    earlier = render_report(plans[:-1])["README.md"].decode()
    assert "gpu-gov" in {row[0] for row in _table(earlier, "Pools")}
    assert "Nothing was decommissioned" in earlier


def test_campus_at_500_mw_stays_compact() -> None:
    files = _report(CAMPUS)
    total = sum(len(v) for v in files.values())
    assert total < 6_000_000, total
    assert len(files["README.md"]) < 100_000
    # the pictures drawn once a phase, a profile or a compute fabric stay small however large the campus
    for name, data in files.items():
        if name in ("hall-power.svg", "racks.svg", "addresses.svg") or name.startswith("rail-groups/"):
            assert len(data) < 100_000, (name, len(data))
