"""The true objective of share trades: one home for the whole-share steps that judge answers by it."""

from __future__ import annotations

import numpy as np

from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._solve import objective_at
from finwiz.optimizer.verify._compliance import post_trade_state

__all__ = ["achieved", "point_of"]


def point_of(data: ProblemData, shares: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Share trades ``shares`` as the model's (buy, sell, cost), fractions of ``V_ref``."""
    u = shares * data.prices / data.ref_value
    return np.maximum(u, 0.0), np.maximum(-u, 0.0), post_trade_state(data, shares).total_cost / data.ref_value


def achieved(model: Model, shares: np.ndarray) -> float:
    """The true objective of ``model`` at share trades ``shares`` (user terms included)."""
    return objective_at(model, [point_of(model.data, shares)])[0]
