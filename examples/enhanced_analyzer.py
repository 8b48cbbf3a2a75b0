"""A custom analyzer: the original guide's ``EnhancedPortfolioAnalyzer``, built on ``risk_metrics``.

Subclass :class:`finwiz.PortfolioAnalyzer` and add what your desk asks for; here sector
allocation, the correlation matrix and value at risk next to the base metrics. Run with
``python examples/enhanced_analyzer.py`` (offline: the bundled 20-stock sample).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from finwiz import PortfolioAnalyzer, PortfolioConfiguration
from finwiz.data import compute_returns, sample_latest_prices, sample_price_history, sample_sectors


class EnhancedPortfolioAnalyzer(PortfolioAnalyzer):
    """The base analyzer plus sector allocation, a correlation matrix and VaR/CVaR."""

    def calculate_enhanced_metrics(
        self,
        config_or_weights: PortfolioConfiguration | Mapping[str, float],
        prices: Mapping[str, float] | pd.Series,
        returns: pd.DataFrame,
        *,
        sectors: Mapping[str, str] | None = None,
        confidence: float | Iterable[float] = (0.95, 0.99),
        periods_per_year: float = 252,
    ) -> dict[str, Any]:
        """Metrics of a portfolio (a configuration, valued at ``prices``) or of bare weights.

        ``returns`` are per-period asset returns (rows: dates, columns: symbols): VaR and CVaR
        are historical, one period, positive fractions of value. With a configuration the base
        metrics of :meth:`calculate_portfolio_metrics` and the tracking error to its targets
        are included.
        """
        if isinstance(config_or_weights, PortfolioConfiguration):
            config = config_or_weights
            weights = self.calculate_current_weightings(config, prices)
            base: dict[str, Any] = dict(self.calculate_portfolio_metrics(config, prices))
            sectors = sectors if sectors is not None else config.sectors
            target: Mapping[str, float] | None = config.target_weights
        else:
            weights, base, target = dict(config_or_weights), {}, None
        risk = self.risk_metrics(
            weights,
            target=target,
            returns=returns,
            sectors=sectors,
            confidence=confidence,
            periods_per_year=periods_per_year,
            correlation=True,
        )
        invested = pd.Series(weights, dtype=float).drop("CASH", errors="ignore")
        labels = invested.index.map(lambda s: (sectors or {}).get(s, "Unclassified"))
        return {
            **base,
            "sector_allocation": invested.groupby(labels).sum().to_dict(),
            "correlation_matrix": risk.correlation,
            "volatility": risk.volatility,
            "tracking_error": risk.tracking_error,
            **{f"var_{level * 100:g}": value for level, value in risk.var.items()},
            **{f"cvar_{level * 100:g}": value for level, value in risk.cvar.items()},
            "risk_contributions": risk.risk_contributions,
            "sector_risk_contributions": risk.sector_risk_contributions,
        }


def main() -> dict[str, Any]:
    """Analyse a small sample portfolio and print the figures."""
    from finwiz import Holding

    prices = sample_latest_prices()
    sector_map = {str(k): str(v) for k, v in sample_sectors().items()}
    symbols = ["AAPL", "MSFT", "JNJ", "XOM", "KO"]
    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=q) for s, q in zip(symbols, (900, 150, 100, 300, 200), strict=True)],
        cash=20_000.0,
        target_weights={"AAPL": 0.25, "MSFT": 0.25, "JNJ": 0.2, "XOM": 0.15, "KO": 0.1},
        sectors={s: sector_map[s] for s in symbols},
    )
    returns = compute_returns(sample_price_history()[symbols].iloc[-505:])  # about two years of days
    metrics = EnhancedPortfolioAnalyzer().calculate_enhanced_metrics(config, prices, returns)
    print(f"value {metrics['total_value']:,.2f}, volatility {metrics['volatility']:.2%} a year")
    print(f"one-day VaR 95% {metrics['var_95']:.2%}, CVaR 95% {metrics['cvar_95']:.2%}")
    print("sector allocation:", {k: round(v, 4) for k, v in metrics["sector_allocation"].items()})
    print(metrics["correlation_matrix"].round(2))
    return metrics


if __name__ == "__main__":
    main()
