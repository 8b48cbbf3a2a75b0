"""Risk metrics: every figure against an independent numpy computation of its definition.

Volatility ``sqrt(P w'Sw)``, tracking error ``sqrt(P (w-t)'S(w-t))``, risk contributions
``P w o Sw / vol``, parametric VaR/CVaR from scipy's normal, historical VaR/CVaR as the smallest
and the mean of the ``floor(T (1 - a))`` largest losses of ``returns @ w`` (exact fractions).
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from finwiz import FactorModel, PortfolioAnalyzer, RiskMetrics, rebalance
from finwiz.data import compute_returns, sample_price_history
from finwiz.errors import FinwizError, InvalidPortfolioError
from finwiz.risk import attach_risk, required_observations, risk_metrics
from finwiz.schemas import PortfolioConfiguration
from finwiz.service._factory import RebalancingServiceFactory
from finwiz.settings import RebalancingSettings

P = 252
LEVELS = (0.9, 0.95, 0.99)


def close(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


def symbols_of(n: int) -> list[str]:
    return [f"S{i:02d}" for i in range(n)]


def dense_expected(sigma: np.ndarray, w: np.ndarray, t: np.ndarray | None = None) -> dict[str, Any]:
    """The definitions, on an explicit dense matrix."""
    variance = float(w @ sigma @ w)
    vol = math.sqrt(P * variance)
    out: dict[str, Any] = {
        "volatility": vol,
        "contributions": P * w * (sigma @ w) / vol if vol > 0 else np.zeros_like(w),
    }
    if t is not None:
        out["tracking_error"] = math.sqrt(P * float((w - t) @ sigma @ (w - t)))
    return out


def historical_expected(returns: np.ndarray, w: np.ndarray, level: float) -> tuple[float, float]:
    losses = np.sort(-(returns @ w))[::-1]
    k = math.floor(len(losses) * (1 - Fraction(str(level))))
    tail = losses[:k]
    return float(tail.min()), float(tail.mean())


def check_against(metrics: RiskMetrics, expected: dict[str, Any], symbols: list[str]) -> None:
    close(metrics.volatility, expected["volatility"])
    close([metrics.risk_contributions[s] for s in symbols], expected["contributions"])
    close(sum(metrics.risk_contributions.values()), metrics.volatility)
    if "tracking_error" in expected:
        assert metrics.tracking_error is not None
        close(metrics.tracking_error, expected["tracking_error"])
    if metrics.var_method == "parametric":
        levels = sorted(metrics.var)
        sd = expected["volatility"] / math.sqrt(P)
        close([metrics.var[a] for a in levels], [norm.ppf(a) * sd for a in levels])
        close([metrics.cvar[a] for a in levels], [norm.pdf(norm.ppf(a)) / (1 - a) * sd for a in levels])


@st.composite
def psd_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 12))
    rank = draw(st.integers(1, 14))  # rank < n gives a singular (still PSD) matrix
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = rng.normal(0, 0.01, (n, rank))
    sigma = a @ a.T
    w = rng.normal(0, 0.3, n) * (rng.random(n) < 0.8)  # shorts and zeros included
    t = rng.dirichlet(np.ones(n)) * draw(st.floats(0.5, 1.0))
    return sigma, w, t


@given(psd_problems())
@settings(max_examples=60)
def test_covariance_figures_match_their_definitions(problem: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    sigma, w, t = problem
    names = symbols_of(len(w))
    covariance = pd.DataFrame(sigma, index=names, columns=names)
    metrics = risk_metrics(
        dict(zip(names, w, strict=True)), target=pd.Series(t, index=names), covariance=covariance, confidence=LEVELS
    )
    assert metrics.var_method == "parametric"
    assert metrics.risk_model == "covariance"
    check_against(metrics, dense_expected(sigma, w, t), names)


@st.composite
def factor_problems(draw: st.DrawFn) -> tuple[FactorModel, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 30))
    k = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    names = symbols_of(n)
    factors = [f"f{j}" for j in range(k)]
    c = rng.normal(0, 0.01, (k, k))
    model = FactorModel(
        loadings=pd.DataFrame(rng.normal(0, 1, (n, k)), index=names, columns=factors),
        factor_covariance=pd.DataFrame(c @ c.T, index=factors, columns=factors),
        idiosyncratic_variance=pd.Series(rng.uniform(0, 4e-4, n) * (rng.random(n) < 0.9), index=names),
    )
    return model, rng.dirichlet(np.ones(n)) * 0.97, rng.dirichlet(np.ones(n)) * 0.98


@given(factor_problems())
@settings(max_examples=60)
def test_factor_model_figures_match_their_definitions(problem: tuple[FactorModel, np.ndarray, np.ndarray]) -> None:
    model, w, t = problem
    names = model.symbols
    b = model.loadings.to_numpy()
    sigma = b @ model.factor_covariance.to_numpy() @ b.T + np.diag(model.idiosyncratic_variance.to_numpy())
    sectors = {s: f"sec{i % 3}" for i, s in enumerate(names)}
    metrics = risk_metrics(
        pd.Series(w, index=names),
        target=dict(zip(names, t, strict=True)),
        factor_model=model,
        sectors=sectors,
        confidence=LEVELS,
    )
    assert metrics.risk_model == "factor_model"
    expected = dense_expected(sigma, w, t)
    check_against(metrics, expected, names)
    by_sector = pd.Series(expected["contributions"], index=names).groupby(pd.Series(sectors)).sum()
    close([metrics.sector_risk_contributions[s] for s in by_sector.index], by_sector.to_numpy())
    # An array in the model's order gives the same figures as labelled weights.
    again = risk_metrics(w, target=t, factor_model=model, confidence=LEVELS)
    close(again.volatility, metrics.volatility)
    close(again.tracking_error, metrics.tracking_error)


@given(
    st.integers(0, 2**32 - 1),
    st.integers(2, 8),
    st.integers(100, 400),
)
@settings(max_examples=40)
def test_historical_var_cvar_and_sample_covariance(seed: int, n: int, periods: int) -> None:
    rng = np.random.default_rng(seed)
    names = symbols_of(n)
    values = rng.standard_t(4, (periods, n)) * 0.01
    returns = pd.DataFrame(values, columns=names)
    w = rng.dirichlet(np.ones(n))
    metrics = risk_metrics(dict(zip(names, w, strict=True)), returns=returns, confidence=LEVELS, correlation=True)
    assert metrics.var_method == "historical"
    assert metrics.risk_model == "returns"
    assert metrics.observations == periods
    for level in LEVELS:
        var, cvar = historical_expected(values, w, level)
        close(metrics.var[level], var)
        close(metrics.cvar[level], cvar)
        assert metrics.cvar[level] >= metrics.var[level] - 1e-15
    check_against(metrics, dense_expected(np.cov(values, rowvar=False), w), names)
    assert metrics.correlation is not None
    close(metrics.correlation.to_numpy(), np.corrcoef(values, rowvar=False))


def test_returns_with_a_covariance_give_historical_tails_and_model_volatility() -> None:
    rng = np.random.default_rng(3)
    names = symbols_of(5)
    values = rng.normal(0, 0.01, (250, 5))
    sigma = np.diag(np.full(5, 1e-4))
    w = np.full(5, 0.2)
    metrics = risk_metrics(
        dict(zip(names, w, strict=True)),
        returns=pd.DataFrame(values, columns=names),
        covariance=pd.DataFrame(sigma, index=names, columns=names),
    )
    assert metrics.risk_model == "covariance"
    assert metrics.var_method == "historical"
    close(metrics.volatility, math.sqrt(P * w @ sigma @ w))
    close(metrics.var[0.99], historical_expected(values, w, 0.99)[0])


def test_factor_and_dense_agree_and_cash_and_target_only_symbols() -> None:
    rng = np.random.default_rng(1)
    names = symbols_of(6)
    a = rng.normal(0, 0.01, (6, 6))
    covariance = pd.DataFrame(a @ a.T, index=names, columns=names)
    weights = {"S00": 0.3, "S01": 0.2, "CASH": 0.5}  # cash is riskless
    target = {"S00": 0.2, "S05": 0.3}  # S05 only in the target: weight 0
    dense = risk_metrics(weights, target=target, covariance=covariance)
    factor = risk_metrics(weights, target=target, factor_model=FactorModel.from_covariance(covariance))
    close(factor.volatility, dense.volatility)
    close(factor.tracking_error, dense.tracking_error)
    assert set(dense.risk_contributions) == {"S00", "S01", "S05"}
    assert dense.risk_contributions["S05"] == 0.0
    w = np.array([0.3, 0.2, 0.0])
    t = np.array([0.2, 0.0, 0.3])
    sub = (a @ a.T)[np.ix_([0, 1, 5], [0, 1, 5])]
    check_against(dense, dense_expected(sub, w, t), ["S00", "S01", "S05"])


def test_all_cash_has_no_risk() -> None:
    names = symbols_of(3)
    covariance = pd.DataFrame(np.eye(3) * 1e-4, index=names, columns=names)
    metrics = risk_metrics(dict.fromkeys(names, 0.0), covariance=covariance)
    assert metrics.volatility == 0.0
    assert set(metrics.risk_contributions.values()) == {0.0}
    assert metrics.var == {0.95: 0.0, 0.99: 0.0}


def test_factor_model_is_never_made_dense() -> None:
    # 60,000 assets: a dense covariance would need 29 GB; the factor form takes milliseconds.
    n, k = 60_000, 3
    rng = np.random.default_rng(0)
    names = [f"A{i}" for i in range(n)]
    factors = ["f0", "f1", "f2"]
    loadings = rng.normal(0, 1, (n, k))
    idio = rng.uniform(1e-5, 1e-4, n)
    model = FactorModel(
        loadings=pd.DataFrame(loadings, index=names, columns=factors),
        factor_covariance=pd.DataFrame(np.eye(k) * 1e-4, index=factors, columns=factors),
        idiosyncratic_variance=pd.Series(idio, index=names),
    )
    w = np.full(n, 1.0 / n)
    metrics = risk_metrics(pd.Series(w, index=names), factor_model=model)
    exposure = loadings.T @ w
    close(metrics.volatility, math.sqrt(P * (1e-4 * exposure @ exposure + idio @ w**2)))


def test_analyzer_delegates() -> None:
    names = symbols_of(3)
    covariance = pd.DataFrame(np.diag([1e-4, 2e-4, 3e-4]), index=names, columns=names)
    weights = {"S00": 0.5, "S01": 0.25, "S02": 0.25}
    assert PortfolioAnalyzer().risk_metrics(weights, covariance=covariance, confidence=0.975) == risk_metrics(
        weights, covariance=covariance, confidence=0.975
    )


def test_required_observations() -> None:
    assert required_observations(0.95) == 20
    assert required_observations(0.99) == 100
    assert required_observations(0.9) == 10
    assert required_observations(0.975) == 40


# -- bad input -------------------------------------------------------------------------------

NAMES = symbols_of(3)
GOOD_COV = pd.DataFrame(np.eye(3) * 1e-4, index=NAMES, columns=NAMES)
GOOD_W = dict.fromkeys(NAMES, 0.3)


def _returns(rows: int, nan_at: int | None = None) -> pd.DataFrame:
    values = np.random.default_rng(0).normal(0, 0.01, (rows, 3))
    if nan_at is not None:
        values[nan_at, 0] = np.nan
    return pd.DataFrame(values, columns=NAMES)


BAD_INPUTS: list[tuple[str, dict[str, Any], str, str | None]] = [
    (
        "covariance not PSD",
        {"covariance": pd.DataFrame([[1e-4, 2e-4, 0], [2e-4, 1e-4, 0], [0, 0, 1e-4]], index=NAMES, columns=NAMES)},
        "covariance",
        "positive semidefinite",
    ),
    ("covariance missing a symbol", {"covariance": GOOD_COV.iloc[:2, :2]}, "covariance", "S02"),
    ("array of the wrong length", {"weights": np.array([0.5, 0.5]), "covariance": GOOD_COV}, "weights", "2 entries"),
    ("NaN weight", {"weights": {"S00": 0.3, "S01": float("nan")}, "covariance": GOOD_COV}, "weights", "S01"),
    ("infinite target", {"target": {"S00": float("inf")}, "covariance": GOOD_COV}, "target", "S00"),
    ("returns too short for 0.99", {"returns": _returns(99)}, "returns", "at least 100"),
    ("returns too short for 0.95", {"returns": _returns(19), "confidence": 0.95}, "returns", "at least 20"),
    ("returns with NaN", {"returns": _returns(200, nan_at=7)}, "returns", "S00"),
    ("returns missing a symbol", {"returns": _returns(200).drop(columns="S01")}, "returns", "S01"),
    ("confidence 1", {"covariance": GOOD_COV, "confidence": 1.0}, "confidence", "1.0"),
    ("confidence 0", {"covariance": GOOD_COV, "confidence": (0.95, 0.0)}, "confidence", "0.0"),
    ("confidence above 1", {"covariance": GOOD_COV, "confidence": 95}, "confidence", "95"),
    ("no confidence", {"covariance": GOOD_COV, "confidence": ()}, "confidence", None),
    ("periods per year 0", {"covariance": GOOD_COV, "periods_per_year": 0}, "periods_per_year", None),
    ("no risk model", {}, "covariance", "risk model"),
    (
        "both models",
        {"covariance": GOOD_COV, "factor_model": FactorModel.from_covariance(GOOD_COV)},
        "covariance",
        None,
    ),
    (
        "factor model missing a symbol",
        {"factor_model": FactorModel.from_covariance(GOOD_COV.iloc[1:, 1:])},
        "factor_model",
        "S00",
    ),
]


@pytest.mark.parametrize(("case", "options", "field", "text"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_field(
    case: str, options: dict[str, Any], field: str, text: str | None
) -> None:
    options = dict(options)
    weights = options.pop("weights", GOOD_W)
    with pytest.raises(InvalidPortfolioError) as caught:
        risk_metrics(weights, **options)
    assert isinstance(caught.value, FinwizError)
    assert caught.value.field == field
    assert field in str(caught.value)
    if text is not None:
        assert text in str(caught.value)


# -- on the result -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_returns() -> pd.DataFrame:
    return compute_returns(sample_price_history().iloc[-501:])


def test_analyze_attaches_risk_before_and_after(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, sample_returns: pd.DataFrame
) -> None:
    covariance = sample_returns.cov()
    result = rebalance(sample_config, sample_prices, covariance=covariance, analyze=True)
    assert result.risk_before is not None
    assert result.risk_after is not None
    names = list(result.post_trade_weights)
    sigma = covariance.loc[names, names].to_numpy()
    before = np.array([result.current_weights[s] for s in names])
    after = np.array([result.post_trade_weights[s] for s in names])
    target = np.array([result.target_weights[s] for s in names])
    check_against(result.risk_before, dense_expected(sigma, before, target), names)
    check_against(result.risk_after, dense_expected(sigma, after, target), names)
    assert result.risk_after.tracking_error < result.risk_before.tracking_error  # the rebalance moved to target
    frame = result.to_frame()
    close(frame.loc[names, "risk_contribution_before"].to_numpy(), dense_expected(sigma, before)["contributions"])
    close(frame.loc[names, "risk_contribution_after"].to_numpy(), dense_expected(sigma, after)["contributions"])
    assert frame.loc["CASH", "risk_contribution_after"] == 0.0
    assert set(result.risk_after.sector_risk_contributions) == set(sample_config.sectors.values())


def test_returns_option_gives_historical_tails(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, sample_returns: pd.DataFrame
) -> None:
    result = rebalance(sample_config, sample_prices, returns=sample_returns, analyze=True)
    assert result.risk_after is not None
    assert result.risk_after.var_method == "historical"
    names = list(result.post_trade_weights)
    after = np.array([result.post_trade_weights[s] for s in names])
    var, cvar = historical_expected(sample_returns[names].to_numpy(), after, 0.99)
    close(result.risk_after.var[0.99], var)
    close(result.risk_after.cvar[0.99], cvar)


def test_no_risk_without_analyze_or_without_a_model(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, sample_returns: pd.DataFrame
) -> None:
    plain = rebalance(sample_config, sample_prices, covariance=sample_returns.cov())
    assert plain.risk_before is None
    assert plain.risk_after is None
    assert "risk_contribution_after" not in plain.to_frame()
    analysed = rebalance(sample_config, sample_prices, analyze=True)
    assert analysed.analysis is not None
    assert analysed.risk_after is None


def test_a_result_with_risk_round_trips_through_pickle(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, sample_returns: pd.DataFrame
) -> None:
    result = rebalance(sample_config, sample_prices, returns=sample_returns, analyze=True)
    copy = pickle.loads(pickle.dumps(result))
    assert copy == result
    assert copy.risk_after == result.risk_after
    assert copy.risk_after is not None
    assert copy.risk_after.var == result.risk_after.var
    pd.testing.assert_frame_equal(copy.to_frame(), result.to_frame())


def test_risk_metrics_with_correlation_pickles_and_compares() -> None:
    metrics = risk_metrics(GOOD_W, covariance=GOOD_COV, correlation=True)
    copy = pickle.loads(pickle.dumps(metrics))
    assert copy == metrics
    plain = risk_metrics(GOOD_W, covariance=GOOD_COV, confidence=(0.95, 0.975))
    assert RiskMetrics.model_validate_json(plain.model_dump_json()) == plain  # float keys survive JSON
    assert copy != risk_metrics(GOOD_W, covariance=GOOD_COV)
    with pytest.raises(TypeError):
        hash(metrics)


def test_attach_risk_without_a_model_is_the_identity(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series
) -> None:
    result = rebalance(sample_config, sample_prices)
    assert attach_risk(result) is result


def test_bad_returns_fail_the_rebalance_with_the_field(
    sample_config: PortfolioConfiguration, sample_prices: pd.Series, sample_returns: pd.DataFrame
) -> None:
    with pytest.raises(InvalidPortfolioError, match="at least 100") as caught:
        rebalance(sample_config, sample_prices, returns=sample_returns.iloc[:50], analyze=True)
    assert caught.value.field == "returns"


async def test_orchestrator_attaches_risk_with_a_risk_model(
    sample_settings: RebalancingSettings, demo_config: PortfolioConfiguration
) -> None:
    history = compute_returns(sample_price_history().iloc[-300:])
    model = FactorModel.from_covariance(history.cov())
    orchestrator = RebalancingServiceFactory(sample_settings).create_orchestrator(write_reports=False)
    orchestrator.factor_model = model
    result = await orchestrator.rebalance_portfolio(demo_config, "acct-risk")
    assert result.risk_before is not None
    assert result.risk_after is not None
    names = list(result.post_trade_weights)
    sigma = history.cov().loc[names, names].to_numpy()
    after = np.array([result.post_trade_weights[s] for s in names])
    close(result.risk_after.volatility, math.sqrt(P * after @ sigma @ after))
    without = RebalancingServiceFactory(sample_settings).create_orchestrator(write_reports=False)
    assert (await without.rebalance_portfolio(demo_config)).risk_after is None


def test_schemas_and_risk_types_import_without_numpy_or_pandas() -> None:
    # RiskMetrics sits on every result; the CLI imports schemas at start-up and stays light.
    code = "import sys; from finwiz.schemas import RiskMetrics; print(sorted({'numpy', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
