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
