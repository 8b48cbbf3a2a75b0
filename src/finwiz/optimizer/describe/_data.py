"""From a validated configuration and prices to the arrays one solve needs (:class:`ProblemData`).

All weights here are fractions of the *reference value* ``V_ref = V + cash_flow`` (value before
trading plus the deposit, or minus the withdrawal). With costs ``c`` (also a fraction of
``V_ref``) the post-trade value is ``V' = V_ref (1 - c)``, so a cap ``x_i / (1 - c) <= cap`` is
the linear ``x_i + cap c <= cap``: caps hold exactly on post-trade weights.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from finwiz.errors import InsufficientPriceDataError, InvalidPortfolioError, PriceDataError
from finwiz.optimizer.describe._costs import square_root_impact
from finwiz.optimizer.tax._tax import LotBook, lot_book
from finwiz.risk import FactorModel
from finwiz.schemas import PortfolioConfiguration, require_data
from finwiz.settings import RebalancingSettings

__all__ = ["MarketImpactModel", "ProblemData", "build_problem_data", "check_size", "coerce_prices"]

TRADE_PENALTY_FRACTION = 0.1
"""Default price of one trade in MINIMIZE_TRADES: this fraction of the mean squared drift, so the
penalty scales with the portfolio (a fixed 1e-6 stopped every trade in a 500-asset book, whose
drifts are ~1e-3). An asset is then traded when fixing it gains more than a tenth of a typical
asset's squared drift, i.e. drifts under ~0.3x the RMS drift are left alone."""
NOISE_VALUE = 0.01
"""Currency: a trade worth less than a cent is solver noise, not a trade (rounding and engine)."""
INITIAL_BACKOFF = 0.0  # weight units; raised only when rounding finds no whole-share neighbour
FRACTIONAL_LOT = 1e-6
"""Fractional trades are in millionths of a share (what brokers accept), which also makes them
bit-for-bit repeatable: solver noise of 1e-15 cannot change the answer."""


@dataclass(frozen=True)
class MarketImpactModel:
    """Square-root-law impact: cost_i = coefficient x sigma_i x |T_i|^{3/2} / sqrt(ADV_i).

    ``volatility`` is per-asset return volatility over the horizon of ``daily_dollar_volume``
    (e.g. daily), both labelled by symbol; ``coefficient`` is the usual O(1) constant.
    """

    daily_dollar_volume: pd.Series
    volatility: pd.Series
    coefficient: float = 1.0

    def __post_init__(self) -> None:
        """Refuse, naming the field and symbol, what the impact term cannot price: a coefficient
        that is not a finite number >= 0, volumes or volatilities not a Series by symbol, a
        duplicated symbol, a volume that is not positive or a volatility not finite and >= 0."""
        k = self.coefficient
        if (
            isinstance(k, bool)
            or not isinstance(k, int | float | np.integer | np.floating)
            or not (math.isfinite(k) and k >= 0)
        ):
            raise InvalidPortfolioError(
                f"market impact: coefficient must be a finite number >= 0, not {k!r}", field="market_impact"
            )
        object.__setattr__(self, "coefficient", float(k))
        for name, positive in (("daily_dollar_volume", True), ("volatility", False)):
            series = getattr(self, name)
            if not isinstance(series, pd.Series):
                raise InvalidPortfolioError(
                    f"market impact: {name} must be a pandas Series labelled by symbol, not {type(series).__name__}",
                    field=f"market_impact.{name}",
                )
            if series.index.has_duplicates:
                symbol = str(series.index[series.index.duplicated()][0])
                raise InvalidPortfolioError(
                    f"market impact: {name} lists {symbol} twice", field=f"market_impact.{name}", symbol=symbol
                )
            values = pd.to_numeric(series, errors="coerce").to_numpy(float)
            if series.dtype.kind in "iuf":
                numbers = np.ones(len(series), bool)
            else:  # text, booleans, objects: each cell looked at
                numbers = np.array([_is_number(v) for v in series], dtype=bool)
            bad = ~numbers | ~np.isfinite(values) | ((values <= 0) if positive else (values < 0))
            if bad.any():
                i = int(np.argmax(bad))
                symbol = str(series.index[i])
                need = "a positive finite number" if positive else "a finite number >= 0"
                raise InvalidPortfolioError(
                    f"market impact: {name} of {symbol} is {series.iloc[i]!r}, not {need}",
                    field=f"market_impact.{name}",
                    symbol=symbol,
                )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


