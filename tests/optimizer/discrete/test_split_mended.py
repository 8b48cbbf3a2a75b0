"""A dropped trade whose sector need is shared by two other assets (``Split``).

A $100k account, a 25 % sector cap on four Health names (targets 28 %), a $1,500 minimum trade.
Three Health names are 3 % overweight and sell anyway; the fourth, at target, $291 a share, would
cut $750 alone: under the minimum, so the answer either sells 6 shares ($1,746) or none. Selling
none leaves the cap to the other three: with the sale dropped, one of them selling $1,746 more is
dearer (the objective is quadratic), but two or three sharing it are cheaper. No single move and
no exchange of two improves the 6-share answer, which is 26 % above the optimum SCIP proves on
``reference.py``'s model (the README's objective and limits, not finwiz's code).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from finwiz import rebalance
from finwiz.optimizer.discrete import _move_kinds
from tests.optimizer.discrete.reference import (
    Instance,
    config_of,
    objective,
    single_and_pair_gains,
    solve_miqp,
    violations,
)


def _account() -> Instance:
    prices = np.array([291.0, 50.0, 50.0, 50.0] + [40.0] * 6)
    target = np.array([0.10, 0.06, 0.06, 0.06] + [0.12] * 6)
    weights = target + np.array([0.0, 0.03, 0.03, 0.03] + [-0.015] * 6)
    held = np.floor(weights * 100_000.0 / prices)
    sectors = ["Health"] * 4 + ["Tech", "Tech", "Fin", "Fin", "Energy", "Energy"]
    symbols = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"]
    inst = Instance(symbols, prices, held, round(100_000.0 - held @ prices, 2), target, sectors)
    inst.method, inst.rate, inst.max_sector, inst.min_trade = "minimize_costs", 0.0, 0.25, 1500.0
    return inst


_STUCK = np.array([-6.0, -67.0, -68.0, -68.0, 48.0, 49.0, 49.0, 49.0, 49.0, 49.0])
"""Where the search stops without ``Split``: A's 6-share sale kept."""


def _shares(inst: Instance) -> np.ndarray:
    config, prices = config_of(inst)
    signed = {t.symbol: t.shares if t.action.value == "buy" else -t.shares for t in rebalance(config, prices).trades}
    return np.array([signed.get(s, 0.0) for s in inst.symbols])


def test_no_single_move_or_pair_improves_the_stuck_answer_but_it_is_far_from_the_optimum() -> None:
    inst = _account()
    assert not violations(inst, _STUCK)
    assert single_and_pair_gains(inst, _STUCK)[0] == 0.0
    optimum = solve_miqp(inst, time_limit=30.0)
    assert optimum.proven
    assert objective(inst, _STUCK) > 1.2 * optimum.objective


def test_the_default_path_drops_the_sale_and_reaches_the_proven_optimum() -> None:
    inst = _account()
    shares = _shares(inst)
    assert shares[0] == 0.0
    assert not violations(inst, shares)
    assert objective(inst, shares) <= solve_miqp(inst, time_limit=30.0).objective * (1 + 1e-9)
    assert single_and_pair_gains(inst, shares)[0] == 0.0


def test_without_split_the_default_path_stops_at_the_stuck_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    def nothing(self: _move_kinds.Split, now: object) -> Iterator[object]:
        return iter(())

    monkeypatch.setattr(_move_kinds.Split, "propose", nothing)
    inst = _account()
    assert objective(inst, _shares(inst)) == pytest.approx(objective(inst, _STUCK), rel=1e-12)
