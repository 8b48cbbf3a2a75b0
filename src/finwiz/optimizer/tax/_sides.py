"""A taxable account's continuous solve: which side each asset trades on, and the lots' order.

No asset is both bought and sold in a taxable rebalance; that rule is the non-convex part (Moehle,
Kochenderfer, Boyd and Ang, 2021). The problem without it is a convex relaxation (a loss lot's
negative tax then pays for selling and buying back): its optimum is the lower bound the result
reports as ``continuous_objective`` (:attr:`Sided.bound`). Each asset the relaxation both buys and
sells is fixed to a side (:func:`fix_sides`), and the problem, convex once the sides are fixed, is
solved and rounded as usual.

The lots' order and the relaxation: ``_order``.

When the sides chosen leave no trades (the side-fixed model is infeasible, or its rounding finds no
whole-share trades), the sides are released before the request is refused
(:meth:`Sided.release`): the relaxation's own net side, then the other side, then exact mode's
mixed-integer program (when a MIP solver is installed). A refusal names the
user's settings, never the internal side groups (``tax_buys_only``, ``tax_sells_only``); under a
FIFO or HIFO lot policy whose order is what keeps a gain budget out of reach, it names the policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from finwiz.errors import ConstraintConflict, FinwizError, InfeasibleRebalanceError, SolverError
from finwiz.optimizer.describe._data import NOISE_VALUE, ProblemData
from finwiz.optimizer.describe._terms import TradeCountTerm
from finwiz.optimizer.discrete._exact import solve_exact
from finwiz.optimizer.discrete._rounding import polish, side_margin
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.solve._qp import NativeQP, NoLadderPointError, ladder_of
from finwiz.optimizer.solve._solve import ProvenInfeasibleError, SolveOutcome, native_qp, solve_terms
from finwiz.optimizer.tax._bound import flip_bounds
from finwiz.optimizer.tax._order import priced, priced_solve, relaxation, toward_region
from finwiz.optimizer.verify._diagnosis import explain_infeasibility

__all__ = ["SIDE_GROUPS", "Sided", "fix_sides", "group_conflict", "walls_of"]

_SIDE_FLIPS = 16
_CLOSE_CALL = 0.25  # a side margin within this fraction of the objective is tried both ways
_SIDE_PASSES = 2  # passes over the close calls
"""At most how many of the assets whose side the relaxation chose are tried on the other."""
SIDE_GROUPS = ("tax_buys_only", "tax_sells_only")
# More close calls left a gain by their bounds than this: no batch (a long, stalling climb, and
# bounds that tell little).
_AT_ONCE = 8

WholeShares = Callable[[Model, SolveOutcome], tuple[np.ndarray, SolveOutcome]]


def _both(data: ProblemData, outcome: SolveOutcome) -> np.ndarray:
    return np.asarray(
        (outcome.buy * data.ref_value >= NOISE_VALUE) & (outcome.sell * data.ref_value >= NOISE_VALUE), bool
    )


def group_conflict(data: ProblemData, sold: np.ndarray, bought: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The first ``identical`` group that selling ``sold`` shares (``>= 0``) sells at a loss (one
    member) while ``bought`` (a mask) buys another: ``(members, loss_sellers)``, else None. A wash
    sale in one rebalance, as selling and buying back one asset would be (issue 21)."""
    lots = data.lots
    if lots is None or not lots.settings.identical:
        return None
    taken, _, _ = lots.relief(sold)
    loss = (taken * lots.gain < 0).any(axis=1)
    for group in dict.fromkeys(lots.groups[loss].tolist()):
        members = lots.groups == group
        if (bought & members & ~loss).any():
            return members, loss & members
    return None


