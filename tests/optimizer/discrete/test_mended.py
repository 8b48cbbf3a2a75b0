"""A move that breaks one coupled row, mended by a third asset's trade sized to that row (``Mended``).

On a $5.9k six-name account (the seeded generator's 127, six names), one share of a $564 name
improves the answer but spends cash the account does not have; no lot of one name and no exchange
of one lot each of two pays for it, so single moves and pairs stop 46 % above the optimum that
SCIP proves. Selling as many shares of another name as the cash row needs mends it; the descent
then reaches the optimum. Checked against ``reference.py`` (the README's objective and limits,
not finwiz's code) and its MIQP.
"""

from __future__ import annotations

import math

import numpy as np

from finwiz import RebalancingEngine, rebalance
from finwiz.optimizer._engine import _applicable, _with_constraints
from finwiz.optimizer.describe._data import build_problem_data
from finwiz.optimizer.discrete import _search
from finwiz.optimizer.discrete._descent import _Round, _Search
from finwiz.optimizer.discrete._mended import Mended
from finwiz.optimizer.discrete._move_kinds import Pair, Tally
from finwiz.optimizer.discrete._pricing import Pieces
from finwiz.optimizer.solve._assembler import Model
from tests.optimizer.discrete.reference import (
    config_of,
    generate,
    objective,
    single_and_pair_gains,
    solve_miqp,
    violations,
)

_STUCK = np.array([25.0, 0.0, 0.0, -9.0, 0.0, 2.0])
"""Where single moves and two-asset exchanges stop (finwiz's answer without ``Mended``)."""


def _account() -> tuple[Model, Pieces, np.ndarray]:
    """The model, its pieces and where each of the model's assets is in the instance."""
    inst = generate(127, n=6)
    config, prices = config_of(inst)
    data = build_problem_data(config, prices)
    terms = RebalancingEngine().strategies[inst.method].terms(data)
    model = Model.of(_applicable(_with_constraints(terms), data), data)
    return model, Pieces.of(model), np.array([inst.symbols.index(s) for s in data.symbols])


def test_no_single_move_or_pair_improves_the_stuck_point_but_it_is_far_from_the_optimum() -> None:
    inst = generate(127, n=6)
    assert not violations(inst, _STUCK)
    assert single_and_pair_gains(inst, _STUCK)[0] == 0.0
    optimum = solve_miqp(inst, time_limit=30.0)
    assert optimum.proven
    assert objective(inst, _STUCK) > 1.4 * optimum.objective


def test_the_mended_move_lowers_the_stuck_point_and_keeps_every_limit() -> None:
    inst = generate(127, n=6)
    model, pieces, order = _account()
    stuck = _STUCK[order]
    search = _Search(model.data, pieces.pricer, pieces.rows)
    local = _search._Local(search, pieces.separable, math.inf)
    point = search.at(stuck)
    moves = local._moves(stuck, pieces.separable)
    now = _Round.of(search, point, moves, lambda s, _: local._moves(s, pieces.separable), _search.SEARCH)
    tally = Tally()
    pair = Pair(tally)
    assert pair.step(now) is None  # no exchange of two assets' moves keeps every row and improves
    after = Mended(tally, pair, pieces.separable).step(now)
    assert after is not None
    shares = np.zeros(6)
    shares[order] = after.shares
    assert np.count_nonzero(shares != _STUCK) in (2, 3)
    assert not violations(inst, shares)
    assert objective(inst, shares) < objective(inst, _STUCK) * (1 - 1e-3)


def test_the_default_path_reaches_the_proven_optimum() -> None:
    inst = generate(127, n=6)
    config, prices = config_of(inst)
    result = rebalance(config, prices)
    signed = {t.symbol: t.shares if t.action.value == "buy" else -t.shares for t in result.trades}
    shares = np.array([signed.get(s, 0.0) for s in inst.symbols])
    optimum = solve_miqp(inst, time_limit=30.0)
    assert optimum.proven
    assert objective(inst, shares) <= optimum.objective * (1 + 1e-9)
    assert single_and_pair_gains(inst, shares)[0] == 0.0


_SCIP_8 = {"S03": -198.0, "S06": -716.0, "S09": -329.0, "S10": 481.0, "S14": -1005.0, "S16": -83.0, "S22": 1380.0}
_SCIP_8 |= {"S23": 487.0}
"""SCIP's best answer to seed 8 in 30 s (unproven; its answer in 20 s was higher, 2.9762e-3)."""


def test_seed_8_of_the_small_accounts_is_within_half_a_percent_of_scips_answer() -> None:
    # $378k, 33 names, a $6,236 minimum trade, a withdrawal and a binding Health cap: single moves,
    # pairs, windows and kicks stopped 5.3 % above SCIP's answer (dropping a sale of one Health
    # name and a purchase of a Tech name, more of another Health name sold: ``Mended``).
    inst = generate(8)
    scip = np.array([_SCIP_8.get(s, 0.0) for s in inst.symbols])
    assert not violations(inst, scip)
    config, prices = config_of(inst)
    result = rebalance(config, prices)
    signed = {t.symbol: t.shares if t.action.value == "buy" else -t.shares for t in result.trades}
    shares = np.array([signed.get(s, 0.0) for s in inst.symbols])
    assert not violations(inst, shares)
    assert objective(inst, shares) <= objective(inst, scip) * 1.005
