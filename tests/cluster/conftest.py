"""A live cluster for the preview and apply tests.

`KASBAH_TEST_KUBECONFIG` names a test cluster to use (a fresh kind cluster: the tests create the
tiny environment's objects and a few of their own in it). Without it, the session starts the
local API server of `tests/cluster/apiserver.py` (built by `make apiserver`). With neither the
tests skip, saying what they need; under CI (CI=true) they fail instead, because .ci/run builds
the API server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.apiserver import LocalApiServer, missing
from tests.conftest import TINY
from tests.conftest import run_kasbah as kasbah

GIVEN = "KASBAH_TEST_KUBECONFIG"


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    given = os.environ.get(GIVEN)
    if given:
        yield Path(given)
        return
    why = missing()
    if why:
        message = f"needs a Kubernetes API server: set {GIVEN} to a test cluster's kubeconfig, or {why}"
        if os.environ.get("CI"):
            pytest.fail(message + " (.ci/run builds it)")
        pytest.skip(message)
    with LocalApiServer.start() as server:
        yield server.kubeconfig


def sync_json(capsys: pytest.CaptureFixture[str], verb: str, *args: str) -> tuple[int, dict[str, Any]]:
    """`kasbah preview|apply --json` on the tiny environment; (exit code, report)."""
    code, out, err = kasbah(capsys, verb, *args, "-e", str(TINY), "--json")
    assert out, f"no report on stdout (exit {code}): {err}"
    return code, json.loads(out)


def actions(report: dict[str, Any]) -> dict[str, str]:
    """`Kind ns/name` -> action."""
    return {
        f"{o['kind']} {o['namespace'] + '/' if o['namespace'] else ''}{o['name']}": o["action"]
        for o in report["objects"]
    }
