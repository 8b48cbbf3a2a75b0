"""Progress of ``Backtest.run`` and ``compare`` in rebalance dates, not in policies."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from finwiz.backtest import Backtest, BandRebalance, CalendarRebalance, NeverRebalance
from tests.backtest.test_backtest import PRICES, book

MONTH_ENDS = 48  # 2016-2019


class _Broken(CalendarRebalance):
    def rebalance(self, ctx: Any) -> Any:
        raise RuntimeError("bug in a policy")


def _recorder() -> tuple[list[tuple[int, int]], Any]:
    calls: list[tuple[int, int]] = []
    return calls, lambda done, total: calls.append((done, total))


def test_run_counts_the_scheduled_rebalance_dates() -> None:
    policy = CalendarRebalance("M")
    assert int(np.count_nonzero(policy.schedule(PRICES.index))) == MONTH_ENDS  # the hand count
    calls, progress = _recorder()
    Backtest(PRICES, initial=book()).run(policy, progress=progress)
    assert calls[-1] == (MONTH_ENDS, MONTH_ENDS)
    assert len(calls) >= MONTH_ENDS // 2  # reported as it goes, not once at the end
    dones = [done for done, _ in calls]
    assert dones == sorted(dones)


def test_run_shows_a_bar_on_stderr_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    backtest = Backtest(PRICES, initial=book())
    backtest.run(CalendarRebalance("Q"), name="quarterly")
    assert capsys.readouterr().err == ""
    backtest.run(CalendarRebalance("Q"), name="quarterly", progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "quarterly: 100%" in err
    assert "16/16" in err
    assert "date/s" in err or "s/date" in err


def test_compare_counts_dates_summed_over_policies_failures_included() -> None:
    backtest = Backtest(PRICES, initial=book())
    policies = {
        "monthly": CalendarRebalance("M"),
        "never": NeverRebalance(),
        "band": BandRebalance(0.02, check_every="W"),
        "broken": _Broken("Q"),
    }
    weeks = int(np.count_nonzero(policies["band"].schedule(PRICES.index)))
    total = MONTH_ENDS + weeks + 16
    calls, progress = _recorder()
    comparison = backtest.compare(policies, progress=progress)
    assert "broken" in comparison.failures
    assert {t for _, t in calls} == {total}
    assert calls[-1][0] == total
    assert len(calls) > len(policies)  # dates, not policies


def test_compare_on_a_pool_counts_each_policy_s_dates_when_it_returns() -> None:
    import concurrent.futures as cf

    calls, progress = _recorder()
    with cf.ThreadPoolExecutor(2) as pool:
        Backtest(PRICES, initial=book()).compare(
            {"monthly": CalendarRebalance("M"), "quarterly": CalendarRebalance("Q")}, executor=pool, progress=progress
        )
    assert sorted(calls) == [(16, 64), (64, 64)] or sorted(calls) == [(48, 64), (64, 64)]


def test_a_bad_progress_value_is_refused() -> None:
    from finwiz.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="progress"):
        Backtest(PRICES, initial=book()).run(NeverRebalance(), progress="yes")  # type: ignore[arg-type]
