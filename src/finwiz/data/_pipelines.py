"""Vectorized pipelines from prices to the optimizer's inputs: returns, covariance, factor model,
liquidity, and the checks that refuse or report bad data on the way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd

from finwiz.data._parsing import parse_symbols
from finwiz.errors import InsufficientPriceDataError, InvalidPortfolioError
from finwiz.risk import FactorModel, validate_covariance

# The public names are listed once, in finwiz.data.__all__ (every one is re-exported there).

_SPLIT_FACTORS = np.array([1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0, 15.0, 20.0])


class ReturnKind(StrEnum):
    """Simple returns ``p_t / p_{t-1} - 1`` or log returns ``log(p_t / p_{t-1})``."""

    SIMPLE = "simple"
    LOG = "log"


class MissingDataPolicy(StrEnum):
    """What to do with missing prices: refuse, drop the dates, or carry the last price forward."""

    RAISE = "raise"
    DROP = "drop"
    FORWARD_FILL = "forward_fill"


class CovarianceMethod(StrEnum):
    """Sample covariance, Ledoit-Wolf shrinkage, or exponentially weighted."""

    SAMPLE = "sample"
    LEDOIT_WOLF = "ledoit_wolf"
    EWMA = "ewma"


def _frame(values: object, name: str) -> pd.DataFrame:
    if not isinstance(values, pd.DataFrame):
        raise InvalidPortfolioError(f"{name} must be a pandas DataFrame", field=name)
    return values


def align_prices(prices: pd.DataFrame, symbols: Sequence[str]) -> pd.DataFrame:
    """Prices restricted and ordered to the portfolio's ``symbols``, dates sorted.

    Refuses a table with duplicate symbols or duplicate dates (:class:`InvalidPortfolioError`)
    and raises :class:`InsufficientPriceDataError` naming every symbol without a column or
    without a single price; values must be positive and finite where present.
    """
    prices = _frame(prices, "prices")
    wanted = parse_symbols(symbols)
    columns = pd.Index([str(c).strip().upper() for c in prices.columns])
    if columns.has_duplicates:
        symbol = str(columns[columns.duplicated()][0])
        raise InvalidPortfolioError(f"prices list {symbol} twice", field="prices", symbol=symbol)
    if prices.index.has_duplicates:
        day = prices.index[prices.index.duplicated()][0]
        shown = day.date() if isinstance(day, pd.Timestamp) else day
        raise InvalidPortfolioError(f"prices have duplicate dates ({shown} twice)", field="prices")
    table = prices.set_axis(columns, axis=1).sort_index()
    missing = {s: "no price column" for s in wanted if s not in table.columns}
    missing.update({s: "no prices" for s in wanted if s in table.columns and not table[s].notna().any()})
    if missing:
        raise InsufficientPriceDataError(missing)
    aligned = table[wanted].astype(float)
    values = aligned.to_numpy()
    bad = ~np.isnan(values) & ~(np.isfinite(values) & (values > 0))
    if bad.any():
        symbol = wanted[int(np.argwhere(bad)[0][1])]
        raise InvalidPortfolioError(f"prices for {symbol} include a non-positive or infinite value", symbol=symbol)
    aligned.columns.name = "symbol"
    return aligned


def compute_returns(
    prices: pd.DataFrame,
    kind: ReturnKind | str = ReturnKind.SIMPLE,
    missing: MissingDataPolicy | str = MissingDataPolicy.RAISE,
) -> pd.DataFrame:
    """Period returns of a price table (rows: dates, columns: symbols).

    ``r_t = p_t / p_{t-1} - 1`` (simple) or ``log(p_t / p_{t-1})`` (log). Missing prices are
    refused (``RAISE``, naming the symbols), their dates dropped (``DROP``, rows with any NaN),
    or the last price carried forward (``FORWARD_FILL``: a zero return on the missing day);
    leading dates before a symbol's first price are dropped under both lenient policies. A date
    given twice is refused, naming it.
    """
    prices = _frame(prices, "prices")
    if prices.index.has_duplicates:
        day = prices.index[prices.index.duplicated()][0]
        shown = day.date() if isinstance(day, pd.Timestamp) else day
        raise InvalidPortfolioError(
            f"prices: date {shown} appears twice (a return needs one price per date)", field="prices"
        )
    prices = prices.sort_index()
    kind, missing = ReturnKind(kind), MissingDataPolicy(missing)
    if missing is MissingDataPolicy.RAISE:
        gaps = prices.columns[prices.isna().any()]
        if len(gaps):
            raise InvalidPortfolioError(
                f"prices have missing values for {', '.join(map(str, gaps))}",
                field="prices",
                symbol=str(gaps[0]),
            )
    elif missing is MissingDataPolicy.FORWARD_FILL:
        prices = prices.ffill()
    prices = prices.dropna(how="any")
    values = prices.to_numpy(dtype=float)
    ratio = values[1:] / values[:-1]
    result = np.log(ratio) if kind is ReturnKind.LOG else ratio - 1.0
    return pd.DataFrame(result, index=prices.index[1:], columns=prices.columns)


def _centered(returns: pd.DataFrame) -> np.ndarray:
    values = _frame(returns, "returns").to_numpy(dtype=float)
    if values.shape[0] < 2:
        raise InvalidPortfolioError("need at least two return observations", field="returns")
    if not np.isfinite(values).all():
        column = int(np.argwhere(~np.isfinite(values))[0][1])
        symbol = str(returns.columns[column])
        raise InvalidPortfolioError(f"returns for {symbol} are not all finite", field="returns", symbol=symbol)
    return np.asarray(values - values.mean(axis=0))


def _labelled(matrix: np.ndarray, returns: pd.DataFrame) -> pd.DataFrame:
    # Symmetrize away rounding so downstream checks and solvers see an exactly symmetric matrix.
    return pd.DataFrame((matrix + matrix.T) / 2.0, index=returns.columns, columns=returns.columns)


def ledoit_wolf_covariance(returns: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Ledoit-Wolf (2004) shrinkage towards a scaled identity, and the shrinkage used.

    ``Sigma = (1 - delta) S + delta mu I`` with ``S = X'X / n`` (centred ``X``),
    ``mu = tr(S) / p`` and ``delta = min(1, b^2 / d^2)``: ``d^2 = ||S - mu I||_F^2``,
    ``b^2 = (sum_k ||x_k||^4 - n ||S||_F^2) / n^2``.
    """
    x = _centered(returns)
    n, p = x.shape
    sample = x.T @ x / n
    mu = float(np.trace(sample)) / p
    d2 = float(np.sum(sample**2)) - 2.0 * mu * float(np.trace(sample)) + mu * mu * p
    b2 = (float(np.sum(np.einsum("ij,ij->i", x, x) ** 2)) - n * float(np.sum(sample**2))) / n**2
    delta = 0.0 if d2 <= 0 else min(1.0, max(0.0, b2) / d2)
    shrunk = (1.0 - delta) * sample
    shrunk[np.diag_indices_from(shrunk)] += delta * mu
    return _labelled(shrunk, returns), delta


