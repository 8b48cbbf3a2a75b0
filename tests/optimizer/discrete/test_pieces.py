"""The whole-share stage builds each model's coupled rows (and with them its pricer) once."""

from __future__ import annotations

from typing import Any

import pytest

from finwiz import rebalance
from finwiz.optimizer.discrete import _pricing, _rounding, _search
from tests.optimizer.discrete.reference import config_of, generate


def test_each_model_gets_its_rows_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A small account: the rounding, then the search over the same model (each used to build
    # its own rows and pricer).
    config, prices = config_of(generate(3))
    built: list[int] = []
    rows_of = _pricing._coupled_rows

    def spy(model: Any) -> Any:
        built.append(id(model))
        return rows_of(model)

    for module in (_pricing, _rounding, _search):
        monkeypatch.setattr(module, "_coupled_rows", spy, raising=False)
    monkeypatch.setattr(_search, "_WORK", 10**9)
    result = rebalance(config, prices)
    assert result.is_compliant
    assert built, "the stage ran"
    assert len(built) == len(set(built)), "a model's rows were built more than once"
