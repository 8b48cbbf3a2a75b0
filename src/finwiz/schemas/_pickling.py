"""Compact pickling for batches: models as rows, per-symbol maps as packed floats.

A batch sends every configuration to a worker and every result back; pickling pydantic objects
one by one cost more than the solves. The classes' ``__reduce__`` use these helpers; the
unpicklers take the class, so this module imports no model (no import circle).
"""

from __future__ import annotations

from array import array
from typing import Any, TypeVar

from finwiz.schemas._base import _Model

M = TypeVar("M", bound=_Model)

_PER_SYMBOL = ("current_holdings", "post_trade_holdings", "prices", "target_weights", "post_trade_weights")


def _unpickle_result(
    cls: type[M],
    state: dict[str, Any],
    symbols: tuple[str, ...],
    packed: dict[str, array[float]],
    fields_set: frozenset[str],
) -> M:
    """Rebuild a :class:`~finwiz.schemas.RebalancingResult` pickled by its ``__reduce__``."""
    for name, values in packed.items():
        state[name] = dict(zip(symbols, values.tolist(), strict=True))
    state["trades"] = _unpack_models(*state["trades"])
    state["compliance"] = _unpack_models(*state["compliance"])
    state["stages"] = _unpack_models(*state["stages"])
    ordered = {name: state[name] for name in cls.model_fields}
    return cls._from_state(ordered, set(fields_set))


def _unpickle_configuration(cls: type[M], state: dict[str, Any], fields_set: frozenset[str]) -> M:
    """Rebuild a :class:`~finwiz.schemas.PortfolioConfiguration` pickled by its ``__reduce__``."""
    state["holdings"] = _unpack_models(*state["holdings"])
    return cls._from_state(state, set(fields_set))


def _pack_models(models: list[Any]) -> tuple[Any, ...]:
    """A list of models of one class as rows of field values (fields sets stored once each)."""
    if not models or any(type(m) is not type(models[0]) for m in models):
        return (None, models)
    kinds: dict[frozenset[str], int] = {}
    which = [kinds.setdefault(frozenset(m.__pydantic_fields_set__), len(kinds)) for m in models]
    names = tuple(models[0].__dict__)
    rows = [tuple(m.__dict__.values()) for m in models]
    return (type(models[0]), names, rows, which, list(kinds))


def _unpack_models(cls: Any, *packed: Any) -> list[Any]:
    if cls is None:
        return list(packed[0])
    names, rows, which, kinds = packed
    every = frozenset(cls.model_fields)
    # A full fields set can be shared: pydantic only ever adds field names to it, all present.
    shared = [set(k) if k == every else None for k in kinds]
    out = []
    for row, w in zip(rows, which, strict=True):
        fields_set = shared[w]
        out.append(cls._from_state(dict(zip(names, row, strict=True)), fields_set or set(kinds[w])))
    return out
