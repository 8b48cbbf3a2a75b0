import finwiz

DESIGN_NAMES = {
    "Holding",
    "PriceData",
    "PortfolioConfiguration",
    "RebalancingMethod",
    "TradeAction",
    "RebalancingNeed",
    "PortfolioAnalysis",
    "TradeRecommendation",
    "OptimizedTrades",
    "RebalancingResult",
    "PortfolioAnalyzer",
    "RebalancingEngine",
    "OptimizationStrategy",
    "OptimizationConstraint",
    "SectorConcentrationConstraint",
    "ESGConstraint",
    "RebalancingSettings",
    "rebalance",
    "FinwizError",
    "PriceDataError",
    "InsufficientPriceDataError",
    "InvalidPortfolioError",
    "InfeasibleRebalanceError",
    "SolverError",
    "ComplianceError",  # issue 21: a failed custom check, carrying the result
}


def test_all_is_sorted_and_importable() -> None:
    names = [n for n in finwiz.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in finwiz.__all__:
        assert hasattr(finwiz, name), name


def test_design_names_are_public() -> None:
    assert set(finwiz.__all__) >= DESIGN_NAMES


def test_errors_share_one_root() -> None:
    for name in finwiz.__all__:
        obj = getattr(finwiz, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, finwiz.FinwizError), name


def test_risk_metrics_is_public_and_sits_on_the_result() -> None:
    assert "RiskMetrics" in finwiz.__all__
    fields = finwiz.RebalancingResult.model_fields
    for name in ("risk_before", "risk_after"):
        assert fields[name].annotation == finwiz.RiskMetrics | None
        assert fields[name].default is None


def test_compliance_error_is_a_finwiz_error_and_not_an_optimization_error() -> None:
    # Its trades exist (``.result``): callers that catch OptimizationError ("could not return
    # trades") must not mistake it for an infeasible or failed solve.
    assert issubclass(finwiz.ComplianceError, finwiz.FinwizError)
    assert not issubclass(finwiz.ComplianceError, finwiz.OptimizationError)
