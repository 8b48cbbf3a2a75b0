"""Compact pickling for batches: models as rows, per-symbol maps as packed floats.

A batch sends every configuration to a worker and every result back; pickling pydantic objects
one by one cost more than the solves. The classes' ``__reduce__`` use these helpers; the
unpicklers take the class, so this module imports no model (no import circle).
"""

from __future__ import annotations

from array import array
from itertools import repeat
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
    return cls._from_states((ordered,), (set(fields_set),))[0]


def _unpickle_configuration(cls: type[M], state: dict[str, Any], fields_set: frozenset[str]) -> M:
    """Rebuild a :class:`~finwiz.schemas.PortfolioConfiguration` pickled by its ``__reduce__``."""
    state["holdings"] = _unpack_models(*state["holdings"])
    return cls._from_states((state,), (set(fields_set),))[0]


def _pack_models(models: list[Any], nested: str | None = None) -> tuple[Any, ...]:
    """A list of models of one class as rows of field values (fields sets stored once each).

    Field ``nested`` (a trade's reasons) holds lists of models: they are packed once for all
    models into one table, each row keeping their count, as unpickling them one call each cost
    more than the rest of a result (an object shared by two models comes back as two equal ones).
    """
    names = tuple(models[0].__dict__) if models else ()
    # Rows need one class and one layout (``model_construct`` leaves out required fields not given).
    if not models or any(type(m) is not type(models[0]) or tuple(m.__dict__) != names for m in models):
        return (None, models)
    which, kinds = _fields_sets(models)
    if nested is None:
        return (type(models[0]), names, [tuple(m.__dict__.values()) for m in models], which, kinds)
    column = names.index(nested)
    table = [item for m in models for item in m.__dict__[nested]]
    rows = [list(m.__dict__.values()) for m in models]
    for row in rows:
        row[column] = len(row[column])
    return (type(models[0]), names, rows, which, kinds, (column, _pack_models(table)))


def _fields_sets(models: list[Any]) -> tuple[list[int], list[frozenset[str]]]:
    """Each model's fields set as an index into the distinct ones. Models built by the engine share
    one set object: it is looked up by identity, not hashed again for each model."""
    kinds: dict[frozenset[str], int] = {}
    by_id: dict[int, int] = {}
    which = []
    for model in models:
        fields_set = model.__pydantic_fields_set__
        k = by_id.get(id(fields_set))
        if k is None:
            k = by_id[id(fields_set)] = kinds.setdefault(frozenset(fields_set), len(kinds))
        which.append(k)
    return which, list(kinds)


def _unpack_models(cls: Any, *packed: Any) -> list[Any]:
    if cls is None:
        return list(packed[0])
    names, rows, which, kinds = packed[:4]
    if len(packed) > 4:  # a nested field's models, packed once for all rows
        column, table = packed[4]
        items, at = _unpack_models(*table), 0
        for row in rows:
            count = row[column]
            row[column] = items[at : at + count]
            at += count
    every = frozenset(cls.model_fields)
    # A full fields set can be shared: pydantic only ever adds field names to it, all present.
    shared = [set(k) if k == every else None for k in kinds]
    states = list(map(dict, map(zip, repeat(names), rows)))  # rows of one layout (checked when packed)
    out: list[Any] = cls._from_states(states, [shared[w] or set(kinds[w]) for w in which])
    return out