def ewma_covariance(returns: pd.DataFrame, halflife: float) -> pd.DataFrame:
    """Exponentially weighted covariance, recent dates weighing most.

    ``Sigma = sum_t w_t (x_t - m)(x_t - m)' / sum_t w_t`` with ``w_t = 2^{-(T - t) / halflife}``
    and ``m`` the weighted mean.
    """
    if not halflife > 0:
        raise InvalidPortfolioError(f"halflife must be positive, got {halflife}", field="halflife")
    values = _frame(returns, "returns").to_numpy(dtype=float)
    _centered(returns)  # same finiteness and length checks as the other estimators
    age = np.arange(values.shape[0] - 1, -1, -1, dtype=float)
    weights = np.exp2(-age / halflife)
    weights /= weights.sum()
    mean = weights @ values
    scaled = (values - mean) * np.sqrt(weights)[:, None]
    return _labelled(scaled.T @ scaled, returns)


def estimate_covariance(
    returns: pd.DataFrame,
    method: CovarianceMethod | str = CovarianceMethod.LEDOIT_WOLF,
    *,
    halflife: float = 63.0,
) -> pd.DataFrame:
    """Covariance of ``returns`` by ``method`` (labelled by symbol on both axes).

    Every method is a weighted Gram matrix (plus a positive multiple of the identity for
    Ledoit-Wolf), so the result is PSD by construction; finiteness is checked on the input.
    """
    method = CovarianceMethod(method)
    if method is CovarianceMethod.LEDOIT_WOLF:
        return ledoit_wolf_covariance(returns)[0]
    if method is CovarianceMethod.EWMA:
        return ewma_covariance(returns, halflife)
    x = _centered(returns)
    return _labelled(x.T @ x / (x.shape[0] - 1), returns)


