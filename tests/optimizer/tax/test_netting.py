"""The netting rule (issue 24 item 1): the one function (``optimizer/tax/_netting``), its regions
as the optimizer states them, the rebalance's tax in ``TaxSummary``, and the optimum against an
independent MIQP with the rule.

Every check is independent of finwiz's own arithmetic: the IRS worksheet and a one-formula
statement of the rule (``reference.worksheet``, ``reference.netting_tax``), lots relieved oldest
first by a plain loop, and the reference MIQP (``reference.reference_optimum``) whose tax is the
formula with a binary per kink.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finwiz import Holding, PortfolioConfiguration, TaxLot, TaxSettings
from finwiz.optimizer import rebalance
from finwiz.optimizer.tax._netting import regions, year_tax
from finwiz.optimizer.tax._tax import lot_book
from tests.optimizer.tax.reference import (
    TaxInstance,
    evaluate,
    netting_tax,
    random_instance,
    reference_optimum,
    trades_of,
    worksheet,
)

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]  # SCIP's own, through cvxpy

ST, LT = 0.37, 0.20
AS_OF = date(2024, 6, 28)
cents = st.integers(-3_000_000, 3_000_000).map(lambda c: c / 100)
rates = st.integers(0, 60).map(lambda p: p / 100)
limits = st.sampled_from([0.0, 3000.0, 1500.0])


def _cent(x: Decimal) -> float:
    return float(x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@settings(max_examples=400, deadline=None)
@given(cents, cents, rates, rates, rates, limits)
def test_the_one_formula_of_the_reference_is_the_worksheet(
    s: float, g: float, rs: float, rl: float, ro: float, limit: float
) -> None:
    d = [Decimal(repr(x)) for x in (s, g, rs, rl, ro, limit)]
    expected = _cent(worksheet(*d, Decimal(0), Decimal(0))[0])
    assert netting_tax(s, g, rs, rl, ro, limit) == pytest.approx(expected, abs=0.0051)


@settings(max_examples=400, deadline=None)
@given(cents, cents, rates, rates, rates, limits)
def test_each_region_the_optimizer_states_is_the_rule_inside_it(
    s: float, g: float, rs: float, rl: float, ro: float, limit: float
) -> None:
    """The optimizer's pieces: every point lies in a region, and in each region holding it the
    region's linear tax is ``year_tax`` to the cent."""
    exact = year_tax(s, g, short_rate=rs, long_rate=rl, ordinary_rate=ro, ordinary_loss_limit=limit).tax
    holding = [r for r in regions(rs, rl, ro, limit) if r.holds(s, g)]
    assert holding
    for region in holding:
        assert region.tax(s, g) == pytest.approx(exact, abs=0.0051), region.name


def test_the_rule_is_not_convex_so_no_single_max_of_pieces_states_it() -> None:
    """Why the optimizer solves region by region: with a 10,000 short-term gain, a long-term loss
    of 5,000 saves 37 % and a long-term gain of 5,000 costs 20 % (a concave kink at g = 0)."""
    f = [year_tax(10_000.0, g, short_rate=ST, long_rate=LT, ordinary_rate=ST).tax for g in (-5_000.0, 0.0, 5_000.0)]
    assert f == [1_850.0, 3_700.0, 4_700.0]
    assert f[1] > (f[0] + f[2]) / 2  # above the chord: not convex


# -- the rebalance's tax, lot by lot ----------------------------------------------------------------
lot_rows = st.lists(
    st.tuples(
        st.integers(1, 40), st.integers(500, 30_000), st.integers(31, 900)
    ),  # shares, basis cents, age (no wash sale)
    min_size=1,
    max_size=4,
)


