"""The settle's small 0/1 program by listing every choice (``_listed``), against scipy's MILP."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.discrete._listed import _MOST, _REACH, _coupled, _pruned, breachable, listed, reach


def _program(seed: int, assets: int = 5, per: int = 3, limits: int = 6) -> dict[str, np.ndarray]:
    """A settle's 0/1 program: one-hot rows, the scalar columns' definitions, coupled rows."""
    rng = np.random.default_rng(seed)
    owner = np.repeat(np.arange(assets), per)
    m = owner.size
    scalars = rng.normal(0.0, 0.1, (m, SCALARS))
    price = rng.uniform(0.0, 1.0, m)
    trade = sparse.random_array((limits, m), density=0.5, rng=rng).toarray()
    on_scalars = rng.normal(0.0, 1.0, (limits, SCALARS)) * (rng.uniform(size=(limits, 1)) < 0.5)
    one_hot = sparse.csr_array((np.ones(m), (owner, np.arange(m))), shape=(assets, m + SCALARS))
    definitions = sparse.hstack([sparse.csr_array(-scalars.T), sparse.eye_array(SCALARS)])
    rows = sparse.hstack([sparse.csr_array(trade), sparse.csr_array(on_scalars)])
    matrix = sparse.vstack([one_hot, definitions, rows]).tocsc()
    cheap = np.array([np.flatnonzero(owner == a)[np.argmin(price[owner == a])] for a in range(assets)])
    at_cheap = trade[:, cheap].sum(axis=1) + on_scalars @ scalars[cheap].sum(axis=0)
    room = rng.uniform(0.0, 0.3, limits)  # the cheapest choice breaks about half the rows
    lo = np.concatenate([np.ones(assets), np.zeros(SCALARS), at_cheap - 10.0])
    up = np.concatenate([np.ones(assets), np.zeros(SCALARS), at_cheap + room - 0.08])
    return {"owner": owner, "scalars": scalars, "price": price, "matrix": matrix, "lo": lo, "up": up}


def _milp_cost(p: dict[str, np.ndarray], fixed: np.ndarray) -> float | None:
    """The independent optimum: scipy's MILP, the fixed candidates' binaries at 1."""
    m = p["owner"].size
    lower = np.concatenate([np.zeros(m), np.full(SCALARS, -np.inf)])
    lower[fixed] = 1.0
    upper = np.concatenate([np.ones(m), np.full(SCALARS, np.inf)])
    cost = np.concatenate([p["price"], np.zeros(SCALARS)])
    integrality = np.concatenate([np.ones(m), np.zeros(SCALARS)])
    found = milp(
        cost,
        constraints=LinearConstraint(p["matrix"].toarray(), p["lo"], p["up"]),
        bounds=Bounds(lower, upper),
        integrality=integrality,
        options={"mip_rel_gap": 0.0},
    )
    return None if found.x is None else float(found.fun)


@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_listed_finds_the_milps_optimum(seed: int, shuffled: bool) -> None:
    """Also with the candidates not grouped by asset (``shuffled``): the same cost."""
    p = _program(seed)
    owner = p["owner"]
    limits = p["matrix"].shape[0] - 5 - SCALARS
    order = np.random.default_rng(seed).permutation(owner.size) if shuffled else np.arange(owner.size)
    assert shuffled == bool(np.any(np.diff(owner[order]) < 0))
    done, chosen = listed(
        owner[order],
        p["scalars"][order],
        p["price"][order],
        sparse.csc_array(p["matrix"][:, np.r_[order, owner.size + np.arange(SCALARS)]]),
        (p["lo"], p["up"]),
        np.zeros(0, np.int64),
        np.ones(owner.size, bool),
        limits,
    )
    assert done
    best = _milp_cost(p, np.zeros(0, np.int64))
    if best is None:
        assert chosen is None
        return
    assert chosen is not None
    chosen = order[chosen]
    assert sorted(owner[chosen].tolist()) == list(range(5))  # one candidate per asset
    assert float(p["price"][chosen].sum()) == pytest.approx(best, abs=1e-9)
    y = np.zeros(owner.size + SCALARS)
    y[chosen] = 1.0
    y[owner.size :] = p["scalars"][chosen].sum(axis=0)
    values = p["matrix"] @ y
    assert np.all(values >= p["lo"] - 1e-12)
    assert np.all(values <= p["up"] + 1e-12)


@pytest.mark.parametrize("seed", [1, 2, 4, 6, 8, 9])
def test_listed_with_some_assets_fixed(seed: int) -> None:
    p = _program(seed)
    owner = p["owner"]
    limits = p["matrix"].shape[0] - 5 - SCALARS
    bounds = (p["lo"], p["up"])
    _, whole = listed(owner, p["scalars"], p["price"], p["matrix"], bounds, np.zeros(0, np.int64), owner >= 0, limits)
    assert whole is not None
    fixed = np.sort(whole[owner[whole] < 2])  # assets 0 and 1 held where the optimum has them
    free = owner >= 2
    done, chosen = listed(owner, p["scalars"], p["price"], p["matrix"], bounds, fixed, free, limits)
    assert done
    assert chosen is not None
    assert sorted(owner[chosen].tolist()) == [2, 3, 4]
    best = _milp_cost(p, fixed)
    assert best is not None
    assert float(p["price"][np.concatenate([fixed, chosen])].sum()) == pytest.approx(best, abs=1e-9)
    assert best == pytest.approx(_milp_cost(p, np.zeros(0, np.int64)), abs=1e-9)


def test_listed_says_when_no_choice_keeps_the_rows() -> None:
    p = _program(0)
    p["up"][-1] = p["lo"][-1] = 1e6  # a row no choice reaches
    owner = p["owner"]
    limits = p["matrix"].shape[0] - 5 - SCALARS
    args = (p["scalars"], p["price"], p["matrix"], (p["lo"], p["up"]), np.zeros(0, np.int64))
    assert listed(owner, *args, np.ones(owner.size, bool), limits) == (True, None)


def test_listed_leaves_many_choices_to_the_solver() -> None:
    p = _program(1, assets=9, per=3)  # 3^9 = 19,683 choices
    p["up"][9 + SCALARS : -1] = np.inf  # one binding row: nearly every partial choice can still keep it
    owner = p["owner"]
    limits = p["matrix"].shape[0] - 9 - SCALARS
    args = (p["scalars"], p["price"], p["matrix"], (p["lo"], p["up"]), np.zeros(0, np.int64))
    assert listed(owner, *args, np.ones(owner.size, bool), limits) == (False, None)


@pytest.mark.parametrize("seed", [5, 53])
def test_listed_drops_partial_choices_no_completion_keeps(seed: int) -> None:
    """12 assets of 4 candidates (1.7e7 choices, as a 100-asset settle's split assets): the binding
    rows leave few partial choices, and the cheapest is the MILP's optimum."""
    p = _program(seed, assets=12, per=4)
    owner = p["owner"]
    limits = p["matrix"].shape[0] - 12 - SCALARS
    args = (p["scalars"], p["price"], p["matrix"], (p["lo"], p["up"]), np.zeros(0, np.int64))
    done, chosen = listed(owner, *args, np.ones(owner.size, bool), limits)
    assert done
    assert chosen is not None
    assert sorted(owner[chosen].tolist()) == list(range(12))
    best = _milp_cost(p, np.zeros(0, np.int64))
    assert best is not None
    assert float(p["price"][chosen].sum()) == pytest.approx(best, abs=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_breachable_keeps_every_row_some_choice_breaks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    owner = np.repeat(np.arange(6), 3)
    m, k = owner.size, 10
    scalars = rng.normal(0.0, 0.1, (m, SCALARS))
    trade = sparse.csr_array(sparse.random_array((k, m), density=0.3, rng=rng))
    on_scalars = sparse.csr_array(rng.normal(0.0, 1.0, (k, SCALARS)) * (rng.uniform(size=(k, 1)) < 0.5))
    values = np.array(
        [
            (trade[:, list(pick)].sum(axis=1) + on_scalars @ scalars[list(pick)].sum(axis=0))
            for pick in itertools.product(*(np.flatnonzero(owner == a) for a in range(6)))
        ]
    )  # every choice (3^6) x rows: the exact reach
    # Each row just breakable by its extreme choice, on one side (the other far): any row whose
    # reach the bound narrows is left out wrongly.
    low_side = np.arange(k) % 2 == 0
    bounds = (
        np.where(low_side, values.min(axis=0) + 1e-9, -1e3),
        np.where(low_side, 1e3, values.max(axis=0) - 1e-9),
    )
    breaks = np.any((values < bounds[0]) | (values > bounds[1]), axis=0)
    assert breaks.all()
    reached = reach(trade, on_scalars, owner, scalars)
    kept = breachable(reached, bounds)
    assert np.all(kept[breaks])  # never leaves out a row that matters
    far = breachable(reached, (values.min(axis=0) - 10.0, values.max(axis=0) + 10.0))
    assert not far.any()  # rows far from every choice are left out


@pytest.mark.parametrize("seed", range(4))
def test_reach_is_the_same_whatever_order_the_candidates_come_in(seed: int) -> None:
    """Candidates grouped by asset are read as they are, others sorted first: the same bounds."""
    rng = np.random.default_rng(100 + seed)
    owner = np.repeat(np.arange(5), 4)
    m, k = owner.size, 8
    scalars = rng.normal(0.0, 0.1, (m, SCALARS))
    trade = sparse.csr_array(sparse.random_array((k, m), density=0.4, rng=rng))
    on_scalars = sparse.csr_array(rng.normal(0.0, 1.0, (k, SCALARS)))
    shuffled = rng.permutation(m)
    assert np.any(np.diff(owner[shuffled]) < 0)
    grouped = reach(trade, on_scalars, owner, scalars)
    mixed = reach(sparse.csr_array(trade[:, shuffled]), on_scalars, owner[shuffled], scalars[shuffled])
    np.testing.assert_allclose(mixed[0], grouped[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mixed[1], grouped[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_coupled_block_is_scipys_slice(seed: int) -> None:
    """The coupled rows of some columns, placed from the CSC's arrays, are scipy's column slice
    made dense, in the columns' order (repeated and unsorted ones too)."""
    matrix = _program(seed)["matrix"]
    rng = np.random.default_rng(seed)
    columns = rng.choice(matrix.shape[1], size=9)
    first = int(rng.integers(0, matrix.shape[0]))
    expected = sparse.csc_array(matrix[:, columns]).toarray()[first:]
    assert np.array_equal(_coupled(matrix, columns, first), expected)


def test_listed_with_no_row_any_choice_could_breach() -> None:
    """Every coupled row far inside its bounds: no row is left to check, and each free asset takes
    its cheapest candidate (HiGHS once split such an asset; listing it failed on the empty rows)."""
    p = _program(2)
    owner = p["owner"]
    limits = p["matrix"].shape[0] - 5 - SCALARS
    lo, up = p["lo"].copy(), p["up"].copy()
    lo[-limits:], up[-limits:] = -1e6, 1e6
    fixed = np.array([np.flatnonzero(owner == a)[0] for a in range(3)])
    done, chosen = listed(owner, p["scalars"], p["price"], p["matrix"], (lo, up), fixed, owner >= 3, limits)
    assert done
    assert chosen is not None
    cheapest = [np.flatnonzero(owner == a)[np.argmin(p["price"][owner == a])] for a in (3, 4)]
    assert chosen.tolist() == cheapest


def _pruned_by_choice(
    by_candidate: np.ndarray,
    price: np.ndarray,
    bounds_at: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    after: tuple[np.ndarray, np.ndarray],
) -> tuple[bool, np.ndarray | None]:
    """The plain listing ``_listed._pruned`` replaces: a partial choice's rows a row of a choices x rows block."""
    low, high = bounds
    reach_low, reach_high = low - _REACH, high + _REACH
    values, cost = np.zeros((1, len(low))), np.zeros(1)
    parents = []
    for k in range(len(bounds_at) - 1):
        lo, hi = int(bounds_at[k]), int(bounds_at[k + 1])
        size = len(cost) * (hi - lo)
        if size > _MOST:
            return False, None
        values = (values[:, None, :] + by_candidate[None, lo:hi, :]).reshape(size, len(low))
        cost = (cost[:, None] + price[None, lo:hi]).ravel()
        parent, added = np.divmod(np.arange(len(cost)), hi - lo)
        if k + 2 < len(bounds_at):
            alive = np.flatnonzero(
                np.all((values + after[1][k + 1] >= reach_low) & (values + after[0][k + 1] <= reach_high), axis=1)
            )
            values, cost, parent, added = values[alive], cost[alive], parent[alive], added[alive]
        parents.append((parent, lo + added))
    keeps = np.all((values >= low) & (values <= high), axis=1)
    if not keeps.any():
        return True, None
    at = int(np.flatnonzero(keeps)[np.argmin(cost[keeps])])
    picked = []
    for parent, added in reversed(parents):
        picked.append(added[at])
        at = int(parent[at])
    return True, np.array(picked[::-1], np.int64)


@pytest.mark.parametrize("seed", range(30))
def test_pruned_lists_as_the_plain_choices_x_rows_block(seed: int) -> None:
    """The same answer (or refusal) bit for bit: the same sums and checks, another layout."""
    rng = np.random.default_rng(seed)
    assets, rows = int(rng.integers(1, 10)), int(rng.integers(1, 8))
    per = rng.integers(1, 5, size=assets)
    bounds_at = np.concatenate([[0], np.cumsum(per)])
    by_candidate = rng.normal(size=(int(per.sum()), rows)) * rng.choice([0.0, 1.0], size=(int(per.sum()), rows))
    price = np.round(rng.uniform(0.0, 1.0, size=int(per.sum())), 2)  # ties
    least = np.array([by_candidate[a:b].min(axis=0) for a, b in itertools.pairwise(bounds_at)])
    most = np.array([by_candidate[a:b].max(axis=0) for a, b in itertools.pairwise(bounds_at)])
    after = np.cumsum(least[::-1], axis=0)[::-1], np.cumsum(most[::-1], axis=0)[::-1]
    middle = least.sum(axis=0) + rng.uniform(0.0, 1.0, rows) * (most.sum(axis=0) - least.sum(axis=0))
    room = rng.uniform(0.0, 1.5, rows)
    bounds = (middle - room, middle + room * rng.uniform(0.0, 1.0, rows))
    want = _pruned_by_choice(by_candidate, price, bounds_at, bounds, after)
    got = _pruned(np.ascontiguousarray(by_candidate.T), price, bounds_at, bounds, after)
    assert got[0] == want[0]
    assert (got[1] is None) == (want[1] is None)
    if want[1] is not None:
        assert np.array_equal(got[1], want[1])
