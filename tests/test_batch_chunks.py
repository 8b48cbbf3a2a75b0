"""How a batch is cut into chunks, and what a pool worker does when it starts."""

from __future__ import annotations

import gc
import math
from typing import Any

import pytest

from finwiz.batch import _MAX_CHUNK, _MIN_CHUNK, _chunks
from finwiz.batch._work import _Account, _init_worker, _Shared


def accounts(hints: list[Any]) -> list[_Account]:
    # Configs that are not PortfolioConfiguration all share one structure hint; dicts keep it simple.
    return [_Account(i, None, hint) for i, hint in enumerate(hints)]


def plain_sizes(total: int, workers: int) -> list[int]:
    """The guided sizes computed directly: a quarter of a worker's share of what is left, clamped."""
    sizes, left = [], total
    while left:
        size = min(left, max(_MIN_CHUNK, min(_MAX_CHUNK, math.ceil(left / (workers * 4)))))
        sizes.append(size)
        left -= size
    return sizes


@pytest.mark.parametrize(("total", "workers"), [(1, 2), (7, 2), (50, 2), (1000, 2), (2000, 4), (10_000, 2)])
def test_chunks_shrink_towards_the_end(total: int, workers: int) -> None:
    chunks = _chunks(accounts([None] * total), workers, None)
    sizes = [len(c) for c in chunks]
    assert sizes == plain_sizes(total, workers)
    assert sizes == sorted(sizes, reverse=True) or sizes[-1] < _MIN_CHUNK  # only the remainder is smaller
    assert [a.index for c in chunks for a in c] == list(range(total))


def test_a_given_chunk_size_is_kept() -> None:
    chunks = _chunks(accounts([None] * 10), 2, 3)
    assert [len(c) for c in chunks] == [3, 3, 3, 1]


def test_chunks_never_mix_structures_and_start_in_input_order() -> None:
    from finwiz import Holding, PortfolioConfiguration

    small = PortfolioConfiguration(holdings=[Holding(symbol="AAA", shares=1.0)], target_weights={"AAA": 1.0})
    hints = [small if i % 3 == 0 else None for i in range(300)]
    chunks = _chunks(accounts(hints), 2, None)
    for chunk in chunks:
        assert len({type(a.config) for a in chunk}) == 1
    firsts = [c[0].index for c in chunks]
    assert firsts == sorted(firsts)
    assert sorted(a.index for c in chunks for a in c) == list(range(300))
    # the chunks that start last are the small ones
    assert max(len(c) for c in chunks[-4:]) <= max(len(c) for c in chunks[:4])


def test_a_pool_worker_freezes_what_it_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    from finwiz.batch import _work

    monkeypatch.setattr(_work, "_worker_shared", None)  # restored after the test
    was_enabled = gc.isenabled()
    try:
        _init_worker(_Shared({"AAA": 1.0}))
        assert gc.get_freeze_count() > 0
        assert gc.isenabled() == was_enabled  # the collector still runs for what the chunks create
    finally:
        gc.unfreeze()
