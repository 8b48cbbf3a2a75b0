"""From a validated configuration and prices to the arrays one solve needs (:class:`ProblemData`).

All weights here are fractions of the *reference value* ``V_ref = V + cash_flow`` (value before
trading plus the deposit, or minus the withdrawal). With costs ``c`` (also a fraction of
``V_ref``) the post-trade value is ``V' = V_ref (1 - c)``, so a cap ``x_i / (1 - c) <= cap`` is
the linear ``x_i + cap c <= cap``: caps hold exactly on post-trade weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from finwiz.errors import InvalidPortfolioError
from finwiz.optimizer.describe._book import (
    _Book,
    _book,
    _per_symbol,
    check_size,
    coerce_prices,
)
from finwiz.optimizer.describe._costs import CostModel
from finwiz.optimizer.describe._impact import MarketImpactModel, _impact_coefficients
from finwiz.optimizer.describe._lookthrough import Exposures, exposure_data
from finwiz.optimizer.describe._request_limits import _blocked, _esg, _mode_targets, _odd_lot_notes, _sectors, _tightest
from finwiz.optimizer.tax._tax import LotBook, lot_book
from finwiz.risk import FactorModel
from finwiz.schemas import PortfolioConfiguration
from finwiz.schemas._inputs import refuse_other_currencies
from finwiz.settings import RebalancingSettings

__all__ = [
    "MarketImpactModel",
    "ProblemData",
    "build_problem_data",
    "check_size",
    "coerce_prices",
    "tracking_distance",
]

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


def tracking_distance(weights: np.ndarray, cash_weight: float, target: np.ndarray, cash_target: float) -> float:
    """The tracking distance (README): the Euclidean distance of the weights and cash weight from their targets."""
    return float(np.sqrt(np.sum((weights - target) ** 2) + (cash_weight - cash_target) ** 2))


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
    costs: CostModel  # the one cost law: rates, and impact coefficients in V_ref units
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
    exposures: Exposures | None = None  # the look-through exposures table and its limits (``_lookthrough``)
    min_benefit: float | None = None  # the whole-share stage keeps a trade only if it beats this x its cost + tax

    @property
    def cost_rate(self) -> np.ndarray:
        """Each asset's transaction cost rate (``costs.rates``)."""
        return self.costs.rates

    @property
    def impact(self) -> np.ndarray | None:
        """k_i with impact_i = k_i |u_i|^{3/2}, u in V_ref units (``costs.impact``)."""
        return self.costs.impact

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

    def fix(self, assets: np.ndarray, **changes: Any) -> ProblemData:
        """The same request with ``assets`` (a mask) not traded: reason ``fixed``; other fields
        changed as in :meth:`evolve`."""
        return self.evolve(blocked={**self.blocked, "fixed": self.blocked["fixed"] | assets}, **changes)

    def evolve(self, **changes: Any) -> ProblemData:
        """``dataclasses.replace(self, **changes)`` without re-running ``__init__`` over every
        field (a re-solve makes several copies): there is no ``__post_init__`` to skip, and only
        the fields are copied (nothing kept beside them, which may depend on a changed field)."""
        unknown = changes.keys() - self.__dataclass_fields__.keys()
        if unknown:
            raise TypeError(f"ProblemData has no field {', '.join(sorted(unknown))}")
        copied = object.__new__(ProblemData)
        copied.__dict__.update({name: self.__dict__[name] for name in self.__dataclass_fields__}, **changes)
        return copied


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
    refuse_other_currencies(prices, config.currency)
    book = _book(config, price, symbols)
    notes: list[str] = []
    target, cash_target, cap, floor, esg, esg_floor, blocked, lots = _asset_limits(config, book, price, extra, notes)
    sector_names, sector_of, sector_cap = _sectors(config, extra, notes, symbols)
    factor_root, idio_sd = _risk_model(symbols, factor_model, covariance)
    lot = _per_symbol(config.lot_sizes, symbols, FRACTIONAL_LOT if config.allow_fractional_shares else 1.0)
    _odd_lot_notes(symbols, book.shares, lot, book.x0 > target, notes)
    return ProblemData(
        symbols=tuple(symbols),
        prices=price,
        **_book_fields(config, book),
        **_request_fields(config, book, target),
        target=target,
        cash_target=cash_target,
        costs=CostModel(
            _per_symbol(config.transaction_cost_rates, symbols, config.transaction_cost_rate),
            None if market_impact is None else _impact_coefficients(market_impact, symbols, book.ref_value),
            book.ref_value,
        ),
        blocked=blocked,
        position_cap=cap if np.isfinite(cap).any() else None,
        position_floor=floor if (floor > 0).any() else None,
        sector_names=sector_names,
        sector_of=sector_of,
        sector_cap=sector_cap,
        esg=esg,
        esg_floor=esg_floor,
        lot=lot,
        factor_root=factor_root,
        idio_sd=idio_sd,
        lots=lots,
        backoff=INITIAL_BACKOFF,
        notes=tuple(notes),
        exposures=exposure_data(config, symbols),
    )


