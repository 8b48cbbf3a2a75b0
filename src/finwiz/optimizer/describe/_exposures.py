"""Look-through limits: ``sum_i E_ki w_i / (1 - c) <= cap_k`` (``>= floor_k``) on the post-trade
weights seen through the exposures table (a fund is its breakdown, a stock 1 in its sector), each
one limit group whose members are the exposure names -- written as the sector cap is, so every
consumer of the description (both continuous paths, whole shares, compliance, diagnosis) has it."""

from __future__ import annotations

import numpy as np

from finwiz.errors import ConfigurationError
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._model import COST, NET, Affine, Description, LimitGroup
from finwiz.optimizer.describe._terms import Term

__all__ = ["ExposureCapTerm", "ExposureFloorTerm", "ExposureTrackingTerm", "exposure_terms"]


def _look_through(data: ProblemData, keep: np.ndarray, scale: float = 1.0, base: np.ndarray | None = None) -> Affine:
    """Rows ``scale E_k' (w - base)`` for the exposures ``keep`` selects, renumbered 0.. in order."""
    exposures = data.exposures
    assert exposures is not None
    renumber = np.full(len(exposures.names), -1)
    renumber[keep] = np.arange(keep.size)
    cell = np.flatnonzero(renumber[exposures.row] >= 0)
    rows, idx, coef = renumber[exposures.row[cell]], exposures.col[cell], scale * exposures.fraction[cell]
    shift = data.x0 if base is None else data.x0 - base
    offset = np.zeros(keep.size)
    np.add.at(offset, rows, coef * shift[idx])
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


class ExposureTrackingTerm(Term):
    """weight x ( ||E (w - w_target)||^2 + (cash - cash_target)^2 ): tracks the target's
    look-through exposures (every exposure of the table, or ``names``) rather than its symbols, so
    a fund and the stocks it holds substitute -- for a held fund that must not be sold (taxes, a
    no-sell list) while the exposures must still be right. What a row of the table leaves out
    (a row summing below 1) is not tracked: add an exposure for it (``"other"``) to track it too.
    Use it in a strategy instead of (or beside) :class:`TargetTrackingTerm`."""

    reads_context = False
    name = "exposure_tracking"

    def __init__(self, weight: float = 1.0, names: tuple[str, ...] | None = None) -> None:
        self.weight = weight
        self.names = names

    def applies(self, data: ProblemData) -> bool:
        return data.exposures is not None

    def describe(self, data: ProblemData) -> Description:
        exposures = data.exposures
        if exposures is None:
            return Description()
        wanted = exposures.names if self.names is None else self.names
        unknown = sorted(set(wanted) - set(exposures.names))
        if unknown:
            raise ConfigurationError(f"{self.name}: no asset has exposure {unknown[0]!r} (names={self.names!r})")
        keep = np.array([k for k, name in enumerate(exposures.names) if name in wanted], dtype=np.int64)
        root = float(np.sqrt(self.weight))
        return Description(
            low_rank=[_look_through(data, keep, root, data.target)] if keep.size else [],
            scalar_squares=[(NET, root, float(data.x0.sum() - data.target.sum()))],
        )


def exposure_terms() -> list[Term]:
    """The look-through limit terms (each applies only when its limits are given)."""
    return [ExposureCapTerm(), ExposureFloorTerm()]