def _config(lots: list[list[tuple[int, int, int]]], tax: dict[str, Any]) -> PortfolioConfiguration:
    holdings = [
        Holding(
            symbol=f"A{i}",
            shares=float(sum(q for q, _, _ in rows)),
            lots=[TaxLot(shares=q, cost_basis=c / 100, acquired=AS_OF - timedelta(days=age)) for q, c, age in rows],
        )
        for i, rows in enumerate(lots)
    ]
    return PortfolioConfiguration(
        holdings=holdings,
        target_weights={f"A{i}": 0.9 / len(lots) for i in range(len(lots))},
        cash=1_000.0,
        tax=TaxSettings(as_of=AS_OF, short_term_rate=ST, long_term_rate=LT, lot_policy="fifo", **tax),
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(lot_rows, min_size=1, max_size=3),
    st.lists(st.integers(0, 200), min_size=3, max_size=3),
    st.lists(st.integers(5_000, 20_000), min_size=3, max_size=3),
    cents,
    cents,
    st.integers(0, 1_000_000).map(lambda c: c / 100),
    limits,
)
def test_the_tax_of_any_lot_sales_is_the_worksheet_to_the_cent(
    lots: list[list[tuple[int, int, int]]],
    sold: list[int],
    price_cents: list[int],
    short_ytd: float,
    long_ytd: float,
    carry: float,
    limit: float,
) -> None:
    """``TaxSummary.estimated_tax`` (the year's tax with the sales minus without) and the region
    pieces the objective uses, against the worksheet on gains relieved oldest first by hand."""
    n = len(lots)
    tax = {"realized_short_ytd": short_ytd, "realized_long_ytd": long_ytd, "loss_carryforward": carry}
    config = _config(lots, {**tax, "ordinary_loss_limit": limit})
    prices = np.array(price_cents[:n]) / 100
    sells = np.minimum(np.array(sold[:n], float), [sum(q for q, _, _ in rows) for rows in lots])
    nets = {False: Decimal(0), True: Decimal(0)}  # short, long: gains relieved oldest first
    for i, rows in enumerate(lots):
        left = int(sells[i])
        for q, c, age in sorted(rows, key=lambda r: -r[2]):
            take = min(left, q)
            left -= take
            nets[age > 365] += take * (Decimal(price_cents[i]) - c) / 100
    d = [Decimal(repr(x)) for x in (ST, LT, ST, limit)]
    ytd = Decimal(repr(short_ytd)), Decimal(repr(long_ytd))
    with_ = worksheet(ytd[0] + nets[False], ytd[1] + nets[True], *d, Decimal(0), Decimal(repr(carry)))[0]
    without = worksheet(*ytd, *d, Decimal(0), Decimal(repr(carry)))[0]
    book = lot_book(config, prices)
    assert book is not None
    summary = book.summary(sells)
    assert summary.year_tax == _cent(with_)
    assert round(summary.estimated_tax, 2) == round(_cent(with_) - _cent(without), 2)
    assert book.exact_tax(sells) == pytest.approx(summary.estimated_tax, abs=1e-9)
    # The objective's pieces: the region holding the year's nets prices the sales to the cent.
    s0, g0 = book.year_start()
    s, g = s0 + float(nets[False]), g0 + float(nets[True])
    here = [r for r in book.regions() if r.region is not None and r.region.holds(s, g, 1e-9)]
    assert here, "the region of the year's nets was pruned"
    for region in here:
        assert region.region is not None
        linear = (
            float(region.relief(sells)[1].sum())
            + region.region.tax(s0, g0)
            - year_tax(s0, g0, short_rate=ST, long_rate=LT, ordinary_rate=ST, ordinary_loss_limit=limit).tax
        )
        assert linear == pytest.approx(summary.estimated_tax, abs=0.011)


def test_readme_worked_example() -> None:
    """The README's example: 6,000 short-term gains to date and a 2,000 long-term carry-forward;
    the rebalance harvests 15,000 of long-term losses."""
    config = _config([[(100, 25_000, 800)]], {"realized_short_ytd": 6_000.0, "loss_carryforward": 2_000.0})
    book = lot_book(config, np.array([100.0]))
    assert book is not None
    summary = book.summary(np.array([100.0]))
    assert summary.long_term_losses == 15_000.0
    assert summary.year_tax == -1_110.0  # 11,000 net loss: 3,000 against ordinary income at 37 %
    assert summary.estimated_tax == -1_110.0 - 1_480.0  # without it: 4,000 short-term (after the carry) at 37 %


