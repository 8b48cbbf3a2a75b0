"""The descriptions of one request stacked into a few arrays over ``z`` (:class:`Stacked`): what
the cvxpy problem, the native QP and the whole-share step read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._model import SCALARS, Affine, Description, ImpactForm, LimitGroup, TaxForm, column

__all__ = ["Stacked", "stack"]


@dataclass(frozen=True)
class Stacked:
    """The descriptions of one request as a few arrays over ``z = [buy, sell, c, tau, nu, T, G]``."""

    n: int
    squares: Affine  # the objective has ||squares(z)||^2 ...
    linear: np.ndarray  # ... plus linear @ z (2n + SCALARS) ...
    const: float  # ... plus const
    count: float  # price of one trade (the discrete step's true count)
    rate: np.ndarray  # c >= rate'(buy + sell) + impact
    impact: tuple[ImpactForm, ...]
    groups: tuple[LimitGroup, ...]
    backoff: float
    tax: TaxForm | None = None  # the lots that define T and G (a taxable account)

    def objective(self, z: np.ndarray) -> float:
        """The (unscaled) objective at ``z``, the count not included."""
        rows = self.squares.evaluate(z)
        return float(rows @ rows + self.linear @ z + self.const)


def squared_rows(d: Description, x0: np.ndarray) -> list[Affine]:
    """The rows whose squares ``d``'s objective sums: its weights' diagonal squares, its scalar
    columns' squares, then its low-rank rows (in :func:`stack`'s order)."""
    return [
        *(Affine.weights_diag(s, x0, base) for s, base in d.weight_squares),
        *(Affine.scalar(col, r, r * o) for col, r, o in d.scalar_squares),
        *d.low_rank,
    ]


def stack(descriptions: Sequence[Description], data: ProblemData, *, continuous: bool = True) -> Stacked:
    """Stack ``descriptions``; ``continuous`` includes the count's L1 surrogate (the continuous
    solve's), otherwise the objective is the true one less the count (priced separately)."""
    n, x0 = data.n, data.x0
    squares: list[Affine] = []
    linear = np.zeros(2 * n + SCALARS)
    rate = np.zeros(n)
    impact: list[ImpactForm] = []
    tax: TaxForm | None = None
    count = 0.0
    for d in descriptions:
        squares += squared_rows(d, x0)
        for line in (d.linear, d.surrogate if continuous else None):
            if line is not None:
                np.add.at(linear, column(line.cols, n), line.vals)
        linear[2 * n] += d.cost_weight
        if d.cost is not None:
            rate = rate + d.cost
        if d.impact is not None:
            impact.append(d.impact)
        tax = d.tax if d.tax is not None else tax
        count += d.count
    return Stacked(
        n=n,
        squares=Affine.stack(squares),
        linear=linear,
        const=0.0,
        count=count,
        rate=rate,
        impact=tuple(impact),
        groups=tuple(g for d in descriptions for g in d.limits),
        backoff=data.backoff,
        tax=tax,
    )
