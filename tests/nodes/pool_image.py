"""Build a pool image of a rendered tree on a node container, capture it reproducibly, load it into Docker.

The build host is a container of the plain node image (build_image.py) with the package mirror
mounted, the pool's variables (kasbah.runners.images.build_vars) and the test fleet's overlay
(repositories on the mirror); `playbooks/image.yml --tags image` runs on it, then its file system
(`docker export`) goes through kasbah.runners.images.capture: the tar's sha256 is the image's digest.
The captured tar is imported as `kasbah-test/pool-<image>:<digest 12>`, which fleet.up boots.

    python tests/nodes/pool_image.py TREE IMAGE [--out DIR]   # print the tag, digest and tar
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kasbah.runners import images  # noqa: E402
from tests.nodes import build_image, fleet  # noqa: E402

PLAYBOOKS = ROOT / "playbooks"
ANSIBLE = str(Path(sys.executable).parent / "ansible-playbook")
# what the lab's containers cannot run (no vendor repositories, no API server), as in the playbook tests
SKIP_TAGS = "vendor,cluster"
BUILD_HOST = "image-build"


@dataclass(frozen=True)
class Built:
    name: str
    tag: str  # the Docker image the fleet boots
    digest: str  # sha256 of the captured tar
    recipe: str
    tar: Path
    build_seconds: float  # wall time of the roles' run on the build host


def build(tree: Path, name: str, out: Path, prefix: str | None = None) -> Built:
    out.mkdir(parents=True, exist_ok=True)
    base, _ = build_image.ensure()
    record = images.image_record(tree, name)
    base_id = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", base], check=True, capture_output=True, text=True
    ).stdout.strip()
    recipe = images.recipe_digest(record, PLAYBOOKS, base_id)
    prefix = prefix or f"kasbah-image-{os.getpid()}"
    work = out / f"build-{name}"
    started = fleet.up(tree, prefix, work, hosts=[BUILD_HOST])
    try:
        inventory = yaml.safe_load(started.overlay.read_text())
        host = inventory["all"]["hosts"][BUILD_HOST]
        host.update(images.build_vars(tree, name))
        host["kasbah_image_recipe"] = recipe
        path = work / "build.yml"
        path.write_text("---\n" + yaml.safe_dump(inventory, sort_keys=False))
        env = {**os.environ, "ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"), "ANSIBLE_CACHE_PLUGIN": "memory"}
        begin = time.perf_counter()
        proc = subprocess.run(
            [ANSIBLE, "-i", str(path), str(PLAYBOOKS / "image.yml"), "--tags", "image", "--skip-tags", SKIP_TAGS,
             # the lab's GPU nodes are containers without GPUs: build what they detect, as their full pass does
             "--extra-vars", "common_image_hardware=detected"],
            env=env, cwd=PLAYBOOKS, capture_output=True, text=True,
        )  # fmt: skip
        seconds = time.perf_counter() - begin
        if proc.returncode != 0:
            raise RuntimeError(f"image build of {name} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        container = started.hosts[BUILD_HOST]
        # the roles are done: stop it at once (systemd ignores docker stop's SIGTERM; nothing it would write is kept)
        subprocess.run(["docker", "kill", container], check=True, capture_output=True)
        tar = out / f"{name}.tar"
        export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
        assert export.stdout is not None
        digest = images.capture(export.stdout, tar)
        if export.wait() != 0:
            raise RuntimeError(f"docker export of {container} failed")
    finally:
        fleet.down(prefix)
    tag = f"kasbah-test/pool-{name}:{digest[:12]}"
    subprocess.run(
        ["docker", "import", "--change", 'CMD ["/sbin/init"]', str(tar), tag], check=True, capture_output=True
    )
    (out / f"{name}.json").write_text(
        json.dumps({**record, "sha256": digest, "recipe": recipe, "base": base_id, "tag": tag}, indent=1) + "\n"
    )
    return Built(name, tag, digest, recipe, tar, seconds)


def node_images(tree: Path) -> dict[str, str]:
    """node -> the image it boots, as the tree's Day-0 node records say (provisioning/nodes/<rack>.yaml)."""
    return {
        node["name"]: node["image"]
        for rack in sorted((tree / "provisioning" / "nodes").glob("*.yaml"))
        for node in yaml.safe_load(rack.read_text())["nodes"]
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("image")
    parser.add_argument("--out", type=Path, default=Path("/tmp/kasbah-images"))
    args = parser.parse_args()
    built = build(args.tree, args.image, args.out)
    print(f"{built.tag} sha256:{built.digest} {built.tar} ({built.build_seconds:.0f} s of roles)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
