"""Run a stack program under Pulumi's official mocks and collect what it registered.

The real SDK runs the program (resource graph, parents, secrets, outputs); the mock monitor
answers in place of the engine and providers, returning each resource's inputs as its state.
Used by the tests and the benchmark; it needs neither the Pulumi CLI nor a provider plugin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
from pulumi.dynamic.dynamic import PROVIDER_KEY
from pulumi.runtime import mocks, settings

CONTROL_PLANE = "pulumi-python:dynamic/controlplane:ControlPlane"
# The mocked control plane's admin kubeconfig (no credentials in it)
MOCK_KUBECONFIG = (
    "apiVersion: v1\nkind: Config\nclusters:\n- name: mocked\n  cluster:\n    server: https://{api}\n"
    "contexts: []\nusers: []\n"
)
# registered by the SDK itself, not by the program
_NOT_PROGRAM = ("pulumi:pulumi:Stack", "pulumi:pulumi:StackReference")


@dataclass(frozen=True)
class Registered:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    # URNs this resource waits for (depends_on, parents' explicit dependencies): the order the engine keeps
    dependencies: frozenset[str] = frozenset()

    @property
    def parent_type(self) -> str | None:
        """The parent's type token, from the URN's type chain (`pulumi:pulumi:Stack` at the top)."""
        chain = self.urn.split("::")[2].split("$")
        return chain[-2] if len(chain) > 1 else None

    @property
    def public_inputs(self) -> dict[str, Any]:
        return {k: v for k, v in self.inputs.items() if k != PROVIDER_KEY}


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


class _Monitor(mocks.MockMonitor):
    """Pulumi's mock monitor, also keeping each registration's dependencies (what the engine orders by)."""

    def __init__(self, recorder: pulumi.runtime.Mocks) -> None:
        super().__init__(recorder)
        self.dependencies: dict[str, frozenset[str]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self.dependencies[response.urn] = frozenset(request.dependencies)
        return response


class _Recorder(pulumi.runtime.Mocks):
    """Answers for the engine: a resource's state is its inputs; stack references read the given outputs."""

    def __init__(self, stack_outputs: Mapping[str, Mapping[str, Any]]) -> None:
        self.stack_outputs = stack_outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            name = str(args.inputs.get("name", args.name))
            if name not in self.stack_outputs:
                raise KeyError(f"stack reference {name}: no outputs given to the mocks")
            return name, {"name": name, "outputs": dict(self.stack_outputs[name]), "secretOutputNames": []}
        if args.typ == CONTROL_PLANE:
            # what credentials.yml would fetch from the first control-plane host: an admin kubeconfig of the endpoint
            api = args.inputs.get("api", "")
            return f"{args.name}-id", {**args.inputs, "kubeconfig": MOCK_KUBECONFIG.format(api=api)}
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
    recorder = _Recorder(stack_outputs or {})
    all_config = {f"kasbah:{k}": (v if isinstance(v, str) else json.dumps(v)) for k, v in config.items()}
    all_config.update({f"kasbah:{k}": v for k, v in (secrets or {}).items()})
    settings.reset_options()
    pulumi.runtime.set_all_config(all_config, [f"kasbah:{k}" for k in (secrets or {})])
    monitor = _Monitor(recorder)
    pulumi.runtime.set_mocks(recorder, project=project, stack=stack, preview=preview, monitor=monitor)
    protected: list[pulumi.Resource] = []

    def note_protect(args: pulumi.ResourceTransformationArgs) -> None:
        # protection is an option the engine sees, not an input the mocks receive
        if args.opts.protect:
            protected.append(args.resource)

    outputs: dict[str, Any] = {}
    secret: dict[str, bool] = {}
    protected_urns: set[str] = set()

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def body() -> pulumi.Output[Any]:
        pulumi.runtime.register_stack_transformation(note_protect)
        outs = dict(program())

        async def flags() -> dict[str, bool]:
            return {k: await pulumi.Output.from_input(v).is_secret() for k, v in outs.items()}

        return pulumi.Output.all(
            pulumi.Output.from_input(outs).apply(outputs.update),
            pulumi.Output.from_input(cast(Any, flags())).apply(secret.update),
            pulumi.Output.all(*(r.urn for r in protected)).apply(protected_urns.update),
        )

    body()
    run = MockedRun(outputs=outputs, secret_outputs={k for k, v in secret.items() if v})
    for urn, reg in monitor.get_registered_resources().items():
        typ, name = urn.split("::")[2].split("$")[-1], urn.split("::")[3]
        if typ not in _NOT_PROGRAM:
            run.resources[urn] = Registered(urn, typ, name, dict(reg.state), monitor.dependencies.get(urn, frozenset()))
    run.protected = protected_urns
    return run
