"""The reasons' and the compliance table's pieces against the plain computations they stand for,
bit for bit: each objective piece's change under the undos against the stacked piece's, and the
compliance table of all groups in one pass against each group's own."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest

from finwiz import FactorModel, TaxSettings, rebalance
from tests.optimizer.verify.test_reasons import AS_OF, PRICES, _config


def _captured(monkeypatch: pytest.MonkeyPatch, config: Any, **options: Any) -> tuple[Any, Any]:
    from finwiz.optimizer.verify import _reasons

    seen: list[Any] = []
    forces = _reasons._term_forces
    monkeypatch.setattr(
        _reasons, "_term_forces", lambda model, undo, *a: seen.append((model, undo)) or forces(model, undo, *a)
    )
    rebalance(config, PRICES, **options)
    assert seen
    return seen[0]


def _stacked_change(undo: Any, piece: Any) -> tuple[np.ndarray, np.ndarray]:
    """The change as it was computed from ``stack([piece])`` (its linear slope always added), a
    dense covariance's root apart (by matrix products)."""
    dense = [a for a in piece.low_rank if a.dense is not None]
    exact, first = _stacked_rows_change(
        undo, dataclasses.replace(piece, low_rank=[a for a in piece.low_rank if a.dense is None])
    )
    n, z = undo.data.n, undo.z
    signed = undo.side * np.sign(undo.u)
    for a in dense:
        moved = a.dense[:, undo.idx] * signed
        pull = 2 * (a.dense @ (z[:n] - z[n : 2 * n]) + a.offset) @ moved
        first, exact = first + pull, exact + pull + np.einsum("ij,ij->j", moved, moved)
    return exact, first


def _stacked_rows_change(undo: Any, piece: Any) -> tuple[np.ndarray, np.ndarray]:
    from finwiz.optimizer.solve._stacked import stack

    stacked = stack([piece], undo.data, continuous=False)
    n, line = undo.data.n, stacked.linear
    linear = np.zeros(len(undo.idx))
    traded = undo.trade_of >= 0
    linear[undo.trade_of[traded]] = line[np.flatnonzero(traded)]
    linear *= undo.side
    for code in np.flatnonzero(line[2 * n :]).tolist():
        linear += line[2 * n + code] * undo.scalars[code]
    rows = stacked.squares
    if not rows.m:
        first = 0.0 + linear
        return first + 0.0, first
    one = undo._one_row_each(rows)
    if one is not None:
        row, move = one
        first = 2 * (rows.evaluate(undo.z)[row] * move) + linear
        return first + move**2, first
    moved = undo.moved(rows)
    first = 2 * rows.evaluate(undo.z) @ moved + linear
    return first + np.sum(moved**2, axis=0), first


def _factor_model() -> FactorModel:
    symbols = list(PRICES)
    rng = np.random.default_rng(3)
    return FactorModel(
        loadings=pd.DataFrame(rng.normal(0, 0.1, (len(symbols), 2)), index=symbols, columns=["f0", "f1"]),
        factor_covariance=pd.DataFrame(np.eye(2), index=["f0", "f1"], columns=["f0", "f1"]),
        idiosyncratic_variance=pd.Series(rng.uniform(1e-3, 4e-3, len(symbols)), index=symbols),
    )


