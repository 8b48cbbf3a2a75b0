"""Blended models: :class:`Model` (a named set of weights over symbols and other models) flattened
to target weights with each weight's path kept, and the sleeves' drift of a result
(:func:`sleeves_frame`, behind ``RebalancingResult.sleeves()``).

A sleeve is a model inside the tree (the root included), named by its path ``"growth/us_equity"``.
A symbol two sleeves ask for is attributed to each in proportion to what it asked: sleeve ``s``
holds ``w_i x a_si / t_i`` of symbol ``i``, where ``a_si`` is the sleeve's contribution to the
symbol's target ``t_i``; a sleeve's weight before or after the trades is the sum over its symbols.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from finwiz.errors import InvalidPortfolioError
from finwiz.schemas._base import canonical_symbol

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Model", "sleeves_frame", "sleeves_from_targets"]

_SUM_SLACK = 1e-9
_SEP = "/"


def _model_name(name: object) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text or _SEP in text:
        raise InvalidPortfolioError(f"model name {name!r} must be a non-empty text without {_SEP!r}", field="model")
    return text


class Model:
    """A model portfolio: ``Model("growth", {"VTI": 0.6, "BND": 0.4})``, whose components are
    symbols or other models (``Model("balanced", {us_equity: 0.5, bonds: 0.5})``) and whose weights
    are finite, at least 0 and sum to 1.

    :meth:`target_weights` flattens it (a symbol's target is the sum, over the paths that reach it,
    of the product of the weights along the path); :meth:`sleeve_weights` keeps each sleeve's part.
    Pass it as ``PortfolioConfiguration(target_weights=model)``: the configuration takes the flat
    weights and keeps the sleeves, so ``result.sleeves()`` measures drift per sleeve. Models named
    in a file refer to each other by name: :meth:`from_definitions`, which refuses a cycle. Two
    different models with one name in a tree are refused (a sleeve's path must name one model).
    """

    __slots__ = ("components", "name")

    def __init__(self, name: str, weights: Mapping[str | Model, float]) -> None:
        self.name = _model_name(name)
        if not isinstance(weights, Mapping) or not weights:
            raise InvalidPortfolioError(f"model {self.name}: weights must be a non-empty mapping", field="model")
        components: dict[str | Model, float] = {}
        for key, raw in weights.items():
            part: str | Model = key if isinstance(key, Model) else canonical_symbol(key)
            label = part.name if isinstance(part, Model) else part
            if part in components:
                raise InvalidPortfolioError(f"model {self.name}: {label} is listed twice", field="model")
            ok = isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw) and raw >= 0
            if not ok:
                raise InvalidPortfolioError(
                    f"model {self.name}: the weight of {label} is {raw!r}, not a finite number >= 0", field="model"
                )
            components[part] = float(raw)
        total = math.fsum(components.values())
        if abs(total - 1.0) > _SUM_SLACK:
            raise InvalidPortfolioError(f"model {self.name}: weights sum to {total:.10g}, not 1", field="model")
        self.components: tuple[tuple[str | Model, float], ...] = tuple(components.items())
        self._check_names()

    def __repr__(self) -> str:
        parts = ", ".join(f"{c.name if isinstance(c, Model) else c!r}: {w:g}" for c, w in self.components)
        return f"Model({self.name!r}, {{{parts}}})"

    def _check_names(self) -> None:
        seen: dict[str, Model] = {}
        stack: list[Model] = [self]
        while stack:
            model = stack.pop()
            if seen.setdefault(model.name, model) is not model:
                raise InvalidPortfolioError(
                    f"model {self.name}: two different models are named {model.name!r}", field="model"
                )
            stack.extend(c for c, _ in model.components if isinstance(c, Model))

    @classmethod
    def from_definitions(cls, definitions: Mapping[str, Mapping[str, float]], root: str) -> Model:
        """The model ``root`` of ``definitions`` (model name -> {component: weight}), where a
        component that is the name of a definition is that model and any other is a symbol; a
        cycle (a model that contains itself) is refused, naming it."""
        built: dict[str, Model] = {}

        def build(name: str, path: tuple[str, ...]) -> Model:
            if name in path:
                cycle = " -> ".join((*path[path.index(name) :], name))
                raise InvalidPortfolioError(f"models: a cycle {cycle}", field="model")
            if name not in built:
                if name not in definitions:
                    raise InvalidPortfolioError(f"models: no model named {name!r}", field="model")
                weights = definitions[name]
                parts = {(build(k, (*path, name)) if k in definitions else k): w for k, w in weights.items()}
                built[name] = cls(name, parts)
            return built[name]

        return build(root, ())

    def paths(self) -> Iterator[tuple[tuple[str, ...], str, float]]:
        """Every (model path, symbol, weight of the symbol in the root through that path)."""
        stack: list[tuple[Model, tuple[str, ...], float]] = [(self, (self.name,), 1.0)]
        while stack:
            model, path, scale = stack.pop()
            for part, weight in model.components:
                if isinstance(part, Model):
                    stack.append((part, (*path, part.name), scale * weight))
                else:
                    yield path, part, scale * weight

    def target_weights(self) -> dict[str, float]:
        """The flat target weights: per symbol, the sum over its paths of the weights' product."""
        out: dict[str, float] = {}
        for _, symbol, weight in self.paths():
            out[symbol] = out.get(symbol, 0.0) + weight
        return out

    def sleeve_weights(self) -> dict[str, dict[str, float]]:
        """Per sleeve (every model of the tree, by path ``"root/child"``), what it contributes to
        each symbol's flat target weight."""
        out: dict[str, dict[str, float]] = {}
        for path, symbol, weight in self.paths():
            for depth in range(1, len(path) + 1):
                sleeve = out.setdefault(_SEP.join(path[:depth]), {})
                sleeve[symbol] = sleeve.get(symbol, 0.0) + weight
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per path to a symbol: ``sleeve`` (the path of the model asking), ``symbol``,
        ``weight`` (its part of the flat target)."""
        import pandas as pd

        rows = [(_SEP.join(path), symbol, weight) for path, symbol, weight in self.paths()]
        return pd.DataFrame(rows, columns=["sleeve", "symbol", "weight"])


def sleeves_from_targets(data: Any) -> Any:
    """The configuration's input with a :class:`Model` as ``target_weights`` replaced by its flat
    weights and its sleeves (``sleeves``); other input as it is."""
    if not isinstance(data, Mapping) or not isinstance(data.get("target_weights"), Model):
        return data
    if data.get("sleeves"):
        raise InvalidPortfolioError("sleeves: given with a Model as target_weights, which sets them", field="sleeves")
    model: Model = data["target_weights"]
    return {**data, "target_weights": model.target_weights(), "sleeves": model.sleeve_weights()}


def sleeves_frame(
    sleeves: Mapping[str, Mapping[str, float]],
    before: Mapping[str, float],
    after: Mapping[str, float],
    trade_values: Mapping[str, float],
) -> pd.DataFrame:
    """Per sleeve: ``depth`` (1: the root model), its ``target`` weight, its weight ``before`` and
    ``after`` the trades, ``drift_before`` / ``drift_after`` (weight - target) and the
    ``trade_value`` of the trades attributed to it (see the module docstring)."""
    import pandas as pd

    columns = ["depth", "target", "before", "after", "drift_before", "drift_after", "trade_value"]
    totals: dict[str, float] = {}
    for name, parts in sleeves.items():
        if name.count(_SEP) == 0:
            for symbol, weight in parts.items():
                totals[symbol] = totals.get(symbol, 0.0) + weight
    rows = []
    for name, parts in sleeves.items():
        share = {s: w / totals[s] for s, w in parts.items() if totals.get(s, 0.0) > 0}
        target = math.fsum(parts.values())
        was = math.fsum(before.get(s, 0.0) * k for s, k in share.items())
        now = math.fsum(after.get(s, 0.0) * k for s, k in share.items())
        traded = math.fsum(trade_values.get(s, 0.0) * k for s, k in share.items())
        rows.append((name.count(_SEP) + 1, target, was, now, was - target, now - target, traded))
    index = pd.Index(list(sleeves), name="sleeve")
    return pd.DataFrame(rows, columns=columns, index=index).astype({"depth": "int64"})


def sleeve_trades_frame(sleeves: Mapping[str, Mapping[str, float]], trade_values: Mapping[str, float]) -> pd.DataFrame:
    """Which model asked for each trade: one row per traded symbol and leaf sleeve (a model of the
    tree with symbols of its own) asking for it, with ``trade_value`` its part of the signed trade
    value (in proportion to what each asked); a traded symbol no sleeve asks for has sleeve ``""``."""
    import pandas as pd

    own: dict[str, dict[str, float]] = {}  # the part each sleeve asks for itself, not through children
    for name, parts in sleeves.items():
        mine = dict(parts)
        for child, inner in sleeves.items():
            if child.rsplit(_SEP, 1)[0] == name and child != name:
                for symbol, weight in inner.items():
                    mine[symbol] = mine.get(symbol, 0.0) - weight
        own[name] = {s: w for s, w in mine.items() if w > 1e-15}
    totals: dict[str, float] = {}
    for parts in own.values():
        for symbol, weight in parts.items():
            totals[symbol] = totals.get(symbol, 0.0) + weight
    rows = []
    for symbol, value in trade_values.items():
        askers = [(name, parts[symbol]) for name, parts in own.items() if symbol in parts]
        if not askers:
            rows.append(("", symbol, value))
        rows += [(name, symbol, value * weight / totals[symbol]) for name, weight in askers]
    return pd.DataFrame(rows, columns=["sleeve", "symbol", "trade_value"])