# -- the optimum against an independent MIQP --------------------------------------------------------
NETTING = {
    "harvest_to_the_limit": {"realized_short_ytd": 2_000.0},
    "gains_to_date": {"realized_short_ytd": 8_000.0, "realized_long_ytd": 3_000.0},
    "carry_forward": {"realized_long_ytd": 1_000.0, "loss_carryforward": 6_000.0},
    "short_carry_over": {"realized_short_ytd": -4_000.0, "realized_long_ytd": 5_000.0},
}


@functools.cache
def _netting_case(kind: str, seed: int) -> tuple[TaxInstance, Any, Any]:
    inst = random_instance(seed, assets=(5, 8), lots=(2, 4), tax_weight=(1.0, 0.1)[seed % 2])
    inst = inst.with_(tax_model="netting", **NETTING[kind])
    return inst, rebalance(inst.config(), inst.price_map()), reference_optimum(inst)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", list(NETTING))
def test_the_optimum_is_within_half_a_percent_of_an_independent_miqp(kind: str, seed: int) -> None:
    inst, result, best = _netting_case(kind, seed)
    got = evaluate(inst, *trades_of(inst, result))
    assert not got.violations
    assert best.proven, best.status
    scale = max(abs(best.objective), 1e-8 / 1e-3)
    assert (got.objective - best.objective) / scale <= 5e-3, (got.objective, best.objective)
    assert result.tax is not None
    assert result.tax.estimated_tax == pytest.approx(got.tax, abs=0.011)  # the reference's tax, to the cent


# -- the tax paid from the account's cash (item 2) ---------------------------------------------------
@pytest.mark.parametrize("model", ["netting", "linear"])
@pytest.mark.parametrize("seed", [2, 4])
def test_the_tax_paid_from_cash_matches_an_independent_miqp_whose_cash_pays_it(model: str, seed: int) -> None:
    """Gains realised at a low tax weight with little cash: the tax must be funded by more sales.
    The reference's cash row is ``cash - trades - tax >= 0``; finwiz's result's cash is after the
    tax, and its objective within 0.5 % of the reference's."""
    base = random_instance(seed, assets=(5, 8), lots=(2, 4), tax_weight=0.05)
    target = base.target / base.target.sum()  # no cash kept: the tax must be funded by sales
    inst = base.with_(tax_model=model, realized_long_ytd=2_000.0, pay_tax_from_cash=True, cash=50.0, target=target)
    best = reference_optimum(inst)
    unpaid = reference_optimum(inst.with_(pay_tax_from_cash=False))
    assert best.evaluation.tax > 0
    assert evaluate(inst, unpaid.buy, unpaid.sell, unpaid.lot_sold).violations  # unpaid, it cannot pay: the row binds
    result = rebalance(inst.config(), inst.price_map())
    got = evaluate(inst, *trades_of(inst, result))
    assert not got.violations
    assert (got.objective - best.objective) / max(abs(best.objective), 1e-5) <= 5e-3, (got.objective, best.objective)
    assert result.tax is not None
    buy, sell, _ = trades_of(inst, result)
    cash_after = inst.cash - float(inst.prices @ (buy - sell)) - result.tax.estimated_tax
    assert result.cash_after == pytest.approx(cash_after, abs=0.011)
    assert result.cash_after >= -0.005


# -- how the regions are solved (issue 24 / #20: the netting rule at the linear model's speed) -------
def _region_models(inst: TaxInstance) -> list[Any]:
    from finwiz.optimizer._engine import _applicable, _with_constraints, default_engine
    from finwiz.optimizer.describe._data import build_problem_data
    from finwiz.optimizer.solve._assembler import Model

    config = inst.config()
    data = build_problem_data(config, inst.price_map())
    terms = default_engine().strategies[config.method].terms(data)
    model = Model.of(_applicable(list(_with_constraints(terms)), data), data)
    assert data.lots is not None
    return [model.with_data(dataclasses.replace(data, lots=book)) for book in data.lots.regions()]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", list(NETTING))
