"""Household requests refused before solving: a household limit that needs a trade an account's
restricted list forbids."""

from __future__ import annotations

import numpy as np

from finwiz.errors import HouseholdConflictError
from finwiz.optimizer.household._stack import Stack

__all__ = ["refuse_conflicts"]


def _named(stack: Stack, pairs: np.ndarray) -> str:
    return ", ".join(sorted({stack.accounts[stack.pair_account[p]].account_id for p in pairs}))


def refuse_conflicts(stack: Stack) -> None:
    """A household cap that the shares no account may sell already exceed, or a household floor
    that no account may buy toward, is a :class:`HouseholdConflictError` naming symbol and account."""
    hh, data = stack.hh, stack.data
    frozen_sell = data.blocked["no_sell"] | data.blocked["no_trade"]
    frozen_buy = data.blocked["no_buy"] | data.blocked["no_trade"]
    kept = np.bincount(stack.pair_asset, weights=np.where(frozen_sell, data.x0, 0.0), minlength=hh.n)
    if hh.position_cap is not None:
        for i in np.flatnonzero(kept > hh.position_cap * (1 + 1e-9)):
            pairs = np.flatnonzero((stack.pair_asset == i) & frozen_sell & (data.x0 > 0))
            raise HouseholdConflictError(
                f"{stack.symbols[i]}: the household cap {hh.position_cap[i]:g} needs a sale, but account(s) "
                f"{_named(stack, pairs)} may not sell it and already hold {kept[i]:.4g} of the household",
                field="max_position_weights",
                symbol=stack.symbols[i],
            )
    if hh.position_floor is not None:
        for i in np.flatnonzero((hh.position_floor > hh.x0 + 1e-12) & (hh.position_floor > 0)):
            pairs = np.flatnonzero(stack.pair_asset == i)
            if frozen_buy[pairs].all():
                raise HouseholdConflictError(
                    f"{stack.symbols[i]}: the household floor {hh.position_floor[i]:g} needs a purchase, but "
                    f"account(s) {_named(stack, pairs)} may not buy it",
                    field="min_position_weights",
                    symbol=stack.symbols[i],
                )
