"""The Jinja2 environment every renderer shares: the repository's `templates/`, strict about undefined names."""

from __future__ import annotations

from functools import cache

import jinja2

from kasbah.resources import shipped

# the repository's templates/ in a checkout, the wheel's copy in an installed package
TEMPLATES = shipped("templates")


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