def _group_conflict(data: ProblemData, outcome: SolveOutcome) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`group_conflict` of a continuous ``outcome`` (trades under the noise left out)."""
    selling = outcome.sell * data.ref_value >= NOISE_VALUE
    sold = np.where(selling, outcome.sell * data.ref_value / data.prices, 0.0)
    return group_conflict(data, sold, outcome.buy * data.ref_value >= NOISE_VALUE)


def _with_sides(model: Model, sells: np.ndarray, buys: np.ndarray, clear: np.ndarray | None = None) -> Model:
    """``model`` with ``sells`` fixed to sell only and ``buys`` to buy only (their former side,
    and that of ``clear``, dropped)."""
    data = model.data
    keep = ~(sells | buys) if clear is None else ~clear
    blocked = dict(data.blocked)
    blocked["tax_sells_only"] = (blocked["tax_sells_only"] & keep) | sells
    blocked["tax_buys_only"] = (blocked["tax_buys_only"] & keep) | buys
    return model.with_data(data.evolve(blocked=blocked))


def _named(error: InfeasibleRebalanceError, data: ProblemData) -> InfeasibleRebalanceError:
    """``error`` with the internal side groups replaced by what they stand for: a taxable account
    trades each asset one way (it never sells and buys back in one rebalance)."""
    if not any(c.name in SIDE_GROUPS for c in error.conflicts):
        return error
    conflicts = []
    for c in error.conflicts:
        if c.name in SIDE_GROUPS:
            who = c.member or "an asset"
            c = ConstraintConflict(
                "one_side_per_asset",
                c.relaxation,
                f"a taxable account does not both sell and buy {who} in one rebalance; the other limits need it",
                member=c.member,
                dollars=c.dollars,
            )
        conflicts.append(c)
    budget = data.lots.budget if data.lots is not None else None
    head = error.summary
    if budget is not None:
        head = f"{head} (max_realized_gain={budget:g})"
    return InfeasibleRebalanceError(conflicts, head)


def _refusal(patterns: list[Model]) -> InfeasibleRebalanceError:
    """Why no side pattern tried leaves any trades: the first pattern's diagnosis that names only
    the user's limits (selling only, a floor on the position names the floor), else the first
    one's with the side groups named for what they stand for and the user's limits the other
    patterns name added (a floor that rules out selling, beside a budget that rules out buying:
    issue 21 named the budget and the one-side rule only)."""
    errors = [explain_infeasibility(m) for m in patterns]
    plain = next((e for e in errors if e.conflicts and not any(c.name in SIDE_GROUPS for c in e.conflicts)), None)
    if plain is not None:
        return plain
    named = _named(errors[0], patterns[0].data)
    conflicts = {c.name: c for c in named.conflicts}
    for e in errors[1:]:
        for c in e.conflicts:
            if c.name not in SIDE_GROUPS:
                conflicts.setdefault(c.name, c)
    if len(conflicts) == len(named.conflicts):
        return named
    return InfeasibleRebalanceError(list(conflicts.values()), named.summary)


def _bound(model: Model, first: SolveOutcome, solver: str, limit: float) -> float | None:
    """A lower bound of every answer's objective: the relaxation's optimum ``first`` -- unless the
    first solve is not of a relaxation: a trade count's re-weighted L1 can price a trade above its
    count (then the bound leaves the count out, a debias solve), and a FIFO or HIFO ladder's tax is
    not convex along its order (then the lots are taken in the tax order, which relaxes it). None
    when that solve fails."""
    lots = model.data.lots
    assert lots is not None
    counted = any(isinstance(t, TradeCountTerm) for t in model.terms)
    fixed_order = lots.settings.lot_policy != "optimal"
    if not counted and not fixed_order:
        return first.objective
    data = model.data.evolve(debias=model.data.debias or counted)
    relaxed = model.with_data(data.evolve(lots=lots.in_tax_order()) if fixed_order else data)
    try:
        return priced_solve(relaxed, solver, limit)[1].objective
    except (ProvenInfeasibleError, SolverError):
        return None


@dataclass(frozen=True)
class Sided:
    """A taxable account's continuous solve with every asset on one side."""

    model: Model  # sides fixed, lots in the order the solve's gain price makes cheapest
    outcome: SolveOutcome
    bound: float | None  # the relaxation's optimum: no trades that keep every limit do better
    relaxed: Model  # the relaxation (no side fixed by the engine but the identical groups')
    relaxed_outcome: SolveOutcome
    fixed: np.ndarray  # assets the engine put on a side
    solver: str
    limit: float
    mip_limit: float

    def _alternatives(self) -> Iterator[Model]:
        """Other side patterns for the fixed assets: the relaxation's own net side, then the
        other side of each, then every one selling only, then every one buying only."""
        data = self.model.data
        fixed = self.fixed
        if not fixed.any():
            return
        sells_now = data.blocked["tax_sells_only"] & fixed
        net_sell = fixed & (self.relaxed_outcome.sell >= self.relaxed_outcome.buy)
        seen = {sells_now.tobytes()}
        for sells in (net_sell, fixed & ~sells_now, fixed, np.zeros_like(fixed)):
            if sells.tobytes() in seen:
                continue
            seen.add(sells.tobytes())
            yield _with_sides(self.relaxed, sells, fixed & ~sells, np.zeros_like(fixed))

    def release(
        self, error: InfeasibleRebalanceError, whole_shares: WholeShares
    ) -> tuple[Model, np.ndarray, SolveOutcome]:
        """The rounding of the side-fixed model found no whole-share trades (``error``): the
        model, trades and continuous solve of the first other side pattern whose rounding does;
        none does: the error, naming the lot policy when the lots' order is the cause and the
        user's settings instead of the internal side groups."""
        for other in self._alternatives():
            try:
                model, outcome = priced_solve(other, self.solver, self.limit)
                model = priced(model, outcome)
                shares, outcome = whole_shares(model, outcome)
            except (FinwizError, ProvenInfeasibleError):
                continue
            return model, shares, outcome
        proven = False
        try:  # the mixed-integer program (a binary side per asset, the lots in their relief order)
            shares = self._exact()
        except InfeasibleRebalanceError:
            proven = True
        except FinwizError:  # no MIP solver installed, or it stopped without trades
            pass
        else:
            return self.relaxed, shares, self.relaxed_outcome
        cause = self._policy_is_the_cause(error, whole_shares) if proven else None
        raise cause or _named(error, self.model.data)

    def _exact(self) -> np.ndarray:
        """Whole-share trades from exact mode's program on the relaxation (raises as
        :func:`solve_exact` does): before a request is refused, trades the heuristic sides and the
        rounding missed (on 300 random small taxable requests, 6 of 29 refusals had some)."""
        data = self.relaxed.data
        backed = self.relaxed.with_data(data.evolve(backoff=max(data.backoff, 2e-6)))
        return polish(self.relaxed, solve_exact(backed, time_limit=self.mip_limit).shares)

    def _policy_is_the_cause(
        self, error: InfeasibleRebalanceError, whole_shares: WholeShares
    ) -> InfeasibleRebalanceError | None:
        """Under FIFO or HIFO with a gain budget: the error saying the policy's order is the
        cause, when relieving each asset's cheapest lots instead finds trades that keep every
        limit (the continuous solve relaxes the order, so only the rounding sees it)."""
        data = self.model.data
        lots = data.lots
        if lots is None or lots.settings.lot_policy == "optimal" or lots.budget is None:
            return None
        cheapest = self.model.with_data(data.evolve(lots=lots.in_tax_order()))
        try:
            whole_shares(cheapest, self.outcome)
        except (FinwizError, ProvenInfeasibleError):
            return None
        order = {"fifo": "FIFO (oldest first)", "hifo": "HIFO (highest cost first)"}[lots.settings.lot_policy]
        return InfeasibleRebalanceError(
            error.conflicts,
            f"max_realized_gain={lots.budget:g} cannot be met selling lots in {order} order; "
            f"lot_policy='optimal' can (it relieves each asset's cheapest lots first)",
        )


