"""The scalar columns' quadratic form of many moves at once (``_pricing._quadratic_form``): the
same floats whichever way it is taken (few moves at once, many column by column), so the search
makes the same trades, and the form itself (against numpy's einsum)."""

from __future__ import annotations

import numpy as np
import pytest

from finwiz.optimizer.discrete import _pricing


@pytest.mark.parametrize("m", [0, 1, 2, 3, 17, 499, 500])
def test_the_quadratic_form_is_the_same_floats_at_once_as_column_by_column(
    m: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(m)
    x = rng.normal(size=(m, 5)) * rng.uniform(0.0, 1e3, 5)
    x[:, [1, 4]] = 0.0  # columns no move changes
    g = rng.normal(size=(5, 5))
    g = g @ g.T
    at_once = _pricing._quadratic_form(x, g)
    monkeypatch.setattr(_pricing, "_FEW_MOVES", -1)
    by_column = _pricing._quadratic_form(x, g)
    assert np.array_equal(at_once, by_column)
    assert at_once == pytest.approx(np.einsum("ij,jk,ik->i", x, g, x), rel=1e-12)


@pytest.mark.parametrize("m", [0, 1, 63, 64, 65, 800])
def test_every_way_of_taking_the_quadratic_form_gives_the_same_floats(m: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every column's terms, the used columns' terms at once, and the used columns one by one."""
    rng = np.random.default_rng(100 + m)
    x = rng.normal(size=(m, 5)) * rng.uniform(0.0, 1e3, 5)
    x[:, [3, 4]] = 0.0  # without lots the tax and gain columns never change
    g = rng.normal(size=(5, 5))
    g = g @ g.T
    ways = []
    for few, many in ((10**6, 10**6), (-1, 10**6), (-1, -1)):
        monkeypatch.setattr(_pricing, "_FEW_MOVES", few)
        monkeypatch.setattr(_pricing, "_MANY_MOVES", many)
        ways.append(_pricing._quadratic_form(x, g))
    assert all(np.array_equal(ways[0], way) for way in ways[1:])
    assert ways[0] == pytest.approx(np.einsum("ij,jk,ik->i", x, g, x), rel=1e-12)


@pytest.mark.parametrize("m", [65, 800, 5001])
@pytest.mark.parametrize("entries", [[], [(2, 2)], [(0, 2), (2, 0), (2, 2)], [(1, 3), (3, 1), (4, 4)]])
def test_a_sparse_form_skips_its_zero_terms_with_the_same_floats(
    m: int, entries: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only ``g``'s nonzero entries' terms (one, the cash square, on a tax-blind request): the same
    floats as every term summed in order, signed zeros and exact cancellations included."""
    rng = np.random.default_rng(m + len(entries))
    x = rng.normal(size=(m, 5)) * rng.uniform(0.0, 1e3, 5)
    x[:, 3] = 0.0
    x[::5, 2] = -0.0
    x[1::7] = x[::7][: len(x[1::7])]  # repeated moves
    g = np.zeros((5, 5))
    for j, k in entries:
        g[j, k] = rng.normal()
    monkeypatch.setattr(_pricing, "_FEW_MOVES", 10**6)
    every_term = _pricing._quadratic_form(x, g)
    monkeypatch.setattr(_pricing, "_FEW_MOVES", 64)
    assert _pricing._quadratic_form(x, g).tobytes() == every_term.tobytes()  # bit for bit
    monkeypatch.setattr(_pricing, "_MANY_MOVES", -1)
    assert _pricing._quadratic_form(x, g).tobytes() == every_term.tobytes()  # bit for bit
    assert every_term == pytest.approx(np.einsum("ij,jk,ik->i", x, g, x), rel=1e-12, abs=1e-300)
