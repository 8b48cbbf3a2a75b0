"""The engine: configuration + prices -> one model -> verified whole-share trades.

It only orchestrates; each stage runs once, in order, and nothing calls back up: prepare (the
data and the model, here), continuous (``solve/_continuous``: the optimum, re-solved while an
iterative term's ``refine`` asks; a taxable account's sides fixed first by ``tax/_sides``), whole
shares (``discrete/_stage``: the rounding and its one rule of alternatives; exact mode's program
instead), verify and result (``verify/_result``). ``result.stages`` records each (``_trace``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from finwiz._blas import single_threaded_given
from finwiz.errors import (
    ConfigurationError,
    InfeasibleRebalanceError,
    InvalidPortfolioError,
)
from finwiz.optimizer._analyzer import PortfolioAnalyzer
from finwiz.optimizer._constraints import OptimizationConstraint, refuse_failed_checks
from finwiz.optimizer._strategies import OptimizationStrategy, StrategyRegistry
from finwiz.optimizer._trace import Stages
from finwiz.optimizer.describe._data import MarketImpactModel, ProblemData, build_problem_data
from finwiz.optimizer.describe._limits import constraint_terms
from finwiz.optimizer.describe._model import Description
from finwiz.optimizer.describe._terms import Term
from finwiz.optimizer.discrete._stage import Decided, Solve, achieved, exact_stage, whole_share_stage, whole_shares
from finwiz.optimizer.household._solve import solve_household
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._continuous import solve_continuous
from finwiz.optimizer.tax._regions import over_regions
from finwiz.optimizer.tax._sides import fix_sides
from finwiz.optimizer.tax._wash import settle_groups
from finwiz.optimizer.verify._compliance import PostTradeState, on_lots, post_trade_state
from finwiz.optimizer.verify._reasons import trade_reasons
from finwiz.optimizer.verify._result import build_result, checks_of, trades_of, verify
from finwiz.optimizer.verify._surprises import surprise_warnings
from finwiz.risk import FactorModel, attach_risk
from finwiz.schemas import (
    ComplianceCheck,
    ConstraintOutcome,
    Household,
    HouseholdResult,
    OptimizedTrades,
    PortfolioConfiguration,
    RebalancingResult,
    TradeRecommendation,
)
from finwiz.settings import RebalancingSettings

__all__ = ["RebalancingEngine", "rebalance", "rebalance_household"]

log = logging.getLogger("finwiz.engine")

_LIMIT_KEYS = {"max_sector_weight": min, "min_esg_score": max, "min_average_esg_score": max}


class _ProposalTerm(Term):
    """||w - w_proposed||^2: the nearest compliant portfolio to a user strategy's proposal."""

    name = "proposal"

    def __init__(self, proposal: np.ndarray) -> None:
        self.proposal = proposal

    def describe(self, data: ProblemData) -> Description:
        return Description(weight_squares=[(np.ones(data.n), self.proposal)])


