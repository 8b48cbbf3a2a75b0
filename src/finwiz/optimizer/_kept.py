"""What a re-solve at new prices keeps from the last builds, found again by the content of the
arrays it was built from (each rebalance describes its model anew, so only offsets and bounds
move and identity never matches): the whole-share stage's matrices of the coupled rows and the
squared rows' Gram entries (``discrete/_pricing``), the native QP's CSC order (``solve/_csc``).

One small least-recently-used table, ``_SIZE`` entries across kinds (a few structures: a batch of
like accounts and a household's alternating ones hit it), keyed by a digest of the arrays, so no
copy of them is kept; a build from more than ``_KEPT_ENTRIES`` key entries is not kept (no large
block outlives its rebalance)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

import numpy as np

__all__ = ["clear_kept", "kept"]

_T = TypeVar("_T")
_SIZE = 16
_KEPT_ENTRIES = 300_000
_table: OrderedDict[Hashable, Any] = OrderedDict()
_lock = threading.Lock()


def _digest(a: np.ndarray) -> tuple[tuple[int, ...], str, bytes]:
    # SHA-256: as collision-proof as BLAKE2b, and run by the CPU's SHA instructions (OpenSSL) where it has them.
    return a.shape, a.dtype.str, hashlib.sha256(np.ascontiguousarray(a).data).digest()


def kept(kind: str, key: tuple[np.ndarray, ...], build: Callable[[], _T]) -> _T:
    """``build()``, or what it returned when ``kind`` was last built from arrays equal to ``key``."""
    if sum(a.size for a in key) > _KEPT_ENTRIES:
        return build()
    digest = (kind, *(_digest(a) for a in key))
    with _lock:
        if digest in _table:
            _table.move_to_end(digest)
            return cast(_T, _table[digest])
    value = build()
    with _lock:
        _table[digest] = value
        while len(_table) > _SIZE:
            _table.popitem(last=False)
    return value


def clear_kept() -> None:
    """Drop every kept build."""
    with _lock:
        _table.clear()
