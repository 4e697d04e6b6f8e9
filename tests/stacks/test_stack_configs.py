"""The shipped stack configs, and the programs' answers to bad configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from kasbah.components.mocked import run_mocked
from kasbah.components.programs import cluster_program, site_program
from tests.conftest import ROOT
from tests.stacks.conftest import ENVIRONMENTS, KUBECONFIG, hall_groups, hall_stack, planned, site

STACKS = ROOT / "stacks"


def _configs(project: str) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((STACKS / project).glob("Pulumi.*.yaml")):
        doc = yaml.safe_load(path.read_text())
        out[path.name.removeprefix("Pulumi.").removesuffix(".yaml")] = {
            k.removeprefix("kasbah:"): v for k, v in doc["config"].items()
        }
    return out


SITES = _configs("site")
HALLS = _configs("halls")
CLUSTERS = _configs("cluster")


def test_every_environment_has_a_site_stack_at_a_known_phase() -> None:
    assert set(SITES) == set(ENVIRONMENTS)
    for name, cfg in SITES.items():
        assert cfg["environment"] == f"environments/{name}"
        assert cfg["phase"] in [p.phase for p in planned(ENVIRONMENTS[name])]


def test_every_cluster_of_the_phase_has_a_stack_and_all_agree_on_the_phase() -> None:
    for env, cfg in SITES.items():
        plan = next(p for p in planned(ENVIRONMENTS[env]) if p.phase == cfg["phase"])
        stacks = {n: c for n, c in CLUSTERS.items() if c["environment"] == cfg["environment"]}
        assert {c["cluster"] for c in stacks.values()} == {c.name for c in plan.clusters}, env
        for name, c in stacks.items():
            assert name == f"{env}-{c['cluster']}"
            assert c["phase"] == cfg["phase"], f"{name} is at {c['phase']}, the site at {cfg['phase']}"
            assert c["siteStack"] == f"organization/kasbah-site/{env}"


def expected_hall_stacks(env: str, phase: str) -> dict[str, int]:
    """The hall stacks an environment's site stack at `phase` needs: one per hall group past the first."""
    return {hall_stack(env, g): g for g in hall_groups(env, phase)}


def test_every_hall_group_of_the_phase_has_a_stack_and_all_agree_on_the_phase() -> None:
    for env, cfg in SITES.items():
        stacks = {n: c for n, c in HALLS.items() if c["environment"] == cfg["environment"]}
        assert {n: int(c["hallGroup"]) for n, c in stacks.items()} == expected_hall_stacks(env, cfg["phase"]), env
        for name, c in stacks.items():
            assert c["phase"] == cfg["phase"], f"{name} is at {c['phase']}, the site at {cfg['phase']}"
            assert c["siteStack"] == f"organization/kasbah-site/{env}"
    assert set(HALLS) <= {n for env, cfg in SITES.items() for n in expected_hall_stacks(env, cfg["phase"])}


def test_advancing_the_campus_needs_its_hall_stacks() -> None:
    """None ships (campus phase-1 and tiny are hall group 0 only); each later campus phase adds some."""
    assert expected_hall_stacks("campus", "phase-1") == {} == expected_hall_stacks("tiny", "lab-2")
    assert expected_hall_stacks("campus", "phase-2") == {"campus-halls-1": 1}
    assert list(expected_hall_stacks("campus", "phase-4")) == [f"campus-halls-{g}" for g in (1, 2, 3, 4)]


def test_projects_use_the_checkout_virtualenv() -> None:
    for project in ("site", "halls", "cluster"):
        doc = yaml.safe_load((STACKS / project / "Pulumi.yaml").read_text())
        assert doc["runtime"]["options"]["virtualenv"] == "../../.venv"
        assert (STACKS / project / "__main__.py").is_file()
    policy = yaml.safe_load((STACKS / "policy" / "PulumiPolicy.yaml").read_text())
    assert policy["runtime"]["name"] == "python"


def _site(**config: Any) -> None:
    run_mocked(site_program, project="kasbah-site", stack="bad", config=config)


