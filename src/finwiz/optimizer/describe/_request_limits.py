"""The limits a request sets, as the arrays the limit terms read: which assets each reason blocks,
the targets a mode implies, sector membership and caps, the ESG screen."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from finwiz.errors import InvalidPortfolioError
from finwiz.optimizer.describe._book import _Book, _mask, _per_symbol
from finwiz.schemas import PortfolioConfiguration, require_data

__all__: list[str] = []  # private helpers of build_problem_data


def _tightest(pick: Any, *values: float | None) -> float | None:
    """The tightest of the limits given (``pick`` is min for caps, max for floors), or None."""
    return pick((v for v in values if v is not None), default=None)  # type: ignore[no-any-return]


def _esg(
    config: PortfolioConfiguration, extra: Mapping[str, Any], symbols: list[str]
) -> tuple[np.ndarray | None, float | None]:
    """Scores (when an ESG limit is set) and the screen's minimum score."""
    min_esg = _tightest(max, config.min_esg_score, extra.get("min_esg_score"))
    if config.esg_constrained or min_esg is not None or extra.get("min_average_esg_score") is not None:
        require_data(symbols, config.esg_scores, "esg_scores", "an ESG limit is set but no score is given")
        return _per_symbol(config.esg_scores, symbols, 0.0), min_esg
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
    symbols, n, x0 = book.symbols, len(book.symbols), book.x0
    blocked: dict[str, np.ndarray] = {
        "no_trade": _mask(config.no_trade, symbols),
        "no_buy": _mask(config.no_buy, symbols),
        "no_sell": _mask(config.no_sell, symbols),
    }
    blocked["tolerance_band"] = _band(config, book, target, cap, floor, notes)
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
    _refuse_frozen_over_cap(config, blocked, x0, cap)
    return blocked


def _band(
    config: PortfolioConfiguration,
    book: _Book,
    target: np.ndarray,
    cap: np.ndarray,
    floor: np.ndarray,
    notes: list[str],
) -> np.ndarray:
    """The assets the tolerance band freezes (a note when it freezes a book far from its target)."""
    n, x0 = len(book.symbols), book.x0
    # Assets breaching their own cap or floor must be free to trade even inside the band.
    # Drift is measured after the cash flow (x0 = value / V_ref), so a deposit or a withdrawal
    # moves assets out of their band instead of leaving the money uninvested.
    size = np.abs(x0)  # caps bound |weight| (a short position's size too)
    breaching = (size > cap) | ((floor > 0) & (x0 < floor - 1e-12))
    drift = np.abs(x0 - target)
    # A band of width zero (tolerance 0, or a relative band on a zero target) is no band: it
    # freezes nothing, not even an asset sitting exactly on its target.
    width = np.asarray(config.band_width(target), dtype=float)  # one width, or one per asset
    band: np.ndarray = (drift <= width) & (width > 0) & ~breaching
    # Large drift: the book as a whole is further from its target (half the sum of |w - w*|,
    # cash included: the share of the portfolio that would have to change hands) than a single
    # asset may be (``tolerance``). With every asset inside its band nothing trades, which on a
    # wide book with small targets is an absolute band's blind spot, not a balanced portfolio.
    cash_gap = abs((config.cash + config.cash_flow) / book.ref_value - config.cash_target)
    total_drift = 0.5 * float(drift.sum() + cash_gap)
    if n > 1 and band.all() and total_drift > config.tolerance:
        notes.append(
            f"every asset is inside its tolerance band, so nothing is traded, yet the portfolio is "
            f"{total_drift:.4g} away from its target (half the sum of |weight - target|, above tolerance "
            f"{config.tolerance:g}); a relative band (relative_tolerance=0.25, the 5/25 rule) or a smaller "
            f"tolerance would rebalance it"
        )
    return band


def _refuse_frozen_over_cap(
    config: PortfolioConfiguration, blocked: dict[str, np.ndarray], x0: np.ndarray, cap: np.ndarray
) -> None:
    """Refuse an asset above its position cap that its restrictions forbid to bring back under it."""
    over, under = x0 > cap * (1 + 1e-12), -x0 > cap * (1 + 1e-12)
    if not (over.any() or under.any()):  # the usual case: no asset above its cap
        return
    no_sell = blocked["no_trade"] | blocked["no_sell"] | blocked["tolerance_band"] | blocked["buy_only"]
    no_buy = (
        blocked["no_trade"]
        | blocked["no_buy"]
        | blocked["tolerance_band"]
        | blocked["esg_screen"]
        | blocked["sell_only"]
    )
    frozen_over_cap = (no_sell & over) | (no_buy & under)
    if frozen_over_cap.any():
        i = int(np.argmax(frozen_over_cap))
        symbol = config.symbols[i]
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
    config: PortfolioConfiguration, extra: Mapping[str, Any], notes: list[str], symbols: list[str]
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray | None]:
    """Sector names, each asset's sector (-1: none) and each sector's cap.

    An unclassified symbol (absent from ``sectors``: the configuration drops labels such as
    "Unclassified") is in no sector and no sector cap applies to it. Caps: the more specific
    setting wins, as for positions -- ``sector_caps[x]`` replaces ``max_sector_weight`` for sector
    x, looser or tighter. A custom constraint's cap (``extra_caps``) is a limit of its own and only
    ever tightens.
    """
    sector_names: tuple[str, ...] = ()
    sector_of = np.full(len(symbols), -1, dtype=np.int64)
    constraint_sector_cap = extra.get("max_sector_weight")
    capped = config.max_sector_weight is not None or bool(config.sector_caps) or constraint_sector_cap is not None
    if config.sectors or capped:
        named: list[str | None] = list(map(config.sectors.get, symbols))  # None: unclassified; no bytecode per symbol
        sector_names = tuple(sorted(name for name in set(named) if name is not None))
        index: dict[str | None, int] = {name: i for i, name in enumerate(sector_names)}
        sector_of = np.fromiter(map(index.get, named, repeat(-1)), np.int64, len(named))
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
    unclassified = np.flatnonzero(sector_of < 0)
    if unclassified.size:  # named up to five
        shown = ", ".join(symbols[i] for i in unclassified[:5].tolist()) + (", ..." if unclassified.size > 5 else "")
        notes.append(
            f"{unclassified.size} asset{'s' if unclassified.size != 1 else ''} without a sector "
            f"({shown}): unclassified, in no sector, so no sector cap applies to them"
        )
    return sector_names, sector_of, sector_cap