def test_each_region_solves_natively_to_the_optimum_of_one_variable_per_lot(kind: str, seed: int) -> None:
    """A region's relaxation is solved on the native QP, its rows on the sells of each asset's lot
    (``Ladder.region_rows``), and its optimum equals the cvxpy problem's, one variable per lot
    (every choice of lots), to 1e-6; where the native climb ends, each net is in its region."""
    from finwiz.optimizer.solve._assembler import assemble
    from finwiz.optimizer.solve._solve import ProvenInfeasibleError, native_qp, solve
    from finwiz.optimizer.tax._order import relaxation

    inst = random_instance(seed, assets=(5, 8), lots=(2, 4), tax_weight=(1.0, 0.1)[seed % 2])
    natively = 0
    for region in _region_models(inst.with_(tax_model="netting", **NETTING[kind])):
        qp = native_qp(region)
        assert qp is not None
        assert any(name == "tax_region" for name, _, _ in qp.groups)
        assembled = assemble(region)
        try:
            with assembled.lock:
                assembled.set_values(region, region.stacked())
                lots_model = solve(assembled).objective
        except ProvenInfeasibleError:
            with pytest.raises(ProvenInfeasibleError):
                relaxation(region, "auto", 30.0)
            continue
        priced, outcome = relaxation(region, "auto", 30.0)
        assert outcome.objective == pytest.approx(lots_model, rel=1e-6, abs=1e-9)
        if outcome.net_prices is not None:  # the native path answered (cvxpy gives no multipliers)
            natively += 1
            lots = priced.data.lots
            s0, g0 = lots.year_start()
            short, long = lots.nets(outcome.sell * priced.data.ref_value / priced.data.prices)
            assert lots.region.holds(s0 + short, g0 + long, slack=0.05)
    assert natively > 0


def test_a_region_is_dominated_only_by_an_equal_bound_whose_region_holds_its_optimum() -> None:
    from types import SimpleNamespace

    from finwiz.optimizer.tax._regions import _Bounded

    ordinary, past = (
        next(r for r in regions(ST, LT, ST, 3000.0) if r.name == name)
        for name in ("loss_against_ordinary_income", "loss_past_the_deduction")
    )

    def bounded(region: Any, bound: float, nets: tuple[float, float], k: int) -> _Bounded:
        model = SimpleNamespace(data=SimpleNamespace(lots=SimpleNamespace(region=region)))
        return _Bounded(bound, k, model, nets, 0.01, np.zeros(0))  # type: ignore[arg-type]

    edge = bounded(ordinary, -1.0, (1_000.0, -4_000.0), 3)  # on the edge S + L = -3000
    inside = bounded(past, -1.0, (1_000.0, -5_000.0), 4)
    assert inside.dominates(edge, 1e-9)
    assert not edge.dominates(inside, 1e-9)  # (1000, -5000) is past the deduction only
    assert not bounded(past, -1.1, (1_000.0, -5_000.0), 4).dominates(edge, 1e-9)  # a better bound alone: no
    stray = bounded(ordinary, -1.0, (1_000.0, -9_000.0), 3)  # its optimum outside its own region
    assert inside.dominates(stray, 1e-9)
    assert not stray.dominates(inside, 1e-9)


def test_a_region_whose_solver_fails_leaves_the_others_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A solver failure in one region's pipeline (the 2015-03 rebalance of the 10-year netting
    backtest: cvxpy's Clarabel failed on a region) is that region's refusal, not the request's."""
    import finwiz.optimizer._engine as engine
    from finwiz.errors import SolverError

    inst = random_instance(0, assets=(5, 8), lots=(2, 4), tax_weight=1.0).with_(
        tax_model="netting", **NETTING["harvest_to_the_limit"]
    )
    original = engine.fix_sides
    failed: list[str] = []

    def failing(model: Any, *args: Any) -> Any:
        region = model.data.lots.region
        if region is not None and failed in ([], [region.name]):  # the first region run fails
            failed.append(region.name)
            raise SolverError("no solver returned a verified optimal solution", solver="CLARABEL", status="failed")
        return original(model, *args)

    monkeypatch.setattr(engine, "fix_sides", failing)
    result = rebalance(inst.config(), inst.price_map())
    assert failed  # the region ran and failed
    got = evaluate(inst, *trades_of(inst, result))
    assert not got.violations
    assert result.tax is not None
    assert result.tax.estimated_tax == pytest.approx(got.tax, abs=0.011)


