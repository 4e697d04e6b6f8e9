"""The policy pack as the engine runs it: `stacks/policy` started as a plugin, asked over its gRPC analyzer protocol (loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.conftest import ROOT
from tests.stacks.conftest import policy_resources, run_of


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "stacks" / "policy" / "__main__.py")],
        cwd=ROOT / "stacks" / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        if not line.isdigit():
            proc.kill()
            raise AssertionError(
                f"the policy pack did not start: {line!r} {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
            )
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait()


def _request(
    env: str, phase: str, name: str | None, drop: str | None = None, unowned: str | None = None
) -> analyzer_pb2.AnalyzeStackRequest:
    out = []
    for r in policy_resources(run_of(env, phase, name)):
        if drop and drop in r.urn:
            continue
        values = json.loads(json.dumps(dict(r.props)))
        if unowned and unowned in r.urn:
            values["metadata"].pop("annotations", None)  # as a hand-made object would come
        props = struct_pb2.Struct()
        props.update(values)
        out.append(
            analyzer_pb2.AnalyzerResource(
                type=r.resource_type,
                properties=props,
                urn=r.urn,
                name=r.name,
                options=analyzer_pb2.AnalyzerResourceOptions(protect=r.opts.protect),
            )
        )
    return analyzer_pb2.AnalyzeStackRequest(resources=out)


def test_the_pack_declares_its_policies_and_their_levels(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "kasbah"
    assert sorted(p.name for p in info.policies) == [
        "ledger-records-protected",
        "no-renumbering-or-removal",
        "one-owner-per-object",
        "power-within-budget",
        "rollout-reach",
    ]
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert levels.pop("rollout-reach") == analyzer_pb2.ADVISORY  # it informs; the waves themselves are the safety
    assert set(levels.values()) == {analyzer_pb2.MANDATORY}


def test_shipped_programs_pass_and_an_object_of_no_owner_is_refused(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    for name in (None, "lab"):
        assert list(analyzer.AnalyzeStack(_request("tiny", "lab-2", name)).diagnostics) == []
    bad = analyzer.AnalyzeStack(_request("tiny", "lab-2", "lab", unowned="::lab:flux-system/default-deny"))
    assert [(d.policyName, d.enforcementLevel) for d in bad.diagnostics] == [
        ("one-owner-per-object", analyzer_pb2.MANDATORY)
    ]
    assert "NetworkPolicy flux-system/default-deny" in bad.diagnostics[0].message


def test_removal_is_refused_with_the_deployed_state_as_policy_config(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, tmp_path: Path
) -> None:
    deployed = policy_resources(run_of("tiny", "lab-1", None))
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "deployment": {
                    "resources": [{"urn": r.urn, "type": r.resource_type, "outputs": dict(r.props)} for r in deployed]
                }
            }
        )
    )
    props = struct_pb2.Struct()
    props.update({"deployedState": str(state)})
    analyzer.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                "no-renumbering-or-removal": analyzer_pb2.PolicyConfig(
                    enforcementLevel=analyzer_pb2.MANDATORY, properties=props
                )
            }
        )
    )
    rack = next(r for r in deployed if r.props.get("kind") == "rack" and r.props.get("pool"))
    found = analyzer.AnalyzeStack(_request("tiny", "lab-2", None, drop=f"::{rack.name}"))
    assert [d.policyName for d in found.diagnostics] == ["no-renumbering-or-removal"], [
        d.message for d in found.diagnostics
    ]
    assert f"rack/{rack.name} would be removed" in found.diagnostics[0].message
