"""The descent's helpers held to plain-Python references."""

from __future__ import annotations

import numpy as np
import pytest

from finwiz.optimizer.discrete._candidates import _Moves
from finwiz.optimizer.discrete._descent import _best_per_asset, _best_sum


def _reference(owner: np.ndarray, gain: np.ndarray, allowed: np.ndarray) -> list[int]:
    """Each asset's allowed move of least gain (the first index of equal ones), assets by gain then asset."""
    best: dict[int, int] = {}
    for k in range(len(owner)):
        if allowed[k] and (int(owner[k]) not in best or gain[k] < gain[best[int(owner[k])]]):
            best[int(owner[k])] = k
    return sorted(best.values(), key=lambda k: (gain[k], owner[k]))


@pytest.mark.parametrize("seed", range(6))
def test_best_per_asset_matches_a_plain_scan(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 30)), int(rng.integers(1, 8))
    owner = np.tile(np.arange(n), k)
    if seed % 2:
        rng.shuffle(owner)
    gain = np.round(rng.normal(size=len(owner)), 1)  # coarse: many ties, within and across assets
    allowed = rng.random(len(owner)) < [0.0, 0.2, 0.6, 1.0, 0.5, 0.9][seed]
    zero = np.zeros(len(owner))
    moves = _Moves(owner, zero, zero, zero, np.zeros((len(owner), 5)))
    assert _best_per_asset(moves, gain, allowed).tolist() == _reference(owner, gain, allowed)


@pytest.mark.parametrize("seed", range(6))
def test_the_best_moves_sum_is_that_of_each_assets_best_in_order(seed: int) -> None:
    """Whether a round is worth it is judged without ordering the moves: the same float as
    summing each asset's best move in order of gain (the plain scan's)."""
    rng = np.random.default_rng(50 + seed)
    n, k = int(rng.integers(1, 40)), int(rng.integers(1, 8))
    owner = rng.permutation(np.tile(np.arange(n), k))
    gain = rng.normal(size=len(owner)) * 10.0 ** rng.integers(-12, 0, size=len(owner))
    allowed = rng.random(len(owner)) < [0.0, 0.2, 0.6, 1.0, 0.5, 0.9][seed]
    zero = np.zeros(len(owner))
    moves = _Moves(owner, zero, zero, zero, np.zeros((len(owner), 5)))
    assert _best_sum(moves, gain, allowed) == gain[_reference(owner, gain, allowed)].sum()
