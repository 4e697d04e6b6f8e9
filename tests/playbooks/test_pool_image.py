"""Pool images for real: built from the roles on a node container, reproducible, booted by the fleet, brought into
service by the lean pass (playbooks/node.yml), after which the full pass finds nothing to change."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.playbooks.conftest import UNREACHABLE_TAGS, Lab, Run, render_lab, require_docker

pytestmark = pytest.mark.nodes


@dataclass
class Imaged:
    lab: Lab
    built: dict[str, object]  # image name -> pool_image.Built
    again: object  # the first image built a second time
    pools: dict[str, str]  # host -> image name
    lean: Run
    full: Run


@pytest.fixture(scope="module")
def imaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imaged]:
    require_docker()
    from tests.nodes import fleet, pool_image

    work = tmp_path_factory.mktemp("imaged")
    tree = render_lab(work)
    manifest = json.loads((tree / "provisioning" / "images.json").read_text())
    names = [i["name"] for i in manifest["images"]]
    built = {n: pool_image.build(tree, n, work / "images") for n in names}
    again = pool_image.build(tree, names[0], work / "again")
    pools = pool_image.node_images(tree)
    prefix = f"kasbah-imaged-{os.getpid()}"
    started = fleet.up(tree, prefix, work, images={h: built[i].tag for h, i in pools.items()})  # type: ignore[attr-defined]
    try:
        lab = Lab(tree, started.overlay, started.hosts, work)
        lean = lab.configure("lean", "--playbook", "node", "--skip-tags", UNREACHABLE_TAGS)
        full = lab.configure("full-after-lean", "--skip-tags", UNREACHABLE_TAGS)
        yield Imaged(lab, built, again, pools, lean, full)
    finally:
        fleet.down(prefix)
        for b in [*built.values(), again]:
            subprocess.run(["docker", "image", "rm", "--force", b.tag], capture_output=True)  # type: ignore[attr-defined]


def _members(tar: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tar) as t:
        return {m.name.rstrip("/"): m for m in t.getmembers()}


def test_the_same_inputs_give_the_same_image(imaged: Imaged) -> None:
    first = imaged.built[imaged.again.name]  # type: ignore[attr-defined]
    assert imaged.again.digest == first.digest  # type: ignore[attr-defined]
    assert imaged.again.tar.read_bytes() == first.tar.read_bytes()  # type: ignore[attr-defined]
    assert imaged.again.recipe == first.recipe  # type: ignore[attr-defined]


def test_images_differ_by_pool_and_hold_no_node(imaged: Imaged) -> None:
    digests = {b.digest for b in imaged.built.values()}  # type: ignore[attr-defined]
    assert len(digests) == len(imaged.built) >= 2
    for name, b in imaged.built.items():
        members = _members(b.tar)  # type: ignore[attr-defined]
        assert not [m for m in members if m.startswith("etc/ssh/ssh_host_")]
        assert members["etc/machine-id"].size == 0
        assert not [m for m in members if m.startswith(("var/log/", "tmp/")) or "__pycache__" in m]
        assert [m for m in members if m.startswith("var/lib/apt/lists/") and m.endswith("_Packages")]
        with tarfile.open(b.tar) as t:  # type: ignore[attr-defined]
            record = json.load(io.BytesIO(t.extractfile("etc/kasbah/image.json").read()))  # type: ignore[union-attr]
            assert record == {"image": name, "recipe": b.recipe}  # type: ignore[attr-defined]
            # the roles' pool-wide work is in it: the managed package source and the baseline's files
            assert "etc/apt/sources.list.d/kasbah-mirror.sources" in members
            assert "etc/sysctl.d/60-kasbah.conf" in members
            # and none of a node's: no interfaces file, no firewall rules (both the lean pass's)
            assert not [m for m in members if m.startswith("etc/netplan/")]
        times = {m.mtime for m in members.values()}
        assert max(times) <= 1767225600


def test_the_lean_pass_brings_image_nodes_into_service(imaged: Imaged) -> None:
    run = imaged.lean
    assert run.code == 0, run.output
    assert not run.failures()
    hosts = run.hosts()
    assert set(hosts) == set(imaged.pools)
    tasks = {h: r["ok"] + r["skipped"] for h, r in hosts.items()}
    # the lean pass is a fraction of the full one (whose task counts the full run after it reports)
    full = {h: r["ok"] + r["skipped"] for h, r in imaged.full.hosts().items()}
    for h in hosts:
        assert tasks[h] * 2.5 < full[h], (tasks, full)
    # what it did is what makes each node itself: host keys, interfaces, firewall
    for h in hosts:
        keys = imaged.lab.sh(h, "ls /etc/ssh/ssh_host_ed25519_key /etc/nftables.conf 2>&1; cat /etc/machine-id")
        assert "No such file" not in keys.stdout, keys.stdout
        assert len(keys.stdout.splitlines()[-1].strip()) == 32


def test_the_full_pass_after_the_lean_one_changes_nothing(imaged: Imaged) -> None:
    """image + lean pass = full pass: the roles on an image find everything in place."""
    run = imaged.full
    assert run.code == 0, run.output
    assert run.changed() == {}, json.dumps(run.changed(), indent=1)


def test_a_node_on_another_image_is_refused(imaged: Imaged) -> None:
    host = next(h for h in imaged.pools)
    lab = imaged.lab
    saved = lab.sh(host, "cat /etc/kasbah/image.json").stdout
    lab.sh(host, 'echo \'{"image": "cpu-0000000000"}\' > /etc/kasbah/image.json')
    try:
        run = lab.configure("wrong-image", "--playbook", "node", "--skip-tags", UNREACHABLE_TAGS, "--limit", host)
    finally:
        lab.sh(host, f"cat > /etc/kasbah/image.json <<'EOF'\n{saved}EOF")
    assert run.code != 0
    messages = [f["message"] for fs in run.failures().values() for f in fs]
    assert any("booted cpu-0000000000" in m and imaged.pools[host] in m for m in messages), messages
