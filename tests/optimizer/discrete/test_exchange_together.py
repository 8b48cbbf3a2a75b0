"""The exchange's pairs taken together (``_move_kinds._disjoint``, ``_taken_together``): the same
choices as the plain loops they replace (numpy scalars, ``np.ix_`` blocks, ``_Tight.fits``)."""

from __future__ import annotations

import numpy as np
import pytest

from finwiz.optimizer.discrete._descent import _Tight
from finwiz.optimizer.discrete._move_kinds import _disjoint, _taken_together


def _plain_disjoint(owner: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    used: set[int] = set()
    keep = []
    for k, (a, b) in enumerate(pairs):
        if owner[a] not in used and owner[b] not in used:
            used.update((int(owner[a]), int(owner[b])))
            keep.append(k)
    return np.array(keep, dtype=np.intp)


def _plain_taken(total: np.ndarray, cross: np.ndarray, delta: np.ndarray, tight: _Tight, least: float) -> list[int]:
    taken, change = [0], delta[:, 0] + delta[:, 1]
    for k in range(1, len(total)):
        mine = [2 * k, 2 * k + 1]
        price = total[k] + cross[np.ix_(mine, [2 * t + s for t in taken for s in (0, 1)])].sum()
        after = change + delta[:, mine].sum(axis=1)
        if price < -least and tight.fits(after[:, None])[0]:
            taken.append(k)
            change = after
    return taken


@pytest.mark.parametrize("seed", range(12))
def test_disjoint_pairs_as_the_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, 30, size=200)
    pairs = rng.integers(0, 200, size=(int(rng.integers(0, 60)), 2))
    assert np.array_equal(_disjoint(owner, pairs), _plain_disjoint(owner, pairs))


@pytest.mark.parametrize("seed", range(40))
def test_pairs_taken_together_as_the_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows, count = int(rng.integers(1, 9)), int(rng.integers(1, 40))
    delta = rng.normal(size=(rows, 2 * count)) * rng.choice([0.0, 1e-6, 1e-3], size=(rows, 2 * count))
    room = rng.uniform(0.0, 3e-3, size=rows)
    tight = _Tight(-room * rng.random(rows), room, delta)
    cross = rng.normal(size=(2 * count, 2 * count)) * 1e-4
    total = np.sort(-rng.uniform(0.0, 1e-3, size=count))
    least = float(rng.uniform(0.0, 5e-4))
    assert _taken_together(total, cross, delta, tight, least) == _plain_taken(total, cross, delta, tight, least)
