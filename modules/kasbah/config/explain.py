"""Pydantic's validation errors told as kasbah's issues: the YAML path of each, a message and a fix.

Union members and validator names are dropped from the path; a pattern a value misses is named by
what it should be (`PATTERN_HELP`); an unknown key lists the keys allowed there, with the closest
one; a misspelt required key is one issue, not two.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from kasbah.config.fields import PATTERN_HELP
from kasbah.config.issues import ConfigIssue, Loc


def _field_model(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that holds the last element of `loc`, for listing allowed keys."""
    current: Any = model
    for part in loc[:-1]:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            current = info.annotation if info else None
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Strip Optional/Annotated so that the container or model type remains."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else args[0]
        else:
            return tp


def _pattern_help(err: Any) -> tuple[str, str]:
    pattern = str(err.get("ctx", {}).get("pattern", ""))
    return PATTERN_HELP.get(pattern, (f"of the form {pattern}", f"write a value matching {pattern}"))


def _fix_for(err: Any, root: type[BaseModel], loc: Loc) -> str:
    kind = err["type"]
    key = loc[-1] if loc else ""
    if kind == "missing":
        return f"add `{key}`"
    if kind == "extra_forbidden":
        holder = _field_model(root, loc)
        allowed = sorted(holder.model_fields) if holder else []
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        return f"{hint}remove or rename `{key}`; keys allowed here: {', '.join(allowed)}"
    if kind == "string_pattern_mismatch":
        return _pattern_help(err)[1]
    if kind == "string_type":
        return f'quote it, for example "{err.get("input")}" (YAML reads 1.30 as the number 1.3)'
    if kind in ("string_too_long", "string_too_short"):
        return "shorten or lengthen it to the limit given"
    if kind == "boolean_not_allowed":
        return "write the number or the text itself; quote text that YAML reads as a boolean, for example 'on'"
    if kind == "finite_number":
        return "give a finite number (YAML reads .inf and .nan as infinity and not-a-number)"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "give a whole number, without quotes or units"
    if kind in ("float_parsing", "float_type"):
        return "give a number, without quotes or units (MW, kW)"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "change the value to within the bound given"
    if kind == "enum":
        return "use one of the values listed"
    if kind in ("list_type", "too_short"):
        return "give a YAML list (lines starting with '- ') with at least the items required"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "give a mapping of keys to values here"
    if kind.startswith("ip_") and "address" in kind:
        return "give an IPv4 or IPv6 address, for example 10.72.1.2 (no prefix, no name)"
    if kind.startswith("ip_") or "network" in kind:
        return "give a network in CIDR form with its host bits zero, for example 10.0.0.0/12"
    return "correct the value"


def _is_key(part: str | int) -> bool:
    """Location parts that are YAML keys, not pydantic's names for union members or validators."""
    return isinstance(part, int) or (not any(c in part for c in "[](),") and part not in ("IPv4Network", "IPv6Network"))


def _short(value: Any) -> Any:
    """A given value as a message quotes it: long text cut, so that a refusal stays one readable line."""
    text = value if isinstance(value, str) else None
    if text is not None and len(text) > 80:
        return f"{text[:60]}… ({len(text):,} characters)"
    return value


def _message(err: Any, loc: Loc) -> str:
    kind = err["type"]
    key = loc[-1] if loc else ""
    given = _short(err.get("input"))
    if kind == "missing":
        return f"required key `{key}` is missing"
    if kind == "extra_forbidden":
        return f"unknown key `{key}`"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping of keys to values, got {_yaml_kind(given)}"
    if kind == "list_type":
        return f"expected a list, got {_yaml_kind(given)}"
    if kind == "string_type":
        return f"expected text, got {_yaml_kind(given)}"
    if kind.startswith("ip_") and "address" in kind:
        return f"`{given}` is not an IPv4 or IPv6 address"
    if kind.startswith("ip_") or "network" in kind:
        return f"`{given}` is not a valid IPv4 or IPv6 network in CIDR form (host bits must be zero)"
    ctx = err.get("ctx", {})
    if kind == "enum":
        return f"`{given}` is not one of: {ctx.get('expected', '')}"
    if kind == "string_pattern_mismatch":
        return f"`{given}` is not {_pattern_help(err)[0]}"
    if kind == "string_too_long":
        return f"`{given}` is longer than {ctx.get('max_length')} characters"
    bounds = {
        "greater_than": "above",
        "greater_than_equal": "at least",
        "less_than": "below",
        "less_than_equal": "at most",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        return f"`{given}` is out of range: it must be {bounds[kind]} {limit}"
    if kind == "boolean_not_allowed":
        return f"`{str(given).lower()}` is a boolean (YAML reads true/false and yes/no/on/off so), not a value of this field"
    if kind == "finite_number":
        return f"`{given}` is not a finite number"
    if kind in ("int_parsing", "int_type", "int_from_float", "float_parsing", "float_type"):
        return f"`{given}` is not {'a whole number' if kind.startswith('int') else 'a number'}"
    msg: str = err["msg"].removeprefix("Value error, ")
    return msg


def _yaml_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} `{value}`"


def pydantic_issues(exc: ValidationError, doc: str, root: type[BaseModel]) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    seen: set[Loc] = set()
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(p for p in err["loc"] if _is_key(p))
        if loc in seen:
            continue  # an IPv4|IPv6 union reports each member for one value
        seen.add(loc)
        msg = _message(err, loc)
        fix = _fix_for(err, root, loc)
        if "; fix: " in msg:  # validators state the fix after the problem
            msg, fix = msg.split("; fix: ", 1)
        path = (*loc, "<key>") if err["type"] == "extra_forbidden" else loc
        out.append(ConfigIssue(doc, path, msg, fix))
    # a misspelt required key is one mistake: report the unknown key (with its did-you-mean),
    # not also the missing one it was meant to be
    meant = {
        (*i.path[:-2], i.fix.split("`")[1])
        for i in out
        if i.path[-1:] == ("<key>",) and i.fix.startswith("did you mean")
    }
    return [i for i in out if not (i.message.startswith("required key") and i.path in meant)]