def _cluster(
    config: dict[str, str], secrets: dict[str, str] | None = None, site_outputs: dict[str, Any] | None = None
) -> None:
    run_mocked(
        cluster_program,
        project="kasbah-cluster",
        stack="bad",
        config={"environment": "environments/tiny", "siteStack": "o/kasbah-site/tiny", **config},
        secrets=secrets,
        stack_outputs={"o/kasbah-site/tiny": site_outputs or site("tiny", "lab-1").outputs},
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"environment": "environments/tiny"}, r"kasbah:phase not set for stack bad; fix: pulumi config set"),
        ({"environment": "environments/nowhere", "phase": "x"}, r"no site.yaml at .*environments/nowhere; fix:"),
        ({"environment": "environments/tiny", "phase": "lab-9"}, r"kasbah:phase: no phase `lab-9` .*lab-1, lab-2"),
        (
            {"environment": "environments/tiny", "phase": "lab-1", "skipTags": "vendor"},
            r"kasbah:skipTags must be a list of strings; fix: pulumi config set --path 'kasbah:skipTags\[0\]' vendor",
        ),
        (
            {"environment": "environments/tiny", "phase": "lab-1", "extraInventories": [1]},
            r"kasbah:extraInventories must be a list of strings",
        ),
    ],
)
def test_bad_site_config_names_the_key_and_the_fix(config: dict[str, Any], message: str) -> None:
    with pytest.raises(pulumi.RunError, match=message):
        _site(**config)


def test_bad_cluster_config_names_the_key_and_the_fix() -> None:
    with pytest.raises(
        pulumi.RunError, match=r"kasbah:cluster = 'nope': no such cluster in tiny lab-1 \(clusters: lab\)"
    ):
        _cluster({"phase": "lab-1", "cluster": "nope"})
    # charts are the environment's (site.yaml platform.charts): an old stack's override is refused, not ignored
    with pytest.raises(pulumi.RunError, match=r"kasbah:charts is no longer read.*fix: pulumi config rm kasbah:charts"):
        _cluster({"phase": "lab-1", "cluster": "lab", "charts": '{"cilium": {}}'})
    with pytest.raises(
        pulumi.RunError, match=r"is at 'lab-1', this stack at 'lab-2'; fix: run the site stack's phase first"
    ):
        _cluster({"phase": "lab-2", "cluster": "lab"})


@pytest.mark.parametrize("key", ["kubeconfig", "joinToken", "joinCaCertHash"])
def test_pasted_credentials_are_refused(key: str) -> None:
    """The kubeconfig comes from the site stack and tokens are minted in the run: a pasted one is refused, not used."""
    with pytest.raises(pulumi.RunError, match=rf"kasbah:{key} is no longer read: .*fix: pulumi config rm kasbah:{key}"):
        _cluster({"phase": "lab-1", "cluster": "lab"}, {key: KUBECONFIG})


def test_a_site_without_the_cluster_s_credentials_is_refused() -> None:
    import gc
    import logging

    outputs = {**site("tiny", "lab-1").outputs, "kubeconfigs": {}}
    with pytest.raises(
        pulumi.RunError, match=r"holds no kubeconfig for cluster lab; fix: run the site stack's pulumi up"
    ):
        _cluster({"phase": "lab-1", "cluster": "lab"}, site_outputs=outputs)
    # every resource that reads the kubeconfig holds the same error; the engine reports it once, the mocks leave
    # the other futures to the garbage collector, which would log each of them
    quiet = logging.getLogger("asyncio")
    was, quiet.disabled = quiet.disabled, True
    try:
        gc.collect()
    finally:
        quiet.disabled = was


def test_an_environment_the_planner_refuses_is_reported_with_its_file(tmp_path: Path) -> None:
    import shutil

    env = tmp_path / "env"
    shutil.copytree(ENVIRONMENTS["tiny"], env)
    phase = env / "phases" / "lab-1.yaml"
    phase.write_text(phase.read_text().replace("facility_budget_mw:", "facility_budget_mw: 0.000001 #"))
    with pytest.raises(pulumi.RunError, match=r"problem"):
        _site(environment=str(env), phase="lab-1")
