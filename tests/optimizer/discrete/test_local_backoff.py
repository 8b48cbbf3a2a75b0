"""The rounding's local back-off: the rows that block it get room (``_rounding._room``) and the
candidates are settled again inside them (``_settling._Program01.inside``), instead of a continuous
re-solve with every limit backed off. Held to hand-computed rooms and to a brute-force enumeration
of the candidate choices."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.discrete._candidates import _candidate_set, _cheapest, _Moves, _snap, _trade_point
from finwiz.optimizer.discrete._pricing import _coupled_rows, _Pricer, _Rows
from finwiz.optimizer.discrete._rounding import _room
from finwiz.optimizer.discrete._settling import _Program01
from finwiz.optimizer.solve._assembler import Model
from tests.optimizer.discrete.models import model_of
from tests.optimizer.discrete.reference import Instance

_PRICES = np.array([50.0, 80.0, 120.0, 200.0])


def _model() -> Model:
    """Four assets in two sectors, a 25 % position cap and a 45 % sector cap, costs, a deposit."""
    inst = Instance(
        ["A0", "A1", "A2", "A3"],
        _PRICES,
        np.array([200.0, 150.0, 100.0, 60.0]),
        10_000.0,
        np.array([0.30, 0.2, 0.2, 0.2]),
        ["S", "S", "T", "T"],
        max_position=0.25,
        max_sector=0.45,
        cash_flow=5_000.0,
    )
    return model_of(inst)


def _row(rows: _Rows, group: str, member: str) -> int:
    return rows.labels.index((group, member))


def test_room_goes_to_one_asset_rows_the_way_back_to_the_continuous_costs_would_cross() -> None:
    model = _model()
    data, rows = model.data, _coupled_rows(model)
    values = rows.values(_trade_point(data, np.zeros(data.n)))
    cap = {name: _row(rows, "max_position", name) for name in ("A0", "A1", "A3")}
    sector = _row(rows, "sector_cap", "S")
    upper = rows.upper.copy()
    upper[[cap["A0"], sector]] = values[[cap["A0"], sector]] + 1e-12  # at their bound
    upper[cap["A1"]] = values[cap["A1"]] + 0.05  # far from it
    upper[cap["A3"]] = values[cap["A3"]] + 1e-4  # near, but further than the way back
    near = dataclasses.replace(rows, upper=upper)
    target = np.array([1.5, 0.0, -2.0, 0.0])  # A0 and A2 traded: A2's lot (120) is the largest
    at = _trade_point(data, np.zeros(data.n))
    room = _room(data, near, target, _trade_point(data, target), at, near.values(at))
    # The position cap is x_i <= cap (R - costs): the way back from no trade to the target's costs
    # (rate x traded value) moves it by cap x those costs, and one lot's cost at most by cap x lot.
    assert np.count_nonzero(rows.a_scalar[cap["A0"]]) == 1
    way = 0.25 * 0.001 * (1.5 * 50.0 + 2.0 * 120.0) / data.ref_value
    assert 0.0 < way < 1e-4
    assert room[cap["A0"]] == pytest.approx(max(0.25 * 120.0 / data.ref_value, way), rel=1e-9)
    assert room[cap["A1"]] == 0.0  # far from its bound
    assert room[cap["A3"]] == 0.0  # the way back stays inside it
    assert room[sector] == 0.0  # several assets: their own lots move it, not only the costs
    assert room[_row(rows, "cash_floor", "CASH")] == 0.0  # no asset of its own
    assert np.count_nonzero(room) == 1


def _candidates(model: Model) -> tuple[ProblemData, _Moves, np.ndarray, np.ndarray, _Rows]:
    """The rounding's candidates around fractional trades towards the target, priced in allowances."""
    data = model.data
    trades = np.array([0.04, -0.03, 0.05, 0.02])  # fractions of V_ref
    _, valid, _, moves, _ = _candidate_set(model, trades)
    table, _, _, _, _ = _candidate_set(model, trades)
    pricer = _Pricer(model, model.stacked(continuous=False), None)
    target = trades * data.ref_value / data.prices
    price = _snap(pricer.changes(_trade_point(data, target), target, moves)) / pricer.unit
    return data, moves, price, _cheapest(table, valid, price), _coupled_rows(model)


def _brute_force(data: ProblemData, moves: _Moves, price: np.ndarray, rows: _Rows, room: np.ndarray) -> float:
    """The least price of one candidate per asset keeping every row with ``room`` inside it."""
    best = np.inf
    for pick in itertools.product(*(np.flatnonzero(moves.owner == i) for i in range(data.n))):
        shares = np.zeros(data.n)
        shares[moves.owner[list(pick)]] = moves.shares[list(pick)]
        values = rows.values(_trade_point(data, shares))
        if np.all(values <= rows.upper - room + 1e-12) and np.all(values >= rows.lower + room - 1e-12):
            best = min(best, float(price[list(pick)].sum()))
    return best


def test_the_settle_inside_a_position_caps_room_is_the_best_choice_that_leaves_it() -> None:
    """The room a position cap gets (one asset's row): the best choice that leaves it, as a brute
    force over every choice finds it. (On a row of several assets the settle is the relaxation's
    heuristic, ``_settling._milp``, and not always the best choice.)"""
    model = _model()
    data, moves, price, cheapest, rows = _candidates(model)
    cap = _row(rows, "max_position", "A2")
    program = _Program01(data, moves, price, cheapest, rows, 5.0)
    plain, _ = program.settle()
    values = rows.values(_trade_point(data, plain))
    room = np.zeros(len(rows.offset))
    room[cap] = rows.upper[cap] - values[cap] + 1e-6  # more than the plain settle left
    found = program.inside(room)
    assert found is not None
    shares, _ = found
    assert shares[2] < plain[2]  # the capped asset itself makes the room
    after = rows.values(_trade_point(data, shares))
    assert after[cap] <= rows.upper[cap] - room[cap] + 1e-12
    assert rows.holds(after)
    chosen = [int(np.flatnonzero((moves.owner == i) & (moves.shares == shares[i]))[0]) for i in range(data.n)]
    assert float(price[chosen].sum()) == pytest.approx(_brute_force(data, moves, price, rows, room), abs=1e-6)


def test_no_choice_leaves_the_room_none_is_returned() -> None:
    model = _model()
    data, moves, price, cheapest, rows = _candidates(model)
    room = np.zeros(len(rows.offset))
    room[_row(rows, "sector_cap", "S")] = 1.0  # the whole account below its cap: impossible
    assert _brute_force(data, moves, price, rows, room) == np.inf
    assert _Program01(data, moves, price, cheapest, rows, 5.0).inside(room) is None
