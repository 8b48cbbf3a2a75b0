"""The cvxpy problem, derived from the terms' descriptions, plus any user term written in cvxpy.

The descriptions (``_model``) are stacked into a few arrays (:class:`Stacked`): the squared rows
and the linear part of the objective, the cost rates and impact, and every limit group's linear
rows. Each array becomes one ``cvxpy.Parameter`` (a row's triplets as ``S @ (vals o z[cols])``,
``S`` the constant 0/1 row pattern), so a problem of a known structure (the same sparsity
patterns, the same kinds of terms) is compiled once and re-solved with new values (DPP). A user's
term adds its own cvxpy objective, cost and limits; the assembler labels every constraint with
its group, checks each user term for DCP/DPP (raising an error that names it) and checks its
Parameter values against the Parameters it built.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from finwiz.errors import TermError
from finwiz.optimizer._kept import clear_kept
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._model import SCALARS, Description, LimitGroup
from finwiz.optimizer.describe._terms import Limit, Term, TermParts, Variables
from finwiz.optimizer.solve._pieces import _add_piece, _elastic, _lots, _Pieces, _pieces, _structure, _values
from finwiz.optimizer.solve._qp_build import QPBase
from finwiz.optimizer.solve._qp_hessian import clear_kept_p
from finwiz.optimizer.solve._stacked import Stacked, stack
from finwiz.optimizer.solve._user_keys import user_key
from finwiz.optimizer.solve._user_terms import _check, _gradient, _limit_group
from finwiz.optimizer.solve._workspaces import clear_native_cache, native_cache_info

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

__all__ = [
    "OBJECTIVE_SCALE",
    "AssembledProblem",
    "Kept",
    "Model",
    "Stacked",
    "assemble",
    "cache_info",
    "clear_cache",
    "stack",
]

_CACHE_SIZE = 32
OBJECTIVE_SCALE = 1e4
"""Objectives are multiplied by this before solving. Tracking objectives are tiny (squared weight
gaps ~1e-6), and an interior-point method stops on an absolute gap; scaling them up took the
weight error of a degenerate 2-asset case from 2e-6 to 1e-8 for three more iterations."""
_cache: OrderedDict[Hashable, AssembledProblem] = OrderedDict()
_cache_lock = threading.Lock()
_hits = 0
_misses = 0


_MISSING = object()
_CONTEXT = frozenset({"count_weights", "debias", "blocked", "backoff", "options"})
"""The fields of ``ProblemData`` that change between the solves of one rebalance."""


@dataclass(eq=False)
class Kept:
    """What a model derives once, in typed slots: the user terms' limits as rows, and a taxable
    account's segment-free QP (its climb over lots rebuilds on every step otherwise)."""

    user_groups: list[tuple[str, LimitGroup]] | None = None
    qp_base: QPBase | None = None
    last_qp_base: QPBase | None = None  # the base of the model this one re-solves (with_data)
    data_digest: str | None = None  # user terms without a declared structure are keyed by it (_user_keys)
    relaxation: tuple[Model, Any] | None = None  # a taxable account's and its SolveOutcome (tax/_order.relaxation)


