"""The finwiz exception tree.

Every error finwiz raises on purpose derives from :class:`FinwizError`::

    FinwizError
    ├── InvalidPortfolioError        bad input: names the symbol or field (also a ValueError)
    ├── ConfigurationError           bad settings, unknown provider or strategy (also a ValueError)
    ├── PriceDataError               one symbol could not be priced (names symbol and provider)
    │   └── InsufficientPriceDataError   several symbols could not be priced (names them all)
    ├── PolicyError                  a backtest policy raised or returned unusable trades (names it and the date)
    ├── ComplianceError              a custom constraint's check failed on the final trades (carries the result)
    └── OptimizationError            the optimizer could not return trades
        ├── TermError                a term is not DCP/DPP or failed to build (names the term)
        ├── InfeasibleRebalanceError no trades satisfy the constraints (names the conflict)
        └── SolverError              the solver failed or its answer did not check out

Third-party exceptions (pydantic, cvxpy, httpx, yfinance) are translated at the boundary with
``raise ... from exc`` so the original cause stays attached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ComplianceError",
    "ConfigurationError",
    "ConstraintConflict",
    "FinwizError",
    "InfeasibleRebalanceError",
    "InsufficientPriceDataError",
    "InvalidPortfolioError",
    "OptimizationError",
    "PolicyError",
    "PriceDataError",
    "SolverError",
    "TermError",
]


class FinwizError(Exception):
    """Root of every error finwiz raises on purpose."""


class InvalidPortfolioError(FinwizError, ValueError):
    """Input refused before any work is done; ``field`` and ``symbol`` say where."""

    def __init__(self, message: str, *, field: str | None = None, symbol: str | None = None):
        super().__init__(message)
        self.field = field
        self.symbol = symbol


class ConfigurationError(FinwizError, ValueError):
    """Settings, provider names or strategy names that finwiz cannot use."""


class PriceDataError(FinwizError):
    """A price for ``symbol`` could not be obtained (or was refused as wrong)."""

    def __init__(self, symbol: str, message: str, *, provider: str | None = None):
        where = f" from {provider}" if provider else ""
        super().__init__(f"{symbol}{where}: {message}")
        self.symbol = symbol
        self.provider = provider
        self.reason = message


class InsufficientPriceDataError(PriceDataError):
    """Some symbols could not be priced by any provider; ``failures`` maps each to its reason."""

    def __init__(self, failures: Mapping[str, str], *, provider: str | None = None):
        self.failures = dict(sorted(failures.items()))
        symbols = ", ".join(self.failures)
        detail = "; ".join(f"{s}: {why}" for s, why in self.failures.items())
        super().__init__(symbols, f"no usable price ({detail})", provider=provider)
        self.symbols = list(self.failures)


class PolicyError(FinwizError):
    """A backtest policy raised, or returned trades a book cannot make (names the policy and date)."""


class ComplianceError(FinwizError):
    """A custom constraint's ``validate()`` refused the final trades: they are not to be sent.

    ``result`` is the full result all the same (its ``constraint_outcomes`` say which checks failed
    and why, ``compliance`` has a failed row for each), for a caller who wants to look at or
    override the trades; ``failed`` names the failing checks, as the message does.
    """

    def __init__(self, result: Any, failed: Sequence[str], reasons: Sequence[str] = ()):
        self.result = result
        self.failed = list(failed)
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        super().__init__(f"custom check{'s' if len(self.failed) != 1 else ''} failed: {', '.join(self.failed)}{detail}")


class OptimizationError(FinwizError):
    """The optimizer could not return trades."""


class TermError(OptimizationError):
    """A term broke the rules of the assembled problem (not DCP, not DPP, bad data)."""

    def __init__(self, term: str, message: str):
        super().__init__(f"term {term!r}: {message}")
        self.term = term


class SolverError(OptimizationError):
    """The solver failed, or returned a point that does not satisfy the constraints."""

    def __init__(self, message: str, *, solver: str | None = None, status: str | None = None):
        super().__init__(message)
        self.solver = solver
        self.status = status


@dataclass(frozen=True)
class ConstraintConflict:
    """One constraint group of an infeasible request and how much it would have to give.

    ``relaxation`` is a fraction of the portfolio's value before trading (weight), ``dollars`` the
    same in currency; ``member`` is the asset or sector of the group that binds most.
    """

    name: str
    relaxation: float
    detail: str = ""
    member: str | None = None
    dollars: float | None = None

    def __str__(self) -> str:
        who = f"{self.name}[{self.member}]" if self.member else self.name
        money = f" = {self.dollars:,.0f} in currency" if self.dollars is not None else ""
        extra = f" ({self.detail})" if self.detail else ""
        return f"{who} must give {self.relaxation:.4g} of value{money}{extra}"


class InfeasibleRebalanceError(OptimizationError):
    """No trades satisfy the constraints; ``conflicts`` is the smallest conflicting set found."""

    def __init__(self, conflicts: Iterable[ConstraintConflict], message: str | None = None):
        self.conflicts: Sequence[ConstraintConflict] = tuple(conflicts)
        self.constraint_names = [c.name for c in self.conflicts]
        text = self.summary = message or "no trades satisfy the constraints"  # the message without the conflicts
        if self.conflicts:
            text += ": conflicting constraints: " + "; ".join(str(c) for c in self.conflicts)
        super().__init__(text)


class DuplicateAccountError(InvalidPortfolioError):
    """A household lists the same account id twice (ids compare case-insensitively)."""


class HouseholdConflictError(InvalidPortfolioError):
    """A household limit needs a trade that an account's restricted list forbids (``symbol`` and
    the message name both)."""


class InfeasibleHouseholdError(InfeasibleRebalanceError):
    """The household's accounts cannot reach its limits together (``conflicts`` as for one account)."""
