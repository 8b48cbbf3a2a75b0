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

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from finwiz.errors import ConfigurationError, TermError
from finwiz.optimizer.describe._data import ProblemData
from finwiz.optimizer.describe._model import (
    COST,
    SCALARS,
    Affine,
    Description,
    ImpactForm,
    LimitGroup,
    TaxForm,
    column,
)
from finwiz.optimizer.describe._terms import Limit, Term, TermParts, Variables
from finwiz.optimizer.solve._user_keys import user_key
from finwiz.optimizer.solve._workspaces import clear_native_cache, native_cache_info

if TYPE_CHECKING:
    import cvxpy as cp
else:  # imported on first use (see _lazy)
    from finwiz.optimizer.solve._lazy import cvxpy as cp

__all__ = [
    "OBJECTIVE_SCALE",
    "AssembledProblem",
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


@dataclass(frozen=True)
class Stacked:
    """The descriptions of one request as a few arrays over ``z = [buy, sell, c, tau, nu, T, G]``."""

    n: int
    squares: Affine  # the objective has ||squares(z)||^2 ...
    linear: np.ndarray  # ... plus linear @ z (2n + SCALARS) ...
    const: float  # ... plus const
    count: float  # price of one trade (the discrete step's true count)
    rate: np.ndarray  # c >= rate'(buy + sell) + impact
    impact: tuple[ImpactForm, ...]
    groups: tuple[LimitGroup, ...]
    backoff: float
    tax: TaxForm | None = None  # the lots that define T and G (a taxable account)

    def objective(self, z: np.ndarray) -> float:
        """The (unscaled) objective at ``z``, the count not included."""
        rows = self.squares.evaluate(z)
        return float(rows @ rows + self.linear @ z + self.const)


def stack(descriptions: Sequence[Description], data: ProblemData, *, continuous: bool = True) -> Stacked:
    """Stack ``descriptions``; ``continuous`` includes the count's L1 surrogate (the continuous
    solve's), otherwise the objective is the true one less the count (priced separately)."""
    n, x0 = data.n, data.x0
    squares: list[Affine] = []
    linear = np.zeros(2 * n + SCALARS)
    rate = np.zeros(n)
    impact: list[ImpactForm] = []
    tax: TaxForm | None = None
    count = 0.0
    for d in descriptions:
        squares += [Affine.weights_diag(s, x0, base) for s, base in d.weight_squares]
        squares += [Affine.scalar(col, r, r * o) for col, r, o in d.scalar_squares]
        squares += d.low_rank
        for line in (d.linear, d.surrogate if continuous else None):
            if line is not None:
                np.add.at(linear, column(line.cols, n), line.vals)
        linear[2 * n] += d.cost_weight
        if d.cost is not None:
            rate = rate + d.cost
        if d.impact is not None:
            impact.append(d.impact)
        tax = d.tax if d.tax is not None else tax
        count += d.count
    return Stacked(
        n=n,
        squares=Affine.stack(squares),
        linear=linear,
        const=0.0,
        count=count,
        rate=rate,
        impact=tuple(impact),
        groups=tuple(g for d in descriptions for g in d.limits),
        backoff=data.backoff,
        tax=tax,
    )


_CONTEXT = frozenset({"count_weights", "debias", "blocked", "backoff", "options"})
"""The fields of ``ProblemData`` that change between the solves of one rebalance."""


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
    _kept: dict[str, Any] = field(default_factory=dict)

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
        groups: list[tuple[str, LimitGroup]] = self.kept("user_groups", lambda: user_limit_groups(self))
        return groups

    def stacked(self, continuous: bool = True) -> Stacked:
        """The descriptions stacked (see :func:`stack`)."""
        if continuous not in self._stacks:
            self._stacks[continuous] = stack(self.described, self.data, continuous=continuous)
        return self._stacks[continuous]

    def kept(self, name: str, make: Callable[[], Any]) -> Any:
        """What ``make`` builds from this model, built once (e.g. the segment-free part of a
        taxable account's QP, which its climb over lots rebuilds on every step otherwise)."""
        if name not in self._kept:
            self._kept[name] = make()
        return self._kept[name]

    def with_data(self, data: ProblemData) -> Model:
        """The same terms described for other data (a re-solve of the same rebalance). When only
        the per-rebalance context changed, the terms that do not read it keep their descriptions
        (and with them their linearised rows)."""
        changed = {f.name for f in dataclasses.fields(data) if getattr(data, f.name) is not getattr(self.data, f.name)}
        if not changed <= _CONTEXT:
            return Model.of(self.terms, data)
        descriptions = tuple(
            t.describe(data) if t.reads_context else d for t, d in zip(self.terms, self.descriptions, strict=True)
        )
        return Model(self.terms, data, descriptions)


def _signature(a: Affine) -> tuple[Any, ...]:
    return (a.m, hash(a.rows.tobytes()), hash(a.cols.tobytes()))


def _pieces(s: Stacked) -> list[tuple[str, Any]]:
    """What becomes a Parameter, in order: the same walk builds the problem and sets its values."""
    out: list[tuple[str, Any]] = [] if s.tax is None else [("tax", s.tax)]  # first: z is made of it
    out += [("squares", s.squares), ("linear", s.linear), ("rate", s.rate)]
    for form in s.impact:
        out.append(("impact", form))
    for g in s.groups:
        out.append(("limit", (g, *g.linear(s.backoff), bool(s.impact))))
    return out


def _structure(s: Stacked) -> tuple[Any, ...]:
    key: list[Any] = [s.n]
    for kind, piece in _pieces(s):
        if kind == "squares":
            key.append(_signature(piece))
        elif kind == "tax":  # constants of the problem (see _lots)
            key.append(hash(b"".join(a.tobytes() for a in (piece.owner, piece.cap, piece.tax, piece.gain))))
        elif kind == "impact":
            key.append((piece.kind, float(s.linear[2 * s.n])))  # the cost's price: a constant (see build)
        elif kind == "limit":
            g, rows, lower, upper, impact = piece
            key.append((g.name, _signature(rows), np.isfinite(lower).tobytes(), np.isfinite(upper).tobytes()))
            if impact:  # the rows' cost coefficients are constants of the problem (see build)
                key.append(hash(_cost_coefficients(rows).tobytes()))
    return tuple(key)


def _values(kind: str, piece: Any) -> list[np.ndarray]:
    """The Parameter values of one piece, in the order :func:`_expression` creates them."""
    if kind == "squares":
        return [piece.vals, piece.offset]
    if kind in ("linear", "rate"):
        return [piece]
    if kind == "tax":
        return []
    if kind == "impact":
        if piece.kind == "power":
            return [piece.first / _POWER_SCALE**1.5]
        return [piece.first, np.sqrt(piece.second)]
    _, rows, lower, upper, _ = piece
    return [rows.vals, rows.offset, lower[np.isfinite(lower)], upper[np.isfinite(upper)]]


def _cost_coefficients(rows: Affine) -> np.ndarray:
    """Each row's coefficient on the cost column ``c``."""
    on_cost = rows.cols == COST
    return np.bincount(rows.rows[on_cost], weights=rows.vals[on_cost], minlength=rows.m)


def _rows(a: Affine, z: cp.Expression, vals: cp.Parameter, offset: cp.Parameter) -> cp.Expression:
    """``A z + b`` from triplets: ``S @ (vals o z[cols]) + offset``."""
    n = (z.shape[0] - SCALARS) // 2
    if len(a.vals) == 0:
        return offset
    pattern = sparse.csr_matrix((np.ones(len(a.rows)), (a.rows, np.arange(len(a.rows)))), shape=(a.m, len(a.rows)))
    return pattern @ cp.multiply(vals, z[column(a.cols, n)]) + offset


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


def _limit_group(term: Term, limit: Limit, v: Variables, known: set[int], n: int, x0: np.ndarray) -> LimitGroup:
    """One user limit as linear rows over ``z`` (see :func:`user_limit_groups`)."""
    lhs = limit.lhs
    where = f"term {term.name!r}, limit {limit.name!r}"
    if not lhs.is_affine():
        raise ConfigurationError(
            f"{where}: only a limit affine in the trades (v.buy, v.sell, v.weights, v.cost) can be kept in whole "
            "shares; write a convex limit as affine rows, or as an objective penalty"
        )
    if any(id(var) not in known for var in lhs.variables()):
        raise ConfigurationError(
            f"{where}: the left side uses a variable of its own; a limit may use only v.buy, v.sell, v.weights "
            "and v.cost (they are what the whole-share step can evaluate)"
        )

    def at(buy: np.ndarray, sell: np.ndarray, cost: float) -> np.ndarray:
        v.buy.value, v.sell.value, v.cost.value = buy, sell, cost
        v.weights.value = x0 + buy - sell
        return np.atleast_1d(np.asarray(lhs.value, dtype=float)).ravel()

    zero = np.zeros(n)
    offset = at(zero, zero, 0.0)
    m = offset.size
    grads = lhs.grad
    d_w, d_b, d_s, d_c = (_jacobian(grads, var, m) for var in (v.weights, v.buy, v.sell, v.cost))
    coef = np.hstack([d_b + d_w, d_s - d_w, d_c])  # m x (2n + 1): buy, sell, c
    rows, cols = np.nonzero(coef)
    codes = np.where(cols < 2 * n, cols, COST)
    affine = Affine(rows.astype(np.int64), codes.astype(np.int64), coef[rows, cols], offset)
    # The rows must reproduce the expression: checked at a point that moves every variable.
    rng = np.random.default_rng(0)
    buy, sell, cost = rng.uniform(0, 0.01, n), rng.uniform(0, 0.01, n), 0.001
    expected = at(buy, sell, cost)
    got = affine.evaluate(np.concatenate([buy, sell, [cost, 0.0, 0.0, 0.0, 0.0]]))
    if not np.allclose(got, expected, rtol=1e-9, atol=1e-12):
        raise ConfigurationError(f"{where}: its left side could not be read as rows over the trades")
    rhs_value = limit.rhs.value if isinstance(limit.rhs, cp.Expression) else limit.rhs
    bound = np.broadcast_to(np.asarray(rhs_value, dtype=float).ravel(), (m,)).copy()
    if not np.isfinite(bound).all():
        raise ConfigurationError(f"{where}: the right side must be finite")
    infinite = np.full(m, np.inf)
    lower, upper = (-infinite, bound) if limit.sense == "<=" else (bound, infinite)
    members = (limit.name,) if m == 1 else tuple(f"{k}" for k in range(m))
    return LimitGroup(limit.name, affine, lower, upper, members, unit="")


def _jacobian(grads: dict[Any, Any], var: cp.Expression, m: int) -> np.ndarray:
    """``d expr / d var`` as an (expression size x variable size) array (zeros where absent)."""
    block = grads.get(var)
    if block is None:
        return np.zeros((m, var.size))
    dense = np.asarray(block.toarray() if sparse.issparse(block) else block, dtype=float)
    return np.asarray(dense.reshape(var.size, m).T)


def _gradient(grads: dict[Any, Any], var: cp.Expression) -> np.ndarray:
    block = grads.get(var)
    if block is None:
        return np.zeros(var.size)
    return np.asarray(block.toarray() if sparse.issparse(block) else block, dtype=float).ravel()


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
        if not limit.hard().is_dcp(dpp=True):
            raise TermError(term.name, f"limit {limit.name!r} is not convex under DCP/DPP rules")


_POWER_SCALE = 100.0
"""Trades enter the power cone in hundredths of V_ref (k u^1.5 = k / 1000 (100 u)^1.5): trades of
1e-4..1e-2 made Clarabel stop "almost solved" at any tolerance on the 431-asset set."""


def _impact(form: ImpactForm, traded: cp.Expression, params: list[cp.Parameter]) -> cp.Expression:
    first = cp.Parameter(len(form.first), nonneg=True, name=f"impact_{form.kind}")
    params.append(first)
    if form.kind == "power":
        return first @ cp.power(_POWER_SCALE * traded, 1.5)
    root = cp.Parameter(len(form.first), nonneg=True, name="impact_root_b")
    params.append(root)
    return first @ traded + cp.sum_squares(cp.multiply(root, traded))


@dataclass
class _Pieces:
    """The cvxpy pieces of one problem as they are built: objective and cost parts, limits."""

    z: cp.Expression
    traded: cp.Expression
    params: list[cp.Parameter] = field(default_factory=list)
    objective: list[cp.Expression] = field(default_factory=list)
    costs: list[cp.Expression] = field(default_factory=list)
    impacts: list[cp.Expression] = field(default_factory=list)
    limits: list[Limit] = field(default_factory=list)
    groups: dict[str, LimitGroup] = field(default_factory=dict)

    total: cp.Variable | None = None
    epigraph: list[cp.Constraint] = field(default_factory=list)

    def impact_total(self) -> cp.Variable:
        """One scalar ``m >= sum of the impact cones`` that the rows with a cost coefficient read.
        Written into every such row, the sum put a dense row of every asset's cone into each (a
        position cap on all 431 assets: a 431 x 431 dense block, 9 s per Clarabel solve and
        "optimal_inaccurate"); the rows only get stricter as ``m`` grows, so the epigraph is exact."""
        if self.total is None:
            self.total = cp.Variable(nonneg=True, name="impact_total")
            self.epigraph.append(self.total >= cp.sum(cp.hstack(self.impacts)))
        return self.total

    def new(self, size: int, name: str) -> cp.Parameter:
        param = cp.Parameter(size, name=name)
        self.params.append(param)
        return param


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
        for limit in pieces.limits:
            if limit.name not in slacks:
                slacks[limit.name] = cp.Variable(nonneg=True, name=f"slack_{limit.name}")
            elastic.append((limit.name, limit.elastic(slacks[limit.name])))
        constraints += [c for _, c in elastic]
        goal = cp.Minimize(cp.sum(cp.hstack(list(slacks.values()))) if slacks else cp.Constant(0.0))
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


def _lots(
    form: TaxForm, q: cp.Variable, sell: cp.Expression, n: int, constraints: list[cp.Constraint]
) -> tuple[cp.Expression, cp.Expression]:
    """The tax and gain columns from one variable per lot: ``0 <= q <= cap``, each asset's sell the
    sum of its lots' (``TaxForm``). The lots' numbers are constants, not Parameters (the objective's
    linear Parameter times a Parameter would not be DPP); they are part of the cache key, and the
    solves of one rebalance share them."""
    size = len(form.owner)
    of_asset = sparse.csr_matrix((np.ones(size), (form.owner, np.arange(size))), shape=(n, size))
    constraints += [q <= form.cap, of_asset @ q == sell]
    return form.tax @ q, form.gain @ q


def _add_piece(pieces: _Pieces, kind: str, piece: Any, stacked: Stacked) -> None:
    """One described piece as cvxpy, its arrays as Parameters (in :func:`_values` order).

    Market impact is convex in the trades. Written as ``c >= ... + impact`` with ``c`` priced
    linearly, Clarabel stops "almost solved" (its primal residual grows in the last iterations:
    measured on the 431-asset set, fit and power cone alike); so ``c`` holds the linear costs, and
    the impact enters the objective at the cost's price and every row with a cost coefficient
    where it keeps the row convex (elsewhere leaving it out only makes the row stricter).
    """
    n, z, new = stacked.n, pieces.z, pieces.new
    if kind == "squares":
        vals, off = new(len(piece.vals), "square_vals"), new(piece.m, "square_offset")
        if piece.m:
            pieces.objective.append(cp.sum_squares(_rows(piece, z, vals, off)))
    elif kind == "linear":
        pieces.objective.append(new(2 * n + SCALARS, "linear") @ z)
    elif kind == "rate":
        pieces.costs.append(new(n, "rate") @ pieces.traded)
    elif kind == "impact":
        pieces.impacts.append(_impact(piece, pieces.traded, pieces.params))
        # Priced like the cost: a constant (a Parameter times Parameters is not DPP).
        pieces.objective.append(float(stacked.linear[2 * n]) * pieces.impacts[-1])
    else:
        g, rows, lower, upper, has_impact = piece
        pieces.groups.setdefault(g.name, g)
        expr = _rows(rows, z, new(len(rows.vals), f"{g.name}_vals"), new(rows.m, f"{g.name}_offset"))
        low, up = np.flatnonzero(np.isfinite(lower)), np.flatnonzero(np.isfinite(upper))
        low_p, up_p = new(low.size, f"{g.name}_lower"), new(up.size, f"{g.name}_upper")
        low_expr = expr[low] if low.size < rows.m else expr
        up_expr = expr[up] if up.size < rows.m else expr
        alpha = _cost_coefficients(rows) if has_impact else np.zeros(rows.m)
        if alpha.any():
            # Constants, not Parameters: a Parameter times the impact (itself made of
            # Parameters) is not DPP. They are caps and floors, alike across a model's accounts.
            impact = pieces.impact_total()
            low_expr = low_expr - cp.multiply(np.maximum(-alpha, 0.0)[low], impact)
            up_expr = up_expr + cp.multiply(np.maximum(alpha, 0.0)[up], impact)
        if low.size:
            pieces.limits.append(Limit(g.name, low_expr, ">=", low_p))
        if up.size:
            pieces.limits.append(Limit(g.name, up_expr, "<=", up_p))


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
    """Drop every compiled problem and kept solver workspace (e.g. to measure a cold build)."""
    global _hits, _misses
    with _cache_lock:
        _cache.clear()
        _hits = _misses = 0
    clear_native_cache()


def cache_info() -> dict[str, int]:
    """Hits, misses and size of this process's caches: compiled cvxpy problems plus the native
    solver workspaces kept per structure (``_workspaces``)."""
    native = native_cache_info()
    with _cache_lock:
        hits, misses, size = _hits + native["hits"], _misses + native["misses"], len(_cache) + native["size"]
    return {"hits": hits, "misses": misses, "size": size}
