"""Bad role inputs stop at preflight with a message that says what to set (ansible-playbook on localhost)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kasbah.planning.host_flows import FLOWS as HOST_FLOWS
from kasbah.planning.host_flows import as_dicts
from tests.playbooks.test_nvidia_roles import DEBIAN12_X86, ROLES, play, run, write

FLOWS = {
    "kasbah_host_flows": as_dicts(HOST_FLOWS),
    "kasbah_networks": {"admin": ["10.72.0.0/24"], "inband": ["10.0.0.0/16"]},
}
NFS = {"path": "/data", "src": "nfs.example:/data", "fstype": "nfs4", "opts": ""}


@pytest.mark.parametrize(
    ("role", "good", "bad", "message"),
    [
        (
            "os_baseline",
            {"os_baseline_chrony_servers": ["10.72.1.1"]},
            {"os_baseline_chrony_servers": []},
            "set os_baseline_chrony_servers to the site's time servers",
        ),
        (
            "host_firewall",
            FLOWS,
            {**FLOWS, "kasbah_networks": {"admin": [], "inband": ["10.0.0.0/16"]}},
            "kasbah_networks.admin is empty",
        ),
        (
            "storage_client",
            {"storage_client_mounts": [NFS]},
            {"storage_client_mounts": [{**NFS, "path": "data"}]},
            "mount paths must be absolute: data",
        ),
        (
            "storage_client",
            {"storage_client_mounts": [NFS]},
            {"storage_client_mounts": [NFS, NFS]},
            "mount paths appear more than once: /data",
        ),
    ],
)
def test_preflight_refuses_bad_input_and_says_what_to_set(
    tmp_path: Path, role: str, good: dict[str, Any], bad: dict[str, Any], message: str
) -> None:
    proc = run(
        tmp_path,
        # as facts: the play loads the role's defaults as vars_files, which outrank inventory variables
        {"good": {**DEBIAN12_X86, "inputs": good}, "bad": {**DEBIAN12_X86, "inputs": bad}},
        [
            play(
                role,
                [
                    {
                        "name": "Set the inputs",
                        "ansible.builtin.set_fact": {"{{ item.key }}": "{{ item.value }}"},
                        "loop": "{{ inputs | dict2items }}",
                    },
                    {"name": "Preflight", "ansible.builtin.include_tasks": str(ROLES / role / "tasks/preflight.yml")},
                    write("passed", "yes"),
                ],
            )
        ],
    )
    assert proc.returncode != 0
    assert (tmp_path / "good.passed").exists(), proc.stdout
    assert not (tmp_path / "bad.passed").exists()
    assert message in " ".join(proc.stdout.split()), proc.stdout