def fix_sides(model: Model, solver: str, limit: float, mip_limit: float = 10.0) -> Sided:
    """A taxable account: no asset is both bought and sold. The relaxation (that rule dropped) is
    solved first; its optimum is the bound. Each asset its optimum both buys and sells is fixed to
    the side its own quadratic model around that optimum prefers (``side_margin``: the tax its lots
    save against the tracking of not buying back), and the problem solved again, until no asset
    trades both ways (each round fixes at least one more); a round whose sides leave no trades
    tries the relaxation's net side, the other side, all selling, all buying. Then the close calls
    (a margin within ``_CLOSE_CALL`` of the objective, at most ``_SIDE_FLIPS``, closest first) are
    each tried on the other side and kept there where the objective improves, in up to
    ``_SIDE_PASSES`` passes. On four small zero-cost books with large losses against their exact
    optimum (every side enumerated) the net sign alone missed it in 3, the quadratic model in 2,
    with the flips in none; on 20 30-asset books against SCIP's optimum of an independent model,
    one pass reached it (within 0.1 %) in 85 %, two in every one (worst 0.024 %).

    An infeasible relaxation is diagnosed as usual (the user's limits); sides that no pattern
    tried can meet are refused naming the limits that need an asset both sold and bought.
    ``mip_limit``: exact mode's time limit, for the last try before a refusal (:meth:`Sided.release`)."""
    try:
        relaxed, first = relaxation(model, solver, limit)
    except ProvenInfeasibleError:
        raise explain_infeasibility(model) from None
    current, outcome, fixed, walls, margin = _fixed_sides(relaxed, first, solver, limit)
    if fixed.any():
        current, outcome = _close_calls(current, outcome, relaxed, fixed, margin, solver, limit)
        # the sides settled: the lots in the order their gain price makes cheapest
        current, outcome = priced_solve(current, solver, limit, outcome)
    bound = _bound(model, first, solver, limit)
    walled = _with_sides(relaxed, *walls, np.zeros_like(fixed))
    return Sided(current, outcome, bound, walled, first, fixed, solver, limit, mip_limit)


