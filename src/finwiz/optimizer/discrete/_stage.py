"""The whole-share stage: the continuous optimum made whole shares (lots) that keep every limit.

The rounding (``_rounding``) settles each asset among a few candidate trades under the coupled
rows and descends on the exact objective; where that lost much, it backs off, in the same rounding,
the rows that blocked it (``_rounding._room``) and settles again. One rule covers what it cannot
settle well from the continuous optimum alone: for each reason below that holds, one alternative
continuous point (solved by the continuous stage, infeasibility only meaning "keep the first
answer"), rounded once, never re-entering the rule; the answer with the lower true objective is
kept, and the stage's record notes that the alternative ran.

- **back-off**: the rounding was refused, or lost more than ``RETRY_LOSS`` whole-share allowances
  or ``RETRY_RELATIVE_LOSS`` of the objective even after its local back-off: every coupled limit
  backed off by the largest traded lot.
- **small trades**: the rounding dropped more than ``_RESOLVE_THRESHOLD`` of the value in trades
  under half the minimum trade size: those assets fixed untraded, so the others make up for them;
  the descent then runs once more with them free.

Why, in one line each (figures: docs/decisions/settle-and-descent.md and earlier sessions' notes there):

- The back-off is local first: a row settled at its bound blocked every costlier move of the
  descent (2000 binding assets); room inside it settles that without a second solve.
- The re-solve stays behind it for roundings that still lose much with no such row.
- The small-trades point stays: it wins on some requests (431 binding, minimize_costs) and no
  bound from its own solve tells beforehand; where its rows admit no point it is not solved.
- The settle is cheap now (basis-started relaxation, breachable rows only, few choices listed),
  so at 431-2000 assets the stage's time is mostly the descent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from finwiz.errors import FinwizError, InfeasibleRebalanceError
from finwiz.optimizer._trace import note
from finwiz.optimizer.describe._data import NOISE_VALUE, ProblemData
from finwiz.optimizer.describe._terms import traded
from finwiz.optimizer.discrete._benefit import keep_worthwhile
from finwiz.optimizer.discrete._exact import ExactOutcome, solve_exact
from finwiz.optimizer.discrete._min_position import exact_or_named, flipped, named
from finwiz.optimizer.discrete._objective import achieved, point_of
from finwiz.optimizer.discrete._pricing import Pieces, pieces_of
from finwiz.optimizer.discrete._rounding import RoundingOutcome, gain_price, lost_much, polish, round_trades
from finwiz.optimizer.discrete._search import SearchOutcome, exchange_search
from finwiz.optimizer.solve._assembler import Model, user_gradient_at
from finwiz.optimizer.solve._presolve import refuted_by_bounds
from finwiz.optimizer.solve._solve import (
    ProvenInfeasibleError,
    SolveOutcome,
    native_qp,
    objective_at,
)
from finwiz.optimizer.tax._sides import Sided
from finwiz.optimizer.verify._diagnosis import whole_share_refusal

__all__ = ["Decided", "achieved", "exact_stage", "round_outcome", "whole_share_stage", "whole_shares"]

_SEARCH_BUDGET = 10.0  # CPU seconds: a safety behind the search's own count of work (_search._WORK)
_RESOLVE_THRESHOLD = 1e-4  # fraction of value: small trades worth less than this are not re-solved

Solve = Callable[[Model], SolveOutcome]
"""The continuous stage on a variant of the model (undiagnosed: infeasible raises)."""


@dataclass(frozen=True)
class Decided:
    """The trades the discrete stage settled on, and how."""

    shares: np.ndarray
    outcome: SolveOutcome | None  # the continuous solve behind them (None: a user's strategy as given)
    rounding: str
    mip: ExactOutcome | None
    warnings: tuple[str, ...] = ()
    repaired: bool = False
    bound: float | None = None  # the first continuous optimum's objective (later solves are of restricted problems)
    model: Model | None = None  # the model the trades are of, when the engine refined it (a taxable account's)


@dataclass(frozen=True)
class _Answer:
    shares: np.ndarray
    outcome: SolveOutcome
    polish: bool = False  # rounded on a restricted model: the descent once more on the full one


def _improves(model: Model, candidate: np.ndarray, incumbent: np.ndarray) -> bool:
    """Whether share trades ``candidate`` have a lower true objective than ``incumbent``."""
    new, old = objective_at(model, [point_of(model.data, s) for s in (candidate, incumbent)])
    return new < old


def whole_share_stage(
    model: Model, outcome: SolveOutcome, solve: Solve, time_limit: float, sided: Sided | None = None
) -> Decided:
    """Whole shares from the continuous ``outcome`` (see the module's rule); a taxable account's
    lots priced by a binding gain budget first, its sides released when no whole-share answer
    keeps them (``sided``), and its answer polished at the end."""
    data = model.data
    bound = outcome.objective if sided is None else sided.bound  # the relaxation's: sides restrict
    if data.lots is not None:  # a binding gain budget: relieve the lots its price makes cheapest
        model = model.with_data(dataclasses.replace(data, lots=data.lots.priced(gain_price(model, outcome.duals))))
    pieces = Pieces.of(model)  # the rows and pricer of the stage's model, built once
    try:
        shares, outcome = whole_shares(model, outcome, solve, time_limit, pieces)
    except InfeasibleRebalanceError as exc:
        if sided is None:  # a refusal min_position_value causes names it
            raise named(model, exc, lambda m: whole_shares(m, outcome, solve, time_limit))  # noqa: B904 (exc itself, or caused by it)
        model, shares, outcome = sided.release(exc, lambda m, o: whole_shares(m, o, solve, time_limit))
        pieces = Pieces.of(model)
    # Where one lot is a large piece of the account: single moves and two-asset exchanges (_search).
    found = exchange_search(model, shares, bound, min(_SEARCH_BUDGET, time_limit), pieces)
    found = _flips(model, outcome, found, solve, time_limit, bound, pieces)
    shares = found.shares
    warned = (found.reason,) if found.timed_out else ()  # which limit stopped it
    if data.lots is not None:
        # The descent's coarse threshold (a hundredth of an average lot's worth) is large
        # against a tax-aware objective: one more share of a loss lot was left at 0.23 %.
        shares = polish(model, shares, pieces=pieces)
    shares = keep_worthwhile(model, shares, pieces)  # min_benefit: trades not worth their cost left out (_benefit)
    rounding = "fractional" if data.fractional else "whole_shares"
    taxed = model if data.lots is not None else None
    return Decided(shares, outcome, rounding, None, warned, bound=bound, model=taxed)


def _flips(
    model: Model,
    outcome: SolveOutcome,
    found: SearchOutcome,
    solve: Solve,
    time_limit: float,
    bound: float | None,
    pieces: Pieces,
) -> SearchOutcome:
    """``min_position_value``: the small positions held where the answer has them, or one the other
    way (``_min_position.flipped``), re-solved, rounded and searched like the first answer; the
    lowest kept. (Searched all: the lowest before the search was not the lowest after it on 2 of 7
    12-asset accounts of benchmarks/test_bench_min_position.py.) A search that reaches a point
    an earlier one passed ends where that one ended (``exchange_search``'s ``searched``)."""
    starts: dict[bytes, np.ndarray] = {}
    for variant in flipped(model, outcome.trades, found.shares):
        alternative = _rounded(variant, variant, solve, time_limit, True)
        if alternative is not None:
            shares = polish(model, alternative.shares, pieces=pieces)
            starts.setdefault(shares.tobytes(), shares)
    seen = {} if found.timed_out else {found.shares.tobytes(): found.shares}
    for shares in starts.values():
        searched = exchange_search(model, shares, bound, min(_SEARCH_BUDGET, time_limit), pieces, seen)
        if _improves(model, searched.shares, found.shares):
            note("min_position_value: small positions held where a re-solve put them won")
            found = searched
    return found


def whole_shares(
    model: Model, outcome: SolveOutcome, solve: Solve, time_limit: float, pieces: Pieces | None = None
) -> tuple[np.ndarray, SolveOutcome]:
    """Round ``outcome`` to lots that keep every limit; the rule's alternatives where they apply
    (``pieces``: the model's, if built). Raises the rounding's :class:`InfeasibleRebalanceError`
    when no whole-share answer is found."""
    pieces = pieces_of(model, pieces)
    first = round_outcome(model, outcome, time_limit, pieces)
    best = None if isinstance(first, InfeasibleRebalanceError) else _Answer(first.shares, outcome)
    if isinstance(first, InfeasibleRebalanceError) or _lost_much(first):
        best = _better(model, best, _backed_off(model, outcome, solve, time_limit, pieces), pieces)
    if best is None:  # only a refused first rounding leaves none: its error says what would have to give
        assert isinstance(first, InfeasibleRebalanceError)
        raise first
    if _dropped_small(model.data, best):
        best = _better(model, best, _small_fixed(model, best.outcome, solve, time_limit), pieces) or best
    return best.shares, best.outcome


def _lost_much(rounded: RoundingOutcome) -> bool:
    return rounded.lossy and lost_much(rounded.loss, rounded.relative_loss)


def _small(data: ProblemData, outcome: SolveOutcome) -> np.ndarray:
    value = np.abs(outcome.trades) * data.ref_value
    return np.asarray((value >= NOISE_VALUE) & (value < data.min_trade_value * 0.5) & ~data.crossing)


def _dropped_small(data: ProblemData, answer: _Answer) -> bool:
    if data.min_trade_value <= 0:
        return False
    dropped = _small(data, answer.outcome) & (answer.shares == 0)
    value = np.abs(answer.outcome.trades) * data.ref_value
    return bool(value[dropped].sum() > _RESOLVE_THRESHOLD * data.ref_value)


def _better(model: Model, best: _Answer | None, alternative: _Answer | None, pieces: Pieces) -> _Answer | None:
    if alternative is None or (best is not None and not _improves(model, alternative.shares, best.shares)):
        return best
    note("the alternative won")
    if alternative.polish:
        # Rounded with some assets fixed: the descent once more with them free, so that no
        # single lot of any asset improves the answer (it found 0.005 % on a 30-asset book).
        return _Answer(polish(model, alternative.shares, pieces=pieces), alternative.outcome)
    return alternative


def _rounded(
    solved: Model, rounded_on: Model, solve: Solve, time_limit: float, polish: bool, pieces: Pieces | None = None
) -> _Answer | None:
    """The variant ``solved`` solved and rounded on ``rounded_on`` (``pieces``: its, if built), or
    None when either fails (the first answer stands)."""
    if _refuted(solved):
        note("its rows admit no point (their activity bounds): not solved")
        return None
    try:
        outcome = solve(solved)
    except (FinwizError, ProvenInfeasibleError):
        return None
    rounded = round_outcome(rounded_on, outcome, time_limit, pieces)
    return None if isinstance(rounded, InfeasibleRebalanceError) else _Answer(rounded.shares, outcome, polish)


def _refuted(model: Model) -> bool:
    """Whether the rows of ``model``'s native QP (none: not refuted) admit no point by their
    activity bounds alone (``refuted_by_bounds``): then the variant is not solved."""
    qp = native_qp(model)
    return qp is not None and refuted_by_bounds(qp)


def _backed_off(model: Model, outcome: SolveOutcome, solve: Solve, time_limit: float, pieces: Pieces) -> _Answer | None:
    """The limits backed off by the largest traded lot: a point the rounding, against the full
    limits, finds whole-share neighbours of."""
    note("back-off: limits backed off by the largest traded lot, re-solved")
    data = model.data
    lot_value = data.lot * data.prices / data.ref_value
    backoff = float(np.max(lot_value[traded(data, outcome.trades)], initial=0.0))
    backed = model.with_data(dataclasses.replace(data, backoff=backoff))
    return _rounded(backed, model, solve, time_limit, False, pieces)


def _small_fixed(model: Model, outcome: SolveOutcome, solve: Solve, time_limit: float) -> _Answer | None:
    """The small trades fixed untraded, solved and rounded so (the descent then runs with them free)."""
    note("small trades: dropped ones fixed untraded, re-solved")
    fixed = model.with_data(model.data.fix(_small(model.data, outcome)))
    return _rounded(fixed, fixed, solve, time_limit, True)


def round_outcome(
    model: Model, outcome: SolveOutcome, time_limit: float, pieces: Pieces | None = None
) -> RoundingOutcome | InfeasibleRebalanceError:
    """The whole-share step on ``outcome``, or the error saying why no whole-share choice keeps
    every limit (which limit would have to give, and by how much); ``pieces``: the model's, if built."""
    gradient = user_gradient_at(model, outcome.buy, outcome.sell, outcome.cost)
    try:
        return round_trades(
            model,
            outcome.buy,
            outcome.sell,
            gradient=gradient,
            duals=outcome.duals,
            time_limit=time_limit,
            pieces=pieces,
        )
    except InfeasibleRebalanceError as exc:  # checked against the real costs before blaming the grid
        if "min_position_value" in exc.constraint_names:  # a position no trade of its own may settle: not the grid
            return exc
        return whole_share_refusal(model, outcome.buy, outcome.sell, outcome.cost, exc)


def exact_stage(model: Model, outcome: SolveOutcome, time_limit: float, solve: Solve | None = None) -> Decided:
    """Whole shares, minimum trade size and trade count as one mixed-integer program; with
    ``solve`` (not for a taxable account), the default path's answer too, and the better kept: a
    program's answer, proven optimal or stopped at its time limit, is never returned when the
    default's is better."""
    # SCIP and HiGHS accept rows within ~1e-6; a matching back-off keeps the exact check.
    backed = model.with_data(dataclasses.replace(model.data, backoff=max(model.data.backoff, 2e-6)))
    mip = exact_or_named(backed, time_limit, solve_exact)  # a refusal min_position_value causes names it
    # The solver stops within its tolerances (and on the backed-off rows): the descent on the
    # true objective makes sure no one-lot move improves its answer, and the search no exchange.
    pieces = Pieces.of(model)
    shares = polish(model, mip.shares, pieces=pieces)
    shares = exchange_search(model, shares, None, min(_SEARCH_BUDGET, time_limit), pieces).shares
    # Proven or not: the solver proves on backed-off rows within its tolerances (issue 23, item 5).
    if solve is not None and model.data.lots is None:
        try:
            default, _ = whole_shares(model, outcome, solve, time_limit, pieces)
        except InfeasibleRebalanceError:
            default = None
        if default is not None:
            budget = min(_SEARCH_BUDGET, time_limit)
            default = exchange_search(model, default, outcome.objective, budget, pieces).shares
            if _improves(model, default, shares):
                note("the default path's answer was better than the program's")
                shares = default
    value = achieved(model, shares)
    # The true gap: the returned trades' objective against the solver's dual bound.
    gap = mip.gap if mip.bound is None else max(0.0, (value - mip.bound) / max(abs(value), 1e-300))
    mip = dataclasses.replace(mip, gap=gap, objective=value)
    notes = []
    if not mip.proven_optimal:
        shown = "unknown" if gap is None else f"{gap:.2%}"
        notes.append(f"exact mode stopped at its time limit; best trades found, optimality gap {shown}")
    taxed = model if model.data.lots is not None else None  # the trades are of its lots' order
    return Decided(shares, outcome, "exact_mip", mip, tuple(notes), bound=outcome.objective, model=taxed)
