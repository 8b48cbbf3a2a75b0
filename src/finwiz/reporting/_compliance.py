"""The compliance table in words: ``AAPL ≤ 10 % of value: 9.997 %`` rather than
``max_position[AAPL] <= 0.1 0.09997 weight``.

A check's ``constraint`` is ``kind[member]`` (``sector_cap[Energy]``, ``long_only[KLAC]``); each
kind has one phrase (a table, not a chain of branches: a new limit is one entry), and a kind this
module does not know falls back to ``constraint kind limit`` in its unit. One row per limit and
member (a buy and a sell bound of one member are one row, its tighter), grouped by kind in a
fixed order, breaches first inside a group.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from finwiz.reporting._format import in_unit, shares
from finwiz.schemas import ComplianceCheck, RebalancingResult

__all__ = ["ComplianceGroup", "ComplianceRow", "compliance_groups"]

_NAME = re.compile(r"^(?P<kind>[^\[\]]+)\[(?P<member>.*)\]$")
_SIGN = {"<=": "\u2264", ">=": "\u2265", "==": "="}
_FRACTIONS = frozenset({"weight", "turnover"})  # units that are fractions of value


@dataclass(frozen=True)
class ComplianceRow:
    """One limit on one member, in words: ``text`` is ``limit: value``."""

    limit: str
    value: str
    slack: str
    satisfied: bool
    constraint: str

    @property
    def text(self) -> str:
        return f"{self.limit}: {self.value}"


@dataclass
class ComplianceGroup:
    """The rows of one kind of limit, under a heading."""

    kind: str
    label: str
    rows: list[ComplianceRow] = field(default_factory=list)
    per_asset: bool = False  # a limit per asset: the result checks the asset nearest its limit

    @property
    def held(self) -> int:
        return sum(row.satisfied for row in self.rows)


def _pct(value: float, digits: int) -> str:
    """``0.1`` -> ``10 %``, ``0.09997`` -> ``9.997 %`` (at most ``digits`` decimals, no trailing 0)."""
    text = f"{value * 100:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value * 100:.0f}"
    return f"{'0' if text in ('-0', '') else text} %"


Phrase = Callable[[str, ComplianceCheck, str], tuple[str, str]]


def _amount(value: float, c: ComplianceCheck, currency: str) -> str:
    """A limit or value in its unit: fractions of value as percentages, else as :func:`in_unit`."""
    return _pct(value, 3) if c.unit in _FRACTIONS else in_unit(value, c.unit, currency=currency)


def _generic(member: str, c: ComplianceCheck, currency: str) -> tuple[str, str]:
    return f"{c.constraint} {_SIGN[c.kind]} {_amount(c.limit, c, currency)}", _amount(c.value, c, currency)


def _weight(subject: str) -> Phrase:
    def phrase(member: str, c: ComplianceCheck, currency: str) -> tuple[str, str]:
        who = subject.format(member=member).strip() or c.constraint
        of_value = " of value" if c.unit in _FRACTIONS else ""
        return f"{who} {_SIGN[c.kind]} {_amount(c.limit, c, currency)}{of_value}", _amount(c.value, c, currency)

    return phrase


def _held(member: str, c: ComplianceCheck, currency: str) -> tuple[str, str]:
    if c.kind != "<=" or c.unit != "shares" or not member:
        return _generic(member, c, currency)
    return f"{member}: sells at most the {shares(c.limit)} shares held", f"sells {shares(c.value)}"


def _blocked(reason: str, what: str = "no trade") -> Phrase:
    def phrase(member: str, c: ComplianceCheck, currency: str) -> tuple[str, str]:
        return f"{member}: {what} ({reason})", f"trades {in_unit(c.value, c.unit, currency=currency)}"

    return phrase


def _minimum_trade(member: str, c: ComplianceCheck, currency: str) -> tuple[str, str]:
    return (
        f"{member}: a trade is 0 or at least {in_unit(c.limit, c.unit, currency=currency)}",
        f"trades {in_unit(c.value, c.unit, currency=currency)}",
    )


def _esg(member: str, c: ComplianceCheck, currency: str) -> tuple[str, str]:
    return f"average ESG score {_SIGN[c.kind]} {c.limit:g}", f"{c.value:.4g}"


def _gain(member: str, c: ComplianceCheck, currency: str) -> tuple[str, str]:
    return (
        f"net realised gain {_SIGN[c.kind]} {in_unit(c.limit, c.unit, currency=currency)}",
        in_unit(c.value, c.unit, currency=currency),
    )


def _custom(member: str, c: ComplianceCheck, currency: str) -> tuple[str, str]:
    return f"{c.constraint}: its own check", "passes" if c.satisfied else "fails"


# kind -> (group heading, phrase); the order of this table is the order of the groups.
_KINDS: dict[str, tuple[str, Phrase]] = {
    "max_position": ("Position caps", _weight("{member}")),
    "min_position": ("Position floors", _weight("{member}")),
    "sector_cap": ("Sector caps", _weight("{member} sector")),
    "exposure_cap": ("Look-through exposure caps", _weight("{member} (look-through)")),
    "exposure_floor": ("Look-through exposure floors", _weight("{member} (look-through)")),
    "cash_floor": ("Cash floor", _weight("cash")),
    "turnover_cap": ("Turnover cap", _weight("turnover")),
    "gross_exposure": ("Gross exposure", _weight("gross exposure")),
    "esg_floor": ("ESG floor", _esg),
    "realized_gain": ("Realised gain budget", _gain),
    "long_only": ("No short sales", _held),
    "long_side": ("No short sales", _held),
    "min_trade_size": ("Minimum trade size", _minimum_trade),
    "tolerance_band": ("Inside the tolerance band", _blocked("inside its tolerance band")),
    "no_trade": ("Restricted lists", _blocked("on the no-trade list")),
    "no_buy": ("Restricted lists", _blocked("on the no-buy list", "not bought")),
    "no_sell": ("Restricted lists", _blocked("on the no-sell list", "not sold")),
    "esg_screen": ("Restricted lists", _blocked("below the ESG screen", "not bought")),
    "fixed": ("Restricted lists", _blocked("held fixed")),
    "wash_sale": ("Wash-sale rule", _blocked("in the wash-sale window", "not bought")),
    "buy_only": ("Rebalancing mode", _blocked("buy-only mode", "not sold")),
    "sell_only": ("Rebalancing mode", _blocked("sell-only mode", "not bought")),
    "custom": ("Custom checks", _custom),
}
_WEIGHTS = frozenset(
    {"max_position", "min_position", "sector_cap", "cash_floor", "gross_exposure", "exposure_cap", "exposure_floor"}
)
_ORDER = list(dict.fromkeys(label for label, _ in _KINDS.values()))
_PER_ASSET = frozenset(
    {"max_position", "min_position", "long_only", "long_side", "short_side", "side_change", "min_trade_size"}
    | {"tolerance_band", "no_trade", "no_buy", "no_sell", "esg_screen", "fixed", "wash_sale", "wash_sale_losses"}
    | {"buy_only", "sell_only", "tax_buys_only", "tax_sells_only"}
)
"""Kinds whose limit is per asset: the engine's table holds the asset nearest its limit (its
tightest check), which the report says, so one row does not read as the only asset checked."""


def _row(check: ComplianceCheck, currency: str) -> tuple[str, ComplianceRow]:
    match = _NAME.match(check.constraint)
    kind, member = (match["kind"], match["member"]) if match else (check.constraint, "")
    if check.term == "custom":
        kind = "custom"
    if not check.unit and kind in _WEIGHTS:  # an unlabelled cap is still a fraction of value
        check = check.model_copy(update={"unit": "weight"})
    label, phrase = _KINDS.get(kind, ("Other limits", _generic))
    limit, value = phrase(member, check, currency)
    slack = (
        _pct(check.slack, 3)
        if check.unit in _FRACTIONS
        else in_unit(check.slack, check.unit, slack=True, currency=currency)
    )
    if kind == "custom":
        slack = ""  # a custom check is pass or fail: no distance to its limit
    return label, ComplianceRow(limit, value, slack, check.satisfied, check.constraint)


def compliance_groups(result: RebalancingResult) -> list[ComplianceGroup]:
    """The result's checks in words, one row per limit and member (its tightest check), grouped by
    kind in a fixed order (unknown kinds last, as "Other limits"), breaches first in a group."""
    tightest: dict[str, ComplianceCheck] = {}
    for check in result.compliance:
        seen = tightest.get(check.constraint)
        if seen is None or check.slack < seen.slack:
            tightest[check.constraint] = check
    groups: dict[str, ComplianceGroup] = {}
    for check in tightest.values():
        label, row = _row(check, result.currency)
        kind = _NAME.match(check.constraint)
        per_asset = (kind["kind"] if kind else check.constraint) in _PER_ASSET
        group = groups.setdefault(label, ComplianceGroup(label.lower().replace(" ", "-"), label, per_asset=per_asset))
        group.rows.append(row)
    for group in groups.values():
        group.rows.sort(key=lambda row: row.satisfied)  # stable: breaches first
    order = {label: k for k, label in enumerate([*_ORDER, "Other limits"])}
    return sorted(groups.values(), key=lambda g: (g.held == len(g.rows), order[g.label]))
