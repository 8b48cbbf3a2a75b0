"""Risk models and the risk of a weight vector.

``_model``: the risk model the optimizer takes (:class:`FactorModel`, a validated covariance);
``_metrics``: ex-ante volatility, tracking error, VaR/CVaR and risk contributions of weights under
a model (:func:`risk_metrics`), and a result's risk before and after trading (:func:`attach_risk`).
The figures are held by :class:`~finwiz.schemas.RiskMetrics`.
"""

from finwiz.risk._metrics import DEFAULT_CONFIDENCE, WeightsLike, attach_risk, required_observations, risk_metrics
from finwiz.risk._model import FactorModel, validate_covariance
from finwiz.schemas._risk import RiskMetrics

__all__ = [
    "DEFAULT_CONFIDENCE",
    "FactorModel",
    "RiskMetrics",
    "WeightsLike",
    "attach_risk",
    "required_observations",
    "risk_metrics",
    "validate_covariance",
]
