"""Render in a fresh interpreter with a chosen hash seed: set and dict order must never reach the output."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import TINY

FRESH = """
import hashlib, sys
from kasbah.config import load_environment
from kasbah.planning import plan_campus
e = load_environment(sys.argv[1])
plan = plan_campus(e.campus, e.name)[-1]
{render}
h = hashlib.sha256()
for path in sorted(out):
    h.update(path.encode() + b"\\0" + out[path])
print(h.hexdigest())
"""


def digest_in_fresh_interpreter(render: str, seed: str) -> str:
    """Render the tiny environment in a new interpreter with its own hash seed: set order must not leak out."""
    done = subprocess.run(
        [sys.executable, "-c", FRESH.format(render=render), str(TINY)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": seed},
    )
    return done.stdout.strip()
