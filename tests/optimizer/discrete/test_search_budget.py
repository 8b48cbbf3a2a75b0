"""The whole-share search's budget: only a search its count of work stopped says so."""

from __future__ import annotations

from typing import Any

import pytest

from finwiz import RebalancingEngine, RebalancingSettings, rebalance
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


def test_the_warning_names_the_limit_that_stopped_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    inst = generate(2)
    config, prices = config_of(inst)
    monkeypatch.setattr(_search, "_WORK", 1_000)  # the count of work first
    counted = rebalance(config, prices)
    assert [w for w in counted.warnings if "stopped at its budget" in w] == [
        "whole-share search stopped at its budget: its count of work (1,000 candidates priced)"
    ]
    monkeypatch.setattr(_search, "_WORK", 10**9)
    monkeypatch.setattr(_search, "_CLOCK_WORK", 1)  # the CPU clock read at once: its deadline is past
    clocked = RebalancingEngine(RebalancingSettings(mip_time_limit_seconds=1e-9)).rebalance(config, prices)
    assert [w for w in clocked.warnings if "stopped at its budget" in w] == [
        "whole-share search stopped at its budget: its CPU safety (1e-09 s)"
    ]
