"""The descent's helpers held to plain-Python references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from finwiz.optimizer.discrete._candidates import _Moves
from finwiz.optimizer.discrete._descent import _best_per_asset, _Round


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
def test_a_round_is_worth_it_by_each_assets_best_move_summed_in_order(seed: int) -> None:
    """``_Round.of`` judges a coarse round by each asset's best improving move (kept for
    ``best``): worth it when their gains, summed in order of gain as the plain scan orders them,
    reach ``round_gain`` of the whole-share allowance (a fine one: when any move improves)."""
    from finwiz.optimizer.discrete._descent import DescentSettings

    rng = np.random.default_rng(50 + seed)
    n, k = int(rng.integers(1, 40)), int(rng.integers(1, 8))
    owner = rng.permutation(np.tile(np.arange(n), k))
    gain = rng.normal(size=len(owner)) * 10.0 ** rng.integers(-12, 0, size=len(owner))
    zero = np.zeros(len(owner))
    moves = _Moves(owner, zero, zero, zero, np.zeros((len(owner), 5)))
    coarse = [0.0, 1e-3, 1e-6, 1e-12, 1e-9, 1e-2][seed]
    better = gain < -coarse
    expected = _reference(owner, gain, better)
    unit = float(-gain[expected].sum()) / [0.5, 1.0, 2.0, 100.0, 0.01, 1.0][seed] if expected else 1.0
    settings = DescentSettings()

    class _Pricer:
        pass

    pricer = _Pricer()
    pricer.unit = unit / settings.round_gain  # type: ignore[attr-defined]

    class _Search:
        pass

    search = _Search()
    search.pricer = pricer  # type: ignore[attr-defined]
    point = type("P", (), {"value": 0.0})()
    now = _Round.of(search, point, moves, lambda s, w: moves, settings, coarse, None, gain)  # type: ignore[arg-type]
    assert now.best.tolist() == expected
    summed = -gain[expected].sum() >= settings.round_gain * pricer.unit  # type: ignore[attr-defined]
    assert now.worth == (bool(expected) and (coarse == 0 or summed))  # a fine round: any improving move


def test_a_set_of_moves_is_called_broken_only_where_the_exact_check_refuses_it() -> None:
    """``_Round.broken`` sums the moves' row changes instead of building the point: on a toy with
    costs (the scalar columns), position caps, a turnover cap and the cash row, every choice of one
    wide move (or none) per asset it calls broken is refused by the exact check and by the
    independent reference, and every choice the exact check refuses by more than float noise is
    called broken."""
    from finwiz.optimizer.discrete._descent import _SURELY
    from tests.optimizer.discrete.reference import Instance, violations
    from tests.optimizer.discrete.test_moves import _Harness

    prices, held = np.array([3000.0, 1000.0, 500.0, 250.0]), np.array([10.0, 20.0, 20.0, 40.0])
    value = float(prices @ held) + 100.0
    target = (held + np.array([2.0, -3.0, 0.0, -12.0])) * prices / value
    inst = Instance(["A0", "A1", "A2", "A3"], prices, held, 100.0, target, ["S"] * 4, rate=0.002)
    inst.max_position, inst.max_turnover = 0.4, 0.05
    harness = _Harness(inst)
    start = np.array([1.0, -2.0, 0.0, 4.0])
    now = harness.round(start)
    moves, rows = harness.neighbours(start, True), harness.search.rows
    now.moves = moves
    options = [[-1, *np.flatnonzero(moves.owner == a).tolist()] for a in range(4)]
    called = refused = 0
    for pick in itertools.product(*options):
        chosen = np.array([k for k in pick if k >= 0], dtype=np.int64)
        shares = start.copy()
        shares[moves.owner[chosen]] = moves.shares[chosen]
        exact = rows.values(harness.search.at(shares).z)
        breach = max(float(np.max(exact - rows.upper)), float(np.max(rows.lower - exact)))
        if now.broken(chosen):
            called += 1
            assert breach > 0, pick
            assert violations(inst, shares), pick
        refused += breach > _SURELY
        if chosen.size:  # the tight rows' check refuses only what the full one does
            assert now.tight.holds(chosen, [chosen.size])[0] or now.broken(chosen), pick
        assert now.broken(chosen) or breach <= _SURELY, pick
    assert 0 < called == refused < len(list(itertools.product(*options)))


def test_the_tight_rows_judge_every_halving_as_its_own_sum_does() -> None:
    """``_Tight.holds`` (every prefix at once) against each prefix's own summed changes."""
    from finwiz.optimizer.discrete._descent import _SURELY, _halvings, _Tight

    rng = np.random.default_rng(3)
    delta = rng.normal(0.0, 1.0, (4, 40))
    tight = _Tight(low=np.full(4, -3.0), high=np.full(4, 3.0), delta=delta)
    chosen = rng.permutation(40)[:37]
    takes = _halvings(chosen.size)
    held = tight.holds(chosen, takes)
    for take, holds in zip(takes, held, strict=True):
        total = delta[:, chosen[:take]].sum(axis=1)
        assert holds == bool(np.all(total <= 3.0 + _SURELY) and np.all(total >= -3.0 - _SURELY)), take
    assert held.any()
    assert not held.all()