_Fixed = tuple[Model, SolveOutcome, np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]


def _fixed_sides(relaxed: Model, first: SolveOutcome, solver: str, limit: float) -> _Fixed:
    """From the relaxation: each asset traded both ways fixed to a side, round by round, and each
    identical group walled, until none is (see :func:`fix_sides`). Returns the model and solve, the
    assets fixed, the walls (no buys, no sales) and each fixed asset's side margin."""
    outcome, current = first, relaxed
    fixed = np.zeros(relaxed.data.n, bool)
    walls = (fixed.copy(), fixed.copy())  # the identical groups' sides: no buys, no sales
    margin = np.zeros(relaxed.data.n)  # how much cheaper each fixed asset looked selling only
    while True:
        data = current.data
        both = _both(data, outcome)
        if not both.any():
            group = _group_conflict(data, outcome)
            if group is None:
                return current, outcome, fixed, walls, margin
            current, outcome, walls = _wall_group(current, group, walls, solver, limit)
            continue
        margin = np.where(both, side_margin(current, outcome.buy, outcome.sell, both), margin)
        fixed_before = bool(fixed.any())
        fixed |= both
        chosen = both & (margin < 0)
        net = both & (outcome.sell >= outcome.buy)
        candidates = [chosen, net, both & ~chosen, both, np.zeros_like(both)]
        tried: set[bytes] = set()
        for sells in candidates:
            if sells.tobytes() in tried:
                continue
            tried.add(sells.tobytes())
            candidate = _with_sides(current, sells, both & ~sells)
            _start_sides(candidate, outcome, sells, first_round=not fixed_before)
            try:
                current, outcome = toward_region(candidate, solver, limit)
            except ProvenInfeasibleError:
                continue
            break
        else:
            raise _refusal([_with_sides(current, sells, both & ~sells) for sells in candidates]) from None


def _close_calls(
    current: Model,
    outcome: SolveOutcome,
    relaxed: Model,
    fixed: np.ndarray,
    margin: np.ndarray,
    solver: str,
    limit: float,
) -> tuple[Model, SolveOutcome]:
    """The fixed assets whose side margin is within ``_CLOSE_CALL`` of the objective, closest first,
    each tried on its other side and kept there where the objective improves (see
    :func:`fix_sides`); each pass first tries those its flip bounds leave a gain all at once.
    (On 8 small books no flip of a margin above a fifth of the objective helped.)"""
    tolerance = 1e-12 * max(1.0, abs(outcome.objective))
    close = np.flatnonzero(fixed & (np.abs(margin) <= _CLOSE_CALL * abs(outcome.objective)))
    close = close[np.argsort(np.abs(margin[close]))][:_SIDE_FLIPS]
    if not len(close):  # nothing to flip: no QP or bounds to build
        return current, outcome
    free = native_qp(relaxed, np.zeros(relaxed.data.n, dtype=np.int64))
    state = _Flips(current, outcome, tolerance, free, close)
    for _ in range(_SIDE_PASSES):  # again after a flip helped: the others' best side may change with it
        # A flip whose Lagrangian bound is no better than the answer cannot improve it: not solved.
        improved = state.at_once(solver, limit)
        for j, i in enumerate(close):
            if state.hopeful(j):
                improved = state.flip(np.array([i]), solver, limit) or improved
        if not improved:
            break
    return state.current, state.outcome