@dataclass(frozen=True, eq=False)
class ProblemData:
    """Every array a solve needs, aligned to ``symbols`` (see the module docstring for units)."""

    symbols: tuple[str, ...]
    prices: np.ndarray
    shares: np.ndarray
    cash: float
    cash_flow: float
    value: float
    ref_value: float
    x0: np.ndarray
    cash0: float
    current_weights: np.ndarray
    target: np.ndarray
    cash_target: float
    cost_rate: np.ndarray
    blocked: Mapping[str, np.ndarray]  # assets a reason forbids to trade (see ``_terms.TradeBoundsTerm``)
    position_cap: np.ndarray | None
    position_floor: np.ndarray | None
    sector_names: tuple[str, ...]
    sector_of: np.ndarray
    sector_cap: np.ndarray | None
    esg: np.ndarray | None
    esg_floor: float | None
    turnover_cap: float | None
    min_cash_weight: float
    allow_short: bool
    gross_limit: float | None  # max sum of |post-trade weights| (long/short only)
    lot: np.ndarray
    fractional: bool
    min_trade_value: float
    trade_penalty: float
    risk_aversion: float
    factor_root: np.ndarray | None = None
    idio_sd: np.ndarray | None = None
    impact: np.ndarray | None = None  # k_i with impact_i = k_i |u_i|^{3/2} (u in V_ref units)
    lots: LotBook | None = None  # a taxable account's lots (``tax`` settings given)
    backoff: float = 0.0  # every coupled limit is tightened by this (weight units) to leave room for rounding
    # The per-rebalance context of the solves of one rebalance (terms keep no state): the L1
    # weights of the trade count's re-weighting, and whether this is the debias solve.
    count_weights: np.ndarray | None = None
    debias: bool = False
    # What an iterative term (``Term.refine``) carries from one solve to the next, by its own keys.
    options: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what the user should know about how the request was read (result warnings)
    turnover_exempt: float = 0.0  # V_ref units of traded value the turnover cap does not count (the cash flow)
    min_position_value: float = 0.0  # currency: a post-trade position is zero or at least this (0: none)

    @property
    def crossing(self) -> np.ndarray:
        """The assets that must cross sides (``side`` against the holding): a long holding whose
        side is short, or a short one whose side is long. Each must trade at least its holding, so
        no step may leave its trade out as small."""
        if not self.allow_short:
            return np.zeros(self.n, bool)
        return np.asarray(((self.side < 0) & (self.shares > 0)) | ((self.side > 0) & (self.shares < 0)))

    @property
    def n(self) -> int:
        """Number of assets."""
        return len(self.symbols)

    @property
    def side(self) -> np.ndarray:
        """Each asset's side after trading, +1 (``w_i >= 0``) or -1 (``w_i <= 0``): the side of its
        target, for a zero target the side of its holding (a position floor: long). An asset that
        would have to cross sides but may not trade that way (a restricted list, its band, the ESG
        screen, fixed by a re-solve) keeps the side of its holding. Long-only: all +1.

        With the side fixed, ``|w_i| = side_i w_i`` is linear: gross exposure is one row.
        """
        if not self.allow_short:
            return np.ones(self.n)
        held = np.where(self.x0 < 0, -1.0, 1.0)
        floored = self.position_floor is not None and self.position_floor > 0
        side = np.where(self.target > 0, 1.0, np.where(self.target < 0, -1.0, held))
        side = np.where(floored, 1.0, side)
        b = self.blocked
        no_sell = b["no_trade"] | b["no_sell"] | b["tolerance_band"] | b["fixed"] | b["buy_only"]
        no_buy = b["no_trade"] | b["no_buy"] | b["tolerance_band"] | b["esg_screen"] | b["fixed"] | b["sell_only"]
        stuck = ((side < 0) & (self.x0 > 0) & no_sell) | ((side > 0) & (self.x0 < 0) & no_buy)
        return np.asarray(np.where(stuck, held, side))

    def fix(self, assets: np.ndarray) -> ProblemData:
        """The same request with ``assets`` (a mask) not traded: reason ``fixed``."""
        return dataclasses.replace(self, blocked={**self.blocked, "fixed": self.blocked["fixed"] | assets})