@dataclass(frozen=True, eq=False)
class Model:
    """One request's problem: its terms and what each describes (None: a user's cvxpy term).

    Built once per solve; every consumer (native QP, cvxpy problem, whole-share step, compliance,
    diagnosis) reads it, so the terms are asked for their description once.
    """

    terms: tuple[Term, ...]
    data: ProblemData
    descriptions: tuple[Description | None, ...]
    _stacks: dict[bool, Stacked] = field(default_factory=dict)
    kept: Kept = field(default_factory=Kept)

    @classmethod
    def of(cls, terms: Sequence[Term], data: ProblemData) -> Model:
        """Describe ``terms`` (already filtered by :meth:`Term.applies`) for ``data``."""
        return cls(tuple(terms), data, tuple(t.describe(data) for t in terms))

    @property
    def described(self) -> list[Description]:
        """The descriptions of the terms that have one."""
        return [d for d in self.descriptions if d is not None]

    @property
    def user_terms(self) -> list[Term]:
        """The terms written in cvxpy."""
        return [t for t, d in zip(self.terms, self.descriptions, strict=True) if d is None]

    @property
    def is_qp(self) -> bool:
        """Whether the whole problem is a QP the native solvers take (no user term, no cone)."""
        return all(d is not None and d.impact is None for d in self.descriptions)

    @property
    def groups(self) -> list[LimitGroup]:
        """Every limit group, in term order: the described ones, then the user terms' own limits
        (:func:`user_limit_groups`), so the whole-share step keeps them as it keeps the others."""
        return [g for d in self.described for g in d.limits] + [g for _, g in self.user_groups]

    @property
    def checked_groups(self) -> list[tuple[str, LimitGroup]]:
        """Every limit group with the name of the term that states it (the compliance table's rows)."""
        described = [(t.name, g) for t, d in zip(self.terms, self.descriptions, strict=True) if d for g in d.limits]
        return described + self.user_groups

    @property
    def user_groups(self) -> list[tuple[str, LimitGroup]]:
        """The user terms' limits as rows over ``z`` (see :func:`user_limit_groups`), built once."""
        if not self.user_terms:
            return []
        if self.kept.user_groups is None:
            self.kept.user_groups = user_limit_groups(self)
        return self.kept.user_groups

    def stacked(self, continuous: bool = True) -> Stacked:
        """The descriptions stacked (see :func:`stack`)."""
        if continuous not in self._stacks:
            self._stacks[continuous] = stack(self.described, self.data, continuous=continuous)
        return self._stacks[continuous]

    def with_data(self, data: ProblemData) -> Model:
        """The same terms described for other data (a re-solve of the same rebalance). When only
        the per-rebalance context changed, the terms that do not read it keep their descriptions
        (and with them their linearised rows), and its native QP reuses this one's base."""
        last = vars(self.data)  # the fields (and nothing else: no cache is kept on the data)
        changed = {name for name, value in vars(data).items() if value is not last.get(name, _MISSING)}
        if not changed <= _CONTEXT:
            return Model.of(self.terms, data)
        descriptions = tuple(
            t.redescribe(data, self.data, d) if _reads(t, changed) else d
            for t, d in zip(self.terms, self.descriptions, strict=True)
        )
        return Model(
            self.terms, data, descriptions, kept=Kept(last_qp_base=self.kept.qp_base or self.kept.last_qp_base)
        )


def _reads(term: Term, changed: set[str]) -> bool:
    """Whether ``term``'s description reads one of the ``changed`` context fields."""
    fields = term.reads_context
    return bool(fields) if isinstance(fields, bool) else not fields.isdisjoint(changed)


@dataclass
class AssembledProblem:
    """A compiled problem, its variables, Parameters (in :func:`_pieces` order) and limits."""

    problem: cp.Problem
    variables: Variables
    params: list[cp.Parameter]
    user: list[tuple[Term, TermParts]]
    limits: list[Limit]
    key: Hashable
    objective: cp.Expression
    constraints: list[cp.Constraint]
    continuous: bool
    slacks: dict[str, cp.Variable] = field(default_factory=dict)
    elastic: list[tuple[str, cp.Constraint]] = field(default_factory=list)
    groups: dict[str, LimitGroup] = field(default_factory=dict)
    lots_sold: cp.Variable | None = None  # a taxable account's shares sold per lot (V_ref units)
    # Held from setting Parameter values to reading the solution, so two threads sharing a
    # cached problem never solve each other's data (re-entrant: ``solve`` takes it too).
    lock: threading.RLock = field(default_factory=threading.RLock)
    solves: int = 0

    def set_values(self, model: Model, stacked: Stacked) -> None:
        """Give every Parameter its value for ``model``'s request."""
        values = [v for kind, piece in _pieces(stacked) for v in _values(kind, piece)]
        values.append(model.data.x0)
        for param, value in zip(self.params, values, strict=True):
            param.value = value
        # The terms of this request (a cached problem's were those of the request that built it).
        for term, (_, parts) in zip(model.user_terms, self.user, strict=True):
            given = term.values(model.data)
            missing = sorted(set(parts.params) - set(given))
            unknown = sorted(set(given) - set(parts.params))
            if missing or unknown:
                what = f"no value for parameter {missing[0]!r}" if missing else f"unknown parameter {unknown[0]!r}"
                raise TermError(term.name, f"values(): {what} (parameters: {sorted(parts.params)})")
            for key, param in parts.params.items():
                try:
                    param.value = given[key]
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

    def place(self, buy: np.ndarray, sell: np.ndarray, cost: float, x0: np.ndarray) -> None:
        """Set the variables to given trades (to evaluate the objective or a gradient there)."""
        v = self.variables
        v.buy.value, v.sell.value, v.cost.value = buy, sell, cost
        v.weights.value = x0 + buy - sell

    def user_gradient(self, n: int) -> np.ndarray:
        """Gradient over ``z`` of the user terms' objectives at the placed point (unscaled)."""
        g = np.zeros(2 * n + SCALARS)
        v = self.variables
        for _, parts in self.user:
            if parts.objective is None:
                continue
            grads = parts.objective.grad
            d_w = _gradient(grads, v.weights)
            g[:n] += _gradient(grads, v.buy) + d_w
            g[n : 2 * n] += _gradient(grads, v.sell) - d_w
            g[2 * n] += float(_gradient(grads, v.cost).sum())
        return g

    def user_objective(self) -> float:
        """The user terms' objectives at the placed point (unscaled)."""
        return float(sum(float(p.objective.value) for _, p in self.user if p.objective is not None))


