"""Pool images: the variables a build host gets, and the reproducible capture of what the roles made of it.

An image is built from the same roles as the full pass: `playbooks/image.yml --tags image` on a build
host that carries one pool's variables (`build_vars`: the site's and the pool's, never a node's), then
its file system is captured by `capture`: the entries sorted, times clamped to a source date, what
makes a host itself (machine id, SSH host keys) and what a run leaves behind (logs, caches, byte
code) left out. The package indexes stay: they are the mirror's, and a later run of the roles on the
image installs from them. The same base, mirror, roles and variables give the same bytes, so the same sha256:
the image's digest, which Ironic checks when it writes the image and which the image manifest holds.

The build host is anything Ansible reaches (a VM, a container); tests/nodes/pool_image.py builds on
a Debian 12 container of the test fleet and boots the fleet from the captured image.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any

from kasbah.resources import COLLECTION

# 2026-01-01T00:00:00Z: newer file times are clamped to it unless SOURCE_DATE_EPOCH says otherwise
DEFAULT_EPOCH = 1767225600
# A node's own variables: an image never holds them (a pool's group variables may carry one when a
# pool has a single rack; the lean pass writes them on the node)
NODE_VARS = frozenset(
    {
        "ansible_host",
        "kasbah_inband_ip",
        "kasbah_bmc_ip",
        "kasbah_storage_ip",
        "kasbah_rail_ips",
        "kasbah_network",
        "kasbah_node_labels",
        "kasbah_node_taints",
        "kasbah_nvlink_domain",
        "kasbah_api_vip",
        "kasbah_api_vrrp_id",
        "kasbah_control_plane",
        "kasbah_etcd_backup",
    }
)
# Left out of a captured image: per-host identity, run leftovers, and the mounts a container or VM has at run time
_DROP_PREFIXES = (
    "dev/",
    "proc/",
    "sys/",
    "run/",
    "tmp/",
    "var/tmp/",
    "var/log/",
    "var/cache/apt/",
    "var/cache/debconf/",
    "root/.ansible/",
    "root/.cache/",
    "var/lib/systemd/timers/",
)
_DROP_NAMES = frozenset(
    {
        ".dockerenv",
        "etc/hostname",
        "etc/hosts",
        "etc/resolv.conf",
        "etc/.pwd.lock",
        "var/lib/dbus/machine-id",
        "var/cache/ldconfig/aux-cache",
        "var/lib/apt/lists/lock",
        "var/lib/systemd/random-seed",
        "var/lib/systemd/credential.secret",
        "var/lib/systemd/catalog/database",
    }
)
_KEEP_DIRS = frozenset(p.rstrip("/") for p in _DROP_PREFIXES)
_EMPTY = frozenset({"etc/machine-id"})  # systemd's "not yet initialised": each node makes its own at first boot


class ImageError(ValueError):
    """An image cannot be built as asked; the message says what to change."""


def images_manifest(tree: Path) -> dict[str, Any]:
    path = tree / "provisioning" / "images.json"
    if not path.is_file():
        raise ImageError(f"{path}: no image manifest; fix: render the phase again with this version (kasbah render)")
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ImageError(f"{path}: cannot read the image manifest ({err}); fix: render the phase again") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise ImageError(f"{path}: not an image manifest (no `images` list); fix: render the phase again")
    return doc


def image_record(tree: Path, name: str) -> dict[str, Any]:
    """The Plan's record of image `name` in a rendered tree."""
    images: dict[str, dict[str, Any]] = {i["name"]: i for i in images_manifest(tree)["images"]}
    if name not in images:
        raise ImageError(f"no pool image `{name}` in {tree}; fix: use one of: {', '.join(images) or '(none)'}")
    return images[name]


def _inventory_docs(tree: Path) -> Iterable[dict[str, Any]]:
    index = json.loads((tree / "inventory" / "index.json").read_text())
    for part in index["slices"]:
        yield json.loads((tree / "inventory" / part["path"]).read_text())


def build_vars(tree: Path, name: str) -> dict[str, Any]:
    """What a build host of image `name` carries: the variables every host of the image's first pool has with the
    same value (the site's, the pool's; never one only some hosts have, such as a control-plane host's cluster), less
    a node's own (`NODE_VARS`), and the image's name."""
    record = image_record(tree, name)
    pool = record["pools"][0]
    group = "pool_" + pool.replace("-", "_")
    common: dict[str, Any] | None = None
    for doc in _inventory_docs(tree):
        children = doc["all"]["children"]
        members = _members(children)
        for host in sorted(members.get(group, ())):
            seen = dict(doc["all"].get("vars") or {})
            for g, spec in children.items():  # the inventory hoists each variable to one group: order does not matter
                if host in members[g]:
                    seen.update((spec or {}).get("vars") or {})
                    seen.update(((spec or {}).get("hosts") or {}).get(host) or {})
            common = seen if common is None else {k: v for k, v in common.items() if k in seen and seen[k] == v}
    if common is None:
        raise ImageError(
            f"pool `{pool}` of image `{name}` has no hosts in {tree}/inventory; fix: render the phase again"
        )
    out = {k: v for k, v in common.items() if k not in NODE_VARS}
    out["kasbah_image"] = name
    return out


