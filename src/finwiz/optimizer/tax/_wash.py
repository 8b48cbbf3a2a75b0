"""The wash-sale rule across ``identical`` groups, kept by the final whole-share trades.

The continuous stage keeps it (``_sides``: a group both sold at a loss and bought is walled off
one way), but the whole-share stage knows no groups, and its rounding can bring a loss sale of one
member back beside a purchase of another (a household's JOINT:VOO sold at a loss while IRA:VOO and
ROTH:VOO were bought). :func:`settle_groups` checks the final trades and runs the pipeline again
behind each of the same two walls (``walls_of``), the better answer kept.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from finwiz.errors import InfeasibleRebalanceError
from finwiz.optimizer.discrete._stage import Decided, achieved
from finwiz.optimizer.solve._assembler import Model
from finwiz.optimizer.tax._sides import group_conflict, walls_of

__all__ = ["settle_groups"]

_ROUNDS = 6
"""At most how many groups are walled off after the whole-share stage (each round walls one more)."""


def settle_groups(model: Model, decided: Decided, run: Callable[[Model], Decided]) -> Decided:
    """``decided`` (the whole pipeline ``run`` on ``model``) when its trades sell no member of an
    identical group at a loss while buying another; else ``run`` again on ``model`` behind the
    better of that group's two walls (no buys of any member, no sales of the loss sellers), until
    none does. Raises the first wall's refusal when neither wall leaves any trades."""
    for _ in range(_ROUNDS):
        final = decided.model or model
        group = group_conflict(final.data, np.maximum(-decided.shares, 0.0), decided.shares > 0)
        if group is None:
            return decided
        best: tuple[float, Model, Decided] | None = None
        refused: InfeasibleRebalanceError | None = None
        for walled in walls_of(model, group):
            try:
                answer = run(walled)
            except InfeasibleRebalanceError as exc:
                refused = refused or exc
                continue
            value = achieved(answer.model or walled, answer.shares)
            if best is None or value < best[0]:
                best = value, walled, answer
        if best is None:
            assert refused is not None
            raise refused
        _, model, decided = best
    raise InfeasibleRebalanceError((), "the wash-sale rule across identical symbols did not settle")