def user_gradient_at(model: Model, buy: np.ndarray, sell: np.ndarray, cost: float) -> np.ndarray | None:
    """Gradient over ``z`` of the user terms' objectives at the trades ``(buy, sell, cost)``
    (fractions of V_ref; unscaled), or None without a user term with an objective: what the
    whole-share step prices a user's objective by."""
    if not model.user_terms:
        return None
    assembled = assemble(model, continuous=False)
    with assembled.lock:
        assembled.set_values(model, model.stacked(continuous=False))
        assembled.place(buy, sell, cost, model.data.x0)
        return assembled.user_gradient(model.data.n)


def user_limit_groups(model: Model) -> list[tuple[str, LimitGroup]]:
    """Each user term's limits as a :class:`LimitGroup` over ``z`` (term name, group): a limit is
    a hard limit everywhere the built-in ones are (the whole-share step, the compliance table, the
    diagnosis), so its left side must be affine in ``v.buy``, ``v.sell``, ``v.weights`` and
    ``v.cost``. Its rows are exact: the coefficients are the expression's gradient (constant where
    it is affine) at this request's Parameter values, the offset its value at no trade, checked
    against the expression at a second point. A limit of another form cannot be kept in whole
    shares and is refused by name (``ConfigurationError``), never left to a silent breach."""
    data = model.data
    n, x0 = data.n, data.x0
    assembled = assemble(model, continuous=False)
    out: list[tuple[str, LimitGroup]] = []
    with assembled.lock:
        assembled.set_values(model, model.stacked(continuous=False))
        v = assembled.variables
        known = {id(v.buy), id(v.sell), id(v.weights), id(v.cost)}
        for term, parts in assembled.user:
            for limit in parts.limits:
                out.append((term.name, _limit_group(term, limit, v, known, n, x0)))
        # Leave the shared variables as a solve would find them (values are only ever read after one).
        assembled.place(np.zeros(n), np.zeros(n), 0.0, x0)
    return out


