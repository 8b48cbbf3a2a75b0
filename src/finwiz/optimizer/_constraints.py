"""User-facing constraints in the original FinWiz guide's shape.

An :class:`OptimizationConstraint` may fold limits into the problem data (:meth:`limits`), add
optimizer terms (:meth:`terms`) so the solver enforces it, and check the final trades
(:meth:`validate`). The engine reports every verdict in the result's ``constraint_outcomes`` and
compliance table, and a failed one raises :class:`~finwiz.errors.ComplianceError` carrying the
result (:func:`refuse_failed_checks`): trades a user's own check refused are never returned as if
they could be sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from finwiz.errors import ComplianceError, InvalidPortfolioError
from finwiz.optimizer.describe._terms import Term
from finwiz.schemas import PortfolioConfiguration, RebalancingResult, TradeRecommendation, is_unclassified

__all__ = ["ESGConstraint", "OptimizationConstraint", "SectorConcentrationConstraint", "refuse_failed_checks"]

# The types of :meth:`OptimizationConstraint.validate`, which every constraint overrides.
Trades = Sequence[TradeRecommendation]
MarketData = Mapping[str, Any]
Verdict = tuple[bool, list[str]]


def refuse_failed_checks(result: RebalancingResult) -> RebalancingResult:
    """``result`` when every custom check passed; otherwise :class:`ComplianceError` carrying it,
    naming each failed check and its messages (a result's ``status`` says how it was solved, so a
    refused one is never handed out as ``"optimal"`` trades)."""
    failed = [o for o in result.constraint_outcomes if not o.ok]
    if not failed:
        return result
    reasons = [f"{o.name}: {m}" for o in failed for m in o.messages]
    raise ComplianceError(result, [o.name for o in failed], reasons)


class OptimizationConstraint:
    """Base class for constraints users add to ``PortfolioConfiguration.custom_constraints``."""

    name = "custom"
    needs_sectors = False
    needs_esg = False

    def limits(self) -> Mapping[str, float]:
        """Limits folded into the problem data: ``max_sector_weight``, ``min_esg_score``,
        ``min_average_esg_score`` (the tightest source wins)."""
        return {}

    def terms(self) -> Sequence[Term]:
        """Extra optimizer terms that enforce this constraint in the solve."""
        return ()

    def validate(self, trades: Trades, current_portfolio: PortfolioConfiguration, market_data: MarketData) -> Verdict:
        """Check the final trades; ``market_data`` holds ``prices``, ``post_trade_weights``,
        ``sectors`` and ``esg_scores``. Return (ok, messages). ``ok=False`` refuses the trades: the
        engine raises :class:`~finwiz.errors.ComplianceError` (its ``result`` has them all the same)."""
        return True, []


class SectorConcentrationConstraint(OptimizationConstraint):
    """Every sector's post-trade weight is at most ``max_sector_weight``."""

    name = "sector_concentration"
    needs_sectors = True

    def __init__(self, max_sector_weight: float) -> None:
        if not 0 < max_sector_weight <= 1:
            raise InvalidPortfolioError(
                f"max_sector_weight {max_sector_weight} is outside (0, 1]",
                field="max_sector_weight",
            )
        self.max_sector_weight = max_sector_weight

    def __repr__(self) -> str:
        return f"SectorConcentrationConstraint(max_sector_weight={self.max_sector_weight!r})"

    def limits(self) -> Mapping[str, float]:
        return {"max_sector_weight": self.max_sector_weight}

    def validate(self, trades: Trades, current_portfolio: PortfolioConfiguration, market_data: MarketData) -> Verdict:
        weights: Mapping[str, float] = market_data["post_trade_weights"]
        sectors: Mapping[str, str] = market_data["sectors"]
        totals: dict[str, float] = {}
        for symbol, weight in weights.items():
            sector = sectors.get(symbol)
            if is_unclassified(sector):  # in no sector: no sector cap applies (see schemas)
                continue
            totals[str(sector)] = totals.get(str(sector), 0.0) + weight
        over = {s: w for s, w in totals.items() if w > self.max_sector_weight + 1e-9}
        messages = [f"sector {s} at {w:.4%} exceeds {self.max_sector_weight:.4%}" for s, w in sorted(over.items())]
        return not over, messages


class ESGConstraint(OptimizationConstraint):
    """No buys of assets scoring below ``min_esg_score``; optionally a floor on the
    value-weighted average score of invested positions (``min_average_score``)."""

    name = "esg"
    needs_esg = True

    def __init__(self, min_esg_score: float, min_average_score: float | None = None) -> None:
        self.min_esg_score = min_esg_score
        self.min_average_score = min_average_score

    def __repr__(self) -> str:
        return f"ESGConstraint(min_esg_score={self.min_esg_score!r}, min_average_score={self.min_average_score!r})"

    def limits(self) -> Mapping[str, float]:
        out = {"min_esg_score": self.min_esg_score}
        if self.min_average_score is not None:
            out["min_average_esg_score"] = self.min_average_score
        return out

    def validate(self, trades: Trades, current_portfolio: PortfolioConfiguration, market_data: MarketData) -> Verdict:
        scores: Mapping[str, float] = market_data["esg_scores"]
        messages = [
            f"buys {t.symbol} scoring {scores.get(t.symbol, float('nan'))} below {self.min_esg_score}"
            for t in trades
            if t.action.value == "buy" and not scores.get(t.symbol, float("-inf")) >= self.min_esg_score
        ]
        if self.min_average_score is not None:
            weights: Mapping[str, float] = market_data["post_trade_weights"]
            invested = sum(weights.values())
            if invested > 0:
                average = sum(w * scores.get(s, 0.0) for s, w in weights.items()) / invested
                if average < self.min_average_score - 1e-9:
                    messages.append(f"average ESG score {average:.4f} below {self.min_average_score}")
        return not messages, messages
