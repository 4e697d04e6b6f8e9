"""`kasbah image`: the pool images of a rendered tree, what a build host of one gets, and the capture of its bytes.

    kasbah image list [TREE|PHASE] [--json]          the Plan's images, their inputs, pools and nodes
    kasbah image vars TREE IMAGE [--base ID] [-o F]  the build host's variables (`ansible-playbook -e @F`)
    kasbah image capture OUT [--json] < rootfs.tar   the reproducible image tar of a build host's file system

A site's pipeline builds an image with these and the collection's playbooks/image.yml:
`kasbah image vars` → `ansible-playbook image.yml --tags image --skip-tags cluster -e @vars.json` on a
build host → `docker export HOST | kasbah image capture IMAGE.tar` (or `tar -C / -cf - --one-file-system .`
over SSH from a VM): the printed sha256 is the image's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import yaml

from kasbah.cli.common import EXIT_OK, UsageError, emit, env_path
from kasbah.cli.nodes import _configured_tree
from kasbah.cli.output import out, print_json, show_images
from kasbah.config import load_environment
from kasbah.runners import images


def _tree(args: argparse.Namespace) -> Path:
    env = load_environment(env_path(args.environment))
    return _configured_tree(env, args.target or env.campus.phases[0].name)


def _manifest(tree: Path) -> dict[str, object]:
    try:
        return images.images_manifest(tree)
    except images.ImageError as exc:
        raise UsageError(str(exc)) from None


def cmd_image_list(args: argparse.Namespace) -> int:
    tree = _tree(args)
    doc = _manifest(tree)
    nodes: dict[str, int] = {}
    for rack in sorted((tree / "provisioning" / "nodes").glob("*.yaml")):
        for node in (yaml.safe_load(rack.read_text()) or {}).get("nodes") or []:
            nodes[node["image"]] = nodes.get(node["image"], 0) + 1
    rows = doc["images"]
    assert isinstance(rows, list)
    if args.json:
        print_json({**doc, "images": [{**i, "nodes_with_hardware": nodes.get(i["name"], 0)} for i in rows]})
    else:
        show_images(doc, nodes, tree)
    return EXIT_OK


def cmd_image_vars(args: argparse.Namespace) -> int:
    from kasbah.runners.ansible import playbooks_dir

    tree = _tree(args)
    try:
        record = images.image_record(tree, args.image)
        variables = images.build_vars(tree, args.image)
    except images.ImageError as exc:
        raise UsageError(str(exc)) from None
    if args.base:
        variables["kasbah_image_recipe"] = images.recipe_digest(record, playbooks_dir(), args.base)
    emit(json.dumps(variables, indent=1, sort_keys=True) + "\n", args.output, f"the build variables of {args.image}")
    return EXIT_OK


def cmd_image_capture(args: argparse.Namespace) -> int:
    target = Path(args.out)
    if not target.parent.is_dir():
        raise UsageError(f"{target.parent}: no such directory; fix: create it, or write the image elsewhere")
    if sys.stdin.isatty():
        raise UsageError("the file system comes on standard input; fix: docker export HOST | kasbah image capture OUT")
    try:
        digest = images.capture(sys.stdin.buffer, target, args.source_date_epoch)
    except (tarfile.TarError, EOFError) as exc:
        raise UsageError(
            f"standard input is not a whole tar stream ({exc}); {target} is unchanged; fix: pipe `docker export` "
            "or `tar -cf - ...` of the build host's root"
        ) from None
    size = target.stat().st_size
    if args.json:
        print_json({"image": str(target), "sha256": digest, "bytes": size})
    else:
        out.print(f"{target}: sha256:{digest} ({size / 1e6:,.1f} MB)")
    return EXIT_OK


def add_parsers(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    env: argparse.ArgumentParser,
    json_: Callable[[str], argparse.ArgumentParser],
) -> None:
    """`kasbah image list|vars|capture`."""
    p = sub.add_parser("image", help="pool images: list them, a build host's variables, capture one reproducibly")
    isub = p.add_subparsers(dest="image_command", required=True)
    q = isub.add_parser("list", help="the Plan's pool images in a rendered tree", parents=[env, json_("the images")])
    q.add_argument("target", nargs="?", help="a rendered tree, or a phase (its default render output)")
    q.set_defaults(func=cmd_image_list)
    q = isub.add_parser("vars", help="the variables of a build host of one image (JSON, for -e @FILE)", parents=[env])
    q.add_argument("target", help="a rendered tree, or a phase (its default render output)")
    q.add_argument("image", help="an image name (kasbah image list)")
    q.add_argument("--base", help="the base image's identity (a Docker image id, a file's sha256): adds the recipe")
    q.add_argument("-o", "--output", help="write them to this file (atomically)")
    q.set_defaults(func=cmd_image_vars)
    q = isub.add_parser(
        "capture",
        help="the reproducible image tar of a build host's file system (a tar on standard input)",
        parents=[json_("the image's path, sha256 and size")],
    )
    q.add_argument("out", help="the image tar to write (atomically)")
    q.add_argument(
        "--source-date-epoch", type=int,
        help="newer file times are clamped to it (default: $SOURCE_DATE_EPOCH, else 2026-01-01)",
    )  # fmt: skip
    q.set_defaults(func=cmd_image_capture)
