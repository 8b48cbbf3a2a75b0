"""The Jinja2 environment behind the HTML views: autoescaped templates shipped in ``templates/``.

A user's template folders are searched first, so a file there with a built-in's name replaces
it; every built-in is also reachable as ``finwiz/<name>``, so a user's template can extend the
very one it replaces (``{% extends "finwiz/report.html.j2" %}``) and override single blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from finwiz.errors import ConfigurationError
from finwiz.reporting._format import in_unit, money, percent, shares

__all__ = ["BUILT_IN_PREFIX", "TemplateFolders", "environment", "render"]

BUILT_IN_PREFIX = "finwiz"
"""Built-in templates are also found as ``finwiz/<name>``, whatever the user's folders hold."""

TemplateFolders = str | Path | Sequence[str | Path] | None
"""One template folder, several (searched in order), or None for the built-ins only."""


def folders(template_dir: TemplateFolders) -> tuple[Path, ...]:
    """``template_dir`` as a tuple of existing folders; a missing one raises, naming it."""
    if template_dir is None:
        return ()
    given = [template_dir] if isinstance(template_dir, str | Path) else list(template_dir)
    out = []
    for entry in given:
        path = Path(entry)
        if not path.is_dir():
            raise ConfigurationError(f"template_dir {str(path)!r} is not a directory")
        out.append(path)
    return tuple(out)


def _numeric(format_number: Callable[..., str]) -> Callable[..., Markup]:
    # A formatted number is digits, signs, separators, "%" or a dash: nothing to escape, so it
    # is marked safe and the per-cell escaping of a 431-row table is skipped.
    def formatted(value: float, *args: Any, **kwargs: Any) -> Markup:
        return Markup(format_number(float(value), *args, **kwargs))

    return formatted


def _number(value: float) -> Markup:
    """The exact number for a ``data-value`` attribute (the sorter reads it)."""
    return Markup(repr(float(value)))


@lru_cache(maxsize=16)
def environment(template_dirs: tuple[Path, ...] = ()) -> jinja2.Environment:
    """The autoescaping environment for ``template_dirs`` (searched first) and the built-ins.

    Undefined names raise (a typo in a template is an error, not an empty cell).
    """
    built_in = jinja2.PackageLoader("finwiz.reporting", "templates")
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(list(template_dirs))] if template_dirs else []
    loaders += [built_in, jinja2.PrefixLoader({BUILT_IN_PREFIX: built_in})]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters.update(
        money=_numeric(money),
        percent=_numeric(percent),
        shares=_numeric(shares),
        in_unit=_numeric(in_unit),
        number=_number,
    )
    return env


def render(env: jinja2.Environment, name: str, **context: Any) -> Markup:
    """Render template ``name``; a missing or broken template raises ConfigurationError naming it."""
    try:
        return Markup(env.get_template(name).render(**context))
    except jinja2.TemplateNotFound as exc:
        raise ConfigurationError(f"report template {exc.name!r} not found (needed by {name!r})") from exc
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or exc.name or name
        raise ConfigurationError(f"report template {where!r}, line {exc.lineno}: {exc.message}") from exc
    except jinja2.UndefinedError as exc:
        raise ConfigurationError(f"report template {name!r}: {exc.message}") from exc
