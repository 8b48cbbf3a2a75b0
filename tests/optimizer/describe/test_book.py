"""The book's price reading: the plain-dict fast path against the general path it skips."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from finwiz.errors import FinwizError
from finwiz.optimizer.describe._book import coerce_prices
from finwiz.schemas import PriceData

SYMBOLS = ["AAA", "BRK.B", "C1"]


def _outcome(prices: Any) -> tuple[str, Any]:
    try:
        return "ok", coerce_prices(prices, SYMBOLS).tolist()
    except FinwizError as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize(
    "prices",
    [
        {"AAA": 10.0, "BRK.B": 2, "C1": np.float64(3.5)},  # floats, ints, numpy floats
        {"C1": 3.0, "AAA": 1.5, "BRK.B": 2.25, "EXTRA": "not read"},  # another order, an extra symbol
        {"AAA": 2**53 + 1, "BRK.B": 1e308, "C1": 5e-324},  # an int past 2^53, extremes
        {"aaa": 1.0, "BRK.B": 2.0, "C1": 3.0},  # a key to canonicalise
        {" AAA": 1.0, "AAA": 1.0, "BRK.B": 2.0, "C1": 3.0},  # given twice once canonical
        {"AAA": 1.0, "BRK.B": 2.0},  # missing
        {"AAA": 1.0, "BRK.B": 0, "C1": 3.0},  # zero
        {"AAA": 1.0, "BRK.B": -2.0, "C1": 3.0},  # negative
        {"AAA": 1.0, "BRK.B": float("nan"), "C1": 3.0},
        {"AAA": 1.0, "BRK.B": float("inf"), "C1": 3.0},
        {"AAA": 1.0, "BRK.B": True, "C1": 3.0},  # a boolean is no price
        {"AAA": 1.0, "BRK.B": "2.0", "C1": 3.0},  # nor is text
        {"AAA": 1.0, "BRK.B": np.float32(2.5), "C1": 3.0},
        {"AAA": PriceData(symbol="AAA", price=4.0), "BRK.B": 2.0, "C1": 3.0},
        {"AAA": 1.0, "BRK.B": 10**400, "C1": 3.0},  # past float: the general path's error
        {1: 1.0, "AAA": 1.0, "BRK.B": 2.0, "C1": 3.0},  # a key that is not text
    ],
)
def test_a_plain_dict_reads_as_any_mapping(prices: dict[Any, Any]) -> None:
    """A ``dict`` (the fast path where it applies) gives the same prices, or the same error, as
    the same mapping read item by item (a mapping proxy takes the general path)."""
    try:
        general = _outcome(MappingProxyType(prices))
    except OverflowError:
        with pytest.raises(OverflowError):
            coerce_prices(prices, SYMBOLS)
        return
    assert _outcome(prices) == general
    if general[0] == "ok":
        assert coerce_prices(prices, SYMBOLS).dtype == np.float64


@pytest.mark.parametrize("selected", [[], ["AAA"], ["C1", "AAA"], ["ZZZ"], ["AAA", "BRK.B", "C1"]])
def test_a_mask_is_each_symbols_membership(selected: list[str]) -> None:
    """``_mask`` (one ``fromiter``) against the plain per-symbol membership test."""
    from finwiz.optimizer.describe._book import _mask

    got = _mask(selected, SYMBOLS)
    assert got.dtype == np.bool_
    assert got.tolist() == [s in set(selected) for s in SYMBOLS]


@pytest.mark.parametrize(
    ("held", "targets"),
    [
        ({"AAA": 3.0, "C1": 2.5}, {"BRK.B": 0.5, "AAA": 0.3}),  # a target not held, a holding without target
        ({}, {"AAA": 0.5, "C1": 0.4}),  # cash only
        ({"C1": 4.0, "AAA": 1.0, "BRK.B": 7.0}, {}),  # no targets: every holding sold toward cash
    ],
)
def test_the_books_shares_are_each_symbols_holding(held: dict[str, float], targets: dict[str, float]) -> None:
    """The book reads the holdings' shares by the universe's first symbols (``config.symbols``
    starts with the holdings in order) as the holdings mapped by their own symbols would."""
    from finwiz import Holding, PortfolioConfiguration
    from finwiz.optimizer.describe._book import _book

    config = PortfolioConfiguration(
        holdings=[Holding(symbol=s, shares=q) for s, q in held.items()], target_weights=targets, cash=1_000.0
    )
    for duplicate in (False, True):  # a holding appended after validation: the last one's shares
        if duplicate and held:
            config.holdings.append(Holding(symbol=next(iter(held)), shares=11.0))
        symbols = config.symbols
        book = _book(config, np.arange(1.0, len(symbols) + 1.0), symbols)
        by_symbol = {h.symbol: h.shares for h in config.holdings}
        assert book.shares.tolist() == [float(by_symbol.get(s, 0.0)) for s in symbols]
