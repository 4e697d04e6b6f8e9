"""Role anatomy (STYLE.md) and playbook syntax, without containers."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, TINY

PLAYBOOKS = ROOT / "playbooks"
ROLES = sorted(p for p in (PLAYBOOKS / "roles").iterdir() if p.is_dir())
BOOKS = sorted(PLAYBOOKS.glob("*.yml"))
MARKER = "# {{ ansible_managed }}"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) or {}


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


@pytest.mark.parametrize("role", ROLES, ids=ids(ROLES))
def test_role_has_the_anatomy(role: Path) -> None:
    for part in ("meta/main.yml", "meta/argument_specs.yml", "tasks/main.yml"):
        assert (role / part).is_file(), f"{role.name}: {part} is missing"
    meta = load(role / "meta/main.yml")["galaxy_info"]
    for key in ("author", "description", "license", "min_ansible_version", "platforms"):
        assert meta.get(key), f"{role.name}: meta/main.yml galaxy_info.{key} is missing"


@pytest.mark.parametrize("role", ROLES, ids=ids(ROLES))
def test_defaults_and_argument_specs_name_the_same_inputs(role: Path) -> None:
    defaults = load(role / "defaults/main.yml") if (role / "defaults/main.yml").exists() else {}
    spec = load(role / "meta/argument_specs.yml")["argument_specs"]["main"].get("options") or {}
    assert set(defaults) == set(spec), (
        f"{role.name}: only in defaults {sorted(set(defaults) - set(spec))}, "
        f"only in argument_specs {sorted(set(spec) - set(defaults))}"
    )
    for name, value in defaults.items():
        option = spec[name]
        assert option.get("description"), f"{role.name}: {name} has no description"
        assert "type" in option, f"{role.name}: {name} has no type"
        assert option.get("default") == value, (
            f"{role.name}: {name} defaults to {value!r}, its spec says {option.get('default')!r}"
        )
        if "choices" in option:
            assert value in option["choices"], f"{role.name}: {name} default {value!r} is not among its choices"


@pytest.mark.parametrize("role", ROLES, ids=ids(ROLES))
def test_variables_carry_the_role_prefix(role: Path) -> None:
    defaults = load(role / "defaults/main.yml") if (role / "defaults/main.yml").exists() else {}
    private = load(role / "vars/main.yml") if (role / "vars/main.yml").exists() else {}
    assert all(k.startswith(f"{role.name}_") for k in defaults), f"{role.name}: inputs must start with {role.name}_"
    assert all(k.startswith(f"_{role.name}_") for k in private), (
        f"{role.name}: private values must start with _{role.name}_"
    )


@pytest.mark.parametrize("role", ROLES, ids=ids(ROLES))
def test_templates_start_with_the_managed_marker(role: Path) -> None:
    for template in (role / "templates").rglob("*") if (role / "templates").is_dir() else ():
        if template.is_file():
            assert template.suffix == ".j2", f"{template}: templates are named after their file plus .j2"
            first = template.read_text().splitlines()[0]
            assert MARKER in first or (first.startswith("#!") and MARKER in template.read_text().splitlines()[1]), (
                f"{template}: the first line (after a shebang) must carry {MARKER}"
            )


def test_site_runs_every_role_and_the_readme_lists_them() -> None:
    site = load(PLAYBOOKS / "site.yml")[0]
    used = [r["role"] for r in site["roles"]]
    helpers = {"common", "node_maintenance"}
    assert sorted(used) == sorted(r.name for r in ROLES if r.name not in helpers)
    readme = (PLAYBOOKS / "README.md").read_text()
    for role in ROLES:
        assert f"`{role.name}`" in readme, f"playbooks/README.md does not describe {role.name}"


@pytest.mark.parametrize("book", BOOKS, ids=ids(BOOKS))
def test_playbook_syntax(book: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    subprocess.run(
        [sys.executable, "-m", "kasbah.cli", "render", "lab-1", "-e", str(TINY), "--out", str(tree)],
        check=True,
        capture_output=True,
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "--syntax-check",
            "-i",
            str(tree / "inventory" / "all" / "slice-0001.json"),
            book.name,
        ],
        cwd=PLAYBOOKS,
        capture_output=True,
        text=True,
        env={"ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(not shutil.which("gpg"), reason="needs gpg (Debian's gnupg) to read the pinned key")
def test_the_pinned_kubernetes_key_expires_when_the_role_says(tmp_path: Path) -> None:
    """The role states the pkgs.k8s.io key's expiry (its preflight warns and refuses by it): the key agrees."""
    values = yaml.safe_load((ROOT / "playbooks/roles/kubelet/vars/main.yml").read_text())
    key = tmp_path / "key.asc"
    key.write_text(values["_kubelet_pkgs_k8s_io_key"])
    listed = subprocess.run(
        ["gpg", "--homedir", str(tmp_path), "--show-keys", "--with-colons", str(key)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (pub,) = [line.split(":") for line in listed.splitlines() if line.startswith("pub:")]
    assert pub[4] == "234654DA9A296436"  # the fingerprint's key id, the same for every minor
    expires = datetime.datetime.fromtimestamp(int(pub[6]), datetime.UTC).date()
    assert expires.isoformat() == values["_kubelet_pkgs_k8s_io_key_expires"]