@dataclass
class _Flips:
    """The close calls' search: the answer so far and the flip bounds of its last solve."""

    current: Model
    outcome: SolveOutcome
    tolerance: float
    free: NativeQP | None  # the QP with no side fixed (the bounds' other sides)
    close: np.ndarray
    bounds: np.ndarray | None = None
    fresh: bool = False  # the bounds are of ``current``'s solve (its ladder's multipliers as then)

    def hopeful(self, j: int) -> bool:
        """Whether close call ``j``'s bound (of ``current``, its last computed) leaves it a gain."""
        return self.bounds is None or bool(self.bounds[j] < self.outcome.objective - self.tolerance)

    def _bound(self) -> None:  # right after ``current``'s solve, or at a pass's start
        self.bounds = None if self.free is None else flip_bounds(self.current, self.free, self.close)
        self.fresh = True

    def at_once(self, solver: str, limit: float) -> bool:
        """Every close call whose bound says it may gain, flipped in one solve (kept if better):
        most flips that gain gain together, one solve instead of one each."""
        if not self.fresh:
            self._bound()
        if self.bounds is None:
            return False
        some = self.close[self.bounds < self.outcome.objective - self.tolerance]
        return 1 < len(some) <= _AT_ONCE and self.flip(some, solver, limit, climb_only=True)

    def flip(self, assets: np.ndarray, solver: str, limit: float, climb_only: bool = False) -> bool:
        """``assets`` on their other side, solved; kept when the objective improves.
        ``climb_only``: where no climb over the lots finds a point, not kept (no reordered or
        per-lot solve: a try, not worth a slow solve)."""
        flip = np.zeros(self.current.data.n, bool)
        flip[assets] = True
        sells = self.current.data.blocked["tax_sells_only"]
        other = _with_sides(self.current, flip & ~sells, flip & sells, flip)
        self.fresh = False  # the ladder's multipliers are now this solve's
        try:
            if climb_only:
                tried = solve_terms(other, solver, time_limit=limit, per_lot=False)
            else:
                other, tried = toward_region(other, solver, limit)
        except (ProvenInfeasibleError, SolverError, NoLadderPointError):
            return False
        if tried.objective < self.outcome.objective - self.tolerance and _group_conflict(other.data, tried) is None:
            self.current, self.outcome = other, tried
            self._bound()
            return True
        return False


def _wall_group(
    model: Model,
    group: tuple[np.ndarray, np.ndarray],
    walls: tuple[np.ndarray, np.ndarray],
    solver: str,
    limit: float,
) -> tuple[Model, SolveOutcome, tuple[np.ndarray, np.ndarray]]:
    """An identical group both sold at a loss and bought: the better of no buys of any member and
    no sales of the members sold at a loss (each kept with the sides already fixed)."""
    members, losers = group
    none = np.zeros_like(members)
    best: tuple[Model, SolveOutcome, tuple[np.ndarray, np.ndarray]] | None = None
    patterns = [(members, none), (none, losers)]
    for (no_buys, no_sales), candidate in zip(patterns, walls_of(model, group), strict=True):
        try:
            candidate, outcome = toward_region(candidate, solver, limit)
        except ProvenInfeasibleError:
            continue
        if best is None or outcome.objective < best[1].objective:
            best = candidate, outcome, (walls[0] | no_buys, walls[1] | no_sales)
    if best is None:
        raise _refusal(list(walls_of(model, group)))
    return best


def walls_of(model: Model, group: tuple[np.ndarray, np.ndarray]) -> tuple[Model, Model]:
    """``model`` behind each wall of an identical group both sold at a loss and bought
    (``group``: its members and loss sellers, as :func:`group_conflict` gives): no buys of any
    member; no sales of the members sold at a loss."""
    members, losers = group
    none = np.zeros_like(members)
    return _with_sides(model, members, none, none), _with_sides(model, none, losers, none)


def _start_sides(model: Model, outcome: SolveOutcome, sells: np.ndarray, first_round: bool) -> None:
    """Start ``model``'s climb (sides just fixed from ``outcome``) with each asset now selling only
    on the lot that holds its net sale, each buying only on its first: the relaxation's segments
    (its sale before buying back) start one climb step farther. ``first_round``: the sides fixed
    from the relaxation, whose answer (both sides traded) is too far for ADMM's warm start (it
    stalled there): it starts from that answer with each newly fixed asset traded net on its side."""
    form = next((d.tax for d in model.described if d.tax is not None), None)
    if form is None:
        return
    ladder = ladder_of(form, model.data.n)
    if ladder.settled.segments is None:
        return
    both = _both(model.data, outcome)
    segments = np.where(both, 0, ladder.settled.segments)
    net = ladder.containing(np.maximum(outcome.sell - outcome.buy, 0.0))
    ladder.settled.segments = np.where(both & sells, net, segments)
    y = ladder.settled.y
    if first_round and y is not None and ladder.region is None:  # a region's rows start warm as they were
        traded = outcome.buy - outcome.sell
        buy = np.where(both, np.where(sells, 0.0, np.maximum(traded, 0.0)), outcome.buy)
        sell = np.where(both, np.where(sells, np.maximum(-traded, 0.0), 0.0), outcome.sell)
        ladder.settled.start = (buy, sell, outcome.cost, y)
