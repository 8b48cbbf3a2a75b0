"""The lot book's vectorised computations against the plain ones they replace."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from finwiz.optimizer.tax._tax import relief_order

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
