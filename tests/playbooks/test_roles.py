"""Role anatomy (STYLE.md) and playbook syntax, without containers."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kasbah.resources import COLLECTION, roles
from tests.conftest import ROOT, TINY

PLAYBOOKS = ROOT / "playbooks"
ROLES = sorted(p for p in roles(PLAYBOOKS).iterdir() if p.is_dir())
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
    assert sorted(used) == sorted(f"kasbah.campus.{r.name}" for r in ROLES if r.name not in helpers)
    readme = (PLAYBOOKS / COLLECTION / "README.md").read_text()
    for role in ROLES:
        assert f"`{role.name}`" in readme, f"the collection's README does not describe {role.name}"


def _role_references(doc: object) -> list[str]:
    """Every role a playbook or task file names: `roles:` entries and include_role/import_role names."""
    found: list[str] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "roles" and isinstance(value, list):
                found += [r["role"] if isinstance(r, dict) else r for r in value]
            elif key in ("ansible.builtin.include_role", "ansible.builtin.import_role") and isinstance(value, dict):
                found.append(value["name"])
            else:
                found += _role_references(value)
    elif isinstance(doc, list):
        for item in doc:
            found += _role_references(item)
    return found


def test_every_role_is_named_by_its_fully_qualified_name() -> None:
    """Playbooks and roles name roles as kasbah.campus.<role>, and every name is a role of the collection."""
    files = [*BOOKS, *(PLAYBOOKS / COLLECTION).rglob("tasks/*.yml")]
    names = {f"kasbah.campus.{r.name}" for r in ROLES}
    seen = 0
    for path in files:
        for ref in _role_references(load(path)):
            seen += 1
            assert ref in names, f"{path.relative_to(ROOT)}: role {ref!r} is not a kasbah.campus role by FQCN"
    assert seen > 60


def test_the_collection_is_kasbah_s_own_version_and_builds(tmp_path: Path) -> None:
    """galaxy.yml carries pyproject's version; `ansible-galaxy collection build` makes an artifact that installs."""
    import tomllib

    galaxy = load(PLAYBOOKS / COLLECTION / "galaxy.yml")
    assert (galaxy["namespace"], galaxy["name"]) == ("kasbah", "campus")
    assert galaxy["version"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert load(PLAYBOOKS / COLLECTION / "meta" / "runtime.yml")["requires_ansible"].startswith(">=")
    galaxy_cli = str(Path(sys.executable).parent / "ansible-galaxy")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}
    build = subprocess.run(
        [galaxy_cli, "collection", "build", str(PLAYBOOKS / COLLECTION), "--output-path", str(tmp_path)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    artifact = tmp_path / f"kasbah-campus-{galaxy['version']}.tar.gz"
    with tarfile.open(artifact) as tar:
        members = set(tar.getnames())
    assert {"MANIFEST.json", "FILES.json", "meta/runtime.yml", "plugins/filter/openpgp.py"} <= members
    assert {f"roles/{r.name}/tasks/main.yml" for r in ROLES} <= members
    assert not [m for m in members if "__pycache__" in m or m.endswith(".tar.gz")]
    install = subprocess.run(
        [galaxy_cli, "collection", "install", "--offline", "--no-deps", "-p", str(tmp_path / "installed"), str(artifact)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    assert (
        tmp_path / "installed" / COLLECTION.relative_to("collections") / "roles" / "kubelet" / "tasks" / "main.yml"
    ).is_file()


def test_the_private_role_refuses_to_run_on_its_own(tmp_path: Path) -> None:
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "roles": ["kasbah.campus.common"]}]))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)],
        capture_output=True, text=True,
        env={"ANSIBLE_COLLECTIONS_PATH": str(PLAYBOOKS / "collections"), "PATH": os.environ["PATH"],
             "HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
             "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "private to the collection" in " ".join(proc.stdout.split())


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


GPG = pytest.mark.skipif(not shutil.which("gpg"), reason="needs gpg (Debian's gnupg) as the reference reader of keys")
PKGS_K8S_IO_KEY = ROOT / "tests" / "playbooks" / "data" / "pkgs-k8s-io-release-key-2024-10-20.asc"


def _gpg(home: Path, *args: str) -> str:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args], capture_output=True, text=True, check=True
    ).stdout


