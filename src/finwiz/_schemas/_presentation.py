"""Presentation of a result that needs no reporting layer: the ``to_frame`` table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from finwiz._schemas._base import CASH, TradeAction

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from finwiz._schemas._result import RebalancingResult

__all__ = ["result_frame"]


def result_frame(self: RebalancingResult) -> pd.DataFrame:
    """One row per asset (and a ``CASH`` row): shares, prices, trades and weights."""
    import pandas as pd

    symbols = list(self.current_holdings)
    by_symbol = {t.symbol: t for t in self.trades}
    signed = [by_symbol[s].signed_shares if s in by_symbol else 0.0 for s in symbols]
    frame = pd.DataFrame(
        {
            "action": [by_symbol[s].action.value if s in by_symbol else TradeAction.HOLD.value for s in symbols],
            "shares_before": [self.current_holdings[s] for s in symbols],
            "trade_shares": signed,
            "shares_after": [self.post_trade_holdings[s] for s in symbols],
            "price": [self.prices[s] for s in symbols],
            "trade_value": [by_symbol[s].trade_value if s in by_symbol else 0.0 for s in symbols],
            "cost": [by_symbol[s].total_estimated_cost if s in by_symbol else 0.0 for s in symbols],
            "weight_before": [self.current_weights[s] for s in symbols],
            "target_weight": [self.target_weights.get(s, 0.0) for s in symbols],
            "weight_after": [self.post_trade_weights[s] for s in symbols],
        },
        index=pd.Index(symbols, name="symbol"),
    )
    cash_row = pd.DataFrame(
        {
            "action": [TradeAction.HOLD.value],
            "shares_before": [float("nan")],
            "trade_shares": [float("nan")],
            "shares_after": [float("nan")],
            "price": [1.0],
            "trade_value": [0.0],
            "cost": [0.0],
            "weight_before": [self.current_weights.get(CASH, 0.0)],
            "target_weight": [self.target_cash_weight],
            "weight_after": [self.cash_weight_after],
        },
        index=pd.Index([CASH], name="symbol"),
    )
    return pd.concat([frame, cash_row])
