"""Day 0 in the stacks (Pulumi's mocks): one RackProvisioning per rack, ordered before the rack's node group.

The provider itself runs against real Ironic in tests/provisioning/test_ironic.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from kasbah.components.mocked import MockedRun, run_mocked
from kasbah.components.programs import cluster_program, site_program
from kasbah.runners.ironic import targets
from tests.conftest import TINY
from tests.stacks.conftest import planned, site, site_stack

PROVISIONING = "pulumi-python:dynamic/provisioning:RackProvisioning"
NODE_GROUP = "pulumi-python:dynamic/nodes:NodeGroup"
PASSWORD = "day0-stack-secret-77e1"
PHASE = "lab-2"


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    path = tmp_path / "bmc.yaml"
    path.write_text(f"default: {{username: admin, password: {PASSWORD}}}\n")
    path.chmod(0o600)
    return path


def _run(name: str | None, config: dict[str, Any]) -> MockedRun:
    base = {"environment": "environments/tiny", "phase": PHASE, **config}
    if name is None:
        return run_mocked(site_program, project="kasbah-site", stack="day0", config=base)
    return run_mocked(
        cluster_program,
        project="kasbah-cluster",
        stack=f"day0-{name}",
        config={**base, "cluster": name, "siteStack": site_stack("tiny")},
        stack_outputs={site_stack("tiny"): site("tiny", PHASE).outputs},
    )


def test_each_rack_is_provisioned_by_the_stack_that_configures_it_and_before_it(creds: Path, tmp_path: Path) -> None:
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDay0TestKeyOnlyForTheMockedStack admin@lab\n")
    plan = planned(TINY)[-1]
    assert plan.phase == PHASE
    wanted, _ = targets(plan)
    racks = {t.rack for t in wanted}
    pools = {r.name: r.pool for r in plan.racks}
    owner = {p.name: p.cluster for p in plan.pools}
    config = {"ironic": "http://127.0.0.1:6385", "bmcCredentials": str(creds), "deploy": "false"}
    seen: set[str] = set()
    for name in (None, *(c.name for c in plan.clusters)):
        run = _run(name, {**config, "sshKeys": [str(key)]})
        provs = {p.inputs["rack"]: p for p in run.of_type(PROVISIONING)}
        # the racks with a manifest whose pool this stack configures, each once
        assert set(provs) == {r for r in racks if owner[pools[r]] == name}, name
        seen |= set(provs)
        for rack, p in provs.items():
            assert [n["name"] for n in p.inputs["nodes"]] == sorted(t.name for t in wanted if t.rack == rack)
            assert p.inputs["goal"] == "available" and p.inputs.get("image") is None  # kasbah:deploy false
            assert p.inputs["ssh_keys"] == [key.read_text().strip()]
            group = next(g for g in run.of_type(NODE_GROUP) if g.inputs["rack"] == rack)
            assert p.urn in group.dependencies  # the rack's OS before its configuration
            assert not p.dependencies  # provisioning waits for no earlier wave
        # the password stays in its file: in no input of any resource (only the file's path is)
        assert PASSWORD not in repr([r.inputs for r in run.resources.values()])
    assert seen == racks


def test_without_ironic_the_stacks_provision_nothing() -> None:
    run = _run(None, {})
    assert run.of_type(PROVISIONING) == []
    assert all(not g.dependencies for g in run.of_type(NODE_GROUP) if g.inputs["wave"] == 0)


def test_a_changed_tray_updates_only_its_rack() -> None:
    from kasbah.components.provisioning import RackProvisioningProvider

    provider = RackProvisioningProvider()
    plan = planned(TINY)[-1]
    t = targets(plan)[0][0]
    olds = {"rack": t.rack, "nodes": [{"name": t.name, "serial": t.serial}], "ironic": "http://a:6385", "workers": 8}
    assert not provider.diff(t.rack, olds, {**olds, "ironic": "http://b:6385", "workers": 32}).changes
    moved = provider.diff(t.rack, olds, {**olds, "nodes": [{"name": t.name, "serial": "RMA-1"}]})
    assert moved.changes and not moved.replaces


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ironic": "http://127.0.0.1:6385"}, r"kasbah:bmcCredentials; fix: pulumi config set kasbah:bmcCredentials"),
        ({"ironic": "ironic.lab:6385", "bmcCredentials": "x"}, r"is not Ironic's API URL; fix:"),
        ({"ironic": "http://i:6385", "bmcCredentials": "/nowhere/bmc.yaml"}, r"cannot read the BMC credentials"),
        (
            {"ironic": "http://i:6385", "bmcCredentials": "CREDS"},
            r"site.provisioning.image is not set; fix: .*deploy false",
        ),
        (
            {"ironic": "http://i:6385", "bmcCredentials": "CREDS", "deploy": "sometimes"},
            r"kasbah:deploy must be true or false",
        ),
        (
            {"ironic": "http://i:6385", "bmcCredentials": "CREDS", "deploy": "false", "sshKeys": "id.pub"},
            r"kasbah:sshKeys must be a list of public key files",
        ),
        (
            {"ironic": "http://i:6385", "bmcCredentials": "CREDS", "deploy": "false", "sshKeys": ["CREDS"]},
            r"not an SSH public key file \(give the .pub",
        ),
    ],
)
def test_bad_day0_config_names_the_key_and_the_fix(creds: Path, config: dict[str, Any], message: str) -> None:
    resolved = {
        k: (
            str(creds) if v == "CREDS" else [str(creds) if x == "CREDS" else x for x in v] if isinstance(v, list) else v
        )
        for k, v in config.items()
    }
    with pytest.raises(pulumi.RunError, match=message):
        _run(None, resolved)


def test_credentials_readable_by_others_are_refused(creds: Path) -> None:
    creds.chmod(0o644)
    with pytest.raises(pulumi.RunError, match=r"readable by others; fix: chmod 600"):
        _run(None, {"ironic": "http://i:6385", "bmcCredentials": str(creds), "deploy": "false"})


def test_bios_settings_travel_as_inputs_and_only_where_declared() -> None:
    """A rack with BIOS settings carries them to the provider; one without has no key (its inputs stay as before)."""
    import dataclasses
    import json

    from kasbah.components.provisioning import Day0, ProvisionRun, _node, _target

    plan = planned(TINY)[-1]
    (bare, *_) = [t for t in targets(plan)[0] if t.rack == "lab1-r01p03"]
    assert "bios" not in _node(bare)
    declared = dataclasses.replace(bare, bios=(("ProcTurboMode", "Enabled"), ("QuietBoot", False)))
    wire = json.loads(json.dumps(_node(declared)))  # what Pulumi hands the provider back
    assert wire["bios"] == [["ProcTurboMode", "Enabled"], ["QuietBoot", False]]
    assert _target(wire) == declared and _target(json.loads(json.dumps(_node(bare)))) == bare
    props = Day0.of(plan, ProvisionRun("http://127.0.0.1:6385", "/nonexistent", None)).props("lab1-r01p03")
    assert all("bios" not in n for n in props["nodes"])
