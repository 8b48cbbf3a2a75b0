"""The look-through exposures of a request as arrays (:class:`Exposures`, built by
:func:`exposure_data` from the configuration's ``exposures`` table and its ``exposure_caps`` /
``exposure_floors``); the limits they state are the terms of ``_exposures``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from finwiz.schemas import PortfolioConfiguration
from finwiz.schemas._exposures import exposure_matrix

__all__ = ["Exposures", "exposure_data"]


@dataclass(frozen=True, eq=False)
class Exposures:
    """The exposures of the table: ``names``, the nonzero cells of ``E`` (``row``: exposure,
    ``col``: asset, ``fraction``), each exposure's ``cap`` (inf: none) and ``floor`` (-inf: none)."""

    names: tuple[str, ...]
    row: np.ndarray
    col: np.ndarray
    fraction: np.ndarray
    cap: np.ndarray
    floor: np.ndarray

    def matrix(self, n: int) -> np.ndarray:
        """``E`` as a dense (exposures x n) array."""
        out = np.zeros((len(self.names), n))
        np.add.at(out, (self.row, self.col), self.fraction)
        return out


def exposure_data(config: PortfolioConfiguration, symbols: Sequence[str]) -> Exposures | None:
    """Every exposure of the table over ``symbols``, with its limits; None without a table."""
    caps, floors = config.exposure_caps, config.exposure_floors
    if not config.exposures:
        return None
    names = tuple(sorted({name for row in config.exposures.values() for name in row}))
    cells = exposure_matrix(config.exposures, list(symbols), names)
    table = np.array(cells, dtype=float).reshape(-1, 3)
    return Exposures(
        names=names,
        row=table[:, 0].astype(np.int64),
        col=table[:, 1].astype(np.int64),
        fraction=table[:, 2],
        cap=np.array([caps.get(k, np.inf) for k in names]),
        floor=np.array([floors.get(k, -np.inf) for k in names]),
    )