def coerce_prices(prices: Mapping[str, Any] | pd.Series, symbols: Sequence[str]) -> np.ndarray:
    """Prices for ``symbols`` as a float array; refuse missing, non-numeric, non-finite or <= 0.

    ``prices`` may map symbols to numbers or to objects with a ``price`` attribute (``PriceData``).
    """
    if (
        isinstance(prices, pd.Series)
        and pd.api.types.is_numeric_dtype(prices.dtype)
        and not pd.api.types.is_bool_dtype(prices.dtype)
    ):
        fast = _numeric_series(prices, symbols)
        if fast is not None:
            return fast
    if isinstance(prices, pd.Series):
        items: list[tuple[Any, Any]] = list(prices.items())
    elif isinstance(prices, Mapping):
        items = list(prices.items())
    else:
        raise InvalidPortfolioError("prices must be a mapping or a pandas Series of symbol -> price", field="prices")
    table: dict[str, Any] = {}
    for raw, value in items:
        symbol = str(raw).strip().upper()
        if symbol in table:
            raise InvalidPortfolioError(f"prices: symbol {symbol} is given twice", field="prices", symbol=symbol)
        table[symbol] = getattr(value, "price", value)
    missing = [s for s in symbols if s not in table]
    if missing:
        raise InsufficientPriceDataError(dict.fromkeys(missing, "no price given"))
    out = np.empty(len(symbols))
    for i, symbol in enumerate(symbols):
        value = table[symbol]
        # Text ("110.3", "1,234.5") is the data layer's to parse (finwiz.data.parse_price), and a
        # boolean is no price: float() would quietly take both.
        if isinstance(value, str | bytes | bool | np.bool_):
            raise PriceDataError(symbol, f"price {value!r} is not a number (text and booleans are refused)")
        try:
            price = float(value)
        except (TypeError, ValueError) as exc:
            raise PriceDataError(symbol, f"price {value!r} is not a number") from exc
        if not math.isfinite(price) or price <= 0:
            raise PriceDataError(symbol, f"price {price} is not a positive finite number")
        out[i] = price
    return out


def _numeric_series(prices: pd.Series, symbols: Sequence[str]) -> np.ndarray | None:
    """The common case without a per-item loop: a numeric Series whose labels are canonical,
    unique and cover ``symbols``, with positive finite values for them. None otherwise: the
    general path then names the missing, repeated or bad symbol."""
    labels = prices.index.tolist()
    if labels == list(symbols):  # the same universe in the same order (symbols are canonical)
        picked = prices.to_numpy(dtype=float)
    else:
        if not prices.index.is_unique or not all(isinstance(s, str) and s.strip().upper() == s for s in labels):
            return None
        picked = prices.reindex(list(symbols)).to_numpy(dtype=float)
    if not (np.isfinite(picked).all() and (picked > 0).all()):
        return None
    return np.asarray(picked)


def _per_symbol(values: Mapping[str, float], symbols: Sequence[str], default: float) -> np.ndarray:
    if not values:  # the usual case (no per-symbol rates, lots, caps): no per-asset loop
        return np.full(len(symbols), default, dtype=float)
    return np.array([values.get(s, default) for s in symbols], dtype=float)