def _book_fields(config: PortfolioConfiguration, book: _Book) -> dict[str, Any]:
    """The fields of :class:`ProblemData` the book states: holdings, cash, values, weights."""
    return {
        "shares": book.shares,
        "cash": config.cash,
        "cash_flow": config.cash_flow,
        "value": book.value,
        "ref_value": book.ref_value,
        "x0": book.x0,
        "cash0": (config.cash + config.cash_flow) / book.ref_value,
        "current_weights": book.position_value / book.value,
    }


def _request_fields(config: PortfolioConfiguration, book: _Book, target: np.ndarray) -> dict[str, Any]:
    """The fields of :class:`ProblemData` the request's own settings state (the trade count's
    price: the request's, else a fraction of the mean squared drift)."""
    penalty = config.trade_penalty
    return {
        "turnover_cap": config.max_turnover,
        "turnover_exempt": abs(config.cash_flow) / book.ref_value if config.turnover_excludes_cash_flow else 0.0,
        "min_benefit": config.min_benefit,
        "min_position_value": config.min_position_value or 0.0,
        "min_cash_weight": config.min_cash_weight,
        "allow_short": config.allow_short,
        "fractional": config.allow_fractional_shares,
        "min_trade_value": config.min_trade_size,
        "trade_penalty": TRADE_PENALTY_FRACTION * float(np.mean((book.x0 - target) ** 2))
        if penalty is None
        else penalty,
        "risk_aversion": config.risk_aversion,
        "gross_limit": config.gross_exposure_limit,
    }


def _asset_limits(
    config: PortfolioConfiguration, book: _Book, price: np.ndarray, extra: Mapping[str, Any], notes: list[str]
) -> tuple[
    np.ndarray,
    float,
    np.ndarray,
    np.ndarray,
    np.ndarray | None,
    float | None,
    dict[str, np.ndarray],
    LotBook | None,
]:
    """The targets the objective tracks (and the cash target), each asset's cap and floor, the ESG
    scores and floor, what each reason blocks, and a taxable account's lots."""
    symbols = book.symbols
    target = _per_symbol(config.target_weights, symbols, 0.0)
    # A symbol's own cap, else the portfolio's, else none. (A cap of 0 means "hold none": the
    # former per-symbol ``position_cap(s) or inf`` read it as no cap at all.)
    default_position_cap = config.max_position_weight if config.max_position_weight is not None else math.inf
    cap = _per_symbol(config.max_position_weights, symbols, default_position_cap)
    floor = _per_symbol(config.min_position_weights, symbols, 0.0)
    esg, min_esg = _esg(config, extra, symbols)
    esg_floor = _average_esg_floor(config, book, target, extra, notes)
    blocked = _blocked(config, book, target, cap, floor, esg, min_esg, notes)
    target, cash_target = _mode_targets(config, book, target, blocked)
    lots = lot_book(config, price)
    blocked["wash_sale"] = lots.no_buy if lots is not None else np.zeros(len(symbols), bool)
    # The sides the engine fixes in a taxable account (see ``_engine``): sells only, buys only.
    blocked["tax_sells_only"] = np.zeros(len(symbols), bool)
    blocked["tax_buys_only"] = np.zeros(len(symbols), bool)
    return target, cash_target, cap, floor, esg, esg_floor, blocked, lots


def _average_esg_floor(
    config: PortfolioConfiguration, book: _Book, target: np.ndarray, extra: Mapping[str, Any], notes: list[str]
) -> float | None:
    """The floor on the average ESG score (None: none), after noting targets above the gross cap."""
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
    return esg_floor


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