@pytest.mark.parametrize(("seed", "kind"), [(14, "short_gain")])
def test_a_region_the_tax_order_cannot_reach_is_solved_natively_to_the_lots_optimum(
    monkeypatch: pytest.MonkeyPatch, seed: int, kind: str
) -> None:
    """The 2014-12 and 2016-12 rebalances of the 10-year netting backtest: a year's short-term gains
    to undo by short-term loss lots that the region's tax order puts after long-term ones, so no
    climb over the lots in that order reaches the region where a short-term loss offsets a long-term
    gain (it fell back to cvxpy, one variable per lot, on every solve of the region). The lots
    reordered toward the region's rows, the native climb answers, with the objective of an
    cvxpy model with one variable per lot (the native answer certified by its own multipliers)."""
    import finwiz.optimizer.solve._solve as solve_module
    from finwiz.optimizer.solve._assembler import assemble
    from finwiz.optimizer.solve._qp import NoLadderPointError
    from finwiz.optimizer.tax._order import relaxation

    cases = {**NETTING, "short_gain": {"realized_short_ytd": 3_000.0, "realized_long_ytd": 20_000.0}}
    inst = random_instance(seed, assets=(5, 8), lots=(2, 4), tax_weight=(1.0, 0.1)[seed % 2])
    inst = inst.with_(tax_model="netting", **cases[kind])
    name = "short_loss_offsets_long_gain"
    (region,) = [m for m in _region_models(inst) if m.data.lots.region.name == name]
    with pytest.raises(NoLadderPointError):  # the tax order: no point
        solve_module.solve_terms(region, per_lot=False)
    assembled = assemble(region)  # the cvxpy problem: one variable per lot, no ladder
    with assembled.lock:
        assembled.set_values(region, region.stacked())
        reference = solve_module.solve(assembled).objective

    def no_cvxpy(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the cvxpy problem of one variable per lot was solved")

    (region,) = [m for m in _region_models(inst) if m.data.lots.region.name == name]
    monkeypatch.setattr(solve_module, "solve", no_cvxpy)
    priced, outcome = relaxation(region, "auto", 30.0)
    assert outcome.objective == pytest.approx(reference, rel=1e-6, abs=1e-9)
    lots = priced.data.lots
    s0, g0 = lots.year_start()
    short, long = lots.nets(outcome.sell * priced.data.ref_value / priced.data.prices)
    assert lots.region.holds(s0 + short, g0 + long, slack=0.05)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000))
def test_a_region_refused_without_a_solve_has_no_sale_of_lots_that_reaches_it(seed: int) -> None:
    """``Ladder.unreachable`` (no solve) agrees with an independent LP over every sale of lots
    within each asset's sell bound (scipy's HiGHS, one variable per lot): it refuses a region only
    when the LP proves it empty, and whenever a single row rules it out."""
    from scipy.optimize import linprog

    from finwiz.optimizer.describe._model import TaxForm
    from finwiz.optimizer.solve._qp import Ladder

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5))
    owner = np.sort(rng.integers(0, n, int(rng.integers(1, 9))))
    lots = len(owner)
    cap = rng.uniform(0.0, 0.1, lots)
    gain = rng.normal(0.0, 0.3, lots)
    long = rng.random(lots) < 0.5
    region = next(r for r in regions(ST, LT, ST, 3000.0) if r.name == "short_loss_offsets_long_gain")
    start = rng.normal(0.0, 0.01, 2)  # the year so far, V_ref units
    rows = np.array([[a, b, bound - a * start[0] - b * start[1]] for a, b, bound in region.rows])
    form = TaxForm(owner=owner, cap=cap, tax=gain * 0.2, gain=gain, long=long, rows=rows)
    ladder = Ladder.of(form, n)
    sell_cap = rng.uniform(0.0, 0.3, n) * (rng.random(n) < 0.8)
    nets = np.column_stack([gain * ~long, gain * long])  # per unit of each lot sold
    per_asset = np.zeros((n, lots))
    per_asset[owner, np.arange(lots)] = 1.0
    lp = linprog(
        np.zeros(lots),
        A_ub=np.vstack([rows[:, :2] @ nets.T, per_asset]),
        b_ub=np.concatenate([rows[:, 2] + 1e-9, sell_cap]),
        bounds=list(zip(np.zeros(lots), cap, strict=True)),
        method="highs",
    )
    refused = ladder.unreachable(sell_cap, 1e-9)
    if refused:
        assert lp.status == 2  # infeasible
    single = [
        linprog(rows[k, :2] @ nets.T, A_ub=per_asset, b_ub=sell_cap, bounds=list(zip(np.zeros(lots), cap, strict=True)))
        for k in range(len(rows))
    ]
    assert refused == any(s.fun > rows[k, 2] + 1e-9 for k, s in enumerate(single))