def _mask(selected: Sequence[str], symbols: Sequence[str]) -> np.ndarray:
    if not selected:
        return np.zeros(len(symbols), dtype=bool)
    chosen = set(selected)
    return np.array([s in chosen for s in symbols], dtype=bool)


def build_problem_data(
    config: PortfolioConfiguration,
    prices: Mapping[str, Any] | pd.Series,
    *,
    factor_model: FactorModel | None = None,
    covariance: pd.DataFrame | None = None,
    market_impact: MarketImpactModel | None = None,
    extra_caps: Mapping[str, Any] | None = None,
    settings: RebalancingSettings | None = None,
) -> ProblemData:
    """Validate the request against the prices and assemble :class:`ProblemData`.

    ``settings`` gives the size ceilings (``max_assets``, ``max_lots``; default: the process's
    :class:`~finwiz.RebalancingSettings`, read once).

    ``extra_caps`` folds in limits contributed by custom constraints: ``max_sector_weight``,
    ``min_esg_score`` and ``min_average_esg_score`` (the tightest of all sources wins).
    """
    check_size(config, settings)
    symbols = config.symbols
    extra = dict(extra_caps or {})
    price = coerce_prices(prices, symbols)
    book = _book(config, price)
    target = _per_symbol(config.target_weights, symbols, 0.0)
    notes: list[str] = []
    # A symbol's own cap, else the portfolio's, else none. (A cap of 0 means "hold none": the
    # former per-symbol ``position_cap(s) or inf`` read it as no cap at all.)
    default_position_cap = config.max_position_weight if config.max_position_weight is not None else math.inf
    cap = _per_symbol(config.max_position_weights, symbols, default_position_cap)
    floor = _per_symbol(config.min_position_weights, symbols, 0.0)
    esg, min_esg = _esg(config, extra)
    gross = float(np.abs(target).sum())
    if config.gross_exposure_limit is not None and gross > config.gross_exposure_limit + 1e-9:
        notes.append(
            f"the targets' gross exposure {gross:.4g} is above max_gross_exposure "
            f"{config.gross_exposure_limit:g}: the closest portfolio within the cap is returned"
        )
    esg_floor = _tightest(max, config.min_average_esg_score, extra.get("min_average_esg_score"))
    if esg_floor is not None and config.allow_short and ((target < 0) | (book.x0 < 0)).any():
        # The floor is a value-weighted average over net weights, s'w / 1'w: with short positions
        # the net invested 1'w may be zero or negative, where that average means nothing.
        raise InvalidPortfolioError(
            "min_average_esg_score: the average score of a book with short targets or positions is "
            "not defined (net weights); use min_esg_score to screen buys",
            field="min_average_esg_score",
        )
    blocked = _blocked(config, book, target, cap, floor, esg, min_esg, notes)
    target, cash_target = _mode_targets(config, book, target, blocked)
    lots = lot_book(config, price)
    blocked["wash_sale"] = lots.no_buy if lots is not None else np.zeros(len(symbols), bool)
    # The sides the engine fixes in a taxable account (see ``_engine``): sells only, buys only.
    blocked["tax_sells_only"] = np.zeros(len(symbols), bool)
    blocked["tax_buys_only"] = np.zeros(len(symbols), bool)
    sector_names, sector_of, sector_cap = _sectors(config, extra, notes)
    factor_root, idio_sd = _risk_model(symbols, factor_model, covariance)
    lot = _per_symbol(config.lot_sizes, symbols, FRACTIONAL_LOT if config.allow_fractional_shares else 1.0)
    _odd_lot_notes(symbols, book.shares, lot, book.x0 > target, notes)
    return ProblemData(
        symbols=tuple(symbols),
        prices=price,
        shares=book.shares,
        cash=config.cash,
        cash_flow=config.cash_flow,
        value=book.value,
        ref_value=book.ref_value,
        x0=book.x0,
        cash0=(config.cash + config.cash_flow) / book.ref_value,
        current_weights=book.position_value / book.value,
        target=target,
        cash_target=cash_target,
        cost_rate=_per_symbol(config.transaction_cost_rates, symbols, config.transaction_cost_rate),
        blocked=blocked,
        position_cap=cap if np.isfinite(cap).any() else None,
        position_floor=floor if (floor > 0).any() else None,
        sector_names=sector_names,
        sector_of=sector_of,
        sector_cap=sector_cap,
        esg=esg,
        esg_floor=esg_floor,
        turnover_cap=config.max_turnover,
        turnover_exempt=abs(config.cash_flow) / book.ref_value if config.turnover_excludes_cash_flow else 0.0,
        min_position_value=config.min_position_value or 0.0,
        min_cash_weight=config.min_cash_weight,
        allow_short=config.allow_short,
        lot=lot,
        fractional=config.allow_fractional_shares,
        min_trade_value=config.min_trade_size,
        trade_penalty=(
            TRADE_PENALTY_FRACTION * float(np.mean((book.x0 - target) ** 2))
            if config.trade_penalty is None
            else config.trade_penalty
        ),
        risk_aversion=config.risk_aversion,
        factor_root=factor_root,
        idio_sd=idio_sd,
        impact=None if market_impact is None else _impact_coefficients(market_impact, symbols, book.ref_value),
        lots=lots,
        backoff=INITIAL_BACKOFF,
        gross_limit=config.gross_exposure_limit,
        notes=tuple(notes),
    )


