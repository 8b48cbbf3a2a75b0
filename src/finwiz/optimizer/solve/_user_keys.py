"""The compiled-problem cache's key for a user's cvxpy term.

A term that declares its shape (:meth:`Term.structure` returns a key) is keyed by it: its
problem is shared by every request of that key, which is right only when everything the term
builds that differs between requests is a Parameter. A term that does not (``structure()``
returns None, the default) may build constants from its own attributes or from the request's
data; it is keyed by the term object and a digest of its attributes and of the data, so it never
gets a problem compiled from another request's constants (issue 21: the second of two
``SectorPenalty`` terms solved with the first one's sector).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from finwiz.optimizer.describe._data import ProblemData
    from finwiz.optimizer.describe._terms import Term


class _Kept(Protocol):
    data_digest: str | None


class _Model(Protocol):  # the assembler's Model (which imports this module)
    @property
    def data(self) -> ProblemData: ...

    @property
    def kept(self) -> _Kept: ...


__all__ = ["Identity", "user_key"]


class Identity:
    """An object in a cache key, equal only to itself (held, so its id is never reused)."""

    __slots__ = ("held",)

    def __init__(self, held: object) -> None:
        self.held = held

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.held is self.held

    def __hash__(self) -> int:
        return id(self.held)


def user_key(term: Term, model: _Model) -> Hashable:
    """The cache key of ``term`` in ``model`` (see the module docstring)."""
    declared = term.structure(model.data)
    if declared is not None:
        return declared
    if model.kept.data_digest is None:
        model.kept.data_digest = _digest(model.data)
    return (Identity(term), _digest(getattr(term, "__dict__", {})), model.kept.data_digest)


def _digest(value: Any) -> str:
    sink = hashlib.blake2b(digest_size=16)
    _feed(sink, value)
    return sink.hexdigest()


def _feed(sink: Any, value: Any) -> None:
    if isinstance(value, np.ndarray):
        sink.update(f"{value.dtype}{value.shape}".encode())
        sink.update(np.ascontiguousarray(value).tobytes())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            sink.update(f.name.encode())
            _feed(sink, getattr(value, f.name))
    elif isinstance(value, Mapping):
        for key in sorted(value, key=repr):
            sink.update(repr(key).encode())
            _feed(sink, value[key])
    elif isinstance(value, list | tuple):
        sink.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _feed(sink, item)
    elif hasattr(value, "to_numpy"):  # pandas
        _feed(sink, repr(getattr(value, "index", None)))
        _feed(sink, value.to_numpy())
    else:
        sink.update(repr(value).encode())
