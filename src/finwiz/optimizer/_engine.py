"""The engine: configuration + prices -> one assembled problem -> verified whole-share trades."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finwiz._risk_metrics import attach_risk
from finwiz.errors import (
    ConfigurationError,
    FinwizError,
    InfeasibleRebalanceError,
    InvalidPortfolioError,
    SolverError,
)
from finwiz.optimizer._analyzer import PortfolioAnalyzer
from finwiz.optimizer._assembler import Model, assemble
from finwiz.optimizer._compliance import (
    PostTradeState,
    compliance_checks,
    min_trade_check,
    on_lots,
    post_trade_state,
)
from finwiz.optimizer._constraints import OptimizationConstraint
from finwiz.optimizer._data import NOISE_VALUE, MarketImpactModel, ProblemData, build_problem_data
from finwiz.optimizer._diagnosis import explain_infeasibility
from finwiz.optimizer._exact import ExactOutcome, solve_exact
from finwiz.optimizer._model import Description
from finwiz.optimizer._rounding import (
    RoundingOutcome,
    gain_price,
    polish,
    round_trades,
    side_crossing,
    side_margin,
)
from finwiz.optimizer._solve import ProvenInfeasibleError, SolveOutcome, objective_at, solve_terms
from finwiz.optimizer._strategies import OptimizationStrategy, StrategyRegistry
from finwiz.optimizer._terms import Term, TradeCountTerm, constraint_terms
from finwiz.risk import FactorModel
from finwiz.schemas import (
    ComplianceCheck,
    ConstraintOutcome,
    OptimizedTrades,
    PortfolioConfiguration,
    RebalancingResult,
    TradeAction,
    TradeRecommendation,
)
from finwiz.settings import RebalancingSettings

__all__ = ["RebalancingEngine", "rebalance"]

log = logging.getLogger("finwiz.engine")

_SMALL_SHARE = 0.1  # of the traded value: small trades worth more are settled by the rounding, not left out
_RETRY_LOSS = 1e3
_RETRY_RELATIVE_LOSS = 0.1
"""What a lossy rounding may lose before the limits are backed off, in whole-share allowances or as
a fraction of the objective: whole shares lost 2-7 allowances (3-4 %) at 431-500 binding assets
and 180-340 (3-4 %) at 100, where the retry never helped; at 2000 binding assets, 148 allowances
but 97 % (the retry: 7 %); a fine grid (fractional shares) that binding rows push off its
neighbours loses orders of magnitude more allowances, and the back-off does help."""
_RESOLVE_THRESHOLD = 1e-4  # fraction of value: small trades worth less than this are not re-solved
_LIMIT_KEYS = {"max_sector_weight": min, "min_esg_score": max, "min_average_esg_score": max}


@dataclass(frozen=True)
class _Decided:
    """The trades the discrete stage settled on, and how."""

    shares: np.ndarray
    outcome: SolveOutcome | None  # the continuous solve behind them (None: a user's strategy as given)
    rounding: str
    mip: ExactOutcome | None
    warnings: tuple[str, ...] = ()
    repaired: bool = False
    bound: float | None = None  # the first continuous optimum's objective (later solves are of restricted problems)
    model: Model | None = None  # the model the trades are of, when the engine refined it (a taxable account's)


class _ProposalTerm(Term):
    """||w - w_proposed||^2: the nearest compliant portfolio to a user strategy's proposal."""

    name = "proposal"

    def __init__(self, proposal: np.ndarray) -> None:
        self.proposal = proposal

    def describe(self, data: ProblemData) -> Description:
        return Description(weight_squares=[(np.ones(data.n), self.proposal)])


def _custom_constraints(config: PortfolioConfiguration) -> list[OptimizationConstraint]:
    unknown = [c for c in config.custom_constraints if not isinstance(c, OptimizationConstraint)]
    if unknown:
        raise InvalidPortfolioError(
            f"custom_constraints: {unknown[0]!r} is not an OptimizationConstraint",
            field="custom_constraints",
        )
    return list(config.custom_constraints)


