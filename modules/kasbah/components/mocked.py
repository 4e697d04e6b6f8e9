"""Run a stack program under Pulumi's official mocks and collect what it registered.

The real SDK runs the program (resource graph, parents, secrets, outputs); the mock monitor
answers in place of the engine and providers, returning each resource's inputs as its state.
Used by the tests and the benchmark; it needs neither the Pulumi CLI nor a provider plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
from pulumi.runtime import mocks, settings

_PRIVATE = ("__provider",)


@dataclass(frozen=True)
class Registered:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool

    @property
    def parent_type(self) -> str | None:
        """The parent's type token, from the URN's type chain (`pulumi:pulumi:Stack` at the top)."""
        chain = self.urn.split("::")[2].split("$")
        return chain[-2] if len(chain) > 1 else None

    @property
    def public_inputs(self) -> dict[str, Any]:
        return {k: v for k, v in self.inputs.items() if k not in _PRIVATE}


@dataclass
class MockedRun:
    resources: dict[str, Registered] = field(default_factory=dict)  # by URN
    outputs: dict[str, Any] = field(default_factory=dict)
    protected: set[str] = field(default_factory=set)  # URNs of resources registered with protect
    secret_outputs: set[str] = field(default_factory=set)  # stack outputs Pulumi keeps encrypted

    def of_type(self, token: str) -> list[Registered]:
        return [r for r in self.resources.values() if r.type == token]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.resources.values():
            out[r.type] = out.get(r.type, 0) + 1
        return dict(sorted(out.items()))


class _Recorder(pulumi.runtime.Mocks):
    def __init__(self, run: MockedRun, stack_outputs: Mapping[str, Mapping[str, Any]]) -> None:
        self.run = run
        self.stack_outputs = stack_outputs
        self.pending: list[tuple[str, str, dict[str, Any], bool]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            name = str(args.inputs.get("name", args.name))
            if name not in self.stack_outputs:
                raise KeyError(f"stack reference {name}: no outputs given to the mocks")
            return name, {"name": name, "outputs": dict(self.stack_outputs[name]), "secretOutputNames": []}
        self.pending.append((args.typ, args.name, dict(args.inputs), bool(args.custom)))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def run_mocked(
    program: Callable[[], Mapping[str, Any]],
    *,
    project: str,
    stack: str,
    config: Mapping[str, Any],
    secrets: Mapping[str, str] | None = None,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    preview: bool = False,
) -> MockedRun:
    """Run `program` as stack `project`/`stack` with `kasbah:*` config; return its resources and outputs."""
    run = MockedRun()
    recorder = _Recorder(run, stack_outputs or {})
    all_config = {f"kasbah:{k}": (v if isinstance(v, str) else _json(v)) for k, v in config.items()}
    all_config.update({f"kasbah:{k}": v for k, v in (secrets or {}).items()})
    settings.reset_options()
    pulumi.runtime.set_all_config(all_config, [f"kasbah:{k}" for k in (secrets or {})])
    monitor = mocks.MockMonitor(recorder)
    pulumi.runtime.set_mocks(recorder, project=project, stack=stack, preview=preview, monitor=monitor)
    protected: set[tuple[str, str]] = set()

    def note_protect(args: pulumi.ResourceTransformationArgs) -> None:
        # protection is an option the engine sees, not an input the mocks receive
        if args.opts.protect:
            protected.add((args.type_, args.name))

    outputs: dict[str, Any] = {}

    secret: dict[str, bool] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def body() -> pulumi.Output[Any]:
        pulumi.runtime.register_stack_transformation(note_protect)
        outs = dict(program())

        async def flags() -> dict[str, bool]:
            return {k: await pulumi.Output.from_input(v).is_secret() for k, v in outs.items()}

        return pulumi.Output.all(
            pulumi.Output.from_input(outs).apply(outputs.update),
            pulumi.Output.from_input(cast(Any, flags())).apply(secret.update),
        )

    body()
    registered = monitor.get_registered_resources()
    names = {(t, n): (i, c) for t, n, i, c in recorder.pending}
    for urn in registered:
        typ = urn.split("::")[2].split("$")[-1]
        name = urn.split("::")[3]
        if (typ, name) in names:
            inputs, custom = names[(typ, name)]
            run.resources[urn] = Registered(urn, typ, name, inputs, custom)
    run.protected = {urn for urn, r in run.resources.items() if (r.type, r.name) in protected}
    run.outputs = outputs
    run.secret_outputs = {k for k, v in secret.items() if v}
    return run


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
