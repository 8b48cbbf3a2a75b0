"""One BLAS thread around dense linear algebra (``finwiz._blas``), restored on the way out."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info, threadpool_limits  # type: ignore[import-untyped]

from finwiz._blas import one_thread, single_threaded_given


def _threads() -> dict[str, int]:
    """Each loaded BLAS library's thread count (a single-threaded build stays at 1)."""
    return {str(pool["filepath"]): int(pool["num_threads"]) for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_one_thread_inside_and_the_callers_count_after() -> None:
    with threadpool_limits(limits=2, user_api="blas"):
        before = _threads()
        assert 2 in before.values()  # numpy's OpenBLAS takes 2: the change below is visible
        with one_thread():
            assert set(_threads().values()) == {1}
            with one_thread():  # nested: the inner block does not restore early
                pass
            assert set(_threads().values()) == {1}
        assert _threads() == before
        with pytest.raises(ValueError, match="inside"), one_thread():
            raise ValueError("inside")
        assert _threads() == before


def test_only_calls_given_the_keyword_run_on_one_thread() -> None:
    @single_threaded_given("covariance")
    def seen(covariance: object = None) -> dict[str, int]:
        return _threads()

    with threadpool_limits(limits=2, user_api="blas"):
        before = _threads()
        assert seen() == before
        assert set(seen(covariance=object()).values()) == {1}
        assert _threads() == before
