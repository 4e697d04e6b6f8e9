"""The Jinja2 environment every renderer shares: the repository's `templates/`, strict about undefined names."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

# The package is installed in editable mode from `modules/`, so the templates sit beside it.
TEMPLATES = Path(__file__).resolve().parents[3] / "templates"


def new_environment() -> jinja2.Environment:
    """A fresh environment, for a renderer that adds its own filters (and caches the result)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,  # YAML, markdown and INI, not HTML
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def environment() -> jinja2.Environment:
    return new_environment()


def render(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
