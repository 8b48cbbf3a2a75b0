"""Quickstart: rebalance a small portfolio on the bundled sample prices (offline).

Run with ``python examples/quickstart.py``; it prints the trades and writes ``quickstart.html``.
"""

from __future__ import annotations

from finwiz.data import sample_latest_prices, sample_sectors
from finwiz.optimizer import rebalance
from finwiz.reporting import HTMLReportGenerator, summary_text, trades_table
from finwiz.schemas import Holding, PortfolioConfiguration

prices = sample_latest_prices()
sectors = sample_sectors()

config = PortfolioConfiguration(
    holdings=[
        Holding(symbol="AAPL", shares=900),
        Holding(symbol="MSFT", shares=150),
        Holding(symbol="JNJ", shares=100),
        Holding(symbol="XOM", shares=300),
    ],
    cash=20_000.0,
    target_weights={"AAPL": 0.25, "MSFT": 0.25, "JNJ": 0.2, "XOM": 0.15, "KO": 0.1},
    max_sector_weight=0.45,
    sectors={s: sectors[s] for s in ("AAPL", "MSFT", "JNJ", "XOM", "KO")},
)

result = rebalance(config, prices, portfolio_id="quickstart")
print(trades_table(result))
print()
print(summary_text(result))

# In a notebook, `result` displays as a summary table and `result.plot()` draws the weights.
figure = result.plot()
figure.savefig("quickstart-weights.png")
path = HTMLReportGenerator().write(result, "quickstart.html")
print(f"\nReport written to {path.resolve()}")
