"""Strategies: named presets of objective terms, and the registry users extend.

The shipped presets (constraints come from the configuration and are added to every strategy):

* ``MINIMIZE_TRADES``: ||w - w*||^2 + (cash - cash*)^2 + c + lambda sum_i gamma_i |u_i|
  (re-weighted L1, so the last term approaches lambda x number of trades).
* ``MINIMIZE_COSTS``: ||w - w*||^2 + (cash - cash*)^2 + c, where c is transaction cost plus market
  impact when volumes are given. With zero costs this is the nearest feasible portfolio.
* ``RISK_AWARE``: the above plus risk_aversion x (w - w*)' Sigma (w - w*) / mean(diag Sigma),
  the active risk against the target under the covariance (needs a risk model).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from finwiz.errors import ConfigurationError
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._terms import (
    TargetTrackingTerm,
    Term,
    TrackingErrorTerm,
    TradeCountTerm,
    TransactionCostTerm,
)
from finwiz.schemas import (
    OptimizedTrades,
    PortfolioConfiguration,
    RebalancingMethod,
    RebalancingNeed,
)

__all__ = [
    "OptimizationStrategy",
    "Strategy",
    "StrategyRegistry",
    "TermStrategy",
    "default_strategies",
]


class Strategy(ABC):
    """A named way to rebalance, expressed as optimizer terms."""

    name: str = "strategy"
    requires_risk_model = False

    @abstractmethod
    def terms(self, data: ProblemData) -> list[Term]:
        """Fresh objective (and extra constraint) terms for one rebalance."""


class TermStrategy(Strategy):
    """A strategy given as a list of terms (copied for every rebalance, so state never leaks)."""

    def __init__(
        self,
        name: str,
        terms: Sequence[Term],
        *,
        requires_risk_model: bool = False,
        description: str = "",
    ) -> None:
        self.name = name
        self._terms = list(terms)
        self.requires_risk_model = requires_risk_model
        self.description = description

    def terms(self, data: ProblemData) -> list[Term]:
        return [copy.deepcopy(t) for t in self._terms]

    def __repr__(self) -> str:
        return f"TermStrategy({self.name!r}, {self._terms!r})"


class OptimizationStrategy(ABC):
    """The original guide's strategy interface: compute trades yourself.

    The engine calls :meth:`optimize` and then checks every hard constraint of the configuration
    on the trades it returns, so a custom strategy can never break a limit silently.
    """

    name: str = "custom"

    @abstractmethod
    def optimize(
        self,
        rebalancing_needs: Sequence[RebalancingNeed],
        current_portfolio: PortfolioConfiguration,
        target_weights: Mapping[str, float],
        prices: Mapping[str, float],
        available_capital: float,
        constraints: Sequence[Any],
        config: PortfolioConfiguration,
    ) -> OptimizedTrades:
        """Return the trades (positive shares, side in ``action``)."""


def default_strategies() -> dict[str, Strategy | OptimizationStrategy]:
    """The presets that ship: MINIMIZE_TRADES, MINIMIZE_COSTS, RISK_AWARE."""
    return {
        RebalancingMethod.MINIMIZE_TRADES.value: TermStrategy(
            RebalancingMethod.MINIMIZE_TRADES.value,
            [TargetTrackingTerm(), TransactionCostTerm(), TradeCountTerm()],
            description="track the target with as few trades as possible",
        ),
        RebalancingMethod.MINIMIZE_COSTS.value: TermStrategy(
            RebalancingMethod.MINIMIZE_COSTS.value,
            [TargetTrackingTerm(), TransactionCostTerm()],
            description="track the target, paying as little in costs as the trade-off allows",
        ),
        RebalancingMethod.RISK_AWARE.value: TermStrategy(
            RebalancingMethod.RISK_AWARE.value,
            [TargetTrackingTerm(), TrackingErrorTerm(), TransactionCostTerm()],
            requires_risk_model=True,
            description="track the target, weighing active risk under the covariance",
        ),
    }


def _key(name: object) -> str:
    if isinstance(name, RebalancingMethod):
        return name.value
    if isinstance(name, str):
        text = name.strip()
        upper = text.upper()
        if upper in RebalancingMethod.__members__:
            return RebalancingMethod[upper].value
        return text.lower()
    raise ConfigurationError(f"strategy name must be a string or RebalancingMethod, not {type(name).__name__}")


class StrategyRegistry(MutableMapping[str, Strategy | OptimizationStrategy]):
    """Strategies by name; keys are case-insensitive and accept :class:`RebalancingMethod`.

    A list of terms is accepted as a value and wrapped in a :class:`TermStrategy`.
    """

    def __init__(self, initial: Mapping[str, Strategy | OptimizationStrategy] | None = None) -> None:
        self._items: dict[str, Strategy | OptimizationStrategy] = {}
        for name, strategy in (initial or default_strategies()).items():
            self[name] = strategy

    def __getitem__(self, name: object) -> Strategy | OptimizationStrategy:
        key = _key(name)
        if key not in self._items:
            known = ", ".join(sorted(self._items))
            raise ConfigurationError(f"unknown strategy {name!r}; known: {known}")
        return self._items[key]

    def __setitem__(self, name: object, strategy: Any) -> None:
        if isinstance(strategy, list | tuple) and all(isinstance(t, Term) for t in strategy):
            strategy = TermStrategy(_key(name), strategy)
        if not isinstance(strategy, Strategy | OptimizationStrategy):
            raise ConfigurationError(
                f"strategy {name!r} must be a list of terms, a Strategy or an OptimizationStrategy"
            )
        self._items[_key(name)] = strategy

    def __delitem__(self, name: object) -> None:
        del self._items[_key(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
