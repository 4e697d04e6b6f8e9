"""Build step only (the project is described in pyproject.toml): a wheel carries the templates and the node
playbooks inside the package, where `kasbah.resources.shipped` finds them after `pip install`."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPy(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        target = Path(self.build_lib) / "kasbah" / "data"
        for name in ("templates", "playbooks"):
            shutil.copytree(
                ROOT / name,
                target / name,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ansible", "*.retry"),
            )


setup(cmdclass={"build_py": BuildPy})