@functools.lru_cache(maxsize=4)
def _settings_for(max_assets: str | None, max_lots: str | None) -> RebalancingSettings:
    # Reading settings costs milliseconds (environment, .env): read once per value of the two
    # variables, so a changed REBALANCING_MAX_ASSETS or REBALANCING_MAX_LOTS is still seen.
    return RebalancingSettings()


def _process_settings() -> RebalancingSettings:
    return _settings_for(os.environ.get("REBALANCING_MAX_ASSETS"), os.environ.get("REBALANCING_MAX_LOTS"))


def check_size(config: PortfolioConfiguration, settings: RebalancingSettings | None = None) -> None:
    """Refuse a book past the size ceilings (``max_assets``, ``max_lots`` of ``settings``, default
    the process's settings) before any work, naming the setting that raises them."""
    limits = settings if settings is not None else _process_settings()
    bound = len(config.holdings) + len(config.target_weights)  # at least the number of assets
    assets = len(config.symbols) if bound > limits.max_assets else bound
    if assets > limits.max_assets:
        raise InvalidPortfolioError(
            f"the book has {assets:,} assets, above max_assets {limits.max_assets:,} "
            f"(raise it with REBALANCING_MAX_ASSETS or RebalancingSettings(max_assets=...))",
            field="holdings",
        )
    if config.tax is None:
        return  # lots are read only by a tax-aware rebalance
    lots = sum(len(h.lots) for h in config.holdings if h.lots)
    if lots > limits.max_lots:
        raise InvalidPortfolioError(
            f"the book has {lots:,} tax lots, above max_lots {limits.max_lots:,} "
            f"(raise it with REBALANCING_MAX_LOTS or RebalancingSettings(max_lots=...))",
            field="lots",
        )


@dataclass(frozen=True)
class _Book:
    """What is held, in shares and value: ``x0`` as fractions of ``V_ref``."""

    shares: np.ndarray
    position_value: np.ndarray
    value: float
    ref_value: float
    x0: np.ndarray


def _book(config: PortfolioConfiguration, price: np.ndarray) -> _Book:
    held = config.shares_by_symbol()
    shares = np.array([held[s] for s in config.symbols], dtype=float)
    position_value = shares * price
    value = float(position_value.sum() + config.cash)
    if value <= 0:
        raise InvalidPortfolioError("portfolio value is zero: nothing held and no cash", field="holdings")
    ref_value = value + config.cash_flow
    if ref_value <= 0:
        raise InvalidPortfolioError(
            f"cash_flow: withdrawal of {-config.cash_flow:,.2f} is not below the portfolio value {value:,.2f}",
            field="cash_flow",
        )
    if config.min_trade_size > value:
        raise InvalidPortfolioError(
            f"min_trade_size {config.min_trade_size:,.2f} exceeds the whole portfolio value {value:,.2f}",
            field="min_trade_size",
        )
    return _Book(shares, position_value, value, ref_value, position_value / ref_value)


