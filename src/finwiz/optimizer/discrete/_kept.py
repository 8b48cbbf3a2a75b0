"""What a re-solve at new prices keeps from the last build: the whole-share stage's matrices that
depend on the model's rows only (the coupled rows, the squared rows' Gram entries), found again by
the rows' content, since each rebalance describes its model anew (only offsets and bounds move)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

__all__ = ["kept"]

_T = TypeVar("_T")
_KEPT_ENTRIES = 300_000  # key entries above which nothing is kept (no large block outlives its rebalance)
_last: dict[str, tuple[tuple[np.ndarray, ...], Any]] = {}


def kept(kind: str, key: tuple[np.ndarray, ...], build: Callable[[], _T]) -> _T:
    """``build()``, or what it returned the last time ``kind`` was built from arrays equal to
    ``key`` (one entry per kind: a batch's like accounts and a re-solve's new prices hit it)."""
    last = _last.get(kind)
    if last is not None and all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(last[0], key, strict=True)):
        return cast(_T, last[1])
    value = build()
    if sum(a.size for a in key) <= _KEPT_ENTRIES:
        _last[kind] = (tuple(a.copy() for a in key), value)
    return value
