"""`kasbah provision` against real OpenStack Ironic and sushy-tools Redfish BMCs (tests/provisioning/lab.py).

Ironic is the one from PyPI, standalone (API and conductor in one process, SQLite, no Keystone),
with the redfish hardware type; the BMCs are sushy-tools' emulated systems, one per node of the
tiny environment, at the Plan's out-of-band addresses inside a namespace of the test's own.
Enrolment, the state machine to `available`, deployment to `active` through virtual media with
the node's configuration drive, a replaced tray, and the failures an operator meets.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kasbah.runners.ironic import targets
from tests.conftest import TINY, planned
from tests.provisioning.lab import BMC_PASSWORD, VENV, FakeSystem, Lab, lab, missing, with_bios

pytestmark = [pytest.mark.nodes, pytest.mark.skipif(missing() is not None, reason=str(missing()))]
KASBAH = str(Path(sys.executable).with_name("kasbah"))
PHASE = "lab-2"


def _systems(skip: frozenset[str] = frozenset()) -> list[FakeSystem]:
    plan = planned(TINY)[-1]
    oob = {n.name: n.oob_ip for n in plan.nodes}
    ts, _ = targets(plan)
    return [FakeSystem(t.name, t.macs, oob[t.name]) for t in ts if t.name not in skip]


def provision(lab_: Lab, *args: str, env: Path = TINY, creds: Path | None = None) -> tuple[int, dict[str, Any], str]:
    cmd = [KASBAH, "provision", PHASE, "-e", str(env), "--json", "--timeout", "180"]
    cmd += ["--bmc-credentials", str(creds or lab_.dir / "bmc.yaml"), *args]
    r = lab_.run(cmd, capture_output=True)
    assert BMC_PASSWORD not in r.stdout + r.stderr
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        doc = {}
    return r.returncode, doc, r.stderr


def by_node(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["node"]: n for n in doc["nodes"]}


def ironic(lab_: Lab, method: str, path: str, body: Any = None) -> Any:
    script = (
        "import json,sys,urllib.request\n"
        "m,p,b=sys.argv[1],sys.argv[2],sys.argv[3]\n"
        f"r=urllib.request.Request('{lab_.ironic_url}/v1'+p,method=m,data=(b.encode() if b else None),"
        "headers={'X-OpenStack-Ironic-API-Version':'1.96','Content-Type':'application/json'})\n"
        "raw=urllib.request.urlopen(r).read()\nprint(raw.decode() or 'null')\n"
    )
    got = lab_.run(
        [str(VENV / "bin" / "python"), "-c", script, method, path, json.dumps(body) if body is not None else ""],
        capture_output=True, check=True,
    )  # fmt: skip
    return json.loads(got.stdout)


def iso(lab_: Lab, tmp: Path) -> tuple[str, str]:
    """A small live ISO on the lab's HTTP server (the node image a diskless lab node boots): (url, checksum)."""
    src = tmp / "iso"
    src.mkdir(exist_ok=True)
    (src / "README").write_text("kasbah lab image\n")
    subprocess.run(
        ["genisoimage", "-quiet", "-o", str(lab_.dir / "http" / "lab.iso"), "-V", "KASBAH", str(src)], check=True
    )
    sha = hashlib.sha256((lab_.dir / "http" / "lab.iso").read_bytes()).hexdigest()
    return "http://127.0.0.1:8080/lab.iso", f"sha256:{sha}"


def deploy_iso(limit: str, url: str, checksum: str) -> tuple[str, ...]:
    """`kasbah provision` arguments that deploy the lab's ISO to the nodes of `limit`."""
    return ("--limit", limit, "--deploy", "--image-kind", "iso", "--image-url", url, "--image-checksum", checksum)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with lab(tmp_path_factory.mktemp("ironic-full"), "lab1", _systems()) as env:
        yield env


def test_enrols_every_node_to_available_and_a_second_run_changes_nothing(full: Lab) -> None:
    # two nodes moving at once: the others wait their turn (a hall's worth at once starves the conductor)
    code, doc, err = provision(full, "--in-flight", "2")
    assert code == 0, err
    nodes = by_node(doc)
    assert set(nodes) == {n.name for n in planned(TINY)[-1].nodes}
    assert all(n["state"] == "available" and n["actions"][:1] == ["enrolled"] for n in nodes.values()), nodes
    # Ironic holds what the Plan says: name, BMC address, conductor group (the hall), one port per NIC
    listed = ironic(full, "GET", "/nodes?detail=true")["nodes"]
    plan = planned(TINY)[-1]
    hw = {h.node: h for h in plan.hardware}
    for node in listed:
        want = next(n for n in plan.nodes if n.name == node["name"])
        assert node["driver_info"]["redfish_address"] == f"http://{want.oob_ip}:8000"
        assert node["driver_info"]["redfish_password"] == "******"  # stored, never shown
        assert node["conductor_group"] == "lab1"
        assert node["extra"]["kasbah_serial"] == hw[want.name].serial
        ports = ironic(full, "GET", f"/ports?node={node['uuid']}")["ports"]
        assert {p["address"] for p in ports} == {
            hw[want.name].inband_mac,
            hw[want.name].storage_mac,
            *hw[want.name].rail_macs,
        }
    again_code, again, _ = provision(full)
    assert again_code == 0
    assert all(n["actions"] == [] and n["state"] == "available" for n in again["nodes"]), again
    for log in full.dir.glob("*.log"):
        assert BMC_PASSWORD not in log.read_text(errors="replace"), f"{log.name} holds the BMC password"


