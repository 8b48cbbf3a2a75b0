"""The lot book's vectorised computations against the plain ones they replace."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from finwiz.optimizer import rebalance
from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.solve import _qp_build as qp_build
from finwiz.optimizer.solve._qp import Ladder
from finwiz.optimizer.tax._tax import lot_book, relief_order
from finwiz.schemas import LotSale
from tests.optimizer.tax.reference import random_instance
from tests.optimizer.tax.test_tax import book

_values = st.sampled_from([-1.5, -0.0, 0.0, 0.25, 2.0, np.inf, -np.inf, np.nan])


@settings(max_examples=300, deadline=None)
@given(
    counts=st.lists(st.integers(0, 5), min_size=1, max_size=8),
    shuffle=st.randoms(use_true_random=False),
    grouped=st.booleans(),
    data=st.data(),
)
def test_relief_order_is_lexsort_with_the_asset_first(
    counts: list[int], shuffle: object, grouped: bool, data: st.DataObject
) -> None:
    n = len(counts)
    owner = np.repeat(np.arange(n), counts)
    if grouped:  # holdings in another order than the symbols, each asset's lots consecutive
        blocks = [owner[owner == i] for i in range(n)]
        shuffle.shuffle(blocks)  # type: ignore[attr-defined]
        owner = np.concatenate(blocks) if blocks else owner
    else:
        owner = owner[np.asarray(shuffle.sample(range(len(owner)), len(owner)), dtype=np.int64)]  # type: ignore[attr-defined]
    size = len(owner)
    keys = (
        np.array(data.draw(st.lists(st.integers(0, 3), min_size=size, max_size=size)), dtype=np.int64),
        np.array(data.draw(st.lists(_values, min_size=size, max_size=size)), dtype=float),
        np.array(data.draw(st.lists(_values, min_size=size, max_size=size)), dtype=float),
    )
    owner = owner.astype(np.int64)
    assert np.array_equal(relief_order(keys, owner, n), np.lexsort((*keys, owner)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tax_and_gain_and_realised_are_relief_s_bit_for_bit(seed: int) -> None:
    """``tax_and_gain`` (no lots taken) and ``realised`` asked twice the same (its kept arrays)
    give ``relief``'s tax and gain, bit for bit."""
    config, prices = book(seed, n=7, lots=4)
    lots = lot_book(config, np.array([prices[s] for s in config.symbols]))
    assert lots is not None
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, 7, size=50)
    sold = rng.uniform(-1.5, 1.5, size=50) * lots.shares.sum(axis=1)[owner]
    for rows in (owner, None):
        asked = sold if rows is not None else sold[:7]
        _, want_tax, want_gain = lots.relief(asked, rows)
        tax, gain = lots.tax_and_gain(asked, rows)
        assert (tax.tobytes(), gain.tobytes()) == (want_tax.tobytes(), want_gain.tobytes())
    for _ in range(2):
        tax, gain = lots.realised(sold[:7])
        assert (tax.tobytes(), gain.tobytes()) == (want_tax.tobytes(), want_gain.tobytes())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sales_are_each_lot_relief_takes_as_a_validated_lot_sale(seed: int) -> None:
    """``LotBook.sales`` (trusted values in one loop) equals a validated ``LotSale`` per lot taken,
    each asset's in relief order."""
    config, prices = book(seed, n=7, lots=4)
    lots = lot_book(config, np.array([prices[s] for s in config.symbols]))
    assert lots is not None
    rng = np.random.default_rng(seed)
    sold = np.maximum(rng.uniform(-1.0, 1.3, size=7), 0.0) * lots.shares.sum(axis=1)
    taken, _, _ = lots.relief(sold)
    want: list[list[LotSale]] = [[] for _ in sold]
    for i in range(len(sold)):
        for k in np.flatnonzero(taken[i] > 0).tolist():
            slot = int(lots.slots[i, k])
            gain = float(taken[i, k] * lots.gain[i, k])
            sale = LotSale(
                lot_id=lots.lot_ids[slot],
                shares=float(taken[i, k]),
                cost_basis=float(lots.basis[i, k]),
                acquired=lots.dates[slot],
                realized_gain=round(gain, 2),
                term="long" if lots.long[i, k] else "short",
            )
            want[i].append(sale)
    got = lots.sales(sold)
    assert got == want
    assert [[s.model_dump() for s in row] for row in got] == [[s.model_dump() for s in row] for row in want]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_climb_step_moves_as_the_per_asset_walk_does(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Ladder.step`` of a linear ladder skips the held assets whose first step down gains
    nothing (vectorised); the same ladder with zero net slopes walks every held asset one by one
    (the netting path, the same slopes): the same segments and history, at the climb's own points
    and at perturbed multipliers and sells."""
    calls: list[tuple[Any, ...]] = []
    step = Ladder.step

    def record(self: Ladder, *args: Any) -> np.ndarray:
        calls.append((self, *args))
        return step(self, *args)

    monkeypatch.setattr(Ladder, "step", record)
    instance = random_instance(seed, assets=(8, 12), lots=(3, 6))
    rebalance(instance.config(), instance.price_map())
    assert calls
    rng, moves = np.random.default_rng(seed), 0
    for ladder, segments, qp, z, y, tolerance, history in calls:
        walked = dataclasses.replace(ladder, nets=np.zeros((len(ladder.owner), 2)))
        n = qp.n
        for trial in range(6):
            zt, yt, on = z.copy(), y.copy(), segments
            if trial:  # on random lots, held at their starts by about what the step down would gain
                on = rng.integers(0, np.maximum(ladder.count, 1))
                price_t, price_g = qp.tax_terms.prices(yt)
                lot = ladder.lots(on)
                below = np.maximum(lot - 1, 0)
                gap = (ladder.tax[lot] - ladder.tax[below]) * price_t
                gap += (ladder.gain[lot] - ladder.gain[below]) * price_g
                yt[n : 2 * n] = -np.maximum(gap, 0.0) * rng.uniform(0.5, 1.5, n) - 2 * tolerance
                zt[n : 2 * n] = np.where(rng.random(n) < 0.8, ladder.start[lot], zt[n : 2 * n])
            fast, plain = history.copy(), history.copy()
            out = step(ladder, on, qp, zt, yt, tolerance, fast)
            want = step(walked, on, qp, zt, yt, tolerance, plain)
            moves += int((want != on).sum())
            assert np.array_equal(out, want)
            assert np.array_equal(fast, plain)
    assert moves > 0


def _plain_on_segments(base: Any, ladder: Ladder, segments: np.ndarray, q: np.ndarray, unit: float) -> tuple[Any, ...]:
    """A segments' QP as the triplets were folded and converted before the pattern was kept."""
    n, lower, upper = base.layout.n, base.lower.copy(), base.upper.copy()
    _, _, slope_t, slope_g, t0, g0 = lines = ladder.rows(segments)
    lower[n : 2 * n] = lines[0]
    rows, cols, vals = base.triplets
    price = q[2 * n + 3 : 2 * n + 5].copy()
    q[n : 2 * n] += price[0] * slope_t + price[1] * slope_g
    const = base.const + float(price[0] * t0 + price[1] * g0)
    q[2 * n + 3 : 2 * n + 5] = 0.0
    held, new_rows, new_cols, new_vals = [], [rows], [cols], [vals]
    for col, slope, shift in ((2 * n + 3, slope_t, t0), (2 * n + 4, slope_g, g0)):
        on = (cols == col) & (rows >= 2 * n + SCALARS)
        at = np.flatnonzero(on)
        held.append((rows[at], vals[at]))
        for r, v in zip(rows[at], vals[at], strict=True):
            new_rows.append(np.full(n, r))
            new_cols.append(n + np.arange(n))
            new_vals.append(v * slope)
            lower[r] -= v * shift
            upper[r] -= v * shift
        vals = np.where(on, 0.0, vals)
        new_vals[0] = vals
    rows, cols, vals = np.concatenate(new_rows), np.concatenate(new_cols), np.concatenate(new_vals)
    region = None
    if ladder.region is not None:
        coef, bound = ladder.region_rows(segments)
        k, first = len(coef), base.m - len(coef)
        upper[first:] = bound
        rows = np.concatenate([rows, np.repeat(np.arange(first, base.m), n)])
        cols = np.concatenate([cols, np.tile(n + np.arange(n), k)])
        vals = np.concatenate([vals, coef.ravel()])
        region = (np.arange(first, base.m), ladder.region[:, :2])
    vals = np.where(cols == 2 * n, vals * unit, vals)
    matrix = sparse.csc_matrix((vals, (rows, cols)), shape=(base.m, base.layout.nz))
    return q, const, lower, upper, matrix, (price, *held), region


@pytest.mark.parametrize("netting", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_segments_qp_is_the_plain_fold_bit_for_bit(seed: int, netting: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``_qp_segments.on_segments`` (the folded pattern kept per base, values only per step) builds
    the climb's QPs exactly as folding the triplets and converting them to CSC each time did:
    the same ``A`` (values, indices, pointers), ``q``, constant, bounds and folded tax terms."""
    calls: list[tuple[Any, ...]] = []
    build = qp_build._on_segments

    def record(base: Any, ladder: Ladder, segments: Any, q: np.ndarray, unit: float) -> Any:
        calls.append((base, ladder, segments, q.copy(), unit))
        return build(base, ladder, segments, q, unit)

    monkeypatch.setattr(qp_build, "_on_segments", record)
    instance = random_instance(seed, assets=(6, 9), lots=(2, 5))
    if netting:
        instance = instance.with_(tax_model="netting", realized_short_ytd=8_000.0, realized_long_ytd=3_000.0)
    rebalance(instance.config(), instance.price_map())
    assert calls
    assert not netting or any(ladder.region is not None for _, ladder, *_ in calls)
    for base, ladder, segments, q, unit in calls:
        for _ in range(2):  # the kept folding's second use too
            q_new = q.copy()
            segments_new, lower, upper, const, matrix, terms = build(base, ladder, segments, q_new, unit)
            q_old, const_old, lower_old, upper_old, want, held, region = _plain_on_segments(
                base, ladder, segments_new, q.copy(), unit
            )
            assert (q_new.tobytes(), const, lower.tobytes(), upper.tobytes()) == (
                q_old.tobytes(),
                const_old,
                lower_old.tobytes(),
                upper_old.tobytes(),
            )
            assert matrix.shape == want.shape
            for mine, plain in ((matrix.data, want.data), (matrix.indices, want.indices), (matrix.indptr, want.indptr)):
                assert np.array_equal(mine, plain)
                assert mine.tobytes() == plain.astype(mine.dtype).tobytes()
            assert terms.price.tobytes() == held[0].tobytes()
            for (rows, vals), (want_rows, want_vals) in zip((terms.rows, terms.gain_rows), held[1:], strict=True):
                assert np.array_equal(rows, want_rows)
                assert vals.tobytes() == want_vals.tobytes()
            if region is None:
                assert terms.region_rows is None
            else:
                assert np.array_equal(terms.region_rows, region[0])
                assert np.array_equal(terms.region, region[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reachable_segments_are_the_plain_pass_over_every_lot(seed: int) -> None:
    """``Ladder.reachable`` (no pass over the lots when every segment is within its cap) moves the
    segments beyond each asset's sell cap to the last it reaches, as the pass over every lot does."""
    config, prices = book(seed, n=7, lots=4)
    price = np.array([prices[s] for s in config.symbols])
    lots = lot_book(config, price)
    assert lots is not None
    ladder = Ladder.of(lots.form(price, 10_000.0), 7)
    rng = np.random.default_rng(seed)
    for trial in range(40):
        segments = rng.integers(0, np.maximum(ladder.count, 1)).astype(np.int64)
        cap = ladder.end[ladder.first + ladder.count - 1] * rng.uniform(0.0 if trial % 2 else 1.0, 1.2, 7)
        lot = ladder.lots(segments)
        limit = cap * (1 + 1e-12) + 1e-15
        beyond = (lot >= 0) & (ladder.start[np.maximum(lot, 0)] > limit)
        last = np.maximum(np.bincount(ladder.owner, ladder.start <= limit[ladder.owner], minlength=7) - 1, 0)
        want = np.where(beyond, last.astype(np.int64), segments)
        got = ladder.reachable(segments, cap)
        assert got.dtype == want.dtype
        assert np.array_equal(got, want)
        assert got is not segments
