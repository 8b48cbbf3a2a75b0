"""Assemble one ``cvxpy.Problem`` from terms, check it per term, and cache it by structure.

A second solve with the same structure (same number of assets, sectors, factors and the same
kinds of terms) reuses the compiled problem and only sets Parameter values, so cvxpy skips
canonicalization (DPP).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from finwiz.errors import TermError
from finwiz.optimizer._data import ProblemData
from finwiz.optimizer._native import clear_native_cache, native_cache_info
from finwiz.optimizer._terms import Limit, Term, TermParts, Variables

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer._lazy import cvxpy as cp

__all__ = ["OBJECTIVE_SCALE", "AssembledProblem", "assemble", "cache_info", "clear_cache"]

_CACHE_SIZE = 32
OBJECTIVE_SCALE = 1e4
"""Objectives are multiplied by this before solving. Tracking objectives are tiny (squared weight
gaps ~1e-6), and an interior-point method stops on an absolute gap; scaling them up took the
weight error of a degenerate 2-asset case from 2e-6 to 1e-8 for three more iterations."""
_cache: OrderedDict[Hashable, AssembledProblem] = OrderedDict()
_cache_lock = threading.Lock()
_hits = 0
_misses = 0


@dataclass
class AssembledProblem:
    """A compiled problem, its variables, and the parts each term contributed (in term order)."""

    problem: cp.Problem
    variables: Variables
    parts: list[TermParts]
    limits: list[Limit]
    key: Hashable
    slacks: dict[str, cp.Variable] = field(default_factory=dict)
    elastic: list[tuple[str, cp.Constraint]] = field(default_factory=list)
    # Held from setting Parameter values to reading the solution, so two threads sharing a
    # cached problem never solve each other's data (re-entrant: ``solve`` takes it too).
    lock: threading.RLock = field(default_factory=threading.RLock)
    solves: int = 0

    def set_values(self, terms: Sequence[Term], data: ProblemData) -> None:
        """Give every Parameter its value for ``data`` (``terms`` in the order assembled)."""
        self.parts[-1].params["x0"].value = data.x0
        for term, parts in zip(terms, self.parts[:-1], strict=True):
            values = term.values(data)
            for key, param in parts.params.items():
                if key not in values:
                    continue
                value = values[key]
                try:
                    param.value = value
                except ValueError as exc:
                    raise TermError(term.name, f"bad value for parameter {key!r}: {exc}") from exc

    def limit_residuals(self) -> dict[str, float]:
        """Largest violation of each constraint group at the current solution (0 when satisfied)."""
        out: dict[str, float] = {}
        for limit in self.limits:
            lhs = np.asarray(limit.lhs.value, dtype=float)
            rhs = np.asarray(limit.rhs.value if isinstance(limit.rhs, cp.Expression) else limit.rhs, dtype=float)
            gap = lhs - rhs if limit.sense == "<=" else rhs - lhs
            worst = float(np.max(gap, initial=0.0)) if gap.size else 0.0
            out[limit.name] = max(out.get(limit.name, 0.0), worst, 0.0)
        return out


def _check(term: Term, parts: TermParts) -> None:
    if parts.objective is not None:
        if not (parts.objective.is_dcp(dpp=True) and parts.objective.is_convex()):
            raise TermError(term.name, "objective is not convex under DCP/DPP rules")
        if parts.objective.size != 1:
            raise TermError(term.name, "objective must be a scalar")
    if parts.cost is not None and not (parts.cost.is_dcp(dpp=True) and parts.cost.is_convex()):
        raise TermError(term.name, "cost is not convex under DCP/DPP rules")
    for limit in parts.limits:
        if isinstance(limit.rhs, cp.Expression) and limit.rhs.variables():
            raise TermError(term.name, f"limit {limit.name!r}: the right-hand side may hold Parameters only")
        constraint = limit.hard()
        if not constraint.is_dcp(dpp=True):
            raise TermError(term.name, f"limit {limit.name!r} is not convex under DCP/DPP rules")


def _build(terms: Sequence[Term], data: ProblemData, key: Hashable, diagnose: bool) -> AssembledProblem:
    v = Variables.create(data.n)
    x0 = cp.Parameter(data.n, name="x0")
    all_parts: list[TermParts] = []
    objective: list[cp.Expression] = []
    costs: list[cp.Expression] = []
    limits: list[Limit] = []
    for term in terms:
        try:
            parts = term.build(v, data, diagnose=diagnose)
        except TermError:
            raise
        except Exception as exc:  # a user's term failing to build is reported by name
            raise TermError(term.name, f"failed to build: {exc}") from exc
        _check(term, parts)
        all_parts.append(parts)
        if parts.objective is not None:
            objective.append(parts.objective)
        if parts.cost is not None:
            costs.append(parts.cost)
        limits.extend(parts.limits)
    constraints: list[cp.Constraint] = [v.weights == x0 + v.buy - v.sell]
    constraints.append(v.cost >= cp.sum(cp.hstack(costs)) if costs else v.cost == 0)
    slacks: dict[str, cp.Variable] = {}
    elastic: list[tuple[str, cp.Constraint]] = []
    if diagnose:
        for limit in limits:
            if limit.name not in slacks:
                slacks[limit.name] = cp.Variable(nonneg=True, name=f"slack_{limit.name}")
            elastic.append((limit.name, limit.elastic(slacks[limit.name])))
        constraints += [c for _, c in elastic]
        goal = cp.Minimize(cp.sum(cp.hstack(list(slacks.values()))) if slacks else cp.Constant(0.0))
    else:
        constraints += [limit.hard() for limit in limits]
        goal = cp.Minimize(OBJECTIVE_SCALE * cp.sum(cp.hstack(objective)) if objective else cp.Constant(0.0))
    problem = cp.Problem(goal, constraints)
    if not problem.is_dcp(dpp=True):  # per-term checks passed, so this is the assembler's own bug
        raise TermError("assembler", "assembled problem is not DPP")
    # x0 is the assembler's own Parameter; keep it in a pseudo-part at the end.
    core = TermParts(params={"x0": x0})
    return AssembledProblem(problem, v, [*all_parts, core], limits, key, slacks, elastic)


def assemble(terms: Sequence[Term], data: ProblemData, *, diagnose: bool = False) -> AssembledProblem:
    """Build (or fetch from the cache) the problem for ``terms`` and set its Parameters for ``data``.

    Terms whose :meth:`Term.applies` is False for ``data`` must already be filtered out.
    """
    global _hits, _misses
    key = (diagnose, data.structure(), tuple(term.structure(data) for term in terms))
    if diagnose:  # elastic rows follow the blocked sets of this request: built fresh, never cached
        return _build(terms, data, key, diagnose)
    with _cache_lock:
        assembled = _cache.get(key)
        if assembled is not None:
            _cache.move_to_end(key)
            _hits += 1
    if assembled is None:
        assembled = _build(terms, data, key, diagnose)
        with _cache_lock:
            _misses += 1
            _cache[key] = assembled
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return assembled


def clear_cache() -> None:
    """Drop every compiled problem and kept solver workspace (e.g. to measure a cold build)."""
    global _hits, _misses
    with _cache_lock:
        _cache.clear()
        _hits = _misses = 0
    clear_native_cache()


def cache_info() -> dict[str, int]:
    """Hits, misses and size of this process's caches: compiled cvxpy problems plus the native
    solver workspaces kept per structure (``_native``)."""
    native = native_cache_info()
    with _cache_lock:
        hits, misses, size = _hits + native["hits"], _misses + native["misses"], len(_cache) + native["size"]
    return {"hits": hits, "misses": misses, "size": size}
