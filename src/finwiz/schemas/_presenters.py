"""How a result draws itself in a notebook (``_repr_html_``) and as a figure (``plot()``).

The models never import the reporting layer (which imports them): the reporting functions are
plugged in here, lazily, by ``finwiz/__init__.py``, which is imported before any finwiz module.
Standard library only, so registering costs nothing at ``import finwiz``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["Presenter", "present", "register_presenter"]

Presenter = Callable[[Any], Any]
"""Takes a :class:`~finwiz.RebalancingResult`; returns HTML text (``"html"``) or a figure."""

_PRESENTERS: dict[str, Presenter] = {}


def register_presenter(kind: Literal["html", "figure"], presenter: Presenter) -> None:
    """Install the function behind ``RebalancingResult._repr_html_`` (``"html"``) or
    ``RebalancingResult.plot`` (``"figure"``); the last one registered wins."""
    _PRESENTERS[kind] = presenter


def present(kind: Literal["html", "figure"], result: Any) -> Any:
    """The registered presenter's rendering of ``result``; without one, HTML falls back to the
    escaped one-line repr, and a figure cannot be drawn (``LookupError``)."""
    presenter = _PRESENTERS.get(kind)
    if presenter is not None:
        return presenter(result)
    if kind == "html":
        return f"<pre>{html.escape(repr(result))}</pre>"
    raise LookupError(f"no {kind} presenter registered for {type(result).__name__}")
