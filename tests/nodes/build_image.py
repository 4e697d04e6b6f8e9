"""Build the Debian 12 node image and the package mirror the playbook tests run against.

Nothing here reaches a registry: the image is `mmdebstrap` of Debian 12 (bookworm) from Debian's
own mirror, loaded with `docker import`; the mirror is a flat apt repository of every Debian
package the roles install (their `*_debian_packages` defaults) with its dependencies, bind-mounted
read-only into the containers, which run without networks. That is also how an air-gapped site
serves its nodes: the roles' repositories are variables pointing at a local mirror.

    python tests/nodes/build_image.py            # build if the inputs changed, print the image tag
    python tests/nodes/build_image.py --force    # rebuild

The tag carries a digest of the inputs (package lists, suite), so a changed role rebuilds it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from kasbah.resources import roles

ROOT = Path(__file__).resolve().parents[2]
ROLES = roles(ROOT / "playbooks")
SUITE = "bookworm"
DEBIAN = os.environ.get("KASBAH_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What a node has before Ansible first reaches it: an init system, Python, python3-apt and python3-debian
# (the apt and deb822_repository modules import them; a node image or PXE install provides them)
BASE_PACKAGES = ("python3", "python3-apt", "python3-debian", "systemd", "systemd-sysv", "dbus", "ca-certificates")
CACHE = Path(os.environ.get("KASBAH_NODE_CACHE", Path.home() / ".cache" / "kasbah" / "nodes"))
REPOSITORY = "kasbah-test/debian12-node"


def role_packages() -> list[str]:
    """Every `<role>_debian_packages` default of every role (the distribution packages the roles install)."""
    found: set[str] = set()
    for defaults in sorted(ROLES.glob("*/defaults/main.yml")):
        data = yaml.safe_load(defaults.read_text()) or {}
        for key, value in data.items():
            if key.endswith("_debian_packages"):
                found.update(value)
    return sorted(found)


def digest(packages: list[str]) -> str:
    text = json.dumps({"suite": SUITE, "base": BASE_PACKAGES, "mirror": packages, "format": 1})
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def mirror_dir(tag: str) -> Path:
    return CACHE / f"mirror-{tag}"


def image_tag(tag: str) -> str:
    return f"{REPOSITORY}:{tag}"


def _run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def build_mirror(packages: list[str], dest: Path) -> None:
    """A flat apt repository holding `packages` and everything they depend on."""
    with tempfile.TemporaryDirectory(prefix="kasbah-mirror-") as tmp:
        chroot = Path(tmp) / "root"
        _run(
            [
                "mmdebstrap",
                "--variant=minbase",
                f"--include={','.join((*BASE_PACKAGES, *packages))}",
                "--skip=cleanup/apt/cache",
                SUITE,
                str(chroot),
                DEBIAN,
            ]
        )
        staging = Path(tmp) / "mirror"
        staging.mkdir()
        for deb in (chroot / "var/cache/apt/archives").glob("*.deb"):
            shutil.copy2(deb, staging / deb.name)
        index = subprocess.run(["apt-ftparchive", "packages", "."], cwd=staging, check=True, capture_output=True).stdout
        (staging / "Packages").write_bytes(index)
        release = subprocess.run(["apt-ftparchive", "release", "."], cwd=staging, check=True, capture_output=True)
        (staging / "Release").write_bytes(release.stdout)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(staging), dest)


def build_image(tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix="kasbah-image-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        _run(
            [
                "mmdebstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                # the node's own sources are the roles' business; keep the image free of any
                "--customize-hook=rm -f $1/etc/apt/sources.list",
                SUITE,
                str(tarball),
                DEBIAN,
            ]
        )
        _run(["docker", "import", "--change", 'CMD ["/sbin/init"]', str(tarball), image_tag(tag)])


def image_exists(tag: str) -> bool:
    probe = subprocess.run(["docker", "image", "inspect", image_tag(tag)], capture_output=True)
    return probe.returncode == 0


def ensure(force: bool = False) -> tuple[str, Path]:
    """Build what is missing; return the image tag and the mirror directory."""
    packages = role_packages()
    tag = digest(packages)
    mirror = mirror_dir(tag)
    if force or not (mirror / "Packages").exists():
        build_mirror(packages, mirror)
    if force or not image_exists(tag):
        build_image(tag)
    return image_tag(tag), mirror


def current() -> tuple[str, Path]:
    """The tag and mirror the current roles need (built or not)."""
    tag = digest(role_packages())
    return image_tag(tag), mirror_dir(tag)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild the mirror and the image")
    args = parser.parse_args()
    tag, mirror = ensure(args.force)
    print(f"{tag} {mirror}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
