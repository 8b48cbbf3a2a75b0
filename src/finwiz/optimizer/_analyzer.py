"""Where the portfolio stands before trading: weights, drift and what each asset needs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from finwiz.optimizer.describe._data import coerce_prices, tracking_distance
from finwiz.risk import DEFAULT_CONFIDENCE, FactorModel, RiskMetrics, WeightsLike, risk_metrics
from finwiz.schemas import (
    CASH,
    PortfolioAnalysis,
    PortfolioConfiguration,
    RebalancingNeed,
    TradeAction,
)

__all__ = ["PortfolioAnalyzer"]


class PortfolioAnalyzer:
    """Current weights, drift from target and one :class:`RebalancingNeed` per asset (vectorized).

    Weights are fractions of V = sum(shares x price) + cash, before trading; the band of an
    asset is ``|current - target| <= tolerance``. :meth:`risk_metrics` gives the risk of any
    weights (volatility, tracking error, VaR/CVaR, risk contributions).
    """

    def risk_metrics(
        self,
        weights: WeightsLike,
        *,
        target: WeightsLike | None = None,
        returns: pd.DataFrame | None = None,
        covariance: pd.DataFrame | None = None,
        factor_model: FactorModel | None = None,
        confidence: float | Iterable[float] = DEFAULT_CONFIDENCE,
        periods_per_year: float = 252,
        sectors: Mapping[str, str] | None = None,
        correlation: bool = False,
    ) -> RiskMetrics:
        """Ex-ante risk of ``weights`` (symbol -> fraction of value; ``CASH`` is riskless).

        The model is ``covariance`` or ``factor_model`` (never made dense), else the sample
        covariance of ``returns``. Volatility and tracking error (against ``target``) are
        annualised with ``periods_per_year``; VaR and CVaR at each ``confidence`` are one-period
        losses as positive fractions of value, historical when ``returns`` is given, else
        parametric (normal); risk contributions per asset and per sector sum to the volatility.
        ``correlation=True`` adds the asset correlation matrix. Bad input raises
        :class:`~finwiz.errors.InvalidPortfolioError` naming the field.
        """
        return risk_metrics(
            weights,
            target=target,
            returns=returns,
            covariance=covariance,
            factor_model=factor_model,
            sectors=sectors,
            confidence=confidence,
            periods_per_year=periods_per_year,
            correlation=correlation,
        )

    def _frame(self, config: PortfolioConfiguration, prices: Mapping[str, Any] | pd.Series) -> pd.DataFrame:
        symbols = config.symbols
        price = coerce_prices(prices, symbols)
        held = config.shares_by_symbol()
        shares = np.array([held[s] for s in symbols], dtype=float)
        value = shares * price
        total = float(value.sum() + config.cash)
        frame = pd.DataFrame(
            {"shares": shares, "price": price, "value": value},
            index=pd.Index(symbols, name="symbol"),
        )
        frame["weight"] = value / total if total > 0 else 0.0
        frame["target"] = [config.target_weights.get(s, 0.0) for s in symbols]
        frame.attrs["total"] = total
        return frame

    def calculate_current_weightings(
        self, config: PortfolioConfiguration, prices: Mapping[str, Any] | pd.Series
    ) -> dict[str, float]:
        """Current weight of each asset and of ``CASH`` (fractions of V, summing to 1)."""
        frame = self._frame(config, prices)
        total = frame.attrs["total"]
        weights = {str(k): float(v) for k, v in frame["weight"].items()}
        weights[CASH] = config.cash / total if total > 0 else 0.0
        return weights

    def calculate_portfolio_metrics(
        self, config: PortfolioConfiguration, prices: Mapping[str, Any] | pd.Series
    ) -> dict[str, float]:
        """Value, cash weight, largest and total drift, and how many assets are outside their band."""
        return self._metrics(config, self._frame(config, prices))

    @staticmethod
    def _metrics(config: PortfolioConfiguration, frame: pd.DataFrame) -> dict[str, float]:
        total = frame.attrs["total"]
        drift = frame["weight"] - frame["target"]
        cash_weight = config.cash / total if total > 0 else 0.0
        cash_drift = cash_weight - config.cash_target
        return {
            "total_value": total,
            "positions_value": float(frame["value"].sum()),
            "cash": config.cash,
            "cash_weight": cash_weight,
            "max_drift": float(max(np.abs(drift.to_numpy()).max(initial=0.0), abs(cash_drift))),
            "total_drift": float((np.abs(drift).sum() + abs(cash_drift)) / 2),
            "tracking_distance": tracking_distance(
                frame["weight"].to_numpy(), cash_weight, frame["target"].to_numpy(), config.cash_target
            ),
            "assets_outside_band": float((np.abs(drift) > config.band_width(frame["target"].to_numpy())).sum()),
        }

    @staticmethod
    def _needs(config: PortfolioConfiguration, frame: pd.DataFrame) -> tuple[list[RebalancingNeed], np.ndarray]:
        """One need per asset, and which assets are outside their band."""
        total = frame.attrs["total"]
        drift = (frame["weight"] - frame["target"]).to_numpy()
        tol = np.broadcast_to(np.asarray(config.band_width(frame["target"].to_numpy()), dtype=float), drift.shape)
        exceeded = np.abs(drift) > tol
        with np.errstate(divide="ignore", invalid="ignore"):
            urgency = np.where(tol > 0, np.abs(drift) / tol, np.where(drift != 0, np.inf, 0.0))
        action = np.where(~exceeded, TradeAction.HOLD.value, np.where(drift > 0, "sell", "buy"))
        # Trusted, already-validated numbers: constructed without validation (validation dominated).
        needs = [
            RebalancingNeed.trusted(
                symbol=str(symbol),
                current_weight=cw,
                target_weight=tw,
                drift=d,
                tolerance=t,
                band_exceeded=x,
                urgency=u,
                recommended_action=TradeAction(a),
                current_value=v,
                target_value=tw * total,
            )
            for symbol, cw, tw, d, t, x, u, a, v in zip(
                frame.index.tolist(),
                frame["weight"].tolist(),
                frame["target"].tolist(),
                drift.tolist(),
                tol.tolist(),
                exceeded.tolist(),
                urgency.tolist(),
                action.tolist(),
                frame["value"].tolist(),
                strict=True,
            )
        ]
        return needs, exceeded

    def analyze_current_portfolio(
        self, config: PortfolioConfiguration, prices: Mapping[str, Any] | pd.Series
    ) -> PortfolioAnalysis:
        """The full analysis: weights, metrics, sector weights and one need per asset."""
        frame = self._frame(config, prices)
        total = frame.attrs["total"]
        needs, exceeded = self._needs(config, frame)
        metrics = self._metrics(config, frame)
        sector_weights: dict[str, float] = {}
        if config.sectors:
            sectors = pd.Series([config.sectors.get(s, "Unclassified") for s in frame.index], index=frame.index)
            sector_weights = {str(k): float(v) for k, v in frame["weight"].groupby(sectors).sum().items()}
        current = {str(k): float(v) for k, v in frame["weight"].items()}
        # the cash is held to its own band
        cash_off = bool(abs(metrics["cash_weight"] - config.cash_target) > config.band_width(config.cash_target))
        return PortfolioAnalysis(
            total_value=total,
            positions_value=metrics["positions_value"],
            cash=config.cash,
            cash_weight=metrics["cash_weight"],
            target_cash_weight=config.cash_target,
            current_weights=current,
            target_weights={str(k): float(v) for k, v in frame["target"].items()},
            needs=needs,
            needs_rebalancing=bool(exceeded.any()) or cash_off,
            max_drift=metrics["max_drift"],
            total_drift=metrics["total_drift"],
            sector_weights=sector_weights,
        )
