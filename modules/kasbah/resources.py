"""Where the files kasbah ships beside its code are: the Jinja2 templates and the node playbooks.

A built wheel holds them inside the package (`kasbah/data/templates`, `kasbah/data/playbooks`:
setup.py's build step copies them there), so `pip install kasbah` renders and configures from any
directory. A checkout (the editable install of development and CI) has them at the repository's
top level, where they are edited; nothing is copied there.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parents[1]  # modules/kasbah -> the repository
SHIPPED = ("templates", "playbooks")
# The node roles: the Ansible collection kasbah.campus, beside the playbooks that use it
COLLECTION = Path("collections", "ansible_collections", "kasbah", "campus")


def shipped(name: str) -> Path:
    """The directory `name` (one of SHIPPED) of this installation: the wheel's copy, else the checkout's."""
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not shipped with kasbah (only {', '.join(SHIPPED)})")
    installed = PACKAGE / "data" / name
    return installed if installed.is_dir() else CHECKOUT / name


def roles(playbooks: Path | None = None) -> Path:
    """The roles directory of the kasbah.campus collection under a playbook project (default: the shipped one)."""
    return (playbooks if playbooks is not None else shipped("playbooks")) / COLLECTION / "roles"
