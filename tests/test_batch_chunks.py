"""How a batch is cut into chunks and sent to process pool workers."""

from __future__ import annotations

import gc
import math
import pickle
from typing import Any

import pytest

from finwiz import Holding, PortfolioConfiguration
from finwiz.batch import _MAX_CHUNK, _MIN_CHUNK, _chunks, rebalance_many
from finwiz.batch._work import _Account, _init_worker, _run_chunk, _run_packed, _Shared


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


PRICES = {"AAA": 10.0, "BBB": 20.0}


def small_account(shares: float = 1.0) -> PortfolioConfiguration:
    return PortfolioConfiguration(
        holdings=[Holding(symbol="AAA", shares=shares), Holding(symbol="BBB", shares=5.0)],
        target_weights={"AAA": 0.5, "BBB": 0.5},
        cash=1_000.0,
        min_trade_size=0.0,
    )


def test_chunks_never_mix_structures_and_start_in_input_order() -> None:
    small = small_account()
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


def test_a_packed_chunk_gives_the_outcomes_of_the_plain_one() -> None:
    chunk = [_Account(i, f"p{i}", small_account(10.0 + i)) for i in range(3)]
    shared = _Shared(PRICES)
    packed = pickle.loads(_run_packed(pickle.dumps(chunk), shared))
    plain = _run_chunk(chunk, shared)
    assert all(o.ok for o in plain)
    assert [(o.index, o.portfolio_id, o.ok) for o in packed] == [(o.index, o.portfolio_id, o.ok) for o in plain]
    assert [o.result.post_trade_holdings for o in packed] == [o.result.post_trade_holdings for o in plain]  # type: ignore[union-attr]


def test_an_account_that_cannot_be_sent_to_a_worker_fails_alone() -> None:
    unpicklable = {"holdings": [], "target_weights": {"AAA": 1.0}, "tag": lambda: None}
    configs = [small_account(10.0), unpicklable, small_account(20.0)]
    batch = rebalance_many(configs, PRICES, executor="processes", max_workers=2, chunk_size=1, progress=False)
    assert [o.ok for o in batch] == [True, False, True]
    assert batch[1].error_type in {"PicklingError", "AttributeError"}
