"""kasbah.runners.images without a build host: the capture's reproducibility rules and the build variables."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from kasbah.rendering.phase import render_plans
from kasbah.runners import images
from tests.conftest import TINY, planned

EPOCH = 1767225600


def _stream(entries: list[tuple[str, str, bytes, int]], xattr: bool = False) -> io.BytesIO:
    """A file system tar as `docker export` gives one: (name, type, data, mtime); type file|dir|link:<target>."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, data, mtime in entries:
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif kind.startswith("link:"):
                info.type = tarfile.LNKTYPE
                info.linkname = kind[5:]
                t.addfile(info)
            else:
                info.size = len(data)
                if xattr and name == "usr/bin/ping":
                    info.pax_headers = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02", "atime": "123.5"}
                t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


ENTRIES = [
    ("etc", "dir", b"", 10),
    ("etc/machine-id", "file", b"0123456789abcdef0123456789abcdef\n", EPOCH + 500),
    ("etc/ssh", "dir", b"", 10),
    ("etc/ssh/ssh_host_ed25519_key", "file", b"secret", EPOCH + 500),
    ("etc/ssh/sshd_config", "file", b"Port 22\n", 10),
    ("etc/shadow", "file", b"root:*:20420:0:99999:7:::\n_chrony:!:20431::::::\n", EPOCH + 9),
    ("usr", "dir", b"", 10),
    ("usr/bin", "dir", b"", 10),
    ("usr/bin/zz-python3", "file", b"ELF", 5),
    ("usr/bin/aa-python", "link:usr/bin/zz-python3", b"", 5),
    ("usr/bin/ping", "file", b"ELF2", 7),
    ("usr/lib/python3/x/__pycache__/m.cpython-311.pyc", "file", b"pyc", EPOCH + 3),
    ("var", "dir", b"", 10),
    ("var/log", "dir", b"", 10),
    ("var/log/dpkg.log", "file", b"installed at " + str(EPOCH + 77).encode(), EPOCH + 77),
    ("var/lib/apt/lists/deb_Packages", "file", b"index", EPOCH + 1),
    ("etc/kasbah/image.json", "file", b'{"image": "cpu-0123456789"}\n', EPOCH + 1000),
]


def _capture(tmp_path: Path, entries: list[tuple[str, str, bytes, int]], name: str) -> tuple[str, Path]:
    out = tmp_path / f"{name}.tar"
    return images.capture(_stream(entries, xattr=True), out, epoch=EPOCH), out


def test_the_same_file_system_gives_the_same_bytes_whatever_the_order_and_times(tmp_path: Path) -> None:
    first, a = _capture(tmp_path, ENTRIES, "a")
    # another build: other order, later run times, another host's identity and logs
    shuffled = [
        (n, k, (b"fedcba9876543210fedcba9876543210\n" if n == "etc/machine-id" else d), m + 3600 if m > EPOCH else m)
        for n, k, d, m in reversed(ENTRIES)
    ]
    second, b = _capture(tmp_path, shuffled, "b")
    assert first == second
    assert a.read_bytes() == b.read_bytes()
    assert (a.stat().st_mode & 0o777) == 0o644


def test_what_makes_a_host_itself_and_run_leftovers_are_left_out(tmp_path: Path) -> None:
    _, out = _capture(tmp_path, ENTRIES, "a")
    with tarfile.open(out) as t:
        members = {m.name.rstrip("/"): m for m in t.getmembers()}
        names = list(members)
        assert names == sorted(names)
        assert "etc/ssh/ssh_host_ed25519_key" not in members
        assert "var/log" in members and "var/log/dpkg.log" not in members  # the directory stays, empty
        assert not [n for n in names if "__pycache__" in n]
        assert "var/lib/apt/lists/deb_Packages" in members  # the mirror's indexes: later installs read them
        assert members["etc/machine-id"].size == 0
        assert all(m.mtime <= EPOCH for m in members.values())
        assert members["usr/bin/ping"].pax_headers.get("SCHILY.xattr.security.capability") == "\x01\x00\x00\x02"
        assert "atime" not in members["usr/bin/ping"].pax_headers
        # the hard link group's data sits on the first name in order, the other names link to it
        assert members["usr/bin/aa-python"].isreg() and members["usr/bin/zz-python3"].islnk()
        assert members["usr/bin/zz-python3"].linkname == "usr/bin/aa-python"
        assert t.extractfile("usr/bin/aa-python").read() == b"ELF"  # type: ignore[union-attr]
        shadow = t.extractfile("etc/shadow").read().decode()  # type: ignore[union-attr]
        assert shadow.splitlines() == [f"root:*:{EPOCH // 86400}:0:99999:7:::", f"_chrony:!:{EPOCH // 86400}::::::"]
        # the file system round-trips through tar extraction
        t.extractall(tmp_path / "root", filter="tar")
    assert (tmp_path / "root" / "usr/bin/zz-python3").read_bytes() == b"ELF"