def test_the_per_lot_solve_after_a_failed_climb_does_not_climb_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """``toward_region``: where no climb over a region's lots reaches it and no reordering helps,
    the one-variable-per-lot solve of the same model follows at once; it re-ran every failed climb
    first (on the 431-asset netting request ~0.11 s CPU of ~1 s, issue 20's regression)."""
    import finwiz.optimizer.solve._solve as solve_module
    from finwiz.optimizer.solve._qp import NoLadderPointError

    cases = {**NETTING, "short_gain": {"realized_short_ytd": 3_000.0, "realized_long_ytd": 20_000.0}}
    inst = random_instance(14, assets=(5, 8), lots=(2, 4), tax_weight=0.1).with_(
        tax_model="netting", **cases["short_gain"]
    )
    name = "short_loss_offsets_long_gain"
    (region,) = [m for m in _region_models(inst) if m.data.lots.region.name == name]
    with pytest.raises(NoLadderPointError):
        solve_module.solve_terms(region, per_lot=False)
    climbs: list[int] = []
    original = solve_module._climb
    monkeypatch.setattr(solve_module, "_climb", lambda *a: climbs.append(1) or original(*a))
    outcome = solve_module.solve_terms(region)
    assert not climbs
    (fresh,) = [m for m in _region_models(inst) if m.data.lots.region.name == name]
    assert outcome.objective == pytest.approx(solve_module.solve_terms(fresh).objective, rel=1e-9, abs=1e-12)
    assert climbs  # a fresh model of the region climbs before its per-lot solve


def test_a_taxable_cold_solve_goes_to_clarabel_only_with_no_point_to_start_from() -> None:
    """A ladder's very first solve (no settled lots) stalls ADMM cold, so Clarabel answers it; a
    region started at another's answer (``start_at``) keeps OSQP on its cold workspace: Clarabel
    there landed elsewhere on the zero-cost face, and the climb and its re-pricing took 2-3 more
    solves (the 431-asset netting request, issue 20's regression)."""
    from finwiz.optimizer.solve._assembler import clear_cache
    from finwiz.optimizer.solve._solve import _route, native_qp

    inst = random_instance(0, assets=(5, 8), lots=(2, 4), tax_weight=0.1).with_(tax_model="netting")
    region = _region_models(inst)[0]
    clear_cache()
    qp = native_qp(region)
    assert qp is not None
    assert qp.ladder is not None
    assert _route(region, qp, "auto")[1:] == ("cold", ("CLARABEL", "OSQP"))
    qp.ladder.settled.segments = np.zeros(region.data.n, dtype=np.int64)
    assert _route(region, qp, "auto")[1:] == ("cold", ("OSQP", "CLARABEL"))