def check_covariance(covariance: pd.DataFrame, symbols: Sequence[str] | None = None) -> pd.DataFrame:
    """Refuse a covariance that is non-finite, asymmetric, not PSD, or not labelled exactly by
    ``symbols`` in that order (:class:`InvalidPortfolioError`); return it unchanged otherwise."""
    validate_covariance(covariance)
    if symbols is not None:
        wanted = parse_symbols(symbols)
        if list(map(str, covariance.index)) != wanted:
            missing = [s for s in wanted if s not in covariance.index]
            detail = f"missing {', '.join(missing)}" if missing else "different symbols or order"
            raise InvalidPortfolioError(
                f"covariance is not aligned to the portfolio ({detail})",
                field="covariance",
                symbol=missing[0] if missing else None,
            )
    return covariance


def pca_factor_model(covariance: pd.DataFrame, n_factors: int) -> FactorModel:
    """Statistical factor model from the top eigenvectors of a covariance.

    ``Sigma ~ B F B' + diag(d)`` with ``B`` the ``n_factors`` leading eigenvectors, ``F`` the
    diagonal of their eigenvalues and ``d = diag(Sigma) - diag(B F B')`` (clipped at 0), so
    every asset's total variance is kept. The one eigen-decomposition also checks the input is
    PSD, so a bad matrix is refused without a second pass.
    """
    covariance = _frame(covariance, "covariance")
    p = covariance.shape[0]
    if not 1 <= n_factors <= p:
        raise InvalidPortfolioError(f"n_factors must be between 1 and {p}, got {n_factors}", field="n_factors")
    if covariance.shape != (p, p) or not covariance.index.equals(covariance.columns):
        raise InvalidPortfolioError("covariance must be square with the same symbols on both axes", field="covariance")
    sigma = covariance.to_numpy(dtype=float)
    if not np.isfinite(sigma).all():
        validate_covariance(covariance)  # names the offending symbol
    scale = max(1.0, float(np.abs(sigma).max()))
    if not np.allclose(sigma, sigma.T, atol=1e-12 * scale):
        raise InvalidPortfolioError("covariance is not symmetric", field="covariance")
    eigenvalues, eigenvectors = np.linalg.eigh(sigma)
    if eigenvalues[0] < -1e-10 * scale:
        raise InvalidPortfolioError(
            f"covariance is not positive semidefinite (smallest eigenvalue {eigenvalues[0]:.3g})",
            field="covariance",
        )
    top = eigenvalues[::-1][:n_factors]
    loadings = eigenvectors[:, ::-1][:, :n_factors]
    explained = np.einsum("ij,j,ij->i", loadings, top, loadings)
    idiosyncratic = np.clip(np.diag(sigma) - explained, 0.0, None)
    names = [f"pc{i + 1}" for i in range(n_factors)]
    return FactorModel(
        loadings=pd.DataFrame(loadings, index=covariance.index, columns=names),
        factor_covariance=pd.DataFrame(np.diag(top), index=names, columns=names),
        idiosyncratic_variance=pd.Series(idiosyncratic, index=covariance.index, name="idio"),
    )


def liquidity_profile(
    prices: pd.DataFrame,
    volumes: pd.DataFrame,
    *,
    window: int = 20,
    dollar_volume: bool = True,
) -> pd.DataFrame:
    """Average daily dollar volume and daily volatility per asset, for the market-impact term.

    Over the last ``window`` dates: ``adv = mean_t(v_t)`` (``v_t * p_t`` when ``volumes`` are in
    shares, ``dollar_volume=False``) and ``volatility = std_t(p_t / p_{t-1} - 1)``. Symbols are
    those of ``prices``; one without volume raises :class:`InsufficientPriceDataError`.
    """
    prices, volumes = _frame(prices, "prices"), _frame(volumes, "volumes")
    if window < 2:
        raise InvalidPortfolioError(f"window must be at least 2, got {window}", field="window")
    missing = {str(s): "no volume data" for s in prices.columns if s not in volumes.columns}
    if missing:
        raise InsufficientPriceDataError(missing)
    prices = prices.sort_index()
    recent = volumes[prices.columns].sort_index().iloc[-window:]
    if not dollar_volume:
        recent = recent * prices.reindex(recent.index)
    returns = prices.pct_change(fill_method=None).iloc[-window:]
    return pd.DataFrame({"adv": recent.mean(), "volatility": returns.std(ddof=1)}, index=prices.columns)


