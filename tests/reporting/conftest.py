"""Hand-built results for the reporting tests (no optimizer needed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, Literal

import numpy as np
import pytest

from finwiz.schemas import ComplianceCheck, RebalancingResult, TradeAction, TradeRecommendation

EVIL_SYMBOL = "<script>alert(1)</script>"
EVIL_SECTOR = 'Tech & <b>"Co"</b>'
EVIL_PORTFOLIO = "<img src=x onerror=alert(2)>"


def _trade(
    symbol: str, action: TradeAction, shares: float, price: float, rate: float = 0.001, **extra: Any
) -> TradeRecommendation:
    value = shares * price
    return TradeRecommendation(
        symbol=symbol,
        action=action,
        shares=shares,
        price=price,
        trade_value=value,
        transaction_cost=value * rate,
        total_estimated_cost=value * rate,
        **extra,
    )


def compliance_check(
    constraint: str,
    term: str,
    kind: Literal["<=", ">=", "=="],
    limit: float,
    value: float,
    slack: float,
    unit: str = "",
) -> ComplianceCheck:
    """One compliance row; it holds when its slack is not negative."""
    return ComplianceCheck(
        constraint=constraint,
        term=term,
        kind=kind,
        limit=limit,
        value=value,
        slack=slack,
        satisfied=slack >= 0,
        unit=unit,
    )


TRADE_COLUMNS = [
    "Symbol",
    "Sector",
    "Side",
    "Shares",
    "Price (USD)",
    "Value (USD)",
    "Cost (USD)",
    "Current",
    "Target",
    "Post-trade",
    "Why",
]
"""The trade blotter's header row."""


def build_result(
    *, breach: bool = False, evil: bool = False, trades: bool = True, sectors: bool = True
) -> RebalancingResult:
    """A small three-asset rebalance: sell AAA, buy BBB, hold the third."""
    third = EVIL_SYMBOL if evil else "CCC"
    tech = EVIL_SECTOR if evil else "Technology"
    prices = {"AAA": 100.0, "BBB": 50.0, third: 20.0}
    before = {"AAA": 600.0, "BBB": 400.0, third: 500.0}
    trade_list = (
        [
            _trade("AAA", TradeAction.SELL, 150.0, 100.0),
            _trade("BBB", TradeAction.BUY, 280.0, 50.0),
        ]
        if trades
        else []
    )
    after = dict(before)
    if trades:
        after.update({"AAA": 450.0, "BBB": 680.0})
    cost = sum(t.total_estimated_cost for t in trade_list)
    cash_before = 10_000.0
    cash_after = cash_before + 15_000.0 - 14_000.0 - cost if trades else cash_before
    value_before = sum(before[s] * prices[s] for s in prices) + cash_before
    value_after = value_before - cost
    current_weights = {s: before[s] * prices[s] / value_before for s in prices}
    current_weights["CASH"] = cash_before / value_before
    post = {s: after[s] * prices[s] / value_after for s in prices}
    tech_after = post["AAA"] + post[third]
    cap = 0.5
    compliance = [
        compliance_check("budget", "budget", "==", 0.0, 0.0, 0.0),
        compliance_check("long_only[AAA]", "long_only", ">=", 0.0, after["AAA"], after["AAA"]),
    ]
    if sectors:
        limit = tech_after - 0.05 if breach else 0.6
        compliance.append(
            compliance_check(f"sector_cap[{tech}]", "sector_caps", "<=", limit, tech_after, limit - tech_after)
        )
        compliance.append(
            compliance_check("sector_cap[Health Care]", "sector_caps", "<=", cap, post["BBB"], cap - post["BBB"])
        )
    return RebalancingResult(
        method="minimize_trades",
        solver="CLARABEL",
        rounding="whole_shares",
        trades=trade_list,
        current_holdings=before,
        post_trade_holdings=after,
        prices=prices,
        current_weights=current_weights,
        target_weights={"AAA": 0.4, "BBB": 0.35, third: 0.2},
        post_trade_weights=post,
        cash_before=cash_before,
        cash_after=cash_after,
        cash_weight_after=cash_after / value_after,
        target_cash_weight=0.05,
        total_cost=cost,
        transaction_costs=cost,
        turnover=29_000.0 / value_before,
        portfolio_value_before=value_before,
        portfolio_value_after=value_after,
        sectors={"AAA": tech, "BBB": "Health Care", third: tech} if sectors else {},
        compliance=compliance,
        warnings=[f"{third} is close to its cap"] if evil else ["rounded 2 trades to whole shares"],
        portfolio_id=EVIL_PORTFOLIO if evil else "acct-42",
        timestamp=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )


