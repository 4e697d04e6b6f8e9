"""CRD validation rules (`x-kubernetes-validations`), evaluated with cel-python as the API server does on create."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any, TypeAlias

from kasbah.verification.schema.kubernetes import plain_json

__all__ = ["CelCheck", "cel_check"]

# the messages for one value; an empty list when every rule holds
CelCheck: TypeAlias = Callable[[Any], list[str]]
_VERDICTS_KEPT = 4096  # per schema node


@functools.cache
def _cel_program(rule: str) -> Any:
    """A compiled CEL rule (cel-python); None where it does not compile here (reported, never passed over)."""
    import celpy  # imported on first use: only the CRDs that carry rules need it
    from celpy.celparser import CELParseError

    env = celpy.Environment()
    try:
        return env.program(env.compile(rule))
    except CELParseError:
        return None


def cel_check(rules: Any) -> CelCheck | None:
    """The CRD's `x-kubernetes-validations` for one schema node, or None when it has none to evaluate.

    A rule that mentions `oldSelf` is a transition rule, which the API server evaluates on update
    only: a new object passes it. Each other rule is evaluated with `self` bound to the value; a rule
    that is false is reported with its message, one that cannot be evaluated with why.
    """
    if not isinstance(rules, list):
        return None
    compiled = []
    for r in rules:
        rule = str(r.get("rule", "")) if isinstance(r, dict) else ""
        if not rule or re.search(r"\boldSelf\b", rule):
            continue
        message = str(r.get("message") or f"failed rule: {rule}")
        compiled.append((rule, message, _cel_program(rule)))
    if not compiled:
        return None

    verdicts: dict[str, list[str]] = {}

    def check(value: Any) -> list[str]:
        # A rule on create sees only the value: the same value gets the same verdict (cel-python
        # takes milliseconds a rule, and a rendered tree repeats values).
        plain = plain_json(value)
        key = json.dumps(plain, sort_keys=True)
        found = verdicts.get(key)
        if found is None:
            if len(verdicts) >= _VERDICTS_KEPT:
                verdicts.clear()
            found = verdicts[key] = evaluate(plain)
        return list(found)

    def evaluate(plain: Any) -> list[str]:
        from celpy.adapter import json_to_cel
        from celpy.celtypes import BoolType
        from celpy.evaluation import CELEvalError

        out: list[str] = []
        bound = {"self": json_to_cel(plain)}
        for rule, message, program in compiled:
            if program is None:
                out.append(f"CEL rule `{rule}` does not compile with cel-python; the check cannot be made")
                continue
            try:
                result = program.evaluate(bound)
            except CELEvalError as exc:
                out.append(f"CEL rule `{rule}` cannot be evaluated: {exc.args[0] if exc.args else exc}")
                continue
            if isinstance(result, CELEvalError):
                out.append(f"CEL rule `{rule}` cannot be evaluated: {result.args[0] if result.args else result}")
            elif result is not True and not (isinstance(result, BoolType) and bool(result)):
                out.append(f"{message} (CEL: {rule})")
        return out

    return check