def _halving_plain(now: _Round) -> list[list[int]]:
    """Halving's proposals as it made them before: each held prefix's whole check (``broken``) alone."""
    from finwiz.optimizer.discrete._descent import _halvings

    tight = now.tight
    chosen = _best_per_asset(now.moves, now.gain, now.better & tight.fits(tight.delta))
    takes = _halvings(len(chosen))
    held = [take for take, fits in zip(takes, tight.holds(chosen, takes), strict=True) if fits]
    return [
        chosen[:take].tolist()
        for take, worse in zip(held, now.worse(chosen, held), strict=True)
        if not worse and not now.broken(chosen[:take])
    ]


def test_halving_refutes_shorter_prefixes_by_the_rows_a_longer_one_broke_as_their_own_checks_do() -> None:
    """``Halving`` checks the rows a longer prefix broke on the shorter ones at once (``holding``):
    it proposes what each prefix's whole check alone proposed, and every prefix ``holding`` refutes
    leads to a point the exact check refuses (a coupled row past its bound): on eight seeded
    accounts' rounds, at their trades and with random gains."""
    from finwiz.optimizer.discrete._candidates import _CHECK
    from finwiz.optimizer.discrete._descent import _halvings
    from finwiz.optimizer.discrete._move_kinds import Halving
    from tests.optimizer.discrete.test_together import _round

    refuted = 0
    for seed in range(8):
        now = _round(seed)
        rows = now.search.rows
        rng = np.random.default_rng(seed)
        for trial in range(8):
            if trial:  # other improving sets: random gains, every move allowed
                now = _Round.of(now.search, now.point, now.moves, now.neighbours, gain=-rng.random(len(now.gain)))
            assert [p.chosen.tolist() for p in Halving().propose(now)] == _halving_plain(now)
            chosen = _best_per_asset(now.moves, now.gain, now.better)
            takes = _halvings(len(chosen))
            for at, take in enumerate(takes[:-1]):
                broken = now.breaking(chosen[:take])
                if broken.size == 0:
                    continue
                for short, ok in zip(takes[at + 1 :], now.holding(chosen, broken, takes[at + 1 :]), strict=True):
                    if not ok:
                        refuted += 1
                        assert now.broken(chosen[:short])
                        shares = now.point.shares.copy()
                        shares[now.moves.owner[chosen[:short]]] = now.moves.shares[chosen[:short]]
                        exact = rows.values(now.search.at(shares).z)
                        assert not rows.holds(exact)
                        assert np.max(np.maximum(exact - rows.upper, rows.lower - exact)) > _CHECK
    assert refuted > 0
