"""Households: several accounts (taxable, tax-deferred, tax-exempt) rebalanced to one target.

:class:`Account` is one account's holdings, cash and own limits; :class:`Household` the accounts
and the household's target and limits (the fields of :class:`PortfolioConfiguration` that speak of
the whole: targets, caps, sectors, turnover, strategy) plus the asset-location data ``tax_drag``;
:class:`HouseholdResult` the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from finwiz.errors import DuplicateAccountError, InvalidPortfolioError
from finwiz.schemas._base import RebalancingMethod, _canonical_mapping, _canonical_set, _Model
from finwiz.schemas._holding import Holding
from finwiz.schemas._records import ComplianceCheck
from finwiz.schemas._result import RebalancingResult, StageRecord
from finwiz.schemas._target_policy import _TargetPolicy
from finwiz.schemas._tax import TaxSettings, TaxSummary

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ACCOUNT_KINDS", "Account", "Household", "HouseholdResult"]

AccountKind = Literal["taxable", "traditional", "roth"]
ACCOUNT_KINDS: tuple[str, ...] = ("taxable", "traditional", "roth")
"""``"taxable"`` (tax on realised gains, lots), ``"traditional"`` (tax-deferred: IRA, 401(k)),
``"roth"`` (tax-exempt)."""


class Account(_Model):
    """One account of a household: what it holds, its cash, and its own hard limits.

    ``tax`` (taxable accounts only) makes its sales tax-aware exactly as
    :attr:`PortfolioConfiguration.tax` does (lots on every holding); sales in retirement accounts are
    tax-free. ``max_position_weight(s)`` cap a symbol's weight in this account's value (before
    costs); ``no_buy``/``no_sell``/``no_trade`` and ``lot_sizes`` are this account's own. Cash never
    goes below zero and never moves to another account."""

    account_id: str = Field(min_length=1)
    kind: AccountKind
    holdings: list[Holding] = Field(default_factory=list)
    cash: float = Field(default=0.0, ge=0.0)
    tax: TaxSettings | None = None
    no_buy: list[str] = Field(default_factory=list)
    no_sell: list[str] = Field(default_factory=list)
    no_trade: list[str] = Field(default_factory=list)
    lot_sizes: dict[str, float] = Field(default_factory=dict)
    max_position_weight: float | None = Field(default=None, gt=0.0, le=1.0)
    max_position_weights: dict[str, float] = Field(default_factory=dict)

    @field_validator("no_buy", "no_sell", "no_trade")
    @classmethod
    def _lists(cls, value: list[str], info: Any) -> list[str]:
        return _canonical_set(value, info.field_name)

    @field_validator("lot_sizes", "max_position_weights")
    @classmethod
    def _maps(cls, value: dict[str, float], info: Any) -> dict[str, float]:
        return _canonical_mapping(value, info.field_name)

    @model_validator(mode="after")
    def _tax_only_taxable(self) -> Self:
        if self.tax is not None and self.kind != "taxable":
            raise InvalidPortfolioError(
                f"account {self.account_id}: tax settings are for taxable accounts (this one is {self.kind})",
                field="tax",
            )
        held = [h.symbol for h in self.holdings]
        twice = sorted({s for s in held if held.count(s) > 1})
        if twice:
            raise InvalidPortfolioError(
                f"account {self.account_id}: {twice[0]} is held twice", field="holdings", symbol=twice[0]
            )
        return self


class Household(_TargetPolicy):
    """Accounts rebalanced together to one target (see README "Households").

    The household's fields mean what :class:`PortfolioConfiguration`'s do, applied to household
    weights (the sum over accounts of a symbol's value / the household's value): ``target_weights``
    (the rest is the cash target), ``method`` (every strategy term applies to household weights),
    caps, floors, sectors, ESG, turnover, the tolerance band, restricted lists (in every account).
    ``tax_drag[symbol][kind]`` is the yearly tax cost per unit of value of holding ``symbol`` in an
    account of ``kind`` (missing: 0); the objective adds ``drag_weight`` x the household's drag.
    """

    accounts: list[Account] = Field(min_length=1)
    method: RebalancingMethod | str = RebalancingMethod.MINIMIZE_COSTS
    tax_drag: dict[str, dict[AccountKind, float]] = Field(default_factory=dict)
    drag_weight: float = Field(default=1.0, ge=0.0)
    household_id: str | None = None

    @field_validator("tax_drag")
    @classmethod
    def _drags(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        out = _canonical_mapping(value, "tax_drag")
        for symbol, per_kind in out.items():
            for kind, drag in per_kind.items():
                if not -1.0 <= float(drag) <= 1.0:
                    raise InvalidPortfolioError(
                        f"tax_drag: {symbol} in {kind} accounts is {drag!r}, not a yearly fraction in [-1, 1]",
                        field="tax_drag",
                        symbol=symbol,
                    )
        return out

    def __init__(self, /, **data: Any) -> None:
        super().__init__(**data)
        self._unique_accounts()

    def _unique_accounts(self) -> None:
        seen: set[str] = set()
        for account in self.accounts:
            key = account.account_id.strip().upper()
            if key in seen:
                raise DuplicateAccountError(
                    f"household: account id {account.account_id!r} is listed twice", field="accounts"
                )
            seen.add(key)

    def policy(self) -> dict[str, Any]:
        """The household's fields that are :class:`PortfolioConfiguration` fields, as keywords."""
        return {k: getattr(self, k) for k in _TargetPolicy.model_fields}