def test_a_taxable_climb_after_an_admm_stall_goes_to_clarabel_at_once_then_tries_admm_again() -> None:
    """After a stall (Clarabel answered) a taxable QP's next solve runs no ADMM: there it mostly
    stalled again (5 of 7 on the 431-asset netting request, 200 iterations each). A tax-blind QP
    keeps its short post-stall budget; the solve after the skipped one has the full budget."""
    from finwiz.optimizer.solve._solvers import COLD_ITERATIONS, STALLED_ITERATIONS, _budget, solve_osqp
    from finwiz.optimizer.solve._workspaces import _Workspace, clear_native_cache

    stalled = _Workspace(None, (np.zeros(1), np.zeros(1)), (np.zeros(1), np.zeros(1)), np.zeros(1), np.zeros(1))
    stalled.solved, stalled.stalled = True, True
    assert _budget(stalled, started=False) == STALLED_ITERATIONS
    assert _budget(stalled, started=False, taxable=True) == 0
    assert _budget(stalled, started=True, taxable=True) > 0  # a polish is never skipped

    inst = random_instance(0, assets=(5, 8), lots=(2, 4), tax_weight=0.1).with_(tax_model="netting")
    region = _region_models(inst)[0]
    clear_native_cache()
    qp = native_qp_of(region)
    key = ("test", qp.ladder.serial)
    first = solve_osqp(qp, key, 10.0)
    assert first.iterations <= COLD_ITERATIONS
    from finwiz.optimizer.solve._workspaces import _cache

    _cache[key].stalled = True
    skipped = solve_osqp(qp, key, 10.0)
    assert skipped.iterations == 0
    assert skipped.z is None
    again = solve_osqp(qp, key, 10.0)
    assert again.z is not None  # not stalled any more: ADMM ran, warm
    assert again.iterations > 0


def native_qp_of(model: Any) -> Any:
    from finwiz.optimizer.solve._solve import native_qp

    qp = native_qp(model)
    assert qp is not None
    assert qp.ladder is not None
    return qp


@pytest.mark.parametrize("seed", range(6))
def test_the_close_calls_bound_the_flips_again_only_after_a_solve(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """``flip_bounds`` reads the ladder's last multipliers: with no solve since it was computed on
    the same answer, a second pass reuses it (on the 431-asset aware request 7 -> 6 calls, ~2 ms)."""
    from finwiz.optimizer.tax import _sides

    events: list[str] = []
    bounds, solve = _sides.flip_bounds, _sides.toward_region
    monkeypatch.setattr(_sides, "flip_bounds", lambda *a: events.append("bounds") or bounds(*a))
    monkeypatch.setattr(_sides, "toward_region", lambda *a: events.append("solve") or solve(*a))
    climb = _sides.solve_terms  # close calls flipped at once: the climb alone
    monkeypatch.setattr(_sides, "solve_terms", lambda *a, **k: events.append("solve") or climb(*a, **k))
    inst = random_instance(seed, assets=(20, 30), lots=(2, 4), tax_weight=(1.0, 0.1)[seed % 2])
    result = rebalance(inst.config(), inst.price_map())
    assert not evaluate(inst, *trades_of(inst, result)).violations
    assert "bounds" in events
    assert "bounds,bounds" not in ",".join(events)


def test_a_regions_first_solve_stays_on_the_interior_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    """The straight-to-target ADMM start of a taxable account's first solve is not given to a
    netting region's (its regions' warm solves then ran without Clarabel's iteration cap,
    docs/decisions/tax-netting.md): its first solve goes to Clarabel first, as before."""
    from finwiz.optimizer.solve import _solve
    from finwiz.optimizer.tax._order import relaxation

    starts: list[Any] = []
    real = _solve._ladder_start

    def seen(qp: Any, route: str) -> Any:
        starts.append((qp.ladder.region is not None, qp.ladder.settled.start))
        return real(qp, route)

    monkeypatch.setattr(_solve, "_ladder_start", seen)
    inst = random_instance(0, assets=(5, 8), lots=(2, 4), tax_weight=1.0)
    solved = []
    for region in _region_models(inst.with_(tax_model="netting", **NETTING["harvest_to_the_limit"])):
        starts.clear()
        try:
            _, outcome = relaxation(region, "auto", 30.0)
        except _solve.ProvenInfeasibleError:
            continue
        assert starts
        assert all(has_region and start is None for has_region, start in starts)
        solved.append(outcome.attempts)
    assert solved