def test_a_half_enrolled_node_converges(full: Lab) -> None:
    """What an interrupted run leaves (a node without its ports, not yet managed) is finished by the next."""
    provision(full)
    victim = "lab1-r01p02-n02"
    uuid = ironic(full, "GET", f"/nodes/{victim}")["uuid"]
    ironic(full, "DELETE", f"/nodes/{uuid}")
    ironic(full, "POST", "/nodes", {"name": victim, "driver": "redfish", "conductor_group": "lab1",
                                     "driver_info": {"redfish_address": "http://10.10.0.3:8000"}})  # fmt: skip
    code, doc, err = provision(full)
    assert code == 0, err
    node = by_node(doc)[victim]
    assert node["state"] == "available"
    assert any("port" in a for a in node["actions"]) and "manage" in node["actions"], node


def test_deploys_with_the_nodes_configuration_drive(full: Lab, tmp_path: Path) -> None:
    url, checksum = iso(full, tmp_path)
    code, doc, _ = provision(full, *deploy_iso("lab1-r01p03", url, checksum))
    assert code == 0, json.dumps(doc, indent=1)
    nodes = by_node(doc)
    assert set(nodes) == {"lab1-r01p03-n01", "lab1-r01p03-n02"}
    assert all(n["state"] == "active" for n in nodes.values()), nodes
    assert full.power("lab1-r01p03-n01") == "On"
    # the configuration drive Ironic built and attached: the node's name and the network file the role writes
    tree = tmp_path / "tree"
    subprocess.run([KASBAH, "render", PHASE, "-e", str(TINY), "--out", str(tree)], check=True, capture_output=True)
    rack = yaml.safe_load((tree / "provisioning" / "nodes" / "lab1-r01p03.yaml").read_text())
    for entry in rack["nodes"]:
        uuid = ironic(full, "GET", f"/nodes/{entry['name']}")["uuid"]
        drive = full.dir / "http" / "redfish" / f"configdrive-{uuid}"
        user_data = subprocess.run(
            ["isoinfo", "-R", "-i", str(drive), "-x", "/openstack/latest/user_data"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cloud = yaml.safe_load(user_data)
        assert cloud["hostname"] == entry["name"] and cloud["fqdn"] == entry["fqdn"]
        (written,) = [f for f in cloud["write_files"] if f["path"] == "/etc/netplan/60-kasbah.yaml"]
        assert written["content"] == entry["network_config"]


def test_a_replaced_tray_keeps_its_node_and_is_provisioned_again(full: Lab, tmp_path: Path) -> None:
    url, checksum = iso(full, tmp_path)
    deploy = deploy_iso("lab1-r01p03", url, checksum)
    provision(full, *deploy)
    env = tmp_path / "tiny"
    shutil.copytree(TINY, env)
    before = tmp_path / "before.json"
    before.write_text(
        subprocess.run(
            [KASBAH, "plan", PHASE, "-e", str(env), "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    manifest = env / "hardware" / "lab1-r01p03.yaml"
    text = manifest.read_text().replace("LAB0302-G0002", "RMA0302-G9002")
    for nic in ("00", "01", "02", "10", "11"):
        text = text.replace(f'"52:54:00:03:02:{nic}"', f'"52:54:00:93:02:{nic}"')
    manifest.write_text(text)
    diff = subprocess.run([KASBAH, "diff", str(before), PHASE, "-e", str(env)], capture_output=True, text=True)
    assert diff.returncode == 0, diff.stdout + diff.stderr  # stable: identity is the slot, not the tray
    assert (
        "HARDWARE REPLACED" in diff.stdout
        and "lab1-r01p03-n02: serial LAB0302-G0002 → serial RMA0302-G9002" in diff.stdout
    )
    assert "renumber" not in diff.stdout.lower()
    code, doc, _ = provision(full, *deploy, env=env)
    assert code == 0, json.dumps(doc, indent=1)
    nodes = by_node(doc)
    swapped, kept = nodes["lab1-r01p03-n02"], nodes["lab1-r01p03-n01"]
    assert swapped["replaced"] and swapped["state"] == "active", swapped
    assert "undeploying" in swapped["actions"] and "deploying" in swapped["actions"], swapped
    assert kept["actions"] == [] and not kept["replaced"]
    node = ironic(full, "GET", "/nodes/lab1-r01p03-n02")
    assert node["extra"]["kasbah_serial"] == "RMA0302-G9002"
    ports = {p["address"] for p in ironic(full, "GET", f"/ports?node={node['uuid']}")["ports"]}
    assert ports == {"52:54:00:93:02:01", "52:54:00:93:02:02", "52:54:00:93:02:10", "52:54:00:93:02:11"}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    # lab1-r01p02-n02's BMC is unreachable (a tray whose BMC never came up, or a cable in the wrong port)
    faulty = frozenset({"lab1-r01p02-n02"})
    with lab(tmp_path_factory.mktemp("ironic-faulty"), "lab1", _systems(faulty)) as env:
        yield env


def test_bad_bmcs_fail_their_nodes_only_and_a_fixed_one_converges(faulty: Lab, tmp_path: Path) -> None:
    wrong = tmp_path / "bmc.yaml"
    wrong.write_text(
        f"default: {{username: admin, password: {BMC_PASSWORD}}}\nracks:\n  lab1-r01p03: {{username: admin, password: not-it}}\n"
    )
    wrong.chmod(0o600)
    code, doc, err = provision(faulty, creds=wrong)
    assert code == 1, err
    nodes = by_node(doc)
    failed = {n for n, r in nodes.items() if not r["ok"]}
    assert failed == {"lab1-r01p02-n02", "lab1-r01p03-n01", "lab1-r01p03-n02"}, nodes
    assert all(r["state"] == "available" for n, r in nodes.items() if n not in failed)
    for name in failed:
        assert nodes[name]["state"] == "enroll" and nodes[name]["error"] and "credentials" in nodes[name]["fix"]
    human = faulty.run([KASBAH, "provision", PHASE, "-e", str(TINY), "--bmc-credentials", str(wrong), "--timeout", "120"],
                       capture_output=True)  # fmt: skip
    assert human.returncode == 1 and "lab1-r01p03-n01" in human.stdout and "fix:" in human.stdout
    assert "3 of 6 node(s) failed" in " ".join(human.stdout.split())
    # the credentials fixed: the rack's nodes converge, the dead BMC still fails alone
    code, doc, _ = provision(faulty)
    nodes = by_node(doc)
    assert code == 1
    assert {n for n, r in nodes.items() if not r["ok"]} == {"lab1-r01p02-n02"}
    assert nodes["lab1-r01p03-n01"]["state"] == "available"


def test_credentials_never_come_from_the_command_line(tmp_path: Path) -> None:
    open_file = tmp_path / "bmc.yaml"
    open_file.write_text("default: {username: admin, password: x}\n")
    open_file.chmod(0o644)
    r = subprocess.run(
        [KASBAH, "provision", PHASE, "-e", str(TINY), "--bmc-credentials", str(open_file), "--ironic", "http://127.0.0.1:9"],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if not k.startswith("KASBAH_BMC")},
    )  # fmt: skip
    assert r.returncode == 2 and "chmod 600" in r.stderr and "Traceback" not in r.stderr


def test_a_failed_deployment_is_retried_once_then_reported_and_a_fixed_image_deploys(full: Lab, tmp_path: Path) -> None:
    """A deployment that fails (the image is not on the mirror) is torn down and tried once more, then reported."""
    url, checksum = iso(full, tmp_path)
    code, doc, _ = provision(full, *deploy_iso("lab1-r01p02", url.replace("lab.iso", "missing.iso"), checksum))
    assert code == 1
    for node in by_node(doc).values():
        assert not node["ok"] and node["state"] == "deploy failed", json.dumps(node)
        # deployed, failed, torn down (which clears what to deploy: it is set again), deployed once more, failed
        assert node["actions"].count("deploy failed -> deleted") == 1, node
        assert node["actions"][node["actions"].index("deploy failed -> deleted") + 1 :].count("deploying") >= 1, node
        assert node["error"] and "second run" in node["fix"], node
    code, doc, _ = provision(full, *deploy_iso("lab1-r01p02", url, checksum))
    assert code == 0, json.dumps(doc, indent=1)
    assert all(n["state"] == "active" for n in by_node(doc).values())


PROVIDER_RUN = """
import json, sys
from kasbah.components.provisioning import RackProvisioningProvider
props = json.load(sys.stdin)
try:
    out = RackProvisioningProvider().create(props).outs
except RuntimeError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps(out))
"""


def provider_create(lab_: Lab, rack: str, image: tuple[str, str, str] | None) -> dict[str, Any]:
    """The Pulumi component's create (what `pulumi up` runs for a new rack), inside the lab's namespace."""
    from kasbah.components.provisioning import Day0, ProvisionRun

    run = ProvisionRun("http://127.0.0.1:6385", str(lab_.dir / "bmc.yaml"), image, timeout=180)
    props = Day0.of(planned(TINY)[-1], run).props(rack)
    got = lab_.run([sys.executable, "-c", PROVIDER_RUN], input=json.dumps(props), capture_output=True)
    assert got.returncode == 0, got.stderr
    assert BMC_PASSWORD not in got.stdout + got.stderr
    return json.loads(got.stdout)  # type: ignore[no-any-return]


def test_the_pulumi_component_deploys_its_rack(full: Lab, tmp_path: Path) -> None:
    url, checksum = iso(full, tmp_path)
    outs = provider_create(full, "lab1-r01p04", ("iso", url, checksum))
    assert outs["states"] == {"lab1-r01p04-n01": "active", "lab1-r01p04-n02": "active"}, outs
    assert outs["replaced"] == [] and outs["goal"] == "active"


def test_the_pulumi_component_fails_its_rack_naming_the_node_and_the_fix(faulty: Lab) -> None:
    outs = provider_create(faulty, "lab1-r01p02", None)
    assert "rack lab1-r01p02: 1 of 2 nodes not available" in outs["error"], outs
    assert "lab1-r01p02-n02 (enroll)" in outs["error"] and "fix: check the BMC" in outs["error"]
    assert ironic(faulty, "GET", "/nodes/lab1-r01p02-n01")["provision_state"] == "available"  # its neighbour carried on


def test_bios_settings_a_bmc_cannot_apply_fail_their_nodes_with_the_fix(faulty: Lab, tmp_path: Path) -> None:
    """The GPU rack profile asks for BIOS settings; sushy-tools' fake systems have no BIOS resource.

    Ironic's cleaning (the redfish BIOS interface's apply_configuration, no ramdisk) fails, is tried once
    more, then the node is reported with the rack profile's setting to check; the CPU rack is untouched.
    (The VM test applies them for real: tests/provisioning/test_vm.py.)
    """
    env = with_bios(TINY, tmp_path / "tiny", "lab-gpu", {"ProcTurboMode": "Enabled"})
    code, doc, _ = provision(faulty, "--limit", "lab1-r01p03,lab1-r01p02-n01", env=env)
    assert code == 1, json.dumps(doc, indent=1)
    nodes = by_node(doc)
    for name in ("lab1-r01p03-n01", "lab1-r01p03-n02"):
        node = nodes[name]
        assert not node["ok"] and node["state"] == "clean failed", json.dumps(node)
        assert node["actions"].count("applying BIOS settings") == 2 and "clean failed -> manage" in node["actions"]
        assert "bmc.bios" in node["fix"] and node["error"], node
        got = ironic(faulty, "GET", f"/nodes/{name}?fields=bios_interface,extra")
        assert got["bios_interface"] == "redfish" and "kasbah_bios" not in got["extra"]
    cpu = nodes["lab1-r01p02-n01"]
    assert cpu["ok"] and cpu["state"] == "available" and not any("BIOS" in a for a in cpu["actions"]), cpu
    print(nodes["lab1-r01p03-n01"]["error"])


def test_ironics_concurrency_limit_defers_deployments_never_fails_them(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Ironic rejects (503, it does not queue) what is above [conductor]max_concurrent_deploy; kasbah asks again.

    With a limit of 1, a rack of two deploys one node after the other: both active, no error, one
    `deploying` each.
    """
    limited = "max_concurrent_deploy = 1"
    with lab(tmp_path_factory.mktemp("ironic-limit"), "lab1", _systems(), conductor_extra=limited) as env:
        url, checksum = iso(env, tmp_path)
        # one call at a time: the second deployment is asked while the first one runs
        code, doc, err = provision(env, *deploy_iso("lab1-r01p04", url, checksum), "--workers", "1")
        assert code == 0, json.dumps(doc, indent=1) + err
        nodes = by_node(doc)
        assert {n: r["state"] for n, r in nodes.items()} == {"lab1-r01p04-n01": "active", "lab1-r01p04-n02": "active"}
        assert all(r["actions"].count("deploying") == 1 for r in nodes.values()), nodes
        # the limit was hit for real: Ironic's API turned a deployment away
        assert "/states/provision - 503" in (env.dir / "ironic.log").read_text()