SECTOR_NAMES = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)


def build_large_result(n_assets: int = 431, n_trades: int = 145, *, seed: int = 13) -> RebalancingResult:
    """A consistent synthetic rebalance of ``n_assets`` (every tenth without a sector): the
    ``n_trades`` assets furthest from an equal-weight target are traded to it in whole shares.

    Money adds up: cash after = cash - signed trade values - costs, and the weights are
    recomputed from the shares, so any figure the report shows can be checked against it.
    """
    rng = np.random.default_rng(seed)
    symbols = [f"{chr(65 + i % 26)}{chr(65 + (i // 26) % 26)}{'X' * (i % 3)}{i}" for i in range(n_assets)]
    prices = np.round(rng.lognormal(4.0, 0.8, n_assets), 2) + 1.0
    shares_before = np.floor(rng.lognormal(0.0, 0.6, n_assets) * 1e7 / n_assets / prices)
    cash_before = 250_000.0
    value_before = float(shares_before @ prices) + cash_before
    target = np.full(n_assets, 0.97 / n_assets)
    weight_before = shares_before * prices / value_before
    traded = np.argsort(-np.abs(weight_before - target), kind="stable")[:n_trades]
    shares_after = shares_before.copy()
    shares_after[traded] = np.round(target[traded] * value_before / prices[traded])
    rate = 0.001
    trade_list = []
    for i in sorted(traded):
        delta = shares_after[i] - shares_before[i]
        if delta == 0:
            continue
        value = abs(delta) * prices[i]
        trade_list.append(
            TradeRecommendation(
                symbol=symbols[i],
                action=TradeAction.BUY if delta > 0 else TradeAction.SELL,
                shares=abs(delta),
                price=prices[i],
                trade_value=value,
                transaction_cost=value * rate,
                total_estimated_cost=value * rate,
            )
        )
    signed = (shares_after - shares_before) * prices
    cost = float(np.abs(signed).sum() * rate)
    cash_after = cash_before - float(signed.sum()) - cost
    value_after = value_before - cost
    weight_after = shares_after * prices / value_after
    sectors = {s: SECTOR_NAMES[i % len(SECTOR_NAMES)] for i, s in enumerate(symbols) if i % 10 != 9}
    sector_after: dict[str, float] = {}
    for i, s in enumerate(symbols):
        if s in sectors:
            sector_after[sectors[s]] = sector_after.get(sectors[s], 0.0) + float(weight_after[i])
    turnover = float(np.abs(signed).sum() / value_before)
    compliance = [
        compliance_check("budget", "budget", "==", 0.0, 0.0, 0.0, "currency"),
        compliance_check("turnover", "max_turnover", "<=", 0.5, turnover, 0.5 - turnover, "turnover"),
        *(
            compliance_check(f"sector_cap[{name}]", "sector_caps", "<=", 0.12, weight, 0.12 - weight, "weight")
            for name, weight in sorted(sector_after.items())
        ),
        *(
            compliance_check(f"long_only[{s}]", "long_only", ">=", 0.0, float(held), float(held), "shares")
            for s, held in zip(symbols, shares_after, strict=True)
        ),
    ]
    current_weights = {s: float(w) for s, w in zip(symbols, weight_before, strict=True)}
    current_weights["CASH"] = cash_before / value_before
    return RebalancingResult(
        method="minimize_trades",
        solver="OSQP",
        rounding="whole_shares",
        trades=trade_list,
        current_holdings=dict(zip(symbols, shares_before.tolist(), strict=True)),
        post_trade_holdings=dict(zip(symbols, shares_after.tolist(), strict=True)),
        prices=dict(zip(symbols, prices.tolist(), strict=True)),
        current_weights=current_weights,
        target_weights=dict(zip(symbols, target.tolist(), strict=True)),
        post_trade_weights=dict(zip(symbols, weight_after.tolist(), strict=True)),
        cash_before=cash_before,
        cash_after=cash_after,
        cash_weight_after=cash_after / value_after,
        target_cash_weight=0.03,
        total_cost=cost,
        transaction_costs=cost,
        turnover=float(np.abs(signed).sum() / value_before),
        portfolio_value_before=value_before,
        portfolio_value_after=value_after,
        sectors=sectors,
        compliance=compliance,
        warnings=["rounded the trades to whole shares"],
        portfolio_id=f"synthetic-{n_assets}",
        timestamp=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )


