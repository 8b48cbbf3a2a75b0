"""The whole-share search's budget: only a search its count of work stopped says so."""

from __future__ import annotations

from typing import Any

import pytest

from finwiz import rebalance
from finwiz.optimizer.discrete import _search
from tests.optimizer.discrete.reference import config_of, generate


def test_a_search_that_ends_on_its_own_never_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    # The budget set to exactly the work the search did before it found nothing more to take:
    # it ended on its own, so no "stopped at its budget" (a check made after the loop counted
    # one more unit of work and warned).
    inst = generate(3)
    config, prices = config_of(inst)
    seen: list[int] = []
    kick = _search._Local.kick

    def spy(self: Any, point: Any) -> Any:
        out = kick(self, point)
        seen.append(self.tally.work)
        return out

    monkeypatch.setattr(_search._Local, "kick", spy)
    monkeypatch.setattr(_search, "_WORK", 10**9)
    free = rebalance(config, prices)
    assert seen, "the search ran"
    assert not any("stopped at its budget" in w for w in free.warnings)
    monkeypatch.setattr(_search, "_WORK", seen[-1])
    exact = rebalance(config, prices)
    assert not any("stopped at its budget" in w for w in exact.warnings)
    assert [(t.symbol, t.shares) for t in exact.trades] == [(t.symbol, t.shares) for t in free.trades]
