"""Presentation of a result that needs no reporting layer: the ``to_frame`` table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from finwiz._schemas._base import CASH, TradeAction

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from finwiz._schemas._result import RebalancingResult

__all__ = ["result_frame"]


def result_frame(self: RebalancingResult) -> pd.DataFrame:
    """One row per asset and a final ``CASH`` row: sector, shares, prices, trades and weights,
    and each asset's risk contribution before and after when risk is attached (cash: 0).

    ``trade_shares`` and ``trade_value`` are signed alike: positive for a buy, negative for a
    sell, 0 for a hold. ``CASH`` is a position of price 1: its shares are the cash amounts and
    its ``trade_value`` is its change (sells - buys - costs + cash flow), so the column sums to
    cash flow - costs. ``sector`` is ``""`` for cash and for an asset without a sector.
    """
    import pandas as pd

    symbols = list(self.current_holdings)
    by_symbol = {t.symbol: t for t in self.trades}
    traded = [by_symbol.get(s) for s in symbols]
    cash_change = self.cash_after - self.cash_before
    frame = pd.DataFrame(
        {
            "sector": [self.sectors.get(s, "") for s in symbols] + [""],
            "action": [t.action.value if t else TradeAction.HOLD.value for t in traded] + [TradeAction.HOLD.value],
            "shares_before": [self.current_holdings[s] for s in symbols] + [self.cash_before],
            "trade_shares": [t.signed_shares if t else 0.0 for t in traded] + [cash_change],
            "shares_after": [self.post_trade_holdings[s] for s in symbols] + [self.cash_after],
            "price": [self.prices[s] for s in symbols] + [1.0],
            "trade_value": [t.signed_trade_value if t else 0.0 for t in traded] + [cash_change],
            "cost": [t.total_estimated_cost if t else 0.0 for t in traded] + [0.0],
            "weight_before": [self.current_weights[s] for s in symbols] + [self.current_weights.get(CASH, 0.0)],
            "target_weight": [self.target_weights.get(s, 0.0) for s in symbols] + [self.target_cash_weight],
            "weight_after": [self.post_trade_weights[s] for s in symbols] + [self.cash_weight_after],
        },
        index=pd.Index([*symbols, CASH], name="symbol"),
    )
    for when, risk in (("before", self.risk_before), ("after", self.risk_after)):
        if risk is not None:
            frame[f"risk_contribution_{when}"] = [risk.risk_contributions.get(s, 0.0) for s in symbols] + [0.0]
    return frame
