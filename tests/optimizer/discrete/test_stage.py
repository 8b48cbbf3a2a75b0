"""The whole-share stage's rule of alternatives (``_stage``): an alternative whose variant's rows
admit no point by their activity bounds is not solved (~1 ms, where the interior point took ~60 ms
to prove it at 2000 assets), and the first answer stands."""

from __future__ import annotations

import numpy as np
import pytest

from finwiz.optimizer._trace import Stages
from finwiz.optimizer.discrete._stage import _refuted, _rounded
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._solve import ProvenInfeasibleError, SolveOutcome, solve_terms
from tests.optimizer.discrete.models import model_of
from tests.optimizer.discrete.reference import Instance


def _model() -> Model:
    """Four assets, A0 held above its 25 % position cap (it must be sold), costs, a deposit."""
    inst = Instance(
        ["A0", "A1", "A2", "A3"],
        np.array([50.0, 80.0, 120.0, 200.0]),
        np.array([400.0, 100.0, 80.0, 40.0]),
        10_000.0,
        np.array([0.2, 0.2, 0.2, 0.2]),
        ["S", "S", "T", "T"],
        max_position=0.25,
        cash_flow=5_000.0,
    )
    model = model_of(inst)
    assert model.data.x0[0] > 0.25  # over its cap: fixed untraded, no point keeps the cap
    return model


@pytest.mark.parametrize(("fixed", "refuted"), [(0, True), (1, False), (3, False)])
def test_refuted_variants_are_those_the_interior_point_proves_infeasible(fixed: int, refuted: bool) -> None:
    model = _model()
    mask = np.arange(model.data.n) == fixed
    variant = model.with_data(model.data.fix(mask))
    assert _refuted(variant) is refuted
    if not refuted:
        assert solve_terms(variant, "CLARABEL").residual <= 1e-7
    else:
        with pytest.raises(ProvenInfeasibleError):
            solve_terms(variant, "CLARABEL")


def test_an_alternative_whose_rows_admit_no_point_is_not_solved() -> None:
    model = _model()
    variant = model.with_data(model.data.fix(np.arange(model.data.n) == 0))
    calls: list[Model] = []

    def solve(m: Model) -> SolveOutcome:
        calls.append(m)
        return solve_terms(m)

    stages = Stages()
    with stages.stage("whole_shares"):
        assert _rounded(variant, variant, solve, 1.0, True) is None
    assert calls == []
    assert "not solved" in stages.records[0].note  # the result says the alternative did not run
    feasible = model.with_data(model.data.fix(np.arange(model.data.n) == 1))
    assert _rounded(feasible, feasible, solve, 1.0, True) is not None
    assert len(calls) == 1
