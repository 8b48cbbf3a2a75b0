"""Look-through limits: ``sum_i E_ki w_i / (1 - c) <= cap_k`` (``>= floor_k``) on the post-trade
weights seen through the exposures table (a fund is its breakdown, a stock 1 in its sector), each
one limit group whose members are the exposure names -- written as the sector cap is, so every
consumer of the description (both continuous paths, whole shares, compliance, diagnosis) has it."""

from __future__ import annotations

import numpy as np

from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._model import COST, Affine, Description, LimitGroup
from finwiz.optimizer.describe._terms import Term

__all__ = ["ExposureCapTerm", "ExposureFloorTerm", "exposure_terms"]


def _look_through(data: ProblemData, keep: np.ndarray) -> Affine:
    """Rows ``E_k' w`` for the exposures ``keep`` selects, renumbered 0.. in order."""
    exposures = data.exposures
    assert exposures is not None
    renumber = np.full(len(exposures.names), -1)
    renumber[keep] = np.arange(keep.size)
    cell = np.flatnonzero(renumber[exposures.row] >= 0)
    rows, idx, coef = renumber[exposures.row[cell]], exposures.col[cell], exposures.fraction[cell]
    offset = np.zeros(keep.size)
    np.add.at(offset, rows, coef * data.x0[idx])
    both = np.concatenate([rows, rows])
    return Affine(both, np.concatenate([idx, idx + data.n]), np.concatenate([coef, -coef]), offset)


class _ExposureTerm(Term):
    reads_context = False
    upper = True

    def _bounds(self, data: ProblemData) -> np.ndarray:
        assert data.exposures is not None
        return data.exposures.cap if self.upper else data.exposures.floor

    def applies(self, data: ProblemData) -> bool:
        return data.exposures is not None and bool(np.isfinite(self._bounds(data)).any())

    def describe(self, data: ProblemData) -> Description:
        assert data.exposures is not None
        bound = self._bounds(data)
        keep = np.flatnonzero(np.isfinite(bound))
        unbounded = np.full(keep.size, np.inf)
        group = LimitGroup(
            self.name,
            _look_through(data, keep),
            -unbounded if self.upper else bound[keep],
            bound[keep] if self.upper else unbounded,
            tuple(data.exposures.names[k] for k in keep),
            per=Affine.scalar(COST, -1.0, 1.0),  # the post-trade value, 1 - c
        )
        return Description(limits=[group])


class ExposureCapTerm(_ExposureTerm):
    """sum_i E_ki w_i / (1 - c) <= cap_k for every capped exposure k (``exposure_caps``)."""

    name = "exposure_cap"


class ExposureFloorTerm(_ExposureTerm):
    """sum_i E_ki w_i / (1 - c) >= floor_k for every floored exposure k (``exposure_floors``)."""

    name = "exposure_floor"
    upper = False


def exposure_terms() -> list[Term]:
    """The look-through limit terms (each applies only when its limits are given)."""
    return [ExposureCapTerm(), ExposureFloorTerm()]