@pytest.mark.parametrize("case", ["deposit", "withdrawal", "taxable", "risk", "trades"])
def test_each_pieces_change_is_the_stacked_pieces_to_the_bit(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """Each piece's rows built alone (one Affine used as its own stack, a zero slope left out) give
    the same bytes as the piece stacked by ``solve._stacked.stack``: the reasons cannot move."""
    from finwiz.optimizer.verify import _reasons

    options: dict[str, Any] = {}
    if case == "deposit":
        config = _config(cash_flow=5_000.0, max_position_weights={"A": 0.30})
    elif case == "withdrawal":
        config = _config(cash_flow=-5_000.0)
    elif case == "taxable":
        tax = TaxSettings(as_of=AS_OF, short_term_rate=0.37, long_term_rate=0.2, tax_weight=0.05)
        config = _config(lots=True, target_weights={"A": 0.5, "B": 0.2, "C": 0.15, "D": 0.15}, tax=tax)
    elif case == "risk":
        config, options = _config(method="risk_aware"), {"factor_model": _factor_model()}
    else:
        config = _config(method="minimize_trades", cash_flow=2_000.0)
    model, undo = _captured(monkeypatch, config, **options)
    parts = set()
    for name, part, piece, count in _reasons._pieces(model):
        if count:
            continue
        parts.add((name, part))
        exact, first = undo.change(piece)
        plain = _stacked_change(undo, piece)
        assert exact.tobytes() == plain[0].tobytes()
        assert first.tobytes() == plain[1].tobytes()
    assert {part for _, part in parts} >= {"weights", "linear"}
    if case == "taxable":
        assert ("tax", "linear") in parts
    if case == "risk":
        assert any(name != "target_tracking" and part == "weights" for name, part in parts)


def _binding_case(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[Any]]:
    """The undo of a request whose sector cap, position caps and withdrawal bind, and its limit
    groups' rows (``Affine``s, in the order the binding search stacks them)."""
    config = _config(
        sectors={"A": "Tech", "B": "Tech", "C": "Energy", "D": "Utilities"},
        sector_caps={"Tech": 0.74},
        max_position_weights={"A": 0.5, "B": 0.29, "C": 0.3, "D": 0.3},
        cash_flow=-3_000.0,
    )
    model, undo = _captured(monkeypatch, config)
    return undo, [g.linear(0.0)[0] for _, g in model.checked_groups]


def test_the_binding_searchs_rows_are_the_stacked_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit rows the binding search reads are ``Affine.stack``'s triplets (places in ``z``
    kept from each group), and a subset is those rows renumbered in order."""
    from finwiz.optimizer.describe._model import Affine
    from finwiz.optimizer.verify import _reasons

    undo, affines = _binding_case(monkeypatch)
    n = undo.data.n
    rows, stacked = _reasons._Rows.stacked(affines, n), Affine.stack(affines)
    assert rows.m == stacked.m
    for got, plain in ((rows.rows, stacked.rows), (rows.places(n), stacked.places(n)), (rows.vals, stacked.vals)):
        assert got.dtype == plain.dtype
        assert got.tobytes() == plain.tobytes()
    assert undo.moved(rows).tobytes() == undo.moved(stacked).tobytes()
    assert undo.reach(rows).tobytes() == undo.reach(stacked).tobytes()
    keep = np.array([0, 2, rows.m - 1])
    subset = rows.subset(keep)
    assert subset.m == 3
    dense = np.zeros((rows.m, 2 * n + 5))
    np.add.at(dense, (rows.rows, rows.places(n)), rows.vals)
    again = np.zeros((3, 2 * n + 5))
    np.add.at(again, (subset.rows, subset.places(n)), subset.vals)
    assert np.array_equal(again, dense[keep])
    assert undo.moved(subset).tobytes() == undo.moved(rows)[keep].tobytes()


def test_the_binding_searchs_values_are_each_groups_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit rows' values in one ``bincount`` over the stacked triplets are each group's
    ``evaluate`` one after the other, to the bit (at the answer and at other trade vectors); a
    group with a dense block takes each group's own evaluation."""
    from finwiz.optimizer.describe._model import Affine
    from finwiz.optimizer.verify import _reasons

    undo, affines = _binding_case(monkeypatch)
    n = undo.data.n
    rows = _reasons._Rows.stacked(affines, n)
    rng = np.random.default_rng(5)
    for z in (undo.z, *(undo.z + rng.normal(0, 0.01, undo.z.shape) for _ in range(5))):
        plain = np.concatenate([a.evaluate(z) for a in affines])
        assert _reasons._values(rows, affines, z).tobytes() == plain.tobytes()
    dense = Affine.weights_dense(rng.normal(size=(2, n)), np.zeros(n))
    mixed = [*affines, dense]
    plain = np.concatenate([a.evaluate(undo.z) for a in mixed])
    assert _reasons._values(_reasons._Rows.stacked(mixed, n), mixed, undo.z).tobytes() == plain.tobytes()