def test_a_failed_capture_leaves_the_previous_image(tmp_path: Path) -> None:
    _, out = _capture(tmp_path, ENTRIES, "a")
    good = out.read_bytes()
    broken = io.BytesIO(_stream(ENTRIES).getvalue()[:3000])
    with pytest.raises(tarfile.TarError):
        images.capture(broken, out, epoch=EPOCH)
    assert out.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    rendered = render_plans(list(planned(TINY)[:1]), "tiny")
    for rel, data in rendered.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_a_build_host_gets_its_pools_variables_and_none_of_a_node(tree: Path) -> None:
    doc = json.loads((tree / "provisioning" / "images.json").read_text())
    gpu = next(i for i in doc["images"] if i["gpus_per_node"])
    v = images.build_vars(tree, gpu["name"])
    assert v["kasbah_image"] == gpu["name"]
    assert v["kasbah_pool"] == gpu["pools"][0] and v["kasbah_gpus"] == gpu["gpus_per_node"]
    assert v["kasbah_nvidia_driver"] == gpu["nvidia_driver"]
    assert v["kasbah_site"] == doc["site"]
    assert not images.NODE_VARS & set(v)


def test_an_unknown_image_is_named_with_the_known_ones(tree: Path) -> None:
    doc = json.loads((tree / "provisioning" / "images.json").read_text())
    with pytest.raises(images.ImageError) as err:
        images.build_vars(tree, "gpu-ffffffffff")
    assert "no pool image `gpu-ffffffffff`" in str(err.value)
    assert all(i["name"] in str(err.value) for i in doc["images"])
    with pytest.raises(images.ImageError, match="render the phase again"):
        images.image_record(tree / "missing", "x")


@pytest.mark.parametrize("text", ["{", "[]", '{"images": 3}', "\udcff"])
def test_a_damaged_manifest_is_a_clear_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "provisioning").mkdir()
    (tmp_path / "provisioning" / "images.json").write_text(text, errors="surrogateescape")
    with pytest.raises(images.ImageError, match=r"images\.json: .*render the phase again"):
        images.image_record(tmp_path, "x")


def test_a_management_pools_image_has_no_cluster(tree: Path) -> None:
    doc = json.loads((tree / "provisioning" / "images.json").read_text())
    mgmt = next(i for i in doc["images"] if "mgmt" in i["pools"])
    v = images.build_vars(tree, mgmt["name"])
    assert "kasbah_cluster" not in v and "kasbah_kubernetes_version" not in v
    assert mgmt["kubernetes_version"] is None


def test_kasbah_image_capture_reads_the_tar_on_stdin_and_refuses_a_broken_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    stream = _stream(ENTRIES, xattr=True).getvalue()
    out = tmp_path / "pool.tar"
    cmd = [sys.executable, "-m", "kasbah.cli", "image", "capture", str(out), "--source-date-epoch", str(EPOCH)]
    done = subprocess.run([*cmd, "--json"], input=stream, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = images.capture(io.BytesIO(stream), tmp_path / "direct.tar", epoch=EPOCH)
    assert result == {"image": str(out), "sha256": expected, "bytes": out.stat().st_size}
    good = out.read_bytes()
    # half a stream: exit 2, the image it would have replaced untouched, no temporary left
    broken = subprocess.run(cmd, input=stream[: len(stream) // 2], capture_output=True, check=False)
    assert broken.returncode == 2
    assert b"not a whole tar stream" in broken.stderr and b"unchanged" in broken.stderr
    assert b"Traceback" not in broken.stderr
    assert out.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["direct.tar", "pool.tar"]


def test_kasbah_image_list_and_vars(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import run_kasbah

    code, out, _ = run_kasbah(capsys, "image", "list", str(tree), "-e", str(TINY), "--json")
    assert code == 0
    listed = json.loads(out)
    doc = json.loads((tree / "provisioning" / "images.json").read_text())
    assert [i["name"] for i in listed["images"]] == [i["name"] for i in doc["images"]]
    plan = planned(TINY)[0]
    with_hw = {h.node for h in plan.hardware}
    pools = {p.name: p.image for p in plan.pools}
    for i in listed["images"]:
        assert i["nodes_with_hardware"] == sum(
            1 for n in plan.nodes if n.name in with_hw and pools[n.pool] == i["name"]
        )
    name = doc["images"][0]["name"]
    target = tmp_path / "vars.json"
    code, _, _ = run_kasbah(
        capsys, "image", "vars", str(tree), name, "-e", str(TINY), "--base", "b1", "-o", str(target)
    )
    assert code == 0
    got = json.loads(target.read_text())
    assert got == {**images.build_vars(tree, name), "kasbah_image_recipe": got["kasbah_image_recipe"]}
    assert len(got["kasbah_image_recipe"]) == 64
    code, _, err = run_kasbah(capsys, "image", "vars", str(tree), "cpu-nope", "-e", str(TINY))
    assert code == 2 and "no pool image `cpu-nope`" in err