def _folded_limits(constraints: list[OptimizationConstraint]) -> dict[str, float]:
    """The limits custom constraints fold into the data: the tightest of all sources wins."""
    extra: dict[str, float] = {}
    for constraint in constraints:
        limits = constraint.limits()
        if not isinstance(limits, Mapping):
            raise ConfigurationError(f"{type(constraint).__name__}.limits() must return a mapping, not {limits!r}")
        for key, value in limits.items():
            if key not in _LIMIT_KEYS:
                known = ", ".join(sorted(_LIMIT_KEYS))
                raise ConfigurationError(f"{type(constraint).__name__}.limits(): unknown key {key!r}; known: {known}")
            if not isinstance(value, int | float) or not np.isfinite(value):
                raise ConfigurationError(f"{type(constraint).__name__}.limits(): {key} must be a number, not {value!r}")
            extra[key] = _LIMIT_KEYS[key](extra[key], float(value)) if key in extra else float(value)
    return extra


def _applicable(terms: list[Term], data: ProblemData) -> list[Term]:
    return [t for t in terms if t.applies(data)]


def _with_constraints(own: list[Term]) -> list[Term]:
    """A strategy's terms and every constraint term, a constraint term of a kind the strategy
    brings itself left out (a strategy's exact market impact replaces the default fit)."""
    kinds = {type(t) for t in own}
    return [*own, *(t for t in constraint_terms() if type(t) not in kinds)]


_SIDE_FLIPS = 16
_CLOSE_CALL = 0.25  # a side margin within this fraction of the objective is tried both ways
_SIDE_PASSES = 2  # passes over the close calls
"""At most how many of the assets whose side a taxable account's relaxation chose are tried on
the other."""


