"""``_Round.together``: the change of a set of single moves priced from their own changes and the
shared rows, held to the exact objective of the point they lead to (``_Search.at``), on seeded
taxable accounts in whole shares; ``worse`` refuses only sets the exact check refuses."""

from __future__ import annotations

import numpy as np
import pytest

from finwiz.optimizer.discrete._candidates import _lot_moves, _Moves, _Separable
from finwiz.optimizer.discrete._descent import _best_per_asset, _halvings, _Round, _Search
from finwiz.optimizer.discrete._pricing import _coupled_rows, _Pricer
from tests.optimizer.tax.reference import random_instance
from tests.optimizer.tax.test_bound import _linear_model


def _round(seed: int) -> _Round:
    """A round at a seeded taxable account's whole-share trades (some sells, some buys)."""
    inst = random_instance(seed, assets=(8, 14), lots=(2, 5), fractional=False)
    model = _linear_model(inst)
    data = model.data
    search = _Search(data, _Pricer(model, model.stacked(continuous=False), None), _coupled_rows(model))
    separable = _Separable.of([g.linear() for g in model.groups if g.separable], data.n)

    def neighbours(shares: np.ndarray, wide: bool) -> _Moves:
        return _lot_moves(data, shares, separable, None, wide=wide)

    rng = np.random.default_rng(seed)
    shares = np.where(rng.random(data.n) < 0.5, -np.floor(data.shares * rng.uniform(0, 1, data.n)), 0.0)
    shares += np.where(shares == 0, rng.integers(0, 20, data.n), 0.0)
    point = search.at(shares)
    return _Round.of(search, point, neighbours(shares, True), neighbours)


@pytest.mark.parametrize("seed", range(8))
def test_a_sets_change_is_the_exact_objectives_within_its_noise(seed: int) -> None:
    now = _round(seed)
    assert now.search.pricer.grams.few_shared is not None  # the cash row: the only row two assets share here
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(6):
        chosen = _best_per_asset(now.moves, rng.random(len(now.gain)), np.ones(len(now.gain), bool))
        takes = _halvings(len(chosen))
        change, noise = now.together(chosen, takes)
        for take, est, err, worse in zip(takes, change, noise, now.worse(chosen, takes), strict=True):
            trial = now.point.shares.copy()
            trial[now.moves.owner[chosen[:take]]] = now.moves.shares[chosen[:take]]
            exact = now.search.at(trial).value - now.point.value
            assert abs(est - exact) <= err
            if worse:
                flagged += 1
                assert exact >= 0  # the exact check would refuse it
    assert flagged > 0
