"""A custom report, the original guide's ``CustomReportGenerator(HTMLReportGenerator)`` pattern.

The subclass adds its own sections to the built-in ones and renders them from its own template
folder (``custom_report_templates/``, autoescaped like the built-ins), whose ``report.html.j2``
extends the built-in page and overrides its ``header`` and ``footer`` blocks. Offline: bundled
sample prices. Run with ``python examples/custom_report.py [OUTPUT.html]``.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from finwiz.data import sample_latest_prices, sample_sectors
from finwiz.optimizer import rebalance
from finwiz.reporting import HTMLReportGenerator
from finwiz.schemas import Holding, PortfolioConfiguration, RebalancingResult

TEMPLATES = Path(__file__).resolve().parent / "custom_report_templates"


class CustomReportGenerator(HTMLReportGenerator):
    """Custom report generator with additional sections."""

    def __init__(self, **options: Any) -> None:
        super().__init__(template_dir=TEMPLATES, **options)

    def generate_enhanced_report(self, result: RebalancingResult, custom_data: dict[str, Any]) -> str:
        """Generate the report with custom sections after the built-in ones."""
        self.clear_sections()
        self._add_sector_analysis(result)
        self._add_risk_attribution(custom_data.get("risk_data"))
        return self.generate_html(result, title="Enhanced Portfolio Rebalancing Report", language="en")

    def _add_sector_analysis(self, result: RebalancingResult) -> None:
        """A table of assets and post-trade weight per sector, from this folder's template."""
        counts = Counter(result.sectors.values())
        weights = Counter[str]()
        for symbol, sector in result.sectors.items():
            weights[sector] += result.post_trade_weights.get(symbol, 0.0)
        rows = [(sector, counts[sector], weights[sector]) for sector in sorted(counts)]
        self.add_section("Sector analysis", self.render("sector_analysis.html.j2", rows=rows), raw_html=True)

    def _add_risk_attribution(self, risk_data: dict[str, float] | None) -> None:
        """Plain text (escaped), so any string from the caller is safe."""
        if not risk_data:
            return
        lines = [f"{name}: {share:.1%} of risk" for name, share in risk_data.items()]
        self.add_section("Risk attribution", "\n".join(lines))


def main(output: str = "custom_report.html") -> Path:
    """Rebalance a small portfolio on the sample prices and write the custom report."""
    sectors = sample_sectors()
    targets = {"AAPL": 0.2, "MSFT": 0.2, "JNJ": 0.15, "XOM": 0.15, "KO": 0.1, "JPM": 0.15}
    config = PortfolioConfiguration(
        holdings=[
            Holding(symbol="AAPL", shares=900),
            Holding(symbol="MSFT", shares=150),
            Holding(symbol="XOM", shares=300),
        ],
        cash=50_000.0,
        target_weights=targets,
        max_sector_weight=0.45,
        sectors={s: sectors[s] for s in targets},
    )
    result = rebalance(config, sample_latest_prices(), portfolio_id="custom-demo")
    generator = CustomReportGenerator()
    document = generator.generate_enhanced_report(result, {"risk_data": {"Equity <beta>": 0.82, "Sector": 0.18}})
    path = Path(output)
    path.write_text(document, encoding="utf-8")
    return path


if __name__ == "__main__":
    written = main(*sys.argv[1:2])
    print(f"Report written to {written.resolve()}")
