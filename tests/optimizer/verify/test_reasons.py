"""Reasons per trade (``TradeRecommendation.reasons``): on constructed cases the strongest reason
is the force that made the trade, and a term's force is the change of that term were the trade
undone, computed here independently from the result's weights."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from finwiz import Holding, PortfolioConfiguration, RebalancingResult, TaxLot, TaxSettings, TradeReason, rebalance
from finwiz.reporting import trades_table

PRICES = {"A": 100.0, "B": 50.0, "C": 20.0, "D": 10.0}
SHARES = {"A": 400, "B": 400, "C": 500, "D": 1000}  # 50 / 25 / 12.5 / 12.5 % of 80,000
AS_OF = date(2026, 12, 1)


def _config(lots: bool = False, **overrides: Any) -> PortfolioConfiguration:
    def lot(symbol: str) -> list[TaxLot]:
        basis = 200.0 if symbol == "A" else PRICES[symbol] * 0.9  # A holds a loss
        return [TaxLot(shares=SHARES[symbol], cost_basis=basis, acquired=AS_OF - timedelta(days=400))]

    fields: dict[str, Any] = {
        "holdings": [Holding(symbol=s, shares=q, lots=lot(s) if lots else []) for s, q in SHARES.items()],
        "target_weights": {"A": 0.45, "B": 0.25, "C": 0.15, "D": 0.15},
        "tolerance": 0.0,
        "method": "minimize_costs",
    }
    fields.update(overrides)
    return PortfolioConfiguration(**fields)


def _top(result: RebalancingResult, symbol: str) -> TradeReason:
    trade = next(t for t in result.trades if t.symbol == symbol)
    assert trade.reasons, f"{symbol} has no reason"
    return trade.reasons[0]


def test_a_forced_cap_sale_is_explained_by_its_cap() -> None:
    # A's target (45 %) is above its cap (30 %): the drift asks to keep A, the cap forces the sale.
    result = rebalance(_config(max_position_weights={"A": 0.30}), PRICES)
    top = _top(result, "A")
    assert top.kind == "limit"
    assert top.label == "max_position[A] binding"
    assert not any(r.label.startswith("drift") for r in next(t for t in result.trades if t.symbol == "A").reasons)


def test_a_sector_cap_sale_is_explained_by_the_sector() -> None:
    sectors = {"A": "Tech", "B": "Tech", "C": "Energy", "D": "Utilities"}
    result = rebalance(_config(sectors=sectors, sector_caps={"Tech": 0.65}), PRICES)
    assert _top(result, "B").label == "sector_cap[Tech] binding"  # B is on target: only the cap sells it
    assert _top(result, "A").label == "sector_cap[Tech] binding"


def test_a_deposit_is_the_reason_for_buys_on_a_book_on_target() -> None:
    targets = {"A": 0.5, "B": 0.25, "C": 0.125, "D": 0.125}  # the book is on target before the deposit
    result = rebalance(_config(target_weights=targets, cash_flow=40_000.0), PRICES)
    assert {t.action.value for t in result.trades} == {"buy"}
    for trade in result.trades:
        assert trade.reasons[0].label == "deposit 40,000", trade.why
        assert trade.reasons[0].unit == "currency"


def test_a_withdrawal_is_the_reason_for_sells_on_a_book_on_target() -> None:
    targets = {"A": 0.5, "B": 0.25, "C": 0.125, "D": 0.125}
    result = rebalance(_config(target_weights=targets, cash=0.0, cash_flow=-8_000.0), PRICES)
    assert {t.action.value for t in result.trades} == {"sell"}
    assert all(t.reasons[0].label == "withdrawal 8,000" for t in result.trades)


def test_a_harvest_is_the_reason_for_selling_an_asset_on_target() -> None:
    # A is held at a loss and sits on its target: only the tax term asks for selling it.
    targets = {"A": 0.5, "B": 0.25, "C": 0.125, "D": 0.125}
    tax = TaxSettings(as_of=AS_OF, short_term_rate=0.37, long_term_rate=0.2, tax_weight=0.05)
    result = rebalance(_config(lots=True, target_weights=targets, tax=tax, transaction_cost_rate=0.0), PRICES)
    assert result.tax is not None
    assert result.tax.harvested_losses > 0
    top = _top(result, "A")
    loss = result.tax.harvested_losses
    assert top.label == f"harvests a {loss:,.0f} loss"
    assert top.amount == pytest.approx(loss)


def test_band_edge_trades_are_explained_by_the_band_edge() -> None:
    result = rebalance(_config(mode="band_edge", tolerance=0.02), PRICES)
    assert result.trades
    sold = _top(result, "A")
    assert sold.label == "back to band edge (+3.00 %)"  # 50 % held, the band's edge at 45 + 2 %
    assert sold.amount == pytest.approx(0.03)


def test_the_drift_force_is_the_tracking_terms_change_were_the_trade_undone() -> None:
    result = rebalance(_config(transaction_cost_rate=0.0, min_trade_size=0.0), PRICES)
    trade = next(t for t in result.trades if t.symbol == "A")
    drift = next(r for r in trade.reasons if r.label.startswith("drift to target"))
    # Undoing the sale of A: A back at its weight before (of the same value), the rest unchanged.
    before, after, target = trade.current_weight, trade.post_trade_weight, trade.target_weight
    value = result.portfolio_value_before
    undone = before * value / result.portfolio_value_after  # cash-neutral undo at zero cost
    assert drift.score == pytest.approx((undone - target) ** 2 - (after - target) ** 2, rel=1e-6)
    assert drift.label == "drift to target (+5.00 %)"


def test_reasons_reach_the_frame_and_the_text_table() -> None:
    result = rebalance(_config(max_position_weights={"A": 0.30}), PRICES)
    frame = result.to_frame()
    assert frame.loc["A", "reasons"].startswith("max_position[A] binding")
    assert frame.loc["CASH", "reasons"] == ""
    assert "max_position[A] binding" in trades_table(result)
    trade = next(t for t in result.trades if t.symbol == "A")
    assert trade.why == "; ".join(str(r) for r in trade.reasons)
    assert TradeReason.model_validate(trade.reasons[0].model_dump()) == trade.reasons[0]


def test_a_user_strategys_trades_are_its_proposal() -> None:
    from finwiz.optimizer import RebalancingEngine
    from tests.optimizer.test_engine import SellEverything

    engine = RebalancingEngine()
    engine.strategies["liquidate"] = SellEverything()
    result = engine.rebalance(_config(method="liquidate"), PRICES)
    assert result.trades
    assert all(t.reasons[0].label == "the strategy's proposal" for t in result.trades)


def test_a_dense_roots_forces_are_those_of_its_triplets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The undo's change of a dense covariance's rows by matrix products equals the stacked
    triplets' change (the path rows without a kept matrix take)."""
    import dataclasses

    import numpy as np

    from finwiz.optimizer.describe._model import Affine, Description
    from finwiz.optimizer.verify import _reasons

    undos: list[Any] = []
    forces = _reasons._term_forces
    monkeypatch.setattr(_reasons, "_term_forces", lambda model, undo, *a: undos.append(undo) or forces(model, undo, *a))
    rebalance(_config(), PRICES)
    undo = undos[0]
    n = undo.data.n
    rows = Affine.weights_dense(np.random.default_rng(5).normal(size=(n, n)), undo.data.x0, undo.data.target)
    bare = Affine(rows.rows, rows.cols, rows.vals, rows.offset)
    piece = Description(weight_squares=[(np.full(n, 0.5), None)], low_rank=[rows])
    exact, first = undo.change(piece)
    exact_t, first_t = undo.change(dataclasses.replace(piece, low_rank=[bare]))
    assert len(exact) == len(undo.idx) > 0
    np.testing.assert_allclose(exact, exact_t, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(first, first_t, rtol=1e-10, atol=1e-15)


def test_a_rows_reach_bounds_every_undos_move_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows the binding search skips are those no single undo moves as far as their slack:
    the reach must bound every undo's move, and an untraded asset's own row moves only by the
    scalar columns (costs), far less than the largest trade."""
    import numpy as np

    from finwiz.optimizer.describe._model import Affine
    from finwiz.optimizer.verify import _reasons

    seen: list[Any] = []
    forces = _reasons._term_forces
    monkeypatch.setattr(
        _reasons, "_term_forces", lambda model, undo, *a: seen.append((model, undo)) or forces(model, undo, *a)
    )
    config = _config(
        target_weights={"A": 0.45, "B": 0.30, "C": 0.125, "D": 0.125},  # C and D on target: untraded
        sectors={"A": "Tech", "B": "Tech", "C": "Energy", "D": "Utilities"},
        sector_caps={"Tech": 0.74},
        max_position_weights={"A": 0.5, "B": 0.29, "C": 0.3, "D": 0.3},
        min_trade_size=1_000.0,
    )
    rebalance(config, PRICES)
    model, undo = seen[0]
    rows = Affine.stack([g.linear(0.0)[0] for _, g in model.checked_groups])
    moved = undo.moved(rows)
    reach = undo.reach(rows)
    assert (np.abs(moved).max(axis=1) <= reach - _reasons._TOL).all()
    untraded = np.setdiff1d(np.arange(undo.data.n), undo.idx)
    assert len(untraded) > 0
    own = [i for i, (_, g) in enumerate(model.checked_groups) if g.name == "max_position"]
    first = sum(g.linear(0.0)[0].m for _, g in model.checked_groups[: own[0]])
    assert (reach[first + untraded] < np.abs(undo.u).max() / 10).all()


def test_a_diagonal_blocks_change_is_the_dense_products_to_the_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracking rows' change read per trade from its one entry equals the rows x trades
    product it stands for, bit for bit (the reasons' scores and order must not move)."""
    import numpy as np

    from finwiz.optimizer.solve._stacked import stack
    from finwiz.optimizer.verify import _reasons

    seen: list[Any] = []
    forces = _reasons._term_forces
    monkeypatch.setattr(
        _reasons, "_term_forces", lambda model, undo, *a: seen.append((model, undo)) or forces(model, undo, *a)
    )
    rebalance(_config(cash_flow=5_000.0, max_position_weights={"A": 0.30}), PRICES)
    model, undo = seen[0]
    pieces = [piece for name, part, piece, _ in _reasons._pieces(model) if part == "weights"]
    assert pieces
    assert undo._one_row_each(stack(pieces[:1], undo.data, continuous=False).squares) is not None
    fast = undo.change(pieces[0])
    monkeypatch.setattr(type(undo), "_one_row_each", lambda self, rows: None)
    dense = undo.change(pieces[0])
    assert np.array_equal(fast[0], dense[0])
    assert np.array_equal(fast[1], dense[1])
    assert (fast[0] != 0).any()
