"""The engine's model of a reference ``Instance`` (its strategy's terms and every limit's), for
tests that call the whole-share stage's pieces directly."""

from __future__ import annotations

from finwiz import RebalancingEngine
from finwiz.optimizer._engine import _applicable, _with_constraints
from finwiz.optimizer.describe._data import build_problem_data
from finwiz.optimizer.solve._assembler import Model
from tests.optimizer.discrete.reference import Instance, config_of

__all__ = ["model_of"]


def model_of(inst: Instance) -> Model:
    """The model ``rebalance`` would solve for ``inst``."""
    config, prices = config_of(inst)
    data = build_problem_data(config, prices)
    terms = RebalancingEngine().strategies[inst.method].terms(data)
    return Model.of(_applicable(_with_constraints(terms), data), data)
