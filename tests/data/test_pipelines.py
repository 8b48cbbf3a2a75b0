"""Pipelines: alignment, returns, covariance estimators, PCA factor model, liquidity, quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finwiz.data import (
    CovarianceMethod,
    align_prices,
    check_covariance,
    check_price_quality,
    compute_returns,
    estimate_covariance,
    ewma_covariance,
    ledoit_wolf_covariance,
    liquidity_profile,
    pca_factor_model,
)
from finwiz.errors import InsufficientPriceDataError, InvalidPortfolioError
from finwiz.risk import FactorModel
from tests.data.conftest import make_prices


def test_align_prices_orders_to_universe_and_names_missing(generated_prices: pd.DataFrame) -> None:
    shuffled = generated_prices.iloc[::-1].rename(columns=str.lower)
    aligned = align_prices(shuffled, ["S3", "s1"])
    assert list(aligned.columns) == ["S3", "S1"]
    assert aligned.index.is_monotonic_increasing
    with pytest.raises(InsufficientPriceDataError) as info:
        align_prices(generated_prices, ["S1", "ZZ", "YY"])
    assert info.value.symbols == ["YY", "ZZ"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.set_axis(["S0", "S0", "S2", "S3", "S4"], axis=1), "twice"),
        (lambda f: pd.concat([f, f.iloc[[0]]]), "duplicate dates"),
        (lambda f: f.assign(S1=f["S1"].where(f.index != f.index[5], -1.0)), "non-positive"),
        (lambda f: f.assign(S1=f["S1"].where(f.index != f.index[5], np.inf)), "infinite"),
    ],
)
def test_align_prices_refuses_bad_tables(generated_prices: pd.DataFrame, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidPortfolioError, match=message):
        align_prices(mutate(generated_prices), ["S0", "S1"])


def test_simple_and_log_returns(generated_prices: pd.DataFrame) -> None:
    simple = compute_returns(generated_prices)
    log = compute_returns(generated_prices, "log")
    expected = generated_prices.iloc[1:].to_numpy() / generated_prices.iloc[:-1].to_numpy() - 1
    np.testing.assert_allclose(simple.to_numpy(), expected)
    np.testing.assert_allclose(log.to_numpy(), np.log1p(expected))
    assert simple.index.equals(generated_prices.index[1:])


def test_missing_data_policies() -> None:
    prices = pd.DataFrame(
        {"A": [np.nan, 10.0, 11.0, np.nan, 12.1], "B": [5.0, 5.0, 5.5, 6.05, 6.05]},
        index=pd.bdate_range("2024-01-01", periods=5),
    )
    with pytest.raises(InvalidPortfolioError, match="missing values for A"):
        compute_returns(prices)
    dropped = compute_returns(prices, missing="drop")
    assert len(dropped) == 2
    assert dropped["A"].iloc[-1] == pytest.approx(0.1)
    filled = compute_returns(prices, missing="forward_fill")
    assert filled["A"].tolist() == pytest.approx([0.1, 0.0, 0.1])


def _ledoit_wolf_by_loops(x: np.ndarray) -> tuple[np.ndarray, float]:
    """The 2004 estimator written observation by observation, as in the paper."""
    n, p = x.shape
    xc = x - x.mean(axis=0)
    s = sum(np.outer(row, row) for row in xc) / n
    mu = np.trace(s) / p
    d2 = np.linalg.norm(s - mu * np.eye(p), "fro") ** 2
    b2 = sum(np.linalg.norm(np.outer(row, row) - s, "fro") ** 2 for row in xc) / n**2
    delta = min(b2, d2) / d2
    return delta * mu * np.eye(p) + (1 - delta) * s, delta


@pytest.mark.parametrize(("n_days", "n_assets"), [(30, 12), (300, 5)])
def test_ledoit_wolf_matches_the_definition(n_days: int, n_assets: int) -> None:
    returns = compute_returns(make_prices(n_days + 1, n_assets, seed=n_assets))
    covariance, delta = ledoit_wolf_covariance(returns)
    expected, expected_delta = _ledoit_wolf_by_loops(returns.to_numpy())
    np.testing.assert_allclose(covariance.to_numpy(), expected, rtol=1e-10, atol=1e-15)
    assert delta == pytest.approx(expected_delta)
    assert 0 <= delta <= 1
    assert list(covariance.index) == list(returns.columns)


def test_ewma_weights_recent_dates_and_tends_to_the_sample_covariance() -> None:
    returns = compute_returns(make_prices(200, 3))
    flat = ewma_covariance(returns, halflife=1e9)
    biased = np.cov(returns.to_numpy(), rowvar=False, bias=True)
    np.testing.assert_allclose(flat.to_numpy(), biased, rtol=1e-6)
    calm_then_wild = returns.copy()
    calm_then_wild.iloc[-20:] *= 10
    recent = ewma_covariance(calm_then_wild, halflife=10)
    assert recent.iloc[0, 0] > 20 * flat.iloc[0, 0]
    with pytest.raises(InvalidPortfolioError):
        ewma_covariance(returns, halflife=0)


def test_estimators_refuse_non_finite_returns() -> None:
    returns = compute_returns(make_prices(50, 3))
    returns.iloc[4, 1] = np.nan
    for method in CovarianceMethod:
        with pytest.raises(InvalidPortfolioError, match="S1"):
            estimate_covariance(returns, method)


def test_pca_factor_model_is_a_finwiz_factor_model(sample_prices: pd.DataFrame) -> None:
    returns = compute_returns(sample_prices.loc["2015":])
    covariance = estimate_covariance(returns, "ledoit_wolf")
    model = pca_factor_model(covariance, n_factors=3)
    assert isinstance(model, FactorModel)
    assert model.n_factors == 3
    assert model.symbols == list(covariance.index)
    implied = model.covariance().to_numpy()
    np.testing.assert_allclose(np.diag(implied), np.diag(covariance), rtol=1e-10)
    full = pca_factor_model(covariance, n_factors=covariance.shape[0])
    np.testing.assert_allclose(full.covariance().to_numpy(), covariance.to_numpy(), atol=1e-14)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_factors=st.integers(1, 6))
def test_factor_model_never_overstates_total_variance(seed: int, n_factors: int) -> None:
    returns = compute_returns(make_prices(40, 6, seed=seed))
    covariance = estimate_covariance(returns, "sample")
    model = pca_factor_model(covariance, n_factors)
    np.testing.assert_allclose(np.diag(model.covariance()), np.diag(covariance), rtol=1e-8)
    assert (model.idiosyncratic_variance >= 0).all()


def _labelled(values: np.ndarray, names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(values, index=names, columns=names)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (_labelled(np.array([[1.0, 2.0], [2.0, 1.0]]), ["A", "B"]), "positive semidefinite"),
        (_labelled(np.array([[1.0, np.nan], [np.nan, 1.0]]), ["A", "B"]), "non-finite"),
        (_labelled(np.array([[1.0, 0.5], [0.1, 1.0]]), ["A", "B"]), "symmetric"),
        (pd.DataFrame(np.eye(2), index=["A", "B"], columns=["B", "A"]), "same symbols"),
    ],
)
def test_bad_covariances_are_refused(matrix: pd.DataFrame, message: str) -> None:
    with pytest.raises(InvalidPortfolioError, match=message):
        pca_factor_model(matrix, 1)
    with pytest.raises(InvalidPortfolioError, match=message):
        check_covariance(matrix)


def test_check_covariance_alignment() -> None:
    matrix = _labelled(np.eye(2), ["A", "B"])
    assert check_covariance(matrix, ["a", "B"]) is matrix
    with pytest.raises(InvalidPortfolioError, match="order"):
        check_covariance(matrix, ["B", "A"])
    with pytest.raises(InvalidPortfolioError, match="missing C") as info:
        check_covariance(matrix, ["A", "C"])
    assert info.value.symbol == "C"


def test_liquidity_profile_dollar_and_share_volumes(generated_prices: pd.DataFrame) -> None:
    shares = pd.DataFrame(1000.0, index=generated_prices.index, columns=generated_prices.columns)
    dollars = shares * generated_prices
    by_dollars = liquidity_profile(generated_prices, dollars, window=20)
    by_shares = liquidity_profile(generated_prices, shares, window=20, dollar_volume=False)
    pd.testing.assert_frame_equal(by_dollars, by_shares)
    expected_adv = (1000.0 * generated_prices.iloc[-20:]).mean()
    np.testing.assert_allclose(by_dollars["adv"], expected_adv)
    expected_vol = generated_prices.pct_change().iloc[-20:].std()
    np.testing.assert_allclose(by_dollars["volatility"], expected_vol)
    with pytest.raises(InsufficientPriceDataError, match="S4"):
        liquidity_profile(generated_prices, dollars.drop(columns="S4"))


def test_quality_report_finds_rrc_stale_run_in_the_sample(sample_prices: pd.DataFrame) -> None:
    report = check_price_quality(sample_prices)
    longest = max((r for r in report.stale_runs if r.symbol == "RRC"), key=lambda r: r.length)
    assert longest.length == 68
    assert {r.symbol for r in report.stale_runs} == {"RRC"}
    assert "RRC: price unchanged for 68 days" in str(report)


def test_quality_report_flags_an_unadjusted_split_and_gaps() -> None:
    prices = make_prices(60, 3, seed=3)
    prices.iloc[30:, 1] /= 2.0  # a 2-for-1 split left unadjusted
    prices.iloc[10, 2] = np.nan
    report = check_price_quality(prices)
    (split,) = report.suspected_splits
    assert (split.symbol, split.date, split.factor) == ("S1", prices.index[30], 2.0)
    assert report.missing_counts == {"S2": 1}
    assert not report.ok
    assert report.symbols == ["S1", "S2"]
    assert check_price_quality(make_prices(60, 3, seed=3)).ok


def test_a_date_twice_is_refused_naming_it_in_returns_and_alignment() -> None:
    from finwiz.data import align_prices, compute_returns

    prices = pd.DataFrame({"AAA": [10.0, 11.0, 12.0]}, index=pd.to_datetime(["2024-03-01", "2024-03-04", "2024-03-04"]))
    with pytest.raises(InvalidPortfolioError, match="date 2024-03-04 appears twice") as info:
        compute_returns(prices)
    assert info.value.field == "prices"
    with pytest.raises(InvalidPortfolioError, match=r"2024-03-04 twice"):
        align_prices(prices, ["AAA"])