def _tightest(pick: Any, *values: float | None) -> float | None:
    """The tightest of the limits given (``pick`` is min for caps, max for floors), or None."""
    return pick((v for v in values if v is not None), default=None)  # type: ignore[no-any-return]


def _esg(config: PortfolioConfiguration, extra: Mapping[str, Any]) -> tuple[np.ndarray | None, float | None]:
    """Scores (when an ESG limit is set) and the screen's minimum score."""
    min_esg = _tightest(max, config.min_esg_score, extra.get("min_esg_score"))
    if config.esg_constrained or min_esg is not None or extra.get("min_average_esg_score") is not None:
        require_data(config.symbols, config.esg_scores, "esg_scores", "an ESG limit is set but no score is given")
        return _per_symbol(config.esg_scores, config.symbols, 0.0), min_esg
    return None, min_esg


def _odd_lot_notes(
    symbols: Sequence[str], shares: np.ndarray, lot: np.ndarray, overweight: np.ndarray, notes: list[str]
) -> None:
    """Say which overweight positions are smaller than their lot: they can only be sold out whole."""
    odd = np.flatnonzero(overweight & (shares > 0) & (shares < lot - 1e-9))
    if odd.size:
        named = ", ".join(f"{symbols[i]} ({shares[i]:g} held, lot {lot[i]:g})" for i in odd[:5])
        more = f" and {odd.size - 5} more" if odd.size > 5 else ""
        notes.append(f"positions smaller than their lot can only be sold out whole, not trimmed: {named}{more}")