class HouseholdResult(_Model):
    """A household's trades: one :class:`RebalancingResult` per account (``accounts``, by id; its
    weights are of the account's value) and the household's figures: weights of household value
    before and after, the target, the yearly tax drag before and after (currency), the realised tax
    (all taxable accounts together), every compliance check (household limits and each account's,
    members named ``ACCOUNT:SYMBOL``), warnings, stages."""

    household_id: str | None = None
    accounts: dict[str, RebalancingResult]
    kinds: dict[str, str]
    target_weights: dict[str, float]
    weights_before: dict[str, float]
    weights_after: dict[str, float]
    value_before: float
    value_after: float
    tax_drag_before: float
    tax_drag_after: float
    tracking_distance_before: float
    tracking_distance_after: float
    tax: TaxSummary | None = None
    compliance: list[ComplianceCheck] = Field(default_factory=list)
    objective_value: float | None = None
    warnings: list[str] = Field(default_factory=list)
    stages: list[StageRecord] = Field(default_factory=list)
    solve_time_seconds: float = 0.0

    @property
    def trades(self) -> list[tuple[str, Any]]:
        """Every trade as ``(account_id, TradeRecommendation)``."""
        return [(a, t) for a, r in self.accounts.items() for t in r.trades]

    @property
    def total_cost(self) -> float:
        """Every account's trading costs (currency)."""
        return sum(r.total_cost for r in self.accounts.values())

    @property
    def turnover(self) -> float:
        """Traded value over the household's value before trading."""
        traded = sum(t.trade_value for r in self.accounts.values() for t in r.trades)
        return traded / self.value_before if self.value_before else 0.0

    @property
    def max_constraint_residual(self) -> float:
        """The largest breach of any check (0: none)."""
        return max(0.0, -min((c.slack for c in self.compliance), default=0.0))

    @property
    def solver(self) -> str:
        """The solver behind the trades."""
        return next(iter(self.accounts.values())).solver if self.accounts else ""

    @property
    def is_compliant(self) -> bool:
        """Whether every check holds."""
        return all(c.satisfied for c in self.compliance)

    def to_frame(self) -> pd.DataFrame:
        """Account x asset rows: shares and value before and after, the trade, weights of the
        household value after."""
        import pandas as pd  # the schemas stay importable without pandas (the CLI's start-up)

        rows = []
        for account_id, result in self.accounts.items():
            for symbol, before in result.current_holdings.items():
                after = result.post_trade_holdings[symbol]
                price = result.prices[symbol]
                rows.append(
                    {
                        "account": account_id,
                        "kind": self.kinds[account_id],
                        "symbol": symbol,
                        "shares_before": before,
                        "trade_shares": after - before,
                        "shares_after": after,
                        "value_after": after * price,
                        "household_weight_after": after * price / self.value_after if self.value_after else 0.0,
                    }
                )
        return pd.DataFrame(rows).set_index(["account", "symbol"]) if rows else pd.DataFrame()