def test_a_linear_pieces_change_is_the_stacked_pieces_with_repeats_or_no_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Linear pieces summed by bincount as the stack sums them (repeated columns, scalar columns,
    no entry at all with a cost weight), to the bit."""
    from finwiz.optimizer.describe._model import COST, TURNOVER, Affine, Description

    _, undo = _captured(monkeypatch, _config(cash_flow=5_000.0))
    n = undo.data.n
    empty = np.zeros(0, dtype=np.int64)
    repeated = Affine(
        np.zeros(6, dtype=np.int64),
        np.array([0, 0, n + 1, 2, COST, TURNOVER]),
        np.array([0.3, -0.1, 0.7, 1e-17, 0.25, -0.5]),
        np.zeros(1),
    )
    pieces = [
        Description(linear=Affine(empty, empty, np.zeros(0), np.zeros(1)), cost_weight=0.4),
        Description(linear=repeated),
        Description(linear=repeated, cost_weight=-0.2),
        Description(cost_weight=0.7),
    ]
    for piece in pieces:
        exact, first = undo.change(piece)
        plain = _stacked_change(undo, piece)
        assert exact.dtype == plain[0].dtype
        assert exact.tobytes() == plain[0].tobytes()
        assert first.tobytes() == plain[1].tobytes()


def test_the_ranking_is_a_stable_sort_by_score() -> None:
    """Each trade's reasons strongest first, ties in the order they were added (two reasons are
    ordered without ``sorted``), as a stable descending sort of the added forces."""
    from finwiz.optimizer.verify._reasons import _Forces

    added = [
        [],
        [("a", 2.0)],
        [("a", 1.0), ("b", 3.0)],
        [("a", 3.0), ("b", 1.0)],
        [("a", 2.0), ("b", 2.0)],
        [("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 5.0)],
        [("a", 1.0), ("b", 0.5), ("a", 1.0)],  # a label added twice: its scores summed (2.0 > 0.5)
        [("a", 0.5), ("b", 1.0), ("a", 0.5)],  # summed to a tie: the first added stays first
    ]
    forces = _Forces(len(added))
    forces.add("term", ((j, label, 0.0, "objective", score) for j, pairs in enumerate(added) for label, score in pairs))
    for j, reasons in enumerate(forces.ranked()):
        scores: dict[str, float] = {}
        for label, score in added[j]:
            scores[label] = scores.get(label, 0.0) + score
        expected = sorted(scores.items(), key=lambda item: item[1], reverse=True)
        assert [(r.label, r.score) for r in reasons] == expected


def _plain_binding(model: Any, undo: Any) -> list[tuple[Any, np.ndarray, np.ndarray, np.ndarray]]:
    """The binding rows by the general formula: both sides of every near row."""
    from finwiz.optimizer.verify import _reasons

    groups = [g for _, g in model.checked_groups if not g.separable or (g.lower > 0).any()]
    linear = [g.linear(0.0) for g in groups]
    rows = _reasons._Rows.stacked([r for r, _, _ in linear], undo.data.n)
    lower, upper = np.concatenate([lo for _, lo, _ in linear]), np.concatenate([up for _, _, up in linear])
    value = np.concatenate([r.evaluate(undo.z) for r, _, _ in linear])
    reach = undo.reach(rows)
    near = np.flatnonzero((upper - value <= reach) | (value - lower <= reach))
    moved = undo.moved(rows.subset(near))
    after, tol = value[near, None] + moved, _reasons._TOL
    over = (after > upper[near, None] + tol) & (moved > tol)
    under = (after < lower[near, None] - tol) & (moved < -tol)
    outward = np.where(over, moved, np.where(under, -moved, 0.0))
    breach = np.where(over, after - upper[near, None], np.where(under, lower[near, None] - after, 0.0))
    keep = outward.any(axis=1)
    starts = np.cumsum([0] + [r.m for r, _, _ in linear])
    owner = np.searchsorted(starts, near, side="right") - 1
    return [
        (groups[g], near[keep & (owner == g)] - starts[g], outward[keep & (owner == g)], breach[keep & (owner == g)])
        for g in np.unique(owner[keep]).tolist()
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_position_weights": {"A": 0.30}},  # an upper bound binds
        {"target_weights": {"A": 0.5, "B": 0.25, "C": 0.125, "D": 0.125}, "cash": 0.0, "cash_flow": -8_000.0},
        {"sectors": {"A": "Tech", "B": "Tech", "C": "Energy", "D": "Utilities"}, "sector_caps": {"Tech": 0.65}},
    ],
)
def test_the_binding_rows_are_the_general_formulas(monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any]) -> None:
    """The binding search (upper bounds alone without the lower side's arithmetic, the groups by
    ``bincount``) against both sides of every near row, bit for bit; the withdrawal's cash floor
    is a lower bound."""
    from finwiz.optimizer.verify import _reasons

    model, undo = _captured(monkeypatch, _config(**overrides))
    got, plain = _reasons._binding(model, undo), _plain_binding(model, undo)
    assert plain
    assert [g for g, *_ in got] == [g for g, *_ in plain]
    for (_, *mine), (_, *theirs) in zip(got, plain, strict=True):
        assert all(a.tobytes() == b.tobytes() and a.shape == b.shape for a, b in zip(mine, theirs, strict=True))