def _blocked(
    config: PortfolioConfiguration,
    book: _Book,
    target: np.ndarray,
    cap: np.ndarray,
    floor: np.ndarray,
    esg: np.ndarray | None,
    min_esg: float | None,
    notes: list[str],
) -> dict[str, np.ndarray]:
    """Which assets each reason forbids to trade (restricted lists, the band, the ESG screen)."""
    symbols, n, x0 = config.symbols, len(config.symbols), book.x0
    blocked: dict[str, np.ndarray] = {
        "no_trade": _mask(config.no_trade, symbols),
        "no_buy": _mask(config.no_buy, symbols),
        "no_sell": _mask(config.no_sell, symbols),
    }
    # Assets breaching their own cap or floor must be free to trade even inside the band.
    # Drift is measured after the cash flow (x0 = value / V_ref), so a deposit or a withdrawal
    # moves assets out of their band instead of leaving the money uninvested.
    size = np.abs(x0)  # caps bound |weight| (a short position's size too)
    breaching = (size > cap) | ((floor > 0) & (x0 < floor - 1e-12))
    drift = np.abs(x0 - target)
    # A band of width zero (tolerance 0, or a relative band on a zero target) is no band: it
    # freezes nothing, not even an asset sitting exactly on its target.
    width = np.broadcast_to(np.asarray(config.band_width(target), dtype=float), drift.shape)
    blocked["tolerance_band"] = (drift <= width) & (width > 0) & ~breaching
    # Large drift: the book as a whole is further from its target (half the sum of |w - w*|,
    # cash included: the share of the portfolio that would have to change hands) than a single
    # asset may be (``tolerance``). With every asset inside its band nothing trades, which on a
    # wide book with small targets is an absolute band's blind spot, not a balanced portfolio.
    cash_gap = abs((config.cash + config.cash_flow) / book.ref_value - config.cash_target)
    total_drift = 0.5 * float(drift.sum() + cash_gap)
    if n > 1 and blocked["tolerance_band"].all() and total_drift > config.tolerance:
        notes.append(
            f"every asset is inside its tolerance band, so nothing is traded, yet the portfolio is "
            f"{total_drift:.4g} away from its target (half the sum of |weight - target|, above tolerance "
            f"{config.tolerance:g}); a relative band (relative_tolerance=0.25, the 5/25 rule) or a smaller "
            f"tolerance would rebalance it"
        )
    screened = (esg < min_esg) if (esg is not None and min_esg is not None) else np.zeros(n, bool)
    # The screen keeps low scorers out of the long book. An asset whose side is short (a short
    # target, or a zero target held short) may still buy back its short: its side bound stops
    # the buy at zero, so the screened asset is never held long.
    short_side = ((target < 0) | ((target == 0) & (x0 < 0))) & ~(floor > 0) if config.allow_short else np.zeros(n, bool)
    blocked["esg_screen"] = screened & ~short_side
    blocked["fixed"] = np.zeros(n, bool)  # set by the engine's own re-solves, never by the user
    # The mode forbids a side to every asset: one reason each, so a conflict names the mode.
    blocked["buy_only"] = np.full(n, config.mode == "buy_only")  # no asset is sold
    blocked["sell_only"] = np.full(n, config.mode == "sell_only")  # no asset is bought
    if config.mode == "sell_only" and config.cash_flow > 0:
        notes.append(
            f"mode sell_only buys nothing: the deposit of {config.cash_flow:,.2f} stays in cash "
            f"(mode buy_only or full invests it)"
        )
    no_sell = blocked["no_trade"] | blocked["no_sell"] | blocked["tolerance_band"] | blocked["buy_only"]
    no_buy = (
        blocked["no_trade"]
        | blocked["no_buy"]
        | blocked["tolerance_band"]
        | blocked["esg_screen"]
        | blocked["sell_only"]
    )
    frozen_over_cap = (no_sell & (x0 > cap * (1 + 1e-12))) | (no_buy & (-x0 > cap * (1 + 1e-12)))
    if frozen_over_cap.any():
        i = int(np.argmax(frozen_over_cap))
        symbol = symbols[i]
        how = (
            f"sold (no-sell, no-trade, band or mode {config.mode})"
            if x0[i] > 0
            else f"bought back (no-buy, no-trade, band, ESG screen or mode {config.mode})"
        )
        raise InvalidPortfolioError(
            f"{symbol} is above its position cap and may not be {how}",
            field="max_position_weight",
            symbol=symbol,
        )
    return blocked


def _mode_targets(
    config: PortfolioConfiguration, book: _Book, target: np.ndarray, blocked: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, float]:
    """The targets the objective tracks, and the cash target with them.

    ``band_edge``: an asset outside its band (not held by it) tracks the band's nearest edge,
    ``target + sign(x0 - target) x width``, so it trades back to the edge and no further; the cash
    target takes what the edges leave (``1 - sum`` of the tracked targets), so the money an edge
    keeps in an asset is not also wanted in cash. An asset breaching its own cap or floor is free
    to trade whatever the band says; it too stops at the edge (the cap or floor still holds).
    A band of width zero has its edge on the target. Other modes: the targets as given."""
    if config.mode != "band_edge":
        return target, config.cash_target
    width = np.broadcast_to(np.asarray(config.band_width(target), dtype=float), target.shape)
    gap = book.x0 - target
    outside = (np.abs(gap) > width) & ~blocked["tolerance_band"]
    edge = np.where(outside, target + np.sign(gap) * width, target)
    return edge, float(config.cash_target + target.sum() - edge.sum())