def _sides(
    data: ProblemData, sells: np.ndarray, buys: np.ndarray, clear: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """``data``'s blocked sets with ``sells`` fixed to sell only and ``buys`` to buy only (their
    former side, and that of ``clear``, dropped)."""
    keep = ~(sells | buys) if clear is None else ~clear
    blocked = dict(data.blocked)
    blocked["tax_sells_only"] = (blocked["tax_sells_only"] & keep) | sells
    blocked["tax_buys_only"] = (blocked["tax_buys_only"] & keep) | buys
    return blocked


def _traded(data: ProblemData, trades: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(trades) * data.ref_value >= NOISE_VALUE)


def _checks(model: Model, state: PostTradeState) -> list[ComplianceCheck]:
    """Every limit of the model's description and the minimum trade size, on ``state``."""
    checks = compliance_checks(model.data, state, model.checked_groups)
    size_check = min_trade_check(model.data, state)
    if size_check is not None:
        checks.append(size_check)
    return checks


def _verify(model: Model, state: PostTradeState, decided: _Decided) -> list[ComplianceCheck]:
    """The compliance table; a breach by the engine's own trades is a bug, never a silent result."""
    checks = _checks(model, state)
    breached = [c for c in checks if not c.satisfied]
    if breached:
        raise SolverError(
            "final trades breach " + ", ".join(f"{c.constraint} by {-c.slack:.3g} {c.unit}".rstrip() for c in breached),
            solver=decided.outcome.solver if decided.outcome is not None else "custom",
            status="verification_failed",
        )
    return checks


def _point(data: ProblemData, shares: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    u = shares * data.prices / data.ref_value
    return np.maximum(u, 0.0), np.maximum(-u, 0.0), post_trade_state(data, shares).total_cost / data.ref_value


def _objective(model: Model, shares: np.ndarray) -> float:
    """The true objective of ``model`` at share trades ``shares``."""
    return objective_at(model, [_point(model.data, shares)])[0]


def _improves(model: Model, candidate: np.ndarray, incumbent: np.ndarray) -> bool:
    """Whether share trades ``candidate`` have a lower true objective than ``incumbent``."""
    new, old = objective_at(model, [_point(model.data, s) for s in (candidate, incumbent)])
    return new < old


class RebalancingEngine:
    """Turns a configuration and prices into verified trades.

    ``strategies`` maps names (and :class:`~finwiz.RebalancingMethod` members) to strategies;
    add your own as a list of terms or an :class:`OptimizationStrategy` subclass::

        engine.strategies["my_way"] = [TargetTrackingTerm(), TurnoverPenaltyTerm(1e-3)]
    """

    def __init__(self, settings: RebalancingSettings | None = None) -> None:
        self.settings = settings if settings is not None else RebalancingSettings()
        self.strategies = StrategyRegistry()
        self.analyzer = PortfolioAnalyzer()

    # ------------------------------------------------------------------ public

    def rebalance(
        self,
        config: PortfolioConfiguration,
        prices: Mapping[str, Any] | pd.Series,
        *,
        factor_model: FactorModel | None = None,
        covariance: pd.DataFrame | None = None,
        market_impact: MarketImpactModel | None = None,
        solver: str | None = None,
        exact: bool = False,
        portfolio_id: str | None = None,
        analyze: bool = False,
        returns: pd.DataFrame | None = None,
    ) -> RebalancingResult:
        """Compute the trades for ``config`` at ``prices`` (a mapping or Series symbol -> price).

        ``factor_model`` or ``covariance`` feed risk terms; ``market_impact`` the impact term;
        ``solver`` is ``"auto"`` (default), ``"CLARABEL"`` or ``"OSQP"``; ``exact=True`` solves whole
        shares, minimum trade size and trade count as a mixed-integer program (SCIP/HiGHS, time
        limit ``mip_time_limit_seconds``, gap in ``result.mip_gap``); ``analyze`` attaches a
        :class:`~finwiz.PortfolioAnalysis` of the portfolio before trading and, given a risk model
        or ``returns`` (per-period asset returns: historical VaR/CVaR), ``risk_before`` and
        ``risk_after`` (:class:`~finwiz.RiskMetrics` of the current and post-trade weights).

        The stages: prepare the data and the model, solve the continuous problem, make the trades
        discrete, verify them against every limit, build the result.
        """
        if not isinstance(config, PortfolioConfiguration):
            raise InvalidPortfolioError("config must be a PortfolioConfiguration", field="config")
        start = time.perf_counter()
        strategy = self.strategies[config.method]
        constraints = _custom_constraints(config)
        data = build_problem_data(
            config,
            prices,
            factor_model=factor_model,
            covariance=covariance,
            market_impact=market_impact,
            extra_caps=_folded_limits(constraints),
        )
        if isinstance(strategy, OptimizationStrategy):
            model = Model.of(_applicable(constraint_terms(), data), data)
            decided = self._user_strategy(strategy, config, model, solver or self.settings.solver)
        else:
            if strategy.requires_risk_model and data.factor_root is None:
                raise InvalidPortfolioError(
                    f"strategy {strategy.name!r} needs a risk model: pass factor_model= or covariance=",
                    field="factor_model",
                )
            extra = [t for c in constraints for t in c.terms()]
            model = Model.of(_applicable([*_with_constraints(strategy.terms(data)), *extra], data), data)
            decided = self._optimize(model, solver or self.settings.solver, exact)
        if decided.model is not None:  # the trades are of the engine's refined model (its lots' order)
            model, data = decided.model, decided.model.data
        state = post_trade_state(data, decided.shares)
        checks = _verify(model, state, decided)
        trades = self._trades(data, state)
        warnings = [*data.notes, *decided.warnings]
        custom_checks, outcomes = self._validate_custom(constraints, config, data, state, trades, warnings)
        checks += custom_checks
        achieved = None if isinstance(strategy, OptimizationStrategy) else _objective(model, decided.shares)
        result = self._result(
            config,
            data,
            state,
            trades,
            checks,
            warnings,
            decided,
            achieved,
            strategy.name,
            portfolio_id,
            time.perf_counter() - start,
            self.analyzer.analyze_current_portfolio(config, prices) if analyze else None,
        )
        if analyze:  # risk before/after of the whole-share result (unchanged without a model)
            result = attach_risk(result, factor_model=factor_model, covariance=covariance, returns=returns)
        return result.model_copy(update={"constraint_outcomes": outcomes}) if outcomes else result

    # ------------------------------------------------------------------ stages

    def _optimize(self, model: Model, solver: str, exact: bool) -> _Decided:
        """Continuous solve, then whole shares: exactly (exact mode) or by the discrete step."""
        data = model.data
        first = None
        if data.lots is not None and not exact:
            model, first = self._fix_sides(model, solver)
            data = model.data
        outcome = self._solve(model, solver, first=first)  # also diagnoses infeasibility for exact mode
        if exact:
            # SCIP and HiGHS accept rows within ~1e-6; a matching back-off keeps the exact check.
            backed = model.with_data(dataclasses.replace(data, backoff=max(data.backoff, 2e-6)))
            mip = solve_exact(backed, time_limit=self.settings.mip_time_limit_seconds)
            # The solver stops within its tolerances (and on the backed-off rows): the descent on
            # the true objective makes sure no one-lot move improves its answer.
            shares = polish(model, mip.shares)
            achieved = _objective(model, shares)
            # The true gap: the returned trades' objective against the solver's dual bound.
            gap = mip.gap if mip.bound is None else max(0.0, (achieved - mip.bound) / max(abs(achieved), 1e-300))
            mip = dataclasses.replace(mip, gap=gap, objective=achieved)
            notes = []
            if not mip.proven_optimal:
                shown = "unknown" if gap is None else f"{gap:.2%}"
                notes.append(f"exact mode stopped at its time limit; best trades found, optimality gap {shown}")
            return _Decided(shares, outcome, "exact_mip", mip, tuple(notes), bound=outcome.objective)
        bound = outcome.objective
        if data.lots is not None:  # a binding gain budget: relieve the lots its price makes cheapest
            model = model.with_data(dataclasses.replace(data, lots=data.lots.priced(gain_price(model, outcome.duals))))
        shares, outcome = self._whole_shares(model, outcome, solver)
        if data.min_trade_value > 0:
            shares, outcome = self._second_opinion(model, outcome, shares, solver)
        if data.lots is not None:
            # The descent's coarse threshold (a hundredth of an average lot's worth) is large
            # against a tax-aware objective: one more share of a loss lot was left at 0.23 %.
            shares = polish(model, shares)
        rounding = "fractional" if data.fractional else "whole_shares"
        return _Decided(shares, outcome, rounding, None, bound=bound, model=model if data.lots is not None else None)

    def _fix_sides(self, model: Model, solver: str) -> tuple[Model, SolveOutcome]:
        """A taxable account: no asset is both bought and sold. The continuous problem without that
        rule is a convex relaxation (a loss lot's negative tax then pays for selling and buying
        back). Each asset its optimum both buys and sells is fixed to the side its own quadratic
        model around that optimum prefers (``side_margin``: the tax its lots save against the
        tracking of not buying back), and the relaxation solved again, until no asset trades both
        ways (each round fixes at least one more); with the sides fixed the problem is convex. Then
        the close calls among them (a margin within ``_CLOSE_CALL`` of the objective, at most
        ``_SIDE_FLIPS``, closest first) are each tried on the other side and kept there where the
        objective improves, in up to ``_SIDE_PASSES`` passes. On four small zero-cost books with
        large losses against their exact optimum (every side enumerated) the net sign alone missed
        it in 3, the quadratic model in 2, with the flips in none; on 20 30-asset books against
        SCIP's optimum of an independent model, one pass reached it (within 0.1 %) in 85 %, two in
        every one (worst 0.024 %).

        Returns the model with its sides and its first solve (the strategy's chain goes on from
        it). An infeasible request is diagnosed as usual."""
        limit = self.settings.solver_time_limit_seconds

        def solved(candidate: Model) -> SolveOutcome:
            try:
                return solve_terms(candidate, solver, time_limit=limit)
            except ProvenInfeasibleError:
                raise explain_infeasibility(candidate) from None

        outcome = solved(model)
        fixed = np.zeros(model.data.n, bool)
        margin = np.zeros(model.data.n)  # how much cheaper each fixed asset looked selling only
        while True:
            data = model.data
            both = (outcome.buy * data.ref_value >= NOISE_VALUE) & (outcome.sell * data.ref_value >= NOISE_VALUE)
            if not both.any():
                break
            margin = np.where(both, side_margin(model, outcome.buy, outcome.sell, both), margin)
            fixed |= both
            sides = _sides(data, both & (margin < 0), both & (margin >= 0))
            model = model.with_data(dataclasses.replace(data, blocked=sides))
            outcome = solved(model)
        # The close calls, closest first. (On 8 small books no flip of a margin above a fifth of
        # the objective helped.)
        tolerance = 1e-12 * max(1.0, abs(outcome.objective))
        close = np.flatnonzero(fixed & (np.abs(margin) <= _CLOSE_CALL * abs(outcome.objective)))
        close = close[np.argsort(np.abs(margin[close]))][:_SIDE_FLIPS]
        for _ in range(_SIDE_PASSES):  # again after a flip helped: the others' best side may change with it
            improved = False
            for i in close:
                data = model.data
                flip = np.zeros(data.n, bool)
                flip[i] = True
                sells = data.blocked["tax_sells_only"]
                sides = _sides(data, flip & ~sells, flip & sells, flip)
                other = model.with_data(dataclasses.replace(data, blocked=sides))
                try:
                    tried = solve_terms(other, solver, time_limit=limit)
                except (ProvenInfeasibleError, SolverError):
                    continue
                if tried.objective < outcome.objective - tolerance:
                    model, outcome, improved = other, tried, True
            if not improved:
                break
        return model, outcome

    def _solve(
        self, model: Model, solver: str, diagnose: bool = True, first: SolveOutcome | None = None
    ) -> SolveOutcome:
        """The continuous optimum; with a trade count, re-weighted L1 then a debias solve. The
        re-weighting stops when the set of traded assets stops changing. An infeasible request
        is diagnosed (:class:`InfeasibleRebalanceError`) unless ``diagnose`` is False: for the
        variants tried along the way, whose infeasibility only means "keep the first answer"
        (the diagnosis took 4.8 s of a 5.1 s request at 2000 assets). ``first`` is the model's first
        solve when the caller has it already."""
        data = model.data
        limit = self.settings.solver_time_limit_seconds
        try:
            outcome = first if first is not None else solve_terms(model, solver, time_limit=limit)
        except ProvenInfeasibleError:
            if not diagnose:
                raise
            raise explain_infeasibility(model) from None
        counter = next((t for t in model.terms if isinstance(t, TradeCountTerm)), None)
        if counter is None:
            return outcome
        traded = _traded(data, outcome.trades)
        for _ in range(counter.iterations - 1):
            weighted = model.with_data(dataclasses.replace(data, count_weights=counter.gamma(data, outcome.trades)))
            outcome = solve_terms(weighted, solver, time_limit=limit)
            now = _traded(data, outcome.trades)
            if np.array_equal(now, traded):
                break
            traded = now
        # The penalty picks which assets trade but also shrinks every trade towards zero (a
        # deposit left partly in cash): the last solve sizes the chosen trades without it. A trade
        # under half the minimum size would be dropped by the rounding: it is left out here, so
        # that the other trades make up for it -- unless such trades carry much of the traded
        # value (at 2000 binding assets, 1,675 of 1,735 trades and 72 % of the value: leaving them
        # all out kept 60 trades and doubled the objective); then the rounding settles each one.
        value = np.abs(outcome.trades) * data.ref_value
        untraded = ~_traded(data, outcome.trades)
        small = ~untraded & (value < 0.5 * data.min_trade_value) & ~side_crossing(data)  # crossing: must trade
        minor = value[small].sum() <= _SMALL_SHARE * value.sum()
        for fixed in (untraded | small, untraded) if small.any() and minor else (untraded,):
            chosen = model.with_data(dataclasses.replace(data.fix(fixed), debias=True))
            try:
                return solve_terms(chosen, solver, time_limit=limit)
            except (ProvenInfeasibleError, SolverError):
                continue
        return outcome  # keep the shrunk but feasible answer

    def _whole_shares(self, model: Model, outcome: SolveOutcome, solver: str) -> tuple[np.ndarray, SolveOutcome]:
        """Round the continuous ``outcome`` to lots that keep every limit (see ``_rounding``);
        where binding limits leave no whole-share neighbour, or moved trades off their neighbours
        at a loss of more than ``_RETRY_LOSS`` whole-share allowances or ``_RETRY_RELATIVE_LOSS``
        of the objective, back the limits off by the largest traded lot, solve again, and keep the
        better answer. (Below that loss the retry was measured on 30 binding requests at 100-500
        assets: better in 2, by at most 0.09 %, for a second solve and rounding each time.)"""
        data = model.data
        first = self._round(model, outcome)
        rounded = None if isinstance(first, InfeasibleRebalanceError) else first
        lost_much = rounded is not None and (rounded.loss > _RETRY_LOSS or rounded.relative_loss > _RETRY_RELATIVE_LOSS)
        if rounded is None or (rounded.lossy and lost_much):
            traded = _traded(data, outcome.trades)
            lot_value = data.lot * data.prices / data.ref_value
            backed = model.with_data(dataclasses.replace(data, backoff=float(np.max(lot_value[traded], initial=0.0))))
            try:
                second: SolveOutcome | None = self._solve(backed, solver, diagnose=False)
            except (FinwizError, ProvenInfeasibleError):
                second = None
            again = self._round(model, second) if second is not None else None
            retry = None if isinstance(again, InfeasibleRebalanceError) else again
            if (
                retry is not None
                and second is not None
                and (rounded is None or _improves(model, retry.shares, rounded.shares))
            ):
                rounded, outcome = retry, second
        if rounded is None:
            # Only a refused first rounding leaves none: its error says what would have to give.
            assert isinstance(first, InfeasibleRebalanceError)
            raise first
        return rounded.shares, outcome

    def _round(self, model: Model, outcome: SolveOutcome) -> RoundingOutcome | InfeasibleRebalanceError:
        """The whole-share step on ``outcome``, or the error saying why no whole-share choice keeps
        every limit (which limit would have to give, and by how much)."""
        gradient = None
        if model.user_terms:
            assembled = assemble(model, continuous=False)
            with assembled.lock:
                assembled.set_values(model, model.stacked(continuous=False))
                assembled.place(outcome.buy, outcome.sell, outcome.cost, model.data.x0)
                gradient = assembled.user_gradient(model.data.n)
        try:
            return round_trades(
                model,
                outcome.buy,
                outcome.sell,
                gradient=gradient,
                duals=outcome.duals,
                time_limit=self.settings.mip_time_limit_seconds,
            )
        except InfeasibleRebalanceError as exc:
            return exc

    def _second_opinion(
        self, model: Model, outcome: SolveOutcome, shares: np.ndarray, solver: str
    ) -> tuple[np.ndarray, SolveOutcome]:
        """Trades under the minimum are settled by the rounding (no trade, or the minimum, priced
        by the objective). When that drops more than a basis point of trades: fix those assets and
        re-solve, so the others make up for them; the better of the two is kept. Measured on the
        431-asset sample, neither is always better."""
        data = model.data
        value = np.abs(outcome.trades) * data.ref_value
        small = (value >= NOISE_VALUE) & (value < data.min_trade_value * 0.5) & ~side_crossing(data)
        dropped = small & (shares == 0)
        if value[dropped].sum() <= _RESOLVE_THRESHOLD * data.ref_value:
            return shares, outcome
        fixed = model.with_data(data.fix(small))
        try:
            alternative = self._whole_shares(fixed, self._solve(fixed, solver, diagnose=False), solver)
        except (FinwizError, ProvenInfeasibleError):  # fixing them made it infeasible: keep the first answer
            return shares, outcome
        if _improves(model, alternative[0], shares):
            # Rounded with those assets fixed: the descent once more with them free, so that no
            # single lot of any asset improves the answer (it found 0.005 % on a 30-asset book).
            return polish(model, alternative[0]), alternative[1]
        return shares, outcome

    def _user_strategy(
        self, strategy: OptimizationStrategy, config: PortfolioConfiguration, model: Model, solver: str
    ) -> _Decided:
        """A user's ``OptimizationStrategy``: its trades if they keep every limit in the share mode;
        otherwise the nearest compliant whole-share trades, said in ``warnings``."""
        data = model.data
        shares = self._proposed(strategy, config, data)
        state = post_trade_state(data, shares)
        breaches = [c for c in _checks(model, state) if not c.satisfied]
        off_lot = np.flatnonzero(~on_lots(data, shares))
        breaches_text = [f"{data.symbols[i]}: {abs(shares[i]):g} shares is not a whole lot" for i in off_lot]
        breaches_text += [f"{c.constraint}: {c.value:.6g} vs limit {c.limit:.6g} ({c.unit})" for c in breaches]
        if not breaches_text:
            return _Decided(shares, None, "fractional" if data.fractional else "whole_shares", None)
        # Repair: the nearest compliant trades to the proposal, whole shares kept.
        proposal = model.data.x0 + shares * data.prices / data.ref_value
        repair = Model.of([_ProposalTerm(proposal), *model.terms], data)
        try:
            outcome = self._solve(repair, solver)
            repaired, outcome = self._whole_shares(repair, outcome, solver)
        except InfeasibleRebalanceError as exc:
            raise InfeasibleRebalanceError(
                exc.conflicts,
                f"strategy {strategy.name!r} breaks " + "; ".join(breaches_text) + " and cannot be repaired",
            ) from exc
        note = f"strategy {strategy.name!r} was repaired to the nearest compliant trades: " + "; ".join(breaches_text)
        return _Decided(repaired, outcome, "fractional" if data.fractional else "whole_shares", None, (note,), True)

    def _proposed(
        self, strategy: OptimizationStrategy, config: PortfolioConfiguration, data: ProblemData
    ) -> np.ndarray:
        prices = dict(zip(data.symbols, data.prices.tolist(), strict=True))
        analysis = self.analyzer.analyze_current_portfolio(config, prices)
        proposed = strategy.optimize(
            analysis.needs,
            config,
            dict(config.target_weights),
            prices,
            config.cash + config.cash_flow,
            list(config.custom_constraints),
            config,
        )
        if not isinstance(proposed, OptimizedTrades):
            raise ConfigurationError(
                f"strategy {strategy.name!r}: optimize() must return OptimizedTrades, not {type(proposed).__name__}"
            )
        index = {s: i for i, s in enumerate(data.symbols)}
        shares = np.zeros(data.n)
        for trade in proposed.trades:
            if trade.symbol not in index:
                raise InvalidPortfolioError(
                    f"strategy {strategy.name!r} traded unknown symbol {trade.symbol}",
                    symbol=trade.symbol,
                )
            shares[index[trade.symbol]] += trade.signed_shares
        return shares

    @staticmethod
    def _validate_custom(
        constraints: list[OptimizationConstraint],
        config: PortfolioConfiguration,
        data: ProblemData,
        state: PostTradeState,
        trades: list[TradeRecommendation],
        warnings: list[str],
    ) -> tuple[list[ComplianceCheck], list[ConstraintOutcome]]:
        """Each custom constraint's own check of the final trades (failures also become warnings)."""
        if not constraints:
            return [], []
        market_data = {
            "prices": dict(zip(data.symbols, data.prices.tolist(), strict=True)),
            "post_trade_weights": dict(zip(data.symbols, state.weights_after.tolist(), strict=True)),
            "sectors": dict(config.sectors),
            "esg_scores": dict(config.esg_scores),
        }
        checks = []
        outcomes = []
        for constraint in constraints:
            answer = constraint.validate(trades, config, market_data)
            if not (
                isinstance(answer, tuple)
                and len(answer) == 2
                and isinstance(answer[0], bool | np.bool_)
                and isinstance(answer[1], list | tuple)
            ):
                raise ConfigurationError(
                    f"{type(constraint).__name__}.validate() must return (ok: bool, messages: list[str]), "
                    f"not {answer!r}"
                )
            ok, messages = bool(answer[0]), [str(m) for m in answer[1]]
            outcomes.append(ConstraintOutcome(name=constraint.name, ok=ok, messages=messages))
            checks.append(
                ComplianceCheck(
                    constraint=constraint.name,
                    term="custom",
                    kind="==",
                    limit=1.0,
                    value=float(ok),
                    slack=0.0 if ok else -1.0,
                    satisfied=ok,
                )
            )
            warnings += [f"{constraint.name}: {m}" for m in messages]
        return checks, outcomes

    @staticmethod
    def _trades(data: ProblemData, state: PostTradeState) -> list[TradeRecommendation]:
        idx = np.flatnonzero(state.trade_shares != 0)
        qty = state.trade_shares[idx]
        cost = state.transaction_costs[idx]
        impact = state.impact_costs[idx]
        columns = zip(
            idx.tolist(),
            qty.tolist(),
            data.prices[idx].tolist(),
            np.abs(state.trade_values[idx]).tolist(),
            cost.tolist(),
            impact.tolist(),
            data.shares[idx].tolist(),
            state.shares_after[idx].tolist(),
            data.current_weights[idx].tolist(),
            data.target[idx].tolist(),
            state.weights_after[idx].tolist(),
            strict=True,
        )
        sales = (
            data.lots.sales(np.maximum(-state.trade_shares, 0.0))
            if data.lots is not None
            else [[] for _ in data.symbols]
        )
        return [
            TradeRecommendation.trusted(
                symbol=data.symbols[i],
                action=TradeAction.BUY if q > 0 else TradeAction.SELL,
                shares=abs(q),
                price=price,
                trade_value=value,
                transaction_cost=c,
                market_impact_cost=m,
                total_estimated_cost=c + m,
                current_shares=held,
                post_trade_shares=after,
                current_weight=current,
                target_weight=target,
                post_trade_weight=weight,
                lots=sales[i],
            )
            for i, q, price, value, c, m, held, after, current, target, weight in columns
        ]

    @staticmethod
    def _result(
        config: PortfolioConfiguration,
        data: ProblemData,
        state: PostTradeState,
        trades: list[TradeRecommendation],
        checks: list[ComplianceCheck],
        warnings: list[str],
        decided: _Decided,
        achieved: float | None,
        method: str,
        portfolio_id: str | None,
        seconds: float,
        analysis: Any,
    ) -> RebalancingResult:
        outcome, mip, rounding = decided.outcome, decided.mip, decided.rounding
        bound = decided.bound if achieved is not None else None
        symbols = data.symbols
        cash_weight_before = data.cash / data.value
        before = np.sqrt(
            np.sum((data.current_weights - data.target) ** 2) + (cash_weight_before - data.cash_target) ** 2
        )
        after = np.sqrt(
            np.sum((state.weights_after - data.target) ** 2) + (state.cash_weight_after - data.cash_target) ** 2
        )
        if data.lots is not None and after > before * (1 + 1e-9) and len(trades):
            warnings = [
                *warnings,
                f"the tax saved outweighs the tracking: these trades leave the portfolio farther from its target "
                f"than before ({after:.4g} against {before:.4g}) at tax_weight {data.lots.tax_weight:g}; a smaller "
                f"tax_weight trades tax for tracking (the default is 1 / (2 x assets))",
            ]
        current = dict(zip(symbols, data.current_weights.tolist(), strict=True))
        current["CASH"] = cash_weight_before
        violations = [c.slack for c in checks if c.term != "custom"]
        solver = "custom" if outcome is None else outcome.solver
        if decided.repaired:
            solver = f"custom, repaired by {solver}"
        return RebalancingResult(
            status="optimal" if mip is None or mip.proven_optimal else "time_limit",
            method=method,
            solver=solver if mip is None else f"{mip.solver} (continuous bound: {solver})",
            mip_gap=None if mip is None else mip.gap,
            rounding=rounding,
            trades=trades,
            current_holdings=dict(zip(symbols, data.shares.tolist(), strict=True)),
            post_trade_holdings=dict(zip(symbols, state.shares_after.tolist(), strict=True)),
            prices=dict(zip(symbols, data.prices.tolist(), strict=True)),
            current_weights=current,
            target_weights=dict(zip(symbols, data.target.tolist(), strict=True)),
            post_trade_weights=dict(zip(symbols, state.weights_after.tolist(), strict=True)),
            cash_before=data.cash,
            cash_flow=data.cash_flow,
            cash_after=state.cash_after,
            cash_weight_after=state.cash_weight_after,
            target_cash_weight=data.cash_target,
            total_cost=state.total_cost,
            transaction_costs=float(state.transaction_costs.sum()),
            market_impact_costs=float(state.impact_costs.sum()),
            turnover=state.turnover,
            portfolio_value_before=data.value,
            portfolio_value_after=state.value_after,
            sectors=dict(config.sectors),
            compliance=checks,
            max_constraint_residual=max(0.0, -min(violations, default=0.0)),
            objective_value=achieved,
            continuous_objective=bound,
            objective_gap=None if bound is None or achieved is None else achieved - bound,
            tracking_distance_before=float(before),
            tracking_distance_after=float(after),
            solve_time_seconds=seconds,
            iterations=outcome.iterations if outcome is not None else 0,
            warnings=warnings,
            analysis=analysis,
            portfolio_id=portfolio_id,
            tax=None if data.lots is None else data.lots.summary(np.maximum(-state.trade_shares, 0.0)),
        )


_default_engine: RebalancingEngine | None = None
_default_lock = threading.Lock()


def default_engine() -> RebalancingEngine:
    """The process-wide engine behind :func:`rebalance` (settings read once)."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = RebalancingEngine()
        return _default_engine


def rebalance(
    config: PortfolioConfiguration,
    prices: Mapping[str, Any] | pd.Series,
    **options: Any,
) -> RebalancingResult:
    """Rebalance ``config`` at ``prices`` synchronously; see :meth:`RebalancingEngine.rebalance`.

    ``prices`` is a mapping or a pandas Series of symbol -> price (numbers or ``PriceData``).
    """
    engine = options.pop("engine", None) or default_engine()
    if not isinstance(engine, RebalancingEngine):
        raise ConfigurationError("engine must be a RebalancingEngine")
    return engine.rebalance(config, prices, **options)
