"""Ex-ante risk of a weight vector: volatility, tracking error, VaR/CVaR and risk contributions.

The risk model is a covariance matrix, a :class:`~finwiz.risk.FactorModel` or a history of
per-period asset returns, in the units it was estimated in (e.g. daily); figures are annualised
with ``periods_per_year`` where the README says so. A factor model is never made dense: every
product ``Sigma w`` is ``G (G' w) + d * w``, so 431 assets and 10 factors cost a few thousand
multiplications. Weights are fractions of portfolio value; cash (``"CASH"``) is riskless.

Definitions (``w`` weights, ``w*`` target, ``Sigma`` the per-period covariance, ``P`` periods
per year, ``r_t = R_t . w`` the portfolio's return in period ``t`` of the history)::

    volatility         sqrt(P w' Sigma w)
    tracking_error     sqrt(P (w - w*)' Sigma (w - w*))
    risk_contributions P w o (Sigma w) / volatility          (they sum to the volatility)
    parametric VaR_a   z_a sqrt(w' Sigma w)                  (zero-mean normal, one period)
    parametric CVaR_a  sqrt(w' Sigma w) phi(z_a) / (1 - a)
    historical VaR_a   the smallest of the k = floor(T (1 - a)) largest losses -r_t
    historical CVaR_a  the mean of those k largest losses

VaR and CVaR are losses over one period as positive fractions of value (a negative figure is a
gain). With ``returns`` and no covariance or factor model, ``Sigma`` is the sample covariance of
the returns (``ddof=1``), applied as ``X' (X w) / (T - 1)`` of the centred returns ``X``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from numbers import Real
from statistics import NormalDist
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from finwiz.errors import InvalidPortfolioError
from finwiz.risk._model import FactorModel
from finwiz.schemas import CASH, RebalancingResult
from finwiz.schemas._risk import RiskMetrics, RiskModelKind

__all__ = ["DEFAULT_CONFIDENCE", "RiskMetrics", "WeightsLike", "attach_risk", "required_observations", "risk_metrics"]

DEFAULT_CONFIDENCE: tuple[float, ...] = (0.95, 0.99)
_UNCLASSIFIED = "Unclassified"
_TAIL_SLACK = 1e-9  # T (1 - a) = 5.000000000000004 or 0.9999999999999998 must count as 5 or 1

WeightsLike: TypeAlias = "Mapping[str, float] | pd.Series | np.ndarray | Sequence[float]"
"""Weights by symbol (a mapping or a Series), or an array in the risk model's symbol order."""


def required_observations(confidence: float) -> int:
    """How many returns a historical tail at ``confidence`` needs: one loss beyond the quantile."""
    return math.ceil((1.0 - _TAIL_SLACK) / (1.0 - confidence))


# -- inputs ------------------------------------------------------------------------------------


def _confidences(confidence: float | Iterable[float]) -> tuple[float, ...]:
    levels = (confidence,) if isinstance(confidence, int | float) else tuple(confidence)
    out: list[float] = []
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, Real) or not 0 < level < 1:
            raise InvalidPortfolioError(
                f"confidence: {level!r} is not a level strictly between 0 and 1", field="confidence"
            )
        if float(level) not in out:
            out.append(float(level))
    if not out:
        raise InvalidPortfolioError("confidence: at least one level is needed", field="confidence")
    return tuple(sorted(out))


def _periods(periods_per_year: float) -> float:
    if isinstance(periods_per_year, bool) or not (
        isinstance(periods_per_year, int | float) and math.isfinite(periods_per_year) and periods_per_year > 0
    ):
        raise InvalidPortfolioError(
            f"periods_per_year: {periods_per_year!r} must be a positive finite number", field="periods_per_year"
        )
    return float(periods_per_year)