def _new_key(home: Path, name: str, expiry: str, faked_time: str | None = None) -> tuple[str, str]:
    """A fresh ed25519 key (armored, fingerprint); `faked_time` makes it in the past (an expired key)."""
    home.mkdir(mode=0o700, exist_ok=True)
    faked = ["--faked-system-time", faked_time] if faked_time else []
    _gpg(home, *faked, "--passphrase", "", "--quick-gen-key", f"{name} <{name}@kasbah.test>", "ed25519", "sign", expiry)
    listed = _gpg(home, "--with-colons", "--list-keys", f"{name}@kasbah.test")
    fpr = next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:"))
    return _gpg(home, "--armor", "--export", fpr), fpr


@pytest.fixture
def gpg_home(tmp_path: Path) -> Iterator[Path]:
    """A private gpg home; its agent (gpg starts one) is stopped afterwards, not left running."""
    home = tmp_path / "gpg"
    home.mkdir(mode=0o700)
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False)


@GPG
def test_the_key_filter_reads_fingerprint_and_expiry_as_gpg_does(gpg_home: Path, tmp_path: Path) -> None:
    """common's openpgp_key filter against gpg, on the pkgs.k8s.io key of 2024 and on keys made here."""
    sys.path.insert(0, str(PLAYBOOKS / COLLECTION / "plugins" / "filter"))
    try:
        import openpgp  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    fresh, _ = _new_key(gpg_home, "fresh", "2y")
    forever, _ = _new_key(gpg_home, "forever", "never")
    for name, text in (("pkgs.k8s.io", PKGS_K8S_IO_KEY.read_text()), ("fresh", fresh), ("forever", forever)):
        path = tmp_path / f"{name}.asc"
        path.write_text(text)
        listed = _gpg(gpg_home, "--show-keys", "--with-colons", str(path))
        pub = next(line.split(":") for line in listed.splitlines() if line.startswith("pub:"))
        fpr = next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:"))
        info = openpgp.key_info(text)
        assert info["fingerprint"] == fpr, name
        expected = datetime.datetime.fromtimestamp(int(pub[6]), datetime.UTC).date().isoformat() if pub[6] else None
        assert info["expires"] == expected, name
    assert openpgp.key_info(PKGS_K8S_IO_KEY.read_text())["fingerprint"] == "DE15B14486CD377B9E876E1A234654DA9A296436"
    defaults = load(roles(PLAYBOOKS) / "kubelet" / "defaults" / "main.yml")
    assert defaults["kubelet_repository_key_fingerprint"].replace(" ", "") == "DE15B14486CD377B9E876E1A234654DA9A296436"
    with pytest.raises(openpgp.OpenPGPError, match="not an armored OpenPGP public key"):
        openpgp.key_info("hello")


@GPG
def test_a_signing_key_is_checked_by_fingerprint_and_expiry(gpg_home: Path, tmp_path: Path) -> None:
    """common's signing_key tasks, for real on this machine (nothing outside the test's directory is touched)."""
    home = gpg_home
    good, good_fpr = _new_key(home, "good", "2y")
    soon, soon_fpr = _new_key(home, "soon", "30d")
    old, old_fpr = _new_key(home, "old", "1y", faked_time="20200101T000000")
    _, other_fpr = _new_key(home, "other", "2y")
    cases = {
        "good": (good, good_fpr, 0, None),
        "spaced": (good, " ".join(good_fpr[i : i + 4] for i in range(0, 40, 4)), 0, None),
        "soon": (soon, soon_fpr, 0, "warning: the signing key in"),
        "expired": (old, old_fpr, 2, "expired on 2020-12-31, so apt refuses its repository"),
        "foreign": (good, other_fpr, 2, f"has fingerprint {good_fpr}, not the pinned {other_fpr}: it is not trusted"),
    }
    for name, (text, fingerprint, rc, says) in cases.items():
        key = tmp_path / f"{name}.asc"
        key.write_text(text)
        play = tmp_path / f"{name}.yml"
        play.write_text(yaml.safe_dump([{
            "hosts": "localhost", "gather_facts": False,
            "tasks": [{"ansible.builtin.include_role": {"name": "kasbah.campus.common", "tasks_from": "signing_key"},
                       "vars": {"_common_key_file": str(key), "_common_key_fingerprint": fingerprint,
                                "_common_key_source": "https://mirror.kasbah.test/Release.key"}}],
        }]))  # fmt: skip
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)],
            capture_output=True, text=True,
            env={"ANSIBLE_COLLECTIONS_PATH": str(PLAYBOOKS / "collections"), "PATH": os.environ["PATH"], "HOME": str(tmp_path),
                 "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
        )  # fmt: skip
        assert proc.returncode == rc, f"{name}: {proc.stdout}{proc.stderr}"
        if says:
            assert says in " ".join(proc.stdout.split()), f"{name}: {proc.stdout}"
