"""cvxpy, imported on first use.

Requests made only of built-in terms are solved natively (``_qp``), so a process that never
meets a user's term, market impact, exact mode or an infeasibility diagnosis never pays cvxpy's
import (about half of the optimizer's): batch workers start sooner and the CLI answers sooner.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["cvxpy"]


class _LazyModule(ModuleType):
    """Stands for a module and imports it when one of its attributes is first read."""

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)  # later reads find the attributes directly
        return getattr(module, attr)


cvxpy = _LazyModule("cvxpy")