def _labelled(values: Any, field: str) -> tuple[list[str], np.ndarray] | np.ndarray:
    """``values`` as (symbols, floats) without cash, or as a bare array (model order)."""

    if isinstance(values, pd.Series):
        keys: list[Any] = values.index.tolist()
        raw = values.to_numpy()
    elif isinstance(values, Mapping):
        keys, raw = list(values.keys()), np.asarray(list(values.values()), dtype=object)
    else:
        try:
            array = np.asarray(values, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InvalidPortfolioError(f"{field} must be numbers by symbol or an array", field=field) from exc
        if array.ndim != 1:
            raise InvalidPortfolioError(f"{field} must be one-dimensional, not shape {array.shape}", field=field)
        _check_finite(array, None, field)
        return array
    try:
        numbers = np.asarray(raw, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidPortfolioError(f"{field} must map symbols to numbers", field=field) from exc
    symbols = [str(k) for k in keys]
    duplicated = pd.Index(symbols).duplicated()
    if duplicated.any():
        twice = symbols[int(np.argmax(duplicated))]
        raise InvalidPortfolioError(f"{field}: symbol {twice} is listed twice", field=field, symbol=twice)
    _check_finite(numbers, symbols, field)
    if CASH in symbols:
        keep = [i for i, s in enumerate(symbols) if s != CASH]
        symbols, numbers = [symbols[i] for i in keep], numbers[keep]
    return symbols, numbers


def _check_finite(values: np.ndarray, symbols: Sequence[str] | None, field: str) -> None:

    bad = ~np.isfinite(values)
    if bad.any():
        at = int(np.argmax(bad))
        symbol = symbols[at] if symbols is not None else None
        where = f" for {symbol}" if symbol is not None else f" at position {at}"
        raise InvalidPortfolioError(f"{field}{where} is {values[at]}, not a finite number", field=field, symbol=symbol)


@dataclass(frozen=True)
class _Source:
    """The risk model restricted to the universe: ``Sigma = root root' + diag(idio)``.

    A factor model's root is ``G`` (assets x factors), a covariance's its kept exact form (see
    :meth:`FactorModel.from_covariance`); a returns history's is ``X'`` (assets x periods, centred
    and scaled by ``1 / sqrt(T - 1)``) with no idiosyncratic part.
    """

    kind: RiskModelKind
    root: np.ndarray | None = None
    idio: np.ndarray | None = None

    def times(self, x: np.ndarray) -> np.ndarray:
        """``Sigma @ x`` for an n x m block ``x``, never forming Sigma from factors or returns."""

        root = self.root if self.root is not None else np.zeros((len(x), 0))
        product = np.asarray(root @ (root.T @ x))
        return product if self.idio is None else product + self.idio[:, None] * x

    def correlation(self, symbols: list[str]) -> pd.DataFrame:
        """The asset correlation matrix (dense by nature: built only when asked)."""

        sigma = self.times(np.eye(len(symbols)))
        sd = np.sqrt(np.clip(np.diag(sigma), 0.0, None))
        scale = np.outer(sd, sd)
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.where(scale > 0, sigma / np.where(scale > 0, scale, 1.0), np.nan)
        np.fill_diagonal(corr, np.where(sd > 0, 1.0, np.nan))
        index = pd.Index(symbols, name="symbol")
        return pd.DataFrame(corr, index=index, columns=index.copy())


def _model_symbols(
    covariance: pd.DataFrame | None, factor_model: FactorModel | None, returns: pd.DataFrame | None
) -> list[str]:

    if isinstance(covariance, pd.DataFrame):
        return [str(s) for s in covariance.index]
    if isinstance(factor_model, FactorModel):
        return factor_model.symbols
    if isinstance(returns, pd.DataFrame):
        return [str(c) for c in returns.columns]
    raise InvalidPortfolioError("weights given as an array need a risk model to align with", field="weights")


def _positions(index: pd.Index, symbols: list[str], field: str) -> np.ndarray:

    if not index.is_unique:
        twice = str(index[index.duplicated()][0])
        raise InvalidPortfolioError(f"{field}: symbol {twice} appears twice", field=field, symbol=twice)
    where = index.get_indexer(pd.Index(symbols))
    if (where < 0).any():
        missing = [s for s, p in zip(symbols, where.tolist(), strict=True) if p < 0]
        raise InvalidPortfolioError(
            f"{field} is not aligned with the weights: no data for {', '.join(missing)}",
            field=field,
            symbol=missing[0],
        )
    return np.asarray(where)


def _returns_matrix(returns: pd.DataFrame, symbols: list[str]) -> np.ndarray:

    if not isinstance(returns, pd.DataFrame):
        raise InvalidPortfolioError("returns must be a DataFrame (rows: periods, columns: symbols)", field="returns")
    columns = pd.Index([str(c) for c in returns.columns])
    values = returns.to_numpy(dtype=float)[:, _positions(columns, symbols, "returns")]
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        symbol = symbols[col]
        raise InvalidPortfolioError(
            f"returns for {symbol} on {returns.index[row]} is not a finite number", field="returns", symbol=symbol
        )
    return values


def _root_source(kind: RiskModelKind, model: FactorModel, where: np.ndarray) -> _Source:
    """``model`` as ``root root' + diag(idio)`` on the assets at ``where``."""
    root = model.exposure_root()
    idio = model.idiosyncratic_variance.to_numpy(dtype=float)
    if len(where) != len(root) or not np.array_equal(where, np.arange(len(root))):
        root, idio = root[where], idio[where]
    return _Source(kind, root=root, idio=idio)


def _source(
    symbols: list[str],
    covariance: pd.DataFrame | None,
    factor_model: FactorModel | None,
    history: np.ndarray | None,
) -> _Source:

    if covariance is not None and factor_model is not None:
        raise InvalidPortfolioError("give covariance= or factor_model=, not both", field="covariance")
    if covariance is not None:
        # Checked and decomposed once per covariance object: the optimizer's kept root, or this one.
        model = FactorModel.from_covariance(covariance)
        return _root_source(
            "covariance", model, _positions(pd.Index([str(s) for s in covariance.index]), symbols, "covariance")
        )
    if factor_model is not None:
        if not isinstance(factor_model, FactorModel):
            raise InvalidPortfolioError("factor_model must be a finwiz.FactorModel", field="factor_model")
        return _root_source(
            "factor_model", factor_model, _positions(factor_model.loadings.index, symbols, "factor_model")
        )
    if history is None:
        raise InvalidPortfolioError(
            "a risk model is needed: pass covariance=, factor_model= or returns=", field="covariance"
        )
    periods = history.shape[0]
    if periods < 2:
        raise InvalidPortfolioError(
            f"returns: {periods} observation(s) cannot estimate a covariance; at least 2 are needed", field="returns"
        )
    centred = (history - history.mean(axis=0)) / math.sqrt(periods - 1)
    return _Source("returns", root=centred.T)


# -- the computation ---------------------------------------------------------------------------


def _evaluate(
    symbols: list[str],
    weights: np.ndarray,
    targets: np.ndarray | None,
    source: _Source,
    history: np.ndarray | None,
    *,
    confidence: tuple[float, ...],
    periods_per_year: float,
    sectors: Mapping[str, str] | None,
    correlation: bool,
) -> list[RiskMetrics]:
    """RiskMetrics of each column of ``weights`` (n x m), against the matching column of ``targets``."""

    m = weights.shape[1]
    block = weights if targets is None else np.hstack([weights, weights - targets])
    product = source.times(block)  # one pass over the model for every vector
    quad = np.einsum("ij,ij->j", block, product)
    quad = np.clip(quad, 0.0, None)  # rounding can make a PSD form a hair negative
    sd = np.sqrt(quad[:m])  # per period
    volatility = np.sqrt(periods_per_year) * sd
    tracking = None if targets is None else np.sqrt(periods_per_year * quad[m:])
    with np.errstate(divide="ignore", invalid="ignore"):
        contributions = np.where(
            volatility > 0, periods_per_year * weights * product[:, :m] / np.where(volatility > 0, volatility, 1.0), 0.0
        )

    var_rows, cvar_rows, method = _tails(history, weights, sd, confidence)
    sector_names, sector_totals = _sector_totals(symbols, sectors, contributions)
    corr = source.correlation(symbols) if correlation else None

    out = []
    for j in range(m):  # one RiskMetrics per weight vector (before/after), not per asset
        out.append(
            RiskMetrics(
                volatility=float(volatility[j]),
                tracking_error=None if tracking is None else float(tracking[j]),
                var=dict(zip(confidence, var_rows[:, j].tolist(), strict=True)),
                cvar=dict(zip(confidence, cvar_rows[:, j].tolist(), strict=True)),
                var_method=method,
                risk_contributions=dict(zip(symbols, contributions[:, j].tolist(), strict=True)),
                sector_risk_contributions=(
                    {} if sector_totals is None else dict(zip(sector_names, sector_totals[:, j].tolist(), strict=True))
                ),
                correlation=corr,
                risk_model=source.kind,
                periods_per_year=periods_per_year,
                observations=None if history is None else int(history.shape[0]),
            )
        )
    return out


def _tails(
    history: np.ndarray | None, weights: np.ndarray, sd: np.ndarray, confidence: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, Literal["historical", "parametric"]]:
    """VaR and CVaR (confidences x columns of ``weights``): from ``history`` when given, else
    normal with the standard deviations ``sd``."""
    if history is not None:
        for level in confidence:
            needed = required_observations(level)
            if history.shape[0] < needed:
                raise InvalidPortfolioError(
                    f"returns: {history.shape[0]} observations are too few for a historical tail at {level:g}; "
                    f"at least {needed} are needed",
                    field="returns",
                )
        losses = -np.sort(history @ weights, axis=0)  # largest loss first
        mean_of_largest = np.cumsum(losses, axis=0) / np.arange(1, len(losses) + 1)[:, None]
        tails = [math.floor(len(losses) * (1.0 - a) + _TAIL_SLACK) for a in confidence]
        var_rows = np.stack([losses[k - 1] for k in tails])  # confidences x m
        cvar_rows = np.stack([mean_of_largest[k - 1] for k in tails])
        return var_rows, cvar_rows, "historical"
    normal = NormalDist()
    z = np.array([normal.inv_cdf(a) for a in confidence])
    shortfall = np.array([normal.pdf(q) / (1.0 - a) for q, a in zip(z, confidence, strict=True)])
    var_rows, cvar_rows = z[:, None] * sd, shortfall[:, None] * sd
    return var_rows, cvar_rows, "parametric"


def _sector_totals(
    symbols: list[str], sectors: Mapping[str, str] | None, contributions: np.ndarray
) -> tuple[list[str], np.ndarray | None]:
    """The sectors (sorted; unclassified symbols in their own) and each one's summed contributions."""
    if not sectors:
        return [], None
    labels = list(map(sectors.get, symbols, repeat(_UNCLASSIFIED)))
    codes, uniques = pd.factorize(pd.Index(labels), sort=True)
    totals = np.zeros((len(uniques), contributions.shape[1]))
    np.add.at(totals, codes, contributions)
    return [str(u) for u in uniques], totals


def _aligned(values: Mapping[str, float], symbols: list[str], default: float = 0.0) -> np.ndarray:

    if len(values) >= len(symbols) and list(values)[: len(symbols)] == symbols:
        return np.fromiter(values.values(), float, count=len(symbols))
    return np.fromiter(map(values.get, symbols, repeat(default)), float, count=len(symbols))


def risk_metrics(
    weights: WeightsLike,
    *,
    target: WeightsLike | None = None,
    returns: pd.DataFrame | None = None,
    covariance: pd.DataFrame | None = None,
    factor_model: FactorModel | None = None,
    sectors: Mapping[str, str] | None = None,
    confidence: float | Iterable[float] = DEFAULT_CONFIDENCE,
    periods_per_year: float = 252,
    correlation: bool = False,
) -> RiskMetrics:
    """Risk of ``weights`` (see :class:`RiskMetrics`); the model is ``covariance``, ``factor_model``
    or, without either, the sample covariance of ``returns``.

    ``weights`` and ``target`` map symbols to fractions of value (``CASH`` is riskless and
    ignored) or are arrays in the model's symbol order; a symbol in only one of them has weight 0
    in the other. ``returns`` (rows: periods, columns: symbols) makes VaR/CVaR historical.
    ``sectors`` maps symbols to sectors for ``sector_risk_contributions`` (unmapped symbols are
    ``"Unclassified"``); ``correlation=True`` adds the asset correlation matrix.

    Raises :class:`~finwiz.errors.InvalidPortfolioError` naming the field: non-finite weights or
    target, a covariance that is not PSD or lacks a weighted symbol, a returns history shorter
    than the asked tail needs (the message says how many observations), confidence outside (0, 1).
    """

    levels = _confidences(confidence)
    periods = _periods(periods_per_year)
    labelled = _labelled(weights, "weights")
    aimed = None if target is None else _labelled(target, "target")
    if isinstance(labelled, np.ndarray) or isinstance(aimed, np.ndarray):
        # An array carries no symbols: it is in the model's order.
        symbols = _model_symbols(covariance, factor_model, returns)
    else:
        symbols = list(labelled[0])
        if aimed is not None:
            known = set(symbols)
            symbols += [s for s in aimed[0] if s not in known]
    w = _array_in(labelled, symbols, "weights")
    t = None if aimed is None else _array_in(aimed, symbols, "target")
    history = None if returns is None else _returns_matrix(returns, symbols)
    source = _source(symbols, covariance, factor_model, history)
    return _evaluate(
        symbols,
        w[:, None],
        None if t is None else t[:, None],
        source,
        history,
        confidence=levels,
        periods_per_year=periods,
        sectors=sectors,
        correlation=correlation,
    )[0]


def _array_in(values: tuple[list[str], np.ndarray] | np.ndarray, symbols: list[str], field: str) -> np.ndarray:

    if isinstance(values, np.ndarray):
        if len(values) != len(symbols):
            raise InvalidPortfolioError(
                f"{field} has {len(values)} entries but the risk model covers {len(symbols)} symbols", field=field
            )
        return values
    names, numbers = values
    if names == symbols:
        return numbers
    return _aligned(dict(zip(names, numbers.tolist(), strict=True)), symbols)


def attach_risk(
    result: RebalancingResult,
    *,
    factor_model: FactorModel | None = None,
    covariance: pd.DataFrame | None = None,
    returns: pd.DataFrame | None = None,
    confidence: float | Iterable[float] = DEFAULT_CONFIDENCE,
    periods_per_year: float = 252,
) -> RebalancingResult:
    """``result`` with ``risk_before`` (current weights) and ``risk_after`` (post-trade whole-share
    weights), each with its tracking error to the target; unchanged when no model is given."""

    if factor_model is None and covariance is None and returns is None:
        return result
    levels, periods = _confidences(confidence), _periods(periods_per_year)
    symbols = list(result.post_trade_weights)
    block = np.column_stack([_aligned(result.current_weights, symbols), _aligned(result.post_trade_weights, symbols)])
    target = _aligned(result.target_weights, symbols)
    history = None if returns is None else _returns_matrix(returns, symbols)
    source = _source(symbols, covariance, factor_model, history)
    before, after = _evaluate(
        symbols,
        block,
        np.column_stack([target, target]),
        source,
        history,
        confidence=levels,
        periods_per_year=periods,
        sectors=result.sectors,
        correlation=False,
    )
    return result.model_copy(update={"risk_before": before, "risk_after": after})
