"""The lot book's vectorised computations against the plain ones they replace."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finwiz.optimizer import rebalance
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