class _Verified(NamedTuple):
    """What the verify stage hands the result stage."""

    state: PostTradeState
    trades: list[TradeRecommendation]
    checks: list[ComplianceCheck]
    warnings: list[str]
    outcomes: list[ConstraintOutcome]


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

    @single_threaded_given("covariance")
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
        discrete, verify them against every limit, build the result. A custom constraint whose
        ``validate()`` fails raises :class:`~finwiz.errors.ComplianceError` (``.result`` holds it).
        """
        if not isinstance(config, PortfolioConfiguration):
            raise InvalidPortfolioError("config must be a PortfolioConfiguration", field="config")
        start = time.perf_counter()
        stages = Stages()
        solver = solver or self.settings.solver
        with stages.stage("prepare"):
            strategy = self.strategies[config.method]
            constraints = _custom_constraints(config)
            model = self._prepare(strategy, config, prices, constraints, factor_model, covariance, market_impact)
        if isinstance(strategy, OptimizationStrategy):
            decided = self._user_strategy(strategy, config, model, solver, stages)
        else:
            decided = self._optimize(model, solver, exact, stages)
        if decided.model is not None:  # the trades are of the engine's refined model (its lots' order)
            model = decided.model
        with stages.stage("verify"):
            verified = self._verify(model, decided, config, constraints)
        with stages.stage("result"):
            result = self._result(config, prices, model, decided, verified, strategy, portfolio_id, analyze)
            if analyze:  # risk before/after of the whole-share result (unchanged without a model)
                result = attach_risk(result, factor_model=factor_model, covariance=covariance, returns=returns)
        update: dict[str, Any] = {"stages": stages.records, "solve_time_seconds": time.perf_counter() - start}
        if verified.outcomes:
            update["constraint_outcomes"] = verified.outcomes
        # A failed custom check raises ComplianceError carrying the result (see _constraints).
        return refuse_failed_checks(result.model_copy(update=update))

    # ------------------------------------------------------------------ stages

    def _verify(
        self, model: Model, decided: Decided, config: PortfolioConfiguration, constraints: list[OptimizationConstraint]
    ) -> _Verified:
        """The verify stage: the post-trade state, the trades with their reasons, every limit's
        check (the custom constraints' own included), the warnings, the custom outcomes."""
        data = model.data
        state = post_trade_state(data, decided.shares)
        checks = verify(model, state, decided)
        trades = trades_of(data, state, trade_reasons(model, state, config.mode))
        warnings = [*data.notes, *decided.warnings, *surprise_warnings(data, state)]
        custom_checks, outcomes = self._validate_custom(constraints, config, data, state, trades, warnings)
        return _Verified(state, trades, checks + custom_checks, warnings, outcomes)

    def _result(
        self,
        config: PortfolioConfiguration,
        prices: Mapping[str, Any] | pd.Series,
        model: Model,
        decided: Decided,
        verified: _Verified,
        strategy: Any,
        portfolio_id: str | None,
        analyze: bool,
    ) -> RebalancingResult:
        """The result stage: the verified trades as a :class:`~finwiz.RebalancingResult`."""
        value = None if isinstance(strategy, OptimizationStrategy) else achieved(model, decided.shares)
        analysis = self.analyzer.analyze_current_portfolio(config, prices) if analyze else None
        state, trades, checks, warnings = verified.state, verified.trades, verified.checks, verified.warnings
        return build_result(
            config, model.data, state, trades, checks, warnings, decided, value, strategy.name, portfolio_id, analysis
        )

    def _prepare(
        self,
        strategy: Any,
        config: PortfolioConfiguration,
        prices: Mapping[str, Any] | pd.Series,
        constraints: list[OptimizationConstraint],
        factor_model: FactorModel | None,
        covariance: pd.DataFrame | None,
        market_impact: MarketImpactModel | None,
    ) -> Model:
        """The request's data and its one model: the strategy's terms and every constraint's."""
        data = build_problem_data(
            config,
            prices,
            factor_model=factor_model,
            covariance=covariance,
            market_impact=market_impact,
            extra_caps=_folded_limits(constraints),
            settings=self.settings,
        )
        if isinstance(strategy, OptimizationStrategy):
            return Model.of(_applicable(constraint_terms(), data), data)
        if strategy.requires_risk_model and data.factor_root is None:
            raise InvalidPortfolioError(
                f"strategy {strategy.name!r} needs a risk model: pass factor_model= or covariance=",
                field="factor_model",
            )
        extra = [t for c in constraints for t in c.terms()]
        return Model.of(_applicable([*_with_constraints(strategy.terms(data)), *extra], data), data)

    def _optimize(self, model: Model, solver: str, exact: bool, stages: Stages) -> Decided:
        """The continuous stage (a taxable account's sides fixed first), then whole shares: by
        the whole-share stage, or exactly (exact mode)."""
        limit = self.settings.solver_time_limit_seconds
        lots = model.data.lots
        if lots is not None and lots.netting and lots.region is None:  # the netting rule's regions
            return over_regions(model, lambda region: self._optimize(region, solver, exact, stages), solver, limit)
        decided = self._stages(model, solver, exact, stages)
        if lots is None:
            return decided
        # The whole-share stage knows no identical groups: a wash sale it brought back is walled off.
        return settle_groups(model, decided, lambda walled: self._stages(walled, solver, exact, stages))

    def _stages(self, model: Model, solver: str, exact: bool, stages: Stages) -> Decided:
        """The continuous stage and whole shares of :meth:`_optimize` (one netting region's)."""
        limit, mip_limit = self.settings.solver_time_limit_seconds, self.settings.mip_time_limit_seconds
        with stages.stage("continuous"):
            sided = None
            if model.data.lots is not None and not exact:  # each asset on one side; the relaxation's optimum the bound
                sided = fix_sides(model, solver, limit, mip_limit)
                model = sided.model
            first = None if sided is None else sided.outcome
            outcome = solve_continuous(model, solver, limit, first=first)  # diagnoses infeasibility
        if exact:
            with stages.stage("exact_mip"):
                return exact_stage(model, outcome, mip_limit, self._variants(solver))
        with stages.stage("whole_shares"):
            return whole_share_stage(model, outcome, self._variants(solver), mip_limit, sided)

    def _variants(self, solver: str) -> Solve:
        """The continuous stage for the whole-share stage's variants (undiagnosed)."""
        limit = self.settings.solver_time_limit_seconds
        return lambda variant: solve_continuous(variant, solver, limit, diagnose=False)

    def _user_strategy(
        self, strategy: OptimizationStrategy, config: PortfolioConfiguration, model: Model, solver: str, stages: Stages
    ) -> Decided:
        """A user's ``OptimizationStrategy``: its trades if they keep every limit in the share mode;
        otherwise the nearest compliant whole-share trades, said in ``warnings``."""
        data = model.data
        with stages.stage("proposal"):
            shares = self._proposed(strategy, config, data)
            state = post_trade_state(data, shares)
            breaches = [c for c in checks_of(model, state) if not c.satisfied]
            off_lot = np.flatnonzero(~on_lots(data, shares))
        breaches_text = [f"{data.symbols[i]}: {abs(shares[i]):g} shares is not a whole lot" for i in off_lot]
        breaches_text += [f"{c.constraint}: {c.value:.6g} vs limit {c.limit:.6g} ({c.unit})" for c in breaches]
        if not breaches_text:
            return Decided(shares, None, "fractional" if data.fractional else "whole_shares", None)
        # Repair: the nearest compliant trades to the proposal, whole shares kept.
        proposal = model.data.x0 + shares * data.prices / data.ref_value
        repair = Model.of([_ProposalTerm(proposal), *model.terms], data)
        try:
            with stages.stage("continuous"):
                outcome = solve_continuous(repair, solver, self.settings.solver_time_limit_seconds)
            with stages.stage("whole_shares"):
                limit = self.settings.mip_time_limit_seconds
                repaired, outcome = whole_shares(repair, outcome, self._variants(solver), limit)
        except InfeasibleRebalanceError as exc:
            raise InfeasibleRebalanceError(
                exc.conflicts,
                f"strategy {strategy.name!r} breaks " + "; ".join(breaches_text) + " and cannot be repaired",
            ) from exc
        note = f"strategy {strategy.name!r} was repaired to the nearest compliant trades: " + "; ".join(breaches_text)
        return Decided(repaired, outcome, "fractional" if data.fractional else "whole_shares", None, (note,), True)

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

    def rebalance_household(
        self, household: Household, prices: Mapping[str, Any] | pd.Series, **options: Any
    ) -> HouseholdResult:
        """Rebalance a :class:`~finwiz.Household` with this engine (see :func:`rebalance_household`)."""
        return solve_household(self, household, prices, **options)


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


def rebalance_household(
    household: Household,
    prices: Mapping[str, Any] | pd.Series,
    **options: Any,
) -> HouseholdResult:
    """Rebalance every account of ``household`` as one problem (README "Households"); options as
    :meth:`RebalancingEngine.rebalance_household` (``engine=``, ``factor_model=``, ``covariance=``,
    ``solver=``, ``exact=``)."""
    engine = options.pop("engine", None) or default_engine()
    if not isinstance(engine, RebalancingEngine):
        raise ConfigurationError("engine must be a RebalancingEngine")
    return engine.rebalance_household(household, prices, **options)