def build(
    model: Model,
    stacked: Stacked,
    *,
    diagnose: bool = False,
    variables: Variables | None = None,
    key: Hashable = None,
    continuous: bool = True,
) -> AssembledProblem:
    """Build the problem of ``stacked`` plus the user terms among ``terms`` (those without a
    description); ``variables`` may be expressions (exact mode's integer lots)."""
    n = model.data.n
    v = variables if variables is not None else Variables.create(n)
    traded = v.buy + v.sell
    lots: list[cp.Constraint] = []
    sold, tax, gain = None, cp.Constant(0.0), cp.Constant(0.0)
    if stacked.tax is not None:
        sold = cp.Variable(len(stacked.tax.owner), nonneg=True, name="lots_sold")
        tax, gain = _lots(stacked.tax, sold, v.sell, n, lots)
    scalars = [v.cost, cp.sum(traded), cp.sum(v.buy - v.sell), tax, gain]
    z = cp.hstack([v.buy, v.sell, *(cp.reshape(x, (1,), order="F") for x in scalars)])
    pieces = _Pieces(z, traded)
    for kind, piece in _pieces(stacked):
        if kind != "tax":
            _add_piece(pieces, kind, piece, stacked)
    x0 = pieces.new(n, "x0")
    user = _add_user_terms(pieces, model, v, diagnose)
    constraints: list[cp.Constraint] = [v.weights == x0 + v.buy - v.sell] if variables is None else []
    constraints += lots
    constraints += pieces.epigraph
    constraints.append(v.cost >= cp.sum(cp.hstack(pieces.costs)) if pieces.costs else v.cost == 0)
    slacks: dict[str, cp.Variable] = {}
    elastic: list[tuple[str, cp.Constraint]] = []
    goal_expr = OBJECTIVE_SCALE * cp.sum(cp.hstack(pieces.objective)) if pieces.objective else cp.Constant(0.0)
    if diagnose:
        goal = _elastic(pieces.limits, slacks, elastic)
        constraints += [c for _, c in elastic]
    else:
        constraints += [limit.hard() for limit in pieces.limits]
        goal = cp.Minimize(goal_expr)
    problem = cp.Problem(goal, constraints)
    if variables is None and not problem.is_dcp(dpp=True):  # user terms passed their own checks
        raise TermError("assembler", "assembled problem is not DPP")
    return AssembledProblem(
        problem,
        v,
        pieces.params,
        user,
        pieces.limits,
        key,
        goal_expr,
        constraints,
        continuous,
        slacks,
        elastic,
        pieces.groups,
        sold,
    )


def _add_user_terms(pieces: _Pieces, model: Model, v: Variables, diagnose: bool) -> list[tuple[Term, TermParts]]:
    """The user terms' own cvxpy parts, each checked for DCP/DPP and blamed by name."""
    user: list[tuple[Term, TermParts]] = []
    for term in model.user_terms:
        try:
            parts = term.build(v, model.data, diagnose=diagnose)
        except TermError:
            raise
        except Exception as exc:  # a user's term failing to build is reported by name
            raise TermError(term.name, f"failed to build: {exc}") from exc
        _check(term, parts)
        user.append((term, parts))
        if parts.objective is not None:
            pieces.objective.append(parts.objective)
        if parts.cost is not None:
            pieces.costs.append(parts.cost)
        pieces.limits.extend(parts.limits)
    return user


def assemble(model: Model, *, diagnose: bool = False, continuous: bool = True) -> AssembledProblem:
    """Build (or fetch from the cache) the cvxpy problem of ``model``; callers set its values
    (:meth:`AssembledProblem.set_values`) and solve it under its lock."""
    global _hits, _misses
    stacked = model.stacked(continuous)
    user_keys = tuple(user_key(t, model) for t in model.user_terms)
    key = (diagnose, continuous, _structure(stacked), user_keys)
    if diagnose:  # elastic rows follow the blocked sets of this request: built fresh, never cached
        assembled = build(model, stacked, diagnose=True, key=key, continuous=continuous)
    else:
        with _cache_lock:
            cached = _cache.get(key)
            if cached is not None:
                _cache.move_to_end(key)
                _hits += 1
        if cached is None:
            cached = build(model, stacked, key=key, continuous=continuous)
            with _cache_lock:
                _misses += 1
                _cache[key] = cached
                while len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
        assembled = cached
    return assembled


def clear_cache() -> None:
    """Drop every compiled problem, kept solver workspace and kept build (e.g. to measure a cold build)."""
    global _hits, _misses
    with _cache_lock:
        _cache.clear()
        _hits = _misses = 0
    clear_native_cache()
    clear_kept()
    clear_kept_p()


def cache_info() -> dict[str, int]:
    """Hits, misses and size of this process's caches: compiled cvxpy problems plus the native
    solver workspaces kept per structure (``_workspaces``)."""
    native = native_cache_info()
    with _cache_lock:
        hits, misses, size = _hits + native["hits"], _misses + native["misses"], len(_cache) + native["size"]
    return {"hits": hits, "misses": misses, "size": size}
