"""One BLAS thread around dense linear algebra (``finwiz._blas``), restored on the way out."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info, threadpool_limits  # type: ignore[import-untyped]

from finwiz._blas import one_thread, single_threaded_given


def _threads() -> set[int]:
    return {int(pool["num_threads"]) for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_one_thread_inside_and_the_callers_count_after() -> None:
    with threadpool_limits(limits=2, user_api="blas"):
        assert _threads() == {2}
        with one_thread():
            assert _threads() == {1}
            with one_thread():  # nested: the inner block does not restore early
                pass
            assert _threads() == {1}
        assert _threads() == {2}
        with pytest.raises(ValueError, match="inside"), one_thread():
            raise ValueError("inside")
        assert _threads() == {2}


def test_only_calls_given_the_keyword_run_on_one_thread() -> None:
    @single_threaded_given("covariance")
    def seen(covariance: object = None) -> set[int]:
        return _threads()

    with threadpool_limits(limits=2, user_api="blas"):
        assert seen() == {2}
        assert seen(covariance=object()) == {1}
        assert _threads() == {2}