def _members(children: Mapping[str, Any]) -> dict[str, set[str]]:
    """group -> every host in it, through its child groups."""
    out: dict[str, set[str]] = {}

    def walk(g: str, seen: frozenset[str]) -> set[str]:
        if g in out:
            return out[g]
        spec = children.get(g) or {}
        hosts = set(spec.get("hosts") or {})
        for child in spec.get("children") or {}:
            if child not in seen:
                hosts |= walk(child, seen | {child})
        out[g] = hosts
        return hosts

    for g in children:
        walk(g, frozenset({g}))
    return out


def recipe_digest(record: Mapping[str, Any], playbooks: Path, base: str) -> str:
    """sha256 of what an image is made from: the Plan's record of it (not its pools), the base it starts from,
    and every file of the collection and the image playbook."""
    h = hashlib.sha256()
    h.update(json.dumps({k: v for k, v in record.items() if k != "pools"}, sort_keys=True).encode())
    h.update(b"\0base\0" + base.encode())
    files = [playbooks / "image.yml", *sorted(p for p in (playbooks / COLLECTION).rglob("*") if p.is_file())]
    for path in files:
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(playbooks).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _dropped(name: str) -> bool:
    if name in _KEEP_DIRS:  # the directory stays, empty
        return False
    if name in _DROP_NAMES or any(name.startswith(p) for p in _DROP_PREFIXES):
        return True
    if "__pycache__" in PurePosixPath(name).parts:
        return True
    return name.startswith("etc/ssh/ssh_host_") or (name.startswith("var/lib/dpkg/") and name.endswith("-old"))


def _shadow(data: bytes, day: int) -> bytes:
    """/etc/shadow with every account's last-change day at the source date (useradd writes the build's day)."""
    lines = []
    for line in data.decode().splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2]:
            fields[2] = str(day)
        lines.append(":".join(fields))
    return ("\n".join(lines) + "\n").encode()


def capture(stream: IO[bytes], out: Path, epoch: int | None = None) -> str:
    """Write the reproducible image tar of the file system tar `stream` (`docker export`, a VM's `tar c`) to `out`
    atomically; return its sha256."""
    when = epoch if epoch is not None else int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))
    members: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(fileobj=stream, mode="r|") as src:
        for info in src:
            name = info.name.lstrip("./").rstrip("/") if info.name not in (".", "./") else ""
            if not name or _dropped(name):
                continue
            data = b""
            if info.isreg():
                f = src.extractfile(info)
                data = f.read() if f else b""
            members[name] = (info, data)
    links: dict[str, list[str]] = {}
    for name, (info, _) in members.items():
        if info.islnk():
            links.setdefault(info.linkname.lstrip("./"), []).append(name)
    # a hard link's data lives on the first name of its group in the sorted order
    holder: dict[str, str] = {}
    for target, names in links.items():
        if target not in members:
            continue
        group = sorted([target, *names])
        for n in group:
            holder[n] = group[0]
    fd, name_ = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    tmp = Path(name_)
    h = hashlib.sha256()
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            tarfile.open(fileobj=_Hashing(raw, h), mode="w|", format=tarfile.PAX_FORMAT) as dst,
        ):
            for name in sorted(members):
                info, data = members[name]
                first = holder.get(name)
                if first is not None and first != name:
                    source = members[holder[name]][0]
                    new = _clean(source, name, when)
                    new.type = tarfile.LNKTYPE
                    new.linkname = first
                    new.size = 0
                    dst.addfile(new)
                    continue
                if first == name and info.islnk():  # the group's data moved onto this name
                    target = info.linkname.lstrip("./")
                    info, data = members[target]
                new = _clean(info, name, when)
                if name in _EMPTY:
                    data = b""
                elif name == "etc/shadow":
                    data = _shadow(data, when // 86400)
                if new.isreg():
                    new.size = len(data)
                    dst.addfile(new, io.BytesIO(data))
                else:
                    dst.addfile(new)
        tmp.chmod(0o644)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return h.hexdigest()


def _clean(info: tarfile.TarInfo, name: str, when: int) -> tarfile.TarInfo:
    new = tarfile.TarInfo(name + ("/" if info.isdir() else ""))
    new.type = info.type
    new.mode = info.mode
    new.uid, new.gid = info.uid, info.gid
    new.uname, new.gname = info.uname, info.gname
    new.mtime = min(int(info.mtime), when)
    new.linkname = info.linkname
    new.devmajor, new.devminor = info.devmajor, info.devminor
    # file capabilities and ACLs (SCHILY.xattr.*) are part of the image; times other than mtime are not
    new.pax_headers = {k: v for k, v in info.pax_headers.items() if k.startswith("SCHILY.xattr.")}
    return new


class _Hashing(io.RawIOBase):
    """A write-only file that hashes what passes through it."""

    def __init__(self, raw: IO[bytes], h: Any) -> None:
        self._raw, self._h = raw, h

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._h.update(b)
        return self._raw.write(b)
