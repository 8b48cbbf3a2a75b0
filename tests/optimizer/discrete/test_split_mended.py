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

import math
from collections.abc import Iterator

import numpy as np
import pytest

from finwiz import RebalancingEngine, rebalance
from finwiz.optimizer._engine import _applicable, _with_constraints
from finwiz.optimizer.describe._data import build_problem_data
from finwiz.optimizer.discrete import _mended, _search
from finwiz.optimizer.discrete._descent import _Round, _Search
from finwiz.optimizer.discrete._mended import Mended
from finwiz.optimizer.discrete._move_kinds import Pair, Tally
from finwiz.optimizer.discrete._pricing import Pieces
from finwiz.optimizer.solve._assembler import Model
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
    def nothing(self: _mended.Split, now: object) -> Iterator[object]:
        return iter(())

    monkeypatch.setattr(_mended.Split, "propose", nothing)
    inst = _account()
    assert objective(inst, _shares(inst)) == pytest.approx(objective(inst, _STUCK), rel=1e-12)


def _round_at(inst: Instance, shares: np.ndarray) -> tuple[_Round, Pieces]:
    """The search's round at ``shares`` (the model's assets in the instance's order: A..J)."""
    config, prices = config_of(inst)
    data = build_problem_data(config, prices)
    assert list(data.symbols) == inst.symbols
    model = Model.of(
        _applicable(_with_constraints(RebalancingEngine().strategies[inst.method].terms(data)), data), data
    )
    pieces = Pieces.of(model)
    search = _Search(model.data, pieces.pricer, pieces.rows)
    local = _search._Local(search, pieces.separable, math.inf)
    moves = local._moves(shares, pieces.separable)
    neighbours = lambda s, _: local._moves(s, pieces.separable)  # noqa: E731
    return _Round.of(search, search.at(shares), moves, neighbours, _search.SEARCH), pieces


def test_every_other_health_name_is_offered_as_a_mend_of_the_sector_cap() -> None:
    # Whatever move is being mended, each Health name but the move's own can sell more to give
    # the cap room (a move's index was once compared with asset numbers, hiding one asset).
    inst = _account()
    now, pieces = _round_at(inst, _STUCK)
    owner, shares = now.moves.owner, now.moves.shares
    drop = np.flatnonzero((owner == 0) & (shares == 0))[:1]
    once = Mended._broken_once(now, np.array([[drop[0], -1]]), now.gain[drop], most=2)
    assert once is not None
    row = once[3][once[4] < 0][0]  # the cap (too much Health); the cash row needs more cash
    count = len(owner)
    sets = np.stack([np.arange(count), np.full(count, -1)], axis=1)
    mended = Mended(Tally(), Pair(Tally()), pieces.separable)
    mends, which = mended._mends(now, sets, np.full(count, row), np.full(count, -0.005))
    health = {0, 1, 2, 3}
    for k in range(count):
        assert health - {int(owner[k])} <= set(mends.owner[which == k].tolist()), k
