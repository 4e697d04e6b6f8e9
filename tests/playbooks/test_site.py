"""The site playbook for real on Debian 12 containers: converge, idempotence, check mode, failures."""

from __future__ import annotations

import json

import pytest

from tests.playbooks.conftest import CHECK_ONLY, UNREACHABLE_TAGS, Lab

pytestmark = pytest.mark.nodes

CONTROL_PLANE = "lab1-r01p02-n01"
GPU_NODE = "lab1-r01p03-n01"


def test_site_converges_every_node(converged: Lab) -> None:
    run = converged.runs["converge"]
    hosts = run.hosts()
    assert set(hosts) == set(converged.containers), run.output
    assert not run.failures(), run.output
    assert all(r["status"] in ("ok", "changed") for r in hosts.values())
    # the first run did the work: every node changed
    assert set(run.changed()) == set(converged.containers)


def test_second_run_changes_nothing(converged: Lab) -> None:
    again = converged.runs["again"]
    assert again.code == 0, again.output
    assert again.changed() == {}, f"not idempotent: {json.dumps(again.changed(), indent=1)}"


def test_nodes_hold_the_configuration(converged: Lab) -> None:
    sources = converged.sh(CONTROL_PLANE, "cat /etc/apt/sources.list.d/*.sources; ls /etc/apt/sources.list 2>&1")
    assert "URIs: file:/srv/kasbah-mirror" in sources.stdout
    assert "No such file" in sources.stdout  # only managed sources remain
    sshd = converged.sh(CONTROL_PLANE, "sshd -T | grep -E '^(passwordauthentication|permitrootlogin) '")
    assert "passwordauthentication no" in sshd.stdout and "permitrootlogin without-password" in sshd.stdout
    active = converged.sh(CONTROL_PLANE, "systemctl is-active ssh")
    assert active.stdout.strip() == "active"
    sysctl = converged.sh(GPU_NODE, "cat /etc/sysctl.d/60-kasbah.conf")
    assert "kernel.numa_balancing = 0" in sysctl.stdout


def test_check_mode_rehearses_gpu_and_vendor_tasks(converged: Lab) -> None:
    """Everything, vendor repositories and GPU tasks included, in check mode: nothing fails."""
    run = converged.configure("rehearsal", "--check", "-x", "common_assume_hardware=true")
    assert run.code == 0, run.output
    assert not run.failures()
    notices = [line for line in run.output.splitlines() if line.startswith("check-only:")]
    CHECK_ONLY.extend(notices)
    assert notices, "the rehearsal reported no check-only packages: the vendor repositories were not exercised"


def test_rehearsal_is_refused_outside_check_mode(lab: Lab) -> None:
    run = lab.configure(
        "refused", "--tags", "os_baseline", "-x", "common_assume_hardware=true", "--limit", CONTROL_PLANE
    )
    assert run.code == 1
    assert any("--check" in f["message"] for fs in run.failures().values() for f in fs), run.output


def test_a_failed_host_does_not_stop_the_others(converged: Lab) -> None:
    down = CONTROL_PLANE
    container = converged.containers[down]
    import subprocess

    subprocess.run(["docker", "pause", container], check=True, capture_output=True)
    try:
        run = converged.configure("one-down", "--skip-tags", UNREACHABLE_TAGS, "--tags", "os_baseline", "--forks", "4")
    finally:
        subprocess.run(["docker", "unpause", container], check=True, capture_output=True)
    assert run.code == 1
    hosts = run.hosts()
    assert hosts[down]["status"] in ("failed", "unreachable")
    healthy = {h: r["status"] for h, r in hosts.items() if h != down}
    assert healthy and all(s == "ok" for s in healthy.values()), run.output
    assert down in run.output  # the summary names the host


def test_node_network_writes_what_cloud_init_writes(converged: Lab) -> None:
    """The node_network role's file is, byte for byte, the network-config the tree gives Ironic's config drive."""
    import yaml

    checked = 0
    for host in converged.containers:
        rack = host.rsplit("-", 1)[0]
        doc = yaml.safe_load((converged.tree / "provisioning" / "nodes" / f"{rack}.yaml").read_text())
        (entry,) = [n for n in doc["nodes"] if n["name"] == host]
        on_node = converged.sh(host, "cat /etc/netplan/60-kasbah.yaml; stat -c %a /etc/netplan/60-kasbah.yaml")
        text, mode = on_node.stdout.rsplit("\n", 2)[0] + "\n", on_node.stdout.rsplit("\n", 2)[1]
        assert text == entry["network_config"], host
        assert mode == "600"
        checked += 1
    assert checked == len(converged.containers)
    # netplan itself read every file (the role runs `netplan generate`): the networkd units it wrote name the rails
    units = converged.sh(GPU_NODE, "ls /run/systemd/network/")
    assert "10-netplan-rail0.network" in units.stdout, units.stdout


def _first_seen(artifacts: object) -> list[str]:
    """Hosts in the order the run first reached them (ansible-runner's job events, by their counter)."""
    from pathlib import Path

    events = []
    for path in Path(str(artifacts)).glob("*/artifacts/run/job_events/*.json"):
        doc = json.loads(path.read_text())
        host = (doc.get("event_data") or {}).get("host")
        if host and doc.get("event") == "runner_on_start":
            events.append((doc["counter"], host))
    order: list[str] = []
    for _, host in sorted(events):
        if host not in order:
            order.append(host)
    return order


def test_an_upgrade_runs_the_control_plane_first_and_stops_when_it_fails(converged: Lab) -> None:
    """upgrade.yml's order on the fleet: the control-plane host, then the workers' rack; a failed control plane stops it."""
    import subprocess

    workers = [h for h in converged.containers if h.startswith("lab1-r01p03-")]
    only = ("--skip-tags", UNREACHABLE_TAGS, "--tags", "os_baseline")  # the orchestration, not the whole stack
    run = converged.configure("upgrade", "-p", "upgrade", *only)
    assert run.code == 0, run.output
    order = _first_seen(converged.work / "runs" / "upgrade")
    assert order[0] == CONTROL_PLANE and set(order[1:]) == set(workers), order  # the management node is no worker
    # the control-plane host fails: no worker is touched
    container = converged.containers[CONTROL_PLANE]
    subprocess.run(["docker", "pause", container], check=True, capture_output=True)
    try:
        stopped = converged.configure("upgrade-stopped", "-p", "upgrade", *only)
    finally:
        subprocess.run(["docker", "unpause", container], check=True, capture_output=True)
    assert stopped.code == 1
    reached = _first_seen(converged.work / "runs" / "upgrade-stopped")
    assert reached == [CONTROL_PLANE], reached
