"""Blended models in a portfolio file: a ``[models]`` table of named models (each a table of
component -> weight, a component being a symbol or another model's name) and ``target_weights``
naming the one to hold::

    target_weights = "growth"

    [models.growth]
    us_equity = 0.8
    bonds = 0.2

    [models.us_equity]
    VTI = 0.7
    QQQ = 0.3

    [models.bonds]
    BND = 1.0

It becomes ``PortfolioConfiguration(target_weights=Model.from_definitions(models, "growth"))``:
flattened, its sleeves kept. A cycle, an unknown name or weights not summing to 1 are refused
naming the file and the model.
"""

from __future__ import annotations

from typing import Any

from finwiz.errors import InvalidPortfolioError
from finwiz.schemas import Model

__all__ = ["MODELS_KEY", "resolve_models"]

MODELS_KEY = "models"
"""The top-level key of the named models (not a PortfolioConfiguration field)."""


def resolve_models(data: dict[str, Any], source: str, *, targets_replaced: bool) -> None:
    """Replace a ``target_weights`` that names a model of ``data[MODELS_KEY]`` by that model, in
    place; the models table is removed. ``targets_replaced``: the command line gave the targets,
    so the file's models are not used."""
    models = data.pop(MODELS_KEY, None)
    named = data.get("target_weights")
    if not isinstance(named, str):
        if models is not None and not targets_replaced:
            raise InvalidPortfolioError(
                f"{source}: a [models] table is given but target_weights names no model "
                f'(write target_weights = "<model name>")',
                field="target_weights",
            )
        return
    if not isinstance(models, dict) or not all(isinstance(m, dict) for m in models.values()):
        raise InvalidPortfolioError(
            f"{source}: target_weights names model {named!r}; give it in a [models.{named}] table",
            field="target_weights",
        )
    try:
        data["target_weights"] = Model.from_definitions(models, named)
    except InvalidPortfolioError as exc:
        raise InvalidPortfolioError(f"{source}: {exc}", field="target_weights") from exc