@dataclass(frozen=True)
class StaleRun:
    """``symbol``'s price stayed unchanged for ``length`` days, ``start`` to ``end`` inclusive
    (``start`` is the first day at that price)."""

    symbol: str
    start: pd.Timestamp
    end: pd.Timestamp
    length: int


@dataclass(frozen=True)
class SuspectedSplit:
    """A one-day price ratio on ``date`` within tolerance of a split factor (``ratio`` = p_t /
    p_{t-1}; ``factor`` > 1 is the split, e.g. 2.0 for 2-for-1 or 0.5 for a 1-for-2 reverse)."""

    symbol: str
    date: pd.Timestamp
    ratio: float
    factor: float


@dataclass(frozen=True)
class DataQualityReport:
    """What :func:`check_price_quality` found: stale runs, suspected unadjusted splits, gaps."""

    stale_runs: list[StaleRun] = field(default_factory=list)
    suspected_splits: list[SuspectedSplit] = field(default_factory=list)
    missing_counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not (self.stale_runs or self.suspected_splits or self.missing_counts)

    @property
    def symbols(self) -> list[str]:
        """Every symbol with a finding, sorted."""
        found = {r.symbol for r in self.stale_runs} | {s.symbol for s in self.suspected_splits}
        return sorted(found | set(self.missing_counts))

    def __str__(self) -> str:
        if self.ok:
            return "data quality: no findings"
        lines = ["data quality findings:"]
        lines += [
            f"  {r.symbol}: price unchanged for {r.length} days ({r.start.date()} to {r.end.date()})"
            for r in self.stale_runs
        ]
        lines += [
            f"  {s.symbol}: price ratio {s.ratio:.3f} on {s.date.date()} "
            f"looks like an unadjusted split (factor {s.factor:g})"
            for s in self.suspected_splits
        ]
        lines += [f"  {sym}: {n} missing prices" for sym, n in self.missing_counts.items()]
        return "\n".join(lines)


def check_price_quality(
    prices: pd.DataFrame, *, max_unchanged_days: int = 20, split_tolerance: float = 0.01
) -> DataQualityReport:
    """Report stale series, jumps that look like unadjusted splits, and interior gaps.

    A stale run is a price unchanged for more than ``max_unchanged_days`` days. A suspected
    split is a day whose ratio ``r = p_t / p_{t-1}`` satisfies ``|r * k - 1| <= tol`` or
    ``|r / k - 1| <= tol`` for a usual split factor ``k`` (1.5 to 20). Missing prices count only
    between a symbol's first and last observation.
    """
    prices = _frame(prices, "prices").sort_index()
    values = prices.to_numpy(dtype=float)
    dates = prices.index
    stale: list[StaleRun] = []
    unchanged = np.zeros(values.shape, dtype=bool)
    unchanged[1:] = values[1:] == values[:-1]
    for column in np.flatnonzero(unchanged.any(axis=0)):
        flags = np.concatenate(([False], unchanged[:, column], [False])).astype(np.int8)
        edges = np.diff(flags)
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        for first, last in zip(starts, ends, strict=True):
            length = int(last - first)  # days on which the price equalled the day before
            if length > max_unchanged_days:
                symbol = str(prices.columns[int(column)])
                stale.append(StaleRun(symbol, dates[int(first) - 1], dates[int(last) - 1], length))

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = values[1:] / values[:-1]
    down = np.abs(ratio[..., None] * _SPLIT_FACTORS - 1.0) <= split_tolerance
    up = np.abs(ratio[..., None] / _SPLIT_FACTORS - 1.0) <= split_tolerance
    splits: list[SuspectedSplit] = []
    for row, column in np.argwhere(down.any(axis=2) | up.any(axis=2)):
        r = float(ratio[row, column])
        k = float(_SPLIT_FACTORS[np.argmax(down[row, column] | up[row, column])])
        splits.append(SuspectedSplit(str(prices.columns[column]), dates[row + 1], r, k if r < 1 else 1 / k))

    observed = prices.notna()
    interior = observed.cummax() & observed[::-1].cummax()[::-1]
    gaps = (interior & ~observed).sum()
    missing = {str(s): int(n) for s, n in gaps.items() if n > 0}
    return DataQualityReport(stale, splits, missing)
