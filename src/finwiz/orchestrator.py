"""The rebalancing pipeline: prices -> analysis -> engine -> custom checks -> report.

:class:`PortfolioRebalancingOrchestrator` ties the data layer, the optimizer and the reporting
layer together; each is passed in (constructor injection) so tests and services can swap any
of them. :class:`RebalancingServiceFactory` builds the usual assembly from
:class:`~finwiz.RebalancingSettings`; :class:`RebalancingHealthCheck` probes each component.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from finwiz._threads import in_daemon_thread
from finwiz.data import (
    PRICE_PROVIDERS,
    compute_returns,
    estimate_covariance,
)
from finwiz.errors import ConfigurationError, FinwizError, InsufficientPriceDataError, PriceDataError
from finwiz.optimizer import StrategyRegistry
from finwiz.optimizer._constraints import refuse_failed_checks
from finwiz.reporting import HTMLReportGenerator
from finwiz.risk import FactorModel, attach_risk
from finwiz.schemas import (
    ConstraintOutcome,
    PortfolioAnalysis,
    PortfolioConfiguration,
    PriceData,
    RebalancingResult,
)
from finwiz.schemas._inputs import refuse_other_currencies
from finwiz.service._events import RebalancingEvent, RebalancingEventBus, RebalancingEventType
from finwiz.service._monitoring import monitor_performance

__all__ = [
    "PRICE_PROVIDERS",
    "PortfolioRebalancingOrchestrator",
    "RebalancingEvent",
    "RebalancingEventBus",
    "RebalancingEventType",
    "monitor_performance",
]

logger = logging.getLogger("finwiz.orchestrator")

_MIN_HISTORY_ROWS = 60  # about three months of trading days: fewer cannot estimate a covariance

RiskEstimator = Callable[[pd.DataFrame], FactorModel]
"""Turns daily price history (index: date, columns: symbols) into a risk model."""


# -- what the orchestrator needs from each component (structural, so fakes need no base class)


@runtime_checkable
class PriceService(Protocol):
    """The part of :class:`~finwiz.data.PortfolioPriceService` the orchestrator uses."""

    async def get_current_prices(self, symbols: Sequence[str]) -> Mapping[str, Any]:
        """Latest price (a :class:`PriceData` or a number) of each symbol."""
        ...


@runtime_checkable
class HistoricalPriceService(Protocol):
    """A price service that also serves daily history (needed for risk terms)."""

    async def get_historical_prices(self, symbols: Sequence[str], start: Any = None, end: Any = None) -> pd.DataFrame:
        """Daily prices, index: date, columns: symbols."""
        ...


class Analyzer(Protocol):
    """The part of :class:`~finwiz.PortfolioAnalyzer` the orchestrator uses."""

    def analyze_current_portfolio(
        self, config: PortfolioConfiguration, prices: Mapping[str, float]
    ) -> PortfolioAnalysis:
        """Weights, drift and needs before trading."""
        ...


class Engine(Protocol):
    """The part of :class:`~finwiz.RebalancingEngine` the orchestrator uses."""

    def rebalance(
        self,
        config: PortfolioConfiguration,
        prices: Mapping[str, float],
        *,
        factor_model: FactorModel | None = None,
        portfolio_id: str | None = None,
    ) -> RebalancingResult:
        """Solve and return whole-share trades (blocking)."""
        ...


# -- the orchestrator ----------------------------------------------------------------------


def _price_value(symbol: str, quote: Any) -> float:
    if isinstance(quote, PriceData):
        return quote.price
    if isinstance(quote, int | float) and not isinstance(quote, bool):
        return float(quote)
    raise InsufficientPriceDataError({symbol: f"price service returned {type(quote).__name__}"})


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "portfolio"


class PortfolioRebalancingOrchestrator:
    """Runs one rebalance end to end and announces it on an event bus.

    ``await rebalance_portfolio(config, portfolio_id)``: fetch prices (and price history when
    the method needs a risk model), analyse the current portfolio, run the engine off the event
    loop, check the configuration's custom constraints on the final trades, and write the HTML
    report. Publishes ``rebalancing_started`` then ``rebalancing_completed`` (payload: trades,
    costs, turnover, report path, durations) or ``rebalancing_failed`` (payload: stage, error).

    Parameters
    ----------
    price_service
        Async price source with ``get_current_prices(symbols)`` (e.g. ``PortfolioPriceService``);
        ``get_historical_prices`` is used as well when a risk model must be estimated.
    portfolio_analyzer, rebalancing_engine
        A ``PortfolioAnalyzer`` and a ``RebalancingEngine`` (or objects with their methods).
    report_generator
        An :class:`HTMLReportGenerator`; ``None`` writes no report.
    event_bus
        Where events go; a private bus by default (see :attr:`event_bus`).
    report_directory
        Directory for reports not given an explicit path (default: current directory).
    factor_model
        A fixed risk model for risk-aware methods; otherwise one is estimated from
        ``history_days`` of history with ``risk_estimator``.
    engine_options
        Extra keyword options passed to every ``rebalance`` call (e.g. ``solver=``).
    """

    def __init__(
        self,
        price_service: PriceService,
        portfolio_analyzer: Analyzer,
        rebalancing_engine: Engine,
        report_generator: HTMLReportGenerator | None = None,
        *,
        event_bus: RebalancingEventBus | None = None,
        report_directory: str | Path = ".",
        factor_model: FactorModel | None = None,
        risk_estimator: RiskEstimator | None = None,
        history_days: int = 3 * 365,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.price_service = price_service
        self.portfolio_analyzer = portfolio_analyzer
        self.rebalancing_engine = rebalancing_engine
        self.report_generator = report_generator
        self.event_bus = event_bus if event_bus is not None else RebalancingEventBus()
        self.report_directory = Path(report_directory)
        self.factor_model = factor_model
        self.risk_estimator = risk_estimator
        self.history_days = history_days
        self.engine_options = dict(engine_options or {})
        self.last_report_path: Path | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(price_service={self.price_service!r}, "
            f"portfolio_analyzer={self.portfolio_analyzer!r}, "
            f"rebalancing_engine={self.rebalancing_engine!r}, "
            f"report_generator={self.report_generator!r})"
        )

    @monitor_performance(name="rebalance_portfolio")
    async def rebalance_portfolio(
        self,
        config: PortfolioConfiguration,
        portfolio_id: str | None = None,
        *,
        report_path: str | Path | None = None,
    ) -> RebalancingResult:
        """Rebalance ``config`` and return the result; the report path is in the event payload.

        ``report_path`` overrides where the report goes (default:
        ``<report_directory>/rebalance-<portfolio_id>.html``). Raises
        :class:`~finwiz.errors.InsufficientPriceDataError` when prices cannot be had, and the
        engine's errors (:class:`~finwiz.errors.InfeasibleRebalanceError`, ...) unchanged; a failed
        custom check is :class:`~finwiz.errors.ComplianceError` (also for an injected engine that
        leaves the checks to the orchestrator).

        Cancellation (``task.cancel()``, ``asyncio.wait_for``/``asyncio.timeout``, Ctrl-C under
        ``asyncio.run``) publishes ``rebalancing_failed`` with ``error="CancelledError"`` and the
        stage it stopped in, then raises ``CancelledError`` at once. A solve already running
        cannot be stopped from outside its thread: it runs on in a daemon thread until the solver
        returns (at most the engine's time limit), its result is discarded, and nothing waits for
        it -- neither this coroutine, nor ``asyncio.run`` on its way out, nor interpreter exit.
        No report is written for a cancelled rebalance.
        """
        bus = self.event_bus
        clock = _Clock()
        started = time.perf_counter()
        await bus.emit(
            RebalancingEventType.STARTED,
            portfolio_id,
            symbols=len(config.symbols),
            method=str(getattr(config.method, "value", config.method)),
        )
        try:
            with clock.timed("prices"):
                prices = await self.fetch_prices(config.symbols, currency=config.currency)
                factor_model = await self.risk_model(config)
            with clock.timed("analysis"):
                analysis, analysis_warning = self.analyze(config, prices)
            with clock.timed("optimization"):
                result, options = await self._solve(config, prices, portfolio_id, factor_model)
            clock.stage = "validation"
            result, violations = self._validated(config, result, analysis, analysis_warning, options)
            with clock.timed("report"):
                report = await self.write_report(result, portfolio_id, report_path)
        except BaseException as exc:  # CancelledError (a cancel, a timeout, Ctrl-C) too
            await self._announce_failure(portfolio_id, clock.stage, exc, started)
            raise
        await bus.emit(
            RebalancingEventType.COMPLETED,
            portfolio_id,
            **_completion(result, violations, report),
            duration_seconds=time.perf_counter() - started,
            **clock.seconds,
        )
        return result

    async def _solve(
        self,
        config: PortfolioConfiguration,
        prices: Mapping[str, Any],
        portfolio_id: str | None,
        factor_model: FactorModel | None,
    ) -> tuple[RebalancingResult, dict[str, Any]]:
        """The engine's result, and the options it was called with (the orchestrator's own, the
        portfolio id and the risk model)."""
        options = {**self.engine_options, "portfolio_id": portfolio_id}
        if factor_model is not None:
            options["factor_model"] = factor_model
        # The solver blocks for up to seconds: keep the event loop free for other work. A daemon
        # thread, so that a cancelled rebalance is not waited for (see rebalance_portfolio).
        result: RebalancingResult = await in_daemon_thread(
            self.rebalancing_engine.rebalance, config, prices, name="finwiz-solve", **options
        )
        return result, options

    def _validated(
        self,
        config: PortfolioConfiguration,
        result: RebalancingResult,
        analysis: PortfolioAnalysis | None,
        analysis_warning: str | None,
        options: Mapping[str, Any],
    ) -> tuple[RebalancingResult, list[str]]:
        """The engine's result with the custom checks an injected engine left out, the analysis
        and its warning, refused if a check failed, and its risk; with the violations."""
        # finwiz's engine validates custom constraints itself (``constraint_outcomes``, the
        # messages also in warnings); only an injected engine that does not gets them run here.
        updates: dict[str, Any] = {}
        outcomes = result.constraint_outcomes
        new_messages: list[str] = []
        if not outcomes and config.custom_constraints:
            outcomes = self.check_custom_constraints(config, result)
            new_messages = _violations(outcomes)
            updates["constraint_outcomes"] = outcomes
        violations = _violations(outcomes)
        extra_warnings = [*new_messages, *([analysis_warning] if analysis_warning else [])]
        if extra_warnings:
            updates["warnings"] = [*result.warnings, *extra_warnings]
        if result.analysis is None and analysis is not None:
            updates["analysis"] = analysis
        if updates:
            result = result.model_copy(update=updates)
        result = refuse_failed_checks(result)  # ComplianceError, as the engine's own
        if result.risk_after is None:  # with a risk model: risk before/after (else unchanged)
            covariance = options.get("covariance")
            result = attach_risk(result, factor_model=options.get("factor_model"), covariance=covariance)
        return result, violations

    async def _announce_failure(self, portfolio_id: str | None, stage: str, exc: BaseException, started: float) -> None:
        event = self.event_bus.emit(
            RebalancingEventType.FAILED,
            portfolio_id,
            stage=stage,
            error=type(exc).__name__,
            message=str(exc) or ("cancelled" if isinstance(exc, asyncio.CancelledError) else ""),
            duration_seconds=time.perf_counter() - started,
        )
        if not isinstance(exc, asyncio.CancelledError):
            await event
            return
        # The task is being cancelled: the event still goes out, but a second cancellation
        # (an impatient caller) stops only this wait, never the delivery to subscribers.
        delivery = asyncio.ensure_future(event)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(delivery)

    async def fetch_prices(self, symbols: Sequence[str], *, currency: str | None = None) -> dict[str, float]:
        """Latest price of each symbol; any failure is an :class:`InsufficientPriceDataError`, and
        so is a quote in another currency than ``currency`` (the portfolio's; None: any)."""
        try:
            quotes = await self.price_service.get_current_prices(list(symbols))
        except InsufficientPriceDataError:
            raise
        except PriceDataError as exc:
            raise InsufficientPriceDataError({exc.symbol: exc.reason}, provider=exc.provider) from exc
        except FinwizError:
            raise
        except Exception as exc:  # a provider bug or transport error: still a price failure
            reason = f"{type(exc).__name__}: {exc}"
            raise InsufficientPriceDataError(dict.fromkeys(symbols, reason)) from exc
        missing = [s for s in symbols if s not in quotes]
        if missing:
            raise InsufficientPriceDataError(dict.fromkeys(missing, "no price returned"))
        if currency is not None:
            sources = {getattr(quote, "source", None) for quote in quotes.values()}
            refuse_other_currencies(quotes, currency, sources.pop() if len(sources) == 1 else None)
        return {s: _price_value(s, quotes[s]) for s in symbols}

    def analyze(
        self, config: PortfolioConfiguration, prices: Mapping[str, float]
    ) -> tuple[PortfolioAnalysis | None, str | None]:
        """The pre-trade analysis, or (None, warning) when the analyzer fails unexpectedly.

        The analysis only describes the portfolio before trading and the engine does not use
        it, so an analyzer bug is logged and reported as a warning on the result instead of
        blocking the trades. Refused input (a :class:`~finwiz.errors.FinwizError`) still stops
        the rebalance.
        """
        try:
            return self.portfolio_analyzer.analyze_current_portfolio(config, prices), None
        except FinwizError:
            raise
        except Exception as exc:
            logger.warning("portfolio analysis failed (%s: %s); continuing without it", type(exc).__name__, exc)
            logger.debug("portfolio analysis traceback", exc_info=True)
            return None, f"portfolio analysis failed ({type(exc).__name__}: {exc}); the trades are unaffected"

    def needs_risk_model(self, config: PortfolioConfiguration) -> bool:
        """True when no model was given and the strategy of ``config.method`` says it needs one
        (``Strategy.requires_risk_model``, read from the engine's registry, so a user's
        strategy is asked like ``RISK_AWARE``). An engine without a registry is answered by the
        shipped presets; a method no registry knows needs none here (the engine refuses it)."""
        if self.factor_model is not None:
            return False
        registry = getattr(self.rebalancing_engine, "strategies", None)
        if not isinstance(registry, Mapping):
            registry = StrategyRegistry()
        try:
            strategy = registry[config.method]
        except (ConfigurationError, KeyError):
            return False
        return bool(getattr(strategy, "requires_risk_model", False))

    async def risk_model(self, config: PortfolioConfiguration) -> FactorModel | None:
        """The fixed factor model, or one estimated from history when the method needs it."""
        if not self.needs_risk_model(config):
            return self.factor_model
        service = self.price_service
        if not isinstance(service, HistoricalPriceService):
            raise InsufficientPriceDataError(
                dict.fromkeys(
                    config.symbols,
                    "risk-aware rebalancing needs price history and the price service serves none; pass factor_model=",
                ),
            )
        start = (datetime.now(UTC) - timedelta(days=self.history_days)).date()
        symbols = list(config.symbols)
        try:
            try:
                history: pd.DataFrame | None = await service.get_historical_prices(symbols, start=start)
            except InsufficientPriceDataError:
                history = None
            if history is None or len(history) < _MIN_HISTORY_ROWS:
                # A source that stopped updating (a file, the bundled sample) has nothing recent:
                # use its latest window of the same length instead.
                full = await service.get_historical_prices(symbols)
                history = full[full.index >= full.index.max() - pd.Timedelta(days=self.history_days)]
        except PriceDataError as exc:
            if isinstance(exc, InsufficientPriceDataError):
                raise
            raise InsufficientPriceDataError({exc.symbol: exc.reason}, provider=exc.provider) from exc
        estimator = self.risk_estimator or _default_risk_estimator()
        return await in_daemon_thread(estimator, history, name="finwiz-risk")

    def validate_custom_constraints(self, config: PortfolioConfiguration, result: RebalancingResult) -> list[str]:
        """Run each custom constraint's ``validate`` on the final trades; return the messages
        of those that fail (each prefixed by ``constraint <name>:``)."""
        return _violations(self.check_custom_constraints(config, result))

    def check_custom_constraints(
        self, config: PortfolioConfiguration, result: RebalancingResult
    ) -> list[ConstraintOutcome]:
        """Run each custom constraint's ``validate`` on the final trades: one
        :class:`~finwiz.schemas.ConstraintOutcome` each, in configuration order."""
        market_data = {
            "prices": result.prices,
            "post_trade_weights": result.post_trade_weights,
            "sectors": {**config.sectors, **result.sectors},
            "esg_scores": config.esg_scores,
        }
        outcomes: list[ConstraintOutcome] = []
        for constraint in config.custom_constraints:
            validate = getattr(constraint, "validate", None)
            if validate is None:
                continue
            ok, found = validate(result.trades, config, market_data)
            name = getattr(constraint, "name", type(constraint).__name__)
            outcomes.append(ConstraintOutcome(name=str(name), ok=bool(ok), messages=[str(m) for m in found]))
        return outcomes

    async def write_report(
        self,
        result: RebalancingResult,
        portfolio_id: str | None = None,
        path: str | Path | None = None,
    ) -> Path | None:
        """Write the HTML report (off the event loop) and return its path; None without a
        generator. An unwritable path raises :class:`~finwiz.errors.ConfigurationError`."""
        if self.report_generator is None:
            return None
        if path is None:
            stamp = result.timestamp.strftime("%Y%m%dT%H%M%S")
            name = _file_safe(portfolio_id) if portfolio_id else f"portfolio-{stamp}"
            path = self.report_directory / f"rebalance-{name}.html"
        title = f"Rebalancing report: {portfolio_id}" if portfolio_id else None
        written = await asyncio.to_thread(self.report_generator.write, result, path, title=title)
        self.last_report_path = written
        return written


@dataclass
class _Clock:
    """The stage a rebalance is in (named if it fails) and each timed stage's seconds (``<stage>_seconds``)."""

    stage: str = "prices"
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        self.stage, start = stage, time.perf_counter()
        yield
        self.seconds[f"{stage}_seconds"] = time.perf_counter() - start


def _completion(result: RebalancingResult, violations: list[str], report: Path | None) -> dict[str, Any]:
    """The ``rebalancing_completed`` event's account of the result."""
    return {
        "trades": len(result.trades),
        "total_cost": result.total_cost,
        "turnover": result.turnover,
        "compliant": result.is_compliant and not violations,
        "constraint_violations": violations,
        "report_path": str(report) if report is not None else None,
    }


def _violations(outcomes: Sequence[ConstraintOutcome]) -> list[str]:
    """``constraint <name>: <message>`` for every message of a failed constraint."""
    out: list[str] = []
    for outcome in outcomes:
        if not outcome.ok:
            out += [f"constraint {outcome.name}: {m}" for m in outcome.messages] or [
                f"constraint {outcome.name} failed"
            ]
    return out


def _default_risk_estimator() -> RiskEstimator:
    """Ledoit-Wolf covariance of daily simple returns (the data layer's pipeline)."""

    def estimate(history: pd.DataFrame) -> FactorModel:
        # Forward-fill: a symbol missing a day (holiday, halt) has a zero return that day.
        returns = compute_returns(history.sort_index(), missing="forward_fill").dropna()
        return FactorModel.from_covariance(estimate_covariance(returns))

    return estimate
