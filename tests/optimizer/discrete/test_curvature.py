"""A descent's table of one-lot moves keeps each move's own curvature while the move and its
asset's trade stand (``_candidates._Curvature``): the kept values are those a fresh pricing gives,
float for float, and a round after one asset moved prices only that asset's moves again."""

from __future__ import annotations

import numpy as np

from finwiz import PortfolioConfiguration
from finwiz.optimizer import RebalancingEngine, build_problem_data
from finwiz.optimizer.describe._limits import constraint_terms
from finwiz.optimizer.describe._model import SCALARS
from finwiz.optimizer.discrete._candidates import _LotMoves, _Moves, _trade_point
from finwiz.optimizer.discrete._pricing import Pieces
from finwiz.optimizer.solve._assembler import Model

SYMBOLS = [f"A{i}" for i in range(8)]


def _pieces() -> Pieces:
    config = PortfolioConfiguration(
        holdings=[{"symbol": s, "shares": 40 + 13 * i} for i, s in enumerate(SYMBOLS)],
        target_weights={s: 0.95 / len(SYMBOLS) for s in SYMBOLS},
        cash=500.0,
        sectors={s: f"S{i % 3}" for i, s in enumerate(SYMBOLS)},
        max_sector_weight=0.4,
        transaction_cost_rate=0.001,
        min_trade_size=50.0,
        method="minimize_trades",
    )
    data = build_problem_data(config, {s: 10.0 + 7 * i for i, s in enumerate(SYMBOLS)})
    terms = [*RebalancingEngine().strategies[config.method].terms(data), *constraint_terms()]
    return Pieces.of(Model.of([t for t in terms if t.applies(data)], data))


def _plain(moves: _Moves) -> _Moves:
    return _Moves(moves.owner, moves.shares, moves.buy, moves.sell, moves.scalars)


def test_kept_curvature_is_a_fresh_pricing() -> None:
    pieces = _pieces()
    data, pricer = pieces.model.data, pieces.pricer
    table = _LotMoves(data, pieces.separable, None)
    shares = np.zeros(data.n)
    for step, asset in enumerate([2, 5, 2, 7]):
        moves = table(shares, False)
        z = _trade_point(data, shares)
        assert moves.kept is not None
        kept = pricer.changes(z, shares, moves)
        fresh = pricer.changes(z, shares, _plain(moves))
        assert np.array_equal(kept, fresh), step  # the same floats
        shares = shares.copy()
        shares[asset] += 3.0 if step % 2 == 0 else -2.0


def test_a_round_prices_only_the_moved_assets_again() -> None:
    pieces = _pieces()
    data, pricer = pieces.model.data, pieces.pricer
    table = _LotMoves(data, pieces.separable, None)
    shares = np.zeros(data.n)
    pricer.changes(_trade_point(data, shares), shares, table(shares, False))
    shares[3] = 4.0
    moves = table(shares, False)
    assert moves.kept is not None
    curvature, at = moves.kept
    assert curvature.known[at].sum() == np.sum(moves.owner != 3)  # asset 3's moves are to price again
    asked: list[int] = []
    second = pricer.second
    pricer.second = lambda owner, steps: asked.extend(owner.tolist()) or second(owner, steps)  # type: ignore[method-assign]
    pricer.changes(_trade_point(data, shares), shares, moves)
    assert set(asked) == {3}


def test_the_models_kept_table_serves_a_pricer_with_another_gradient() -> None:
    """``Pieces.lot_moves`` is kept between the rounding's descent and the polish, whose pricers
    are copies with other gradients (``with_gradient``): the curvatures, of the Gram entries the
    copies share, are kept, and the changes are a fresh pricing's, float for float."""
    pieces = _pieces()
    data = pieces.model.data
    assert pieces.lot_moves is pieces.lot_moves
    rng = np.random.default_rng(0)
    first = pieces.pricer.with_gradient(rng.normal(size=2 * data.n + SCALARS) * 1e-3)
    second = pieces.pricer.with_gradient(None)
    shares = np.zeros(data.n)
    shares[[1, 4]] = [5.0, -3.0]
    z = _trade_point(data, shares)
    first.changes(z, shares, pieces.lot_moves(shares, False))
    moves = pieces.lot_moves(shares, False)
    asked: list[int] = []
    plain_second = second.second
    second.second = lambda owner, steps: asked.extend(owner.tolist()) or plain_second(owner, steps)  # type: ignore[method-assign]
    kept = second.changes(z, shares, moves)
    assert asked == []  # every curvature kept from the first pricer's round
    assert np.array_equal(kept, pieces.pricer.with_gradient(None).changes(z, shares, _plain(moves)))
