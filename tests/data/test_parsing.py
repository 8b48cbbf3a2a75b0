"""Strict price parsing: nothing that is not a positive finite number becomes a price."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from finwiz.data import parse_price
from finwiz.data._parsing import clean_price_frame
from finwiz.errors import InsufficientPriceDataError, PriceDataError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("123.45", 123.45), (" 7 ", 7.0), ("1e3", 1000.0), (42, 42.0), (np.float64(2.5), 2.5)],
)
def test_parse_price_accepts_plain_positive_numbers(raw: object, expected: float) -> None:
    assert parse_price(raw, "AAPL", provider="p") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "1,234.5",
        "N/A",
        "",
        "nan",
        "inf",
        "-5",
        "0",
        "0.0000",
        "12 USD",
        math.nan,
        -1.0,
        0,
        math.inf,
        True,
        None,
    ],
)
def test_parse_price_refuses_with_symbol_and_provider(raw: object) -> None:
    with pytest.raises(PriceDataError) as info:
        parse_price(raw, "AAPL", provider="alpha_vantage")
    assert info.value.symbol == "AAPL"
    assert info.value.provider == "alpha_vantage"
    assert "AAPL from alpha_vantage" in str(info.value)


@given(
    st.one_of(
        st.text(max_size=12),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(),
        st.booleans(),
        st.none(),
    )
)
def test_parse_price_never_yields_a_non_positive_or_non_finite_price(raw: object) -> None:
    try:
        price = parse_price(raw, "X")
    except PriceDataError:
        return
    assert math.isfinite(price)
    assert price > 0


def test_clean_frame_sorts_and_merges_identical_duplicate_dates() -> None:
    frame = pd.DataFrame(
        {"aapl": ["11", "10", "10"], "MSFT": ["21", "20", ""]},
        index=["2024-01-03", "2024-01-02", "2024-01-02"],
    )
    clean, problems = clean_price_frame(frame, provider="csv")
    assert problems == {}
    assert list(clean.columns) == ["AAPL", "MSFT"]
    assert clean.index.is_monotonic_increasing
    assert clean.index.is_unique
    assert clean.loc["2024-01-02", "AAPL"] == 10.0
    assert clean.loc["2024-01-02", "MSFT"] == 20.0  # the empty cell is no conflict


def test_clean_frame_refuses_conflicts_duplicates_and_bad_cells_per_symbol() -> None:
    frame = pd.DataFrame(
        [["10", "5", "1,234.5", "3", "4"], ["11", "6", "7", "3", "-4"]],
        index=["2024-01-02", "2024-01-02"],
        columns=["A", "B", "C", "D", "d"],
    )
    clean, problems = clean_price_frame(frame, provider="csv")
    assert set(problems) == {"A", "B", "C", "D"}
    assert "different prices on the same date" in problems["A"].reason
    assert "'1,234.5'" in problems["C"].reason
    assert "2024-01-02" in problems["C"].reason
    assert "listed twice" in problems["D"].reason
    assert list(clean.columns) == []


def test_clean_frame_refuses_infinite_and_zero_floats() -> None:
    frame = pd.DataFrame(
        {"A": [1.0, np.inf], "B": [1.0, 0.0], "C": [1.0, np.nan]},
        index=pd.to_datetime(["2024-01-02", "2024-01-03"]),
    )
    clean, problems = clean_price_frame(frame)
    assert set(problems) == {"A", "B"}
    assert list(clean.columns) == ["C"]


def test_digits_of_other_scripts_are_refused_not_dropped() -> None:
    # float("٣") is 3.0 in Python; a price file with such a cell is refused, never read as a gap.
    with pytest.raises(PriceDataError):
        parse_price("٣", "X")
    frame = pd.DataFrame({"A": ["10", "٣"], "B": ["10", "1e999"]}, index=["2024-01-02", "2024-01-03"])
    clean, problems = clean_price_frame(frame)
    assert set(problems) == {"A", "B"}
    assert list(clean.columns) == []


def test_unreadable_dates_name_every_symbol() -> None:
    frame = pd.DataFrame({"A": ["1"], "B": ["2"]}, index=["not a date"])
    with pytest.raises(InsufficientPriceDataError) as info:
        clean_price_frame(frame, provider="csv")
    assert info.value.symbols == ["A", "B"]