def _sectors(
    config: PortfolioConfiguration, extra: Mapping[str, Any], notes: list[str]
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray | None]:
    """Sector names, each asset's sector (-1: none) and each sector's cap.

    An unclassified symbol (absent from ``sectors``: the configuration drops labels such as
    "Unclassified") is in no sector and no sector cap applies to it. Caps: the more specific
    setting wins, as for positions -- ``sector_caps[x]`` replaces ``max_sector_weight`` for sector
    x, looser or tighter. A custom constraint's cap (``extra_caps``) is a limit of its own and only
    ever tightens.
    """
    symbols = config.symbols
    sector_names: tuple[str, ...] = ()
    sector_of = np.full(len(symbols), -1, dtype=np.int64)
    constraint_sector_cap = extra.get("max_sector_weight")
    capped = config.max_sector_weight is not None or bool(config.sector_caps) or constraint_sector_cap is not None
    if config.sectors or capped:
        sector_names = tuple(sorted({config.sectors[s] for s in symbols if s in config.sectors}))
        index = {name: i for i, name in enumerate(sector_names)}
        sector_of = np.array([index.get(config.sectors.get(s, ""), -1) for s in symbols], dtype=np.int64)
    if not capped:
        return sector_names, sector_of, None
    if not sector_names:
        require_data(symbols, config.sectors, "sectors", "sector caps are set but no sector is given")
    unknown = [s for s in config.sector_caps if s not in sector_names]
    if unknown:
        raise InvalidPortfolioError(f"sector_caps: no asset belongs to sector {unknown[0]!r}", field="sector_caps")
    default_cap = config.max_sector_weight if config.max_sector_weight is not None else math.inf
    tightest = constraint_sector_cap if constraint_sector_cap is not None else math.inf
    sector_cap = np.array([min(config.sector_caps.get(name, default_cap), tightest) for name in sector_names])
    unclassified = [s for s, k in zip(symbols, sector_of.tolist(), strict=True) if k < 0]
    if unclassified:
        shown = ", ".join(unclassified[:5]) + (", ..." if len(unclassified) > 5 else "")
        notes.append(
            f"{len(unclassified)} asset{'s' if len(unclassified) != 1 else ''} without a sector "
            f"({shown}): unclassified, in no sector, so no sector cap applies to them"
        )
    return sector_names, sector_of, sector_cap


def _risk_model(
    symbols: Sequence[str], factor_model: FactorModel | None, covariance: pd.DataFrame | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The factor root and idiosyncratic volatilities aligned to ``symbols`` (None: no model)."""
    if covariance is not None and factor_model is not None:
        raise InvalidPortfolioError("give either covariance or factor_model, not both", field="covariance")
    risk_field = "factor_model"
    if covariance is not None:
        factor_model, risk_field = FactorModel.from_covariance(covariance), "covariance"
    if factor_model is None:
        return None, None
    # Accounts of a model portfolio pass the same model in the same order: no copy, and its
    # factor root (an eigendecomposition) is computed once per model, not once per account.
    if factor_model.symbols == list(symbols):
        aligned = factor_model
    else:
        covered = factor_model.loadings.index
        uncovered = [s for s in symbols if s not in covered]
        if uncovered:  # named after what the user passed (a covariance is not a factor model)
            raise InvalidPortfolioError(
                f"{risk_field} has no data for {', '.join(uncovered)}", field=risk_field, symbol=uncovered[0]
            )
        aligned = factor_model.reindex(symbols)
    return aligned.exposure_root(), np.sqrt(aligned.idiosyncratic_variance.to_numpy(float))


def _impact_coefficients(model: MarketImpactModel, symbols: Sequence[str], ref_value: float) -> np.ndarray:
    """k_i such that impact_i / V_ref = k_i |u_i|^{3/2} for a trade of u_i V_ref dollars."""
    volume = model.daily_dollar_volume.reindex(list(symbols)).to_numpy(float)
    sigma = model.volatility.reindex(list(symbols)).to_numpy(float)
    bad = ~(np.isfinite(volume) & (volume > 0) & np.isfinite(sigma) & (sigma >= 0))
    if bad.any():
        symbol = symbols[int(np.argmax(bad))]
        raise InvalidPortfolioError(
            f"market impact: no positive volume or finite volatility for {symbol}",
            field="market_impact",
            symbol=symbol,
        )
    return square_root_impact(model.coefficient, sigma, volume, ref_value)
