"""finwiz.data's public surface: explicit, sorted, complete, and independent of the optimizer."""

from __future__ import annotations

import subprocess
import sys

import finwiz.data


def test_all_is_sorted_and_every_name_exists() -> None:
    names = finwiz.data.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    assert len(set(names)) == len(names)
    assert all(hasattr(finwiz.data, n) for n in names)
    for required in (
        "PriceDataProvider",
        "YahooFinancePriceProvider",
        "AlphaVantagePriceProvider",
        "CSVPriceProvider",
        "InMemoryPriceProvider",
        "SamplePriceProvider",
        "PortfolioPriceService",
        "MarketDataProvider",
        "sample_price_history",
    ):
        assert required in names


def test_data_layer_imports_neither_optimizer_nor_reporting_nor_yfinance() -> None:
    code = (
        "import sys, finwiz.data; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'yfinance' or m.startswith("
        "('finwiz.optimizer', 'finwiz.reporting', 'finwiz.orchestrator'))]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