@pytest.fixture(scope="session")
def large_result() -> RebalancingResult:
    """A 431-asset, 145-trade synthetic rebalance (see :func:`build_large_result`)."""
    return build_large_result()


@pytest.fixture
def result() -> RebalancingResult:
    """A compliant three-asset result with two trades and two sector caps."""
    return build_result()


@pytest.fixture
def make_result() -> Callable[..., RebalancingResult]:
    """Factory for variants: ``breach=``, ``evil=`` (hostile strings), ``trades=``, ``sectors=``."""
    return build_result


class ParsedPage(HTMLParser):
    """Collects what the tests look at: sections, headings, images, tables rows, all text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.section_ids: list[str] = []
        self.headings: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.row_classes: list[str | None] = []
        self.text_parts: list[str] = []
        self.title = ""
        self.lang: str | None = None
        self.tables: dict[str, list[list[str]]] = {}  # table id -> rows of cell texts
        self.row_attrs: dict[str, list[dict[str, str | None]]] = {}  # table id -> each row's attributes
        self.scripts: list[str] = []
        self._in: list[str] = []
        self._table: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self._in.append(tag)
        if tag == "section":
            self.section_ids.append(attributes.get("id") or "")
        elif tag == "img":
            self.images.append(attributes)
            self._in.pop()  # void element
        elif tag in ("meta", "br"):
            self._in.pop()
        elif tag == "tr":
            self.row_classes.append(attributes.get("class"))
            if self._table is not None:
                self.tables[self._table].append([])
                self.row_attrs[self._table].append(attributes)
        elif tag in ("td", "th") and self._table is not None and self.tables[self._table]:
            self.tables[self._table][-1].append("")
        elif tag == "table":
            self._table = attributes.get("id") or f"table-{len(self.tables) + 1}"
            self.tables[self._table] = []
            self.row_attrs[self._table] = []
        elif tag == "script":
            self.scripts.append("")
        elif tag == "html":
            self.lang = attributes.get("lang")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        if tag in self._in:
            while self._in and self._in.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "script":
            self.scripts[-1] += data
            return
        self.text_parts.append(data)
        if self._table is not None and ("td" in self._in or "th" in self._in):
            rows = self.tables[self._table]
            if rows and rows[-1]:
                rows[-1][-1] += data
        if self._in and self._in[-1] == "h2":
            self.headings.append(data)
        if self._in and self._in[-1] == "title":
            self.title += data

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def parse_html(document: str) -> ParsedPage:
    """Parse ``document`` with the standard library parser."""
    page = ParsedPage()
    page.feed(document)
    page.close()
    return page
