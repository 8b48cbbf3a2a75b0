"""The package's import graph (read with ast over src/finwiz) has no circle and keeps DESIGN.md's
layering. Every import counts -- at module level or inside a function, and a constant
``importlib.import_module("finwiz....")`` too -- except those under ``if TYPE_CHECKING:``, which
never run."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "finwiz"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of ``if TYPE_CHECKING:`` (their ``else`` still runs)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _target(name: str) -> str | None:
    """The finwiz module an imported dotted name lands in (its longest known prefix)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, *, type_only: bool = False) -> set[str]:
    """The finwiz modules ``module`` imports at run time (with ``type_only``, also those under
    ``if TYPE_CHECKING:``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree) if type_only else _runtime_nodes(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        for name in names:
            target = _target(name)
            if target is not None and target != module:
                found.add(target)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}
TYPED_GRAPH = {module: imports_of(module, type_only=True) for module in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walker_sees_function_level_and_string_imports() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    # The walker reads real files: the orchestrator imports the optimizer, data and reporting.
    assert {"finwiz.optimizer", "finwiz.data", "finwiz.reporting"} <= GRAPH["finwiz.orchestrator"]
    assert len(MODULES) > 40


def test_the_package_has_no_import_circle() -> None:
    assert cycles(GRAPH) == []


def test_no_import_circle_even_through_type_only_imports() -> None:
    # A circle the type checker needs is still a circle: it forces imports inside functions.
    assert cycles(TYPED_GRAPH) == []


def _reaches(start: str, prefix: str) -> list[str]:
    return sorted(m for m in GRAPH[start] if m == prefix or m.startswith(prefix + "."))


LAYERS = [
    (
        "finwiz.schemas",
        ("finwiz.optimizer", "finwiz.data", "finwiz.reporting", "finwiz.orchestrator", "finwiz.risk", "finwiz.cli"),
    ),
    ("finwiz.risk", ("finwiz.optimizer", "finwiz.data", "finwiz.reporting", "finwiz.orchestrator", "finwiz.cli")),
    ("finwiz.optimizer", ("finwiz.data", "finwiz.reporting", "finwiz.orchestrator", "finwiz.batch", "finwiz.cli")),
    ("finwiz.reporting", ("finwiz.optimizer", "finwiz.data", "finwiz.orchestrator")),
    ("finwiz.data", ("finwiz.optimizer", "finwiz.reporting", "finwiz.orchestrator")),
]


@pytest.mark.parametrize(("layer", "forbidden"), LAYERS, ids=[layer for layer, _ in LAYERS])
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    members = [m for m in MODULES if m == layer or m.startswith(layer + ".")]
    bad = {m: _reaches(m, f) for m in members for f in forbidden if _reaches(m, f)}
    assert bad == {}


SCHEMA_NAMES = {
    "CASH",
    "DEFAULT_MIN_TRADE_SIZE",
    "DEFAULT_TOLERANCE",
    "DEFAULT_TRANSACTION_COST_RATE",
    "UNCLASSIFIED_SECTORS",
    "ComplianceCheck",
    "ConstraintOutcome",
    "Holding",
    "LotSale",
    "Model",
    "OptimizedTrades",
    "PortfolioAnalysis",
    "PortfolioConfiguration",
    "PriceData",
    "RecentPurchase",
    "RecentSale",
    "StageRecord",
    "TaxLot",
    "TaxSettings",
    "TaxSummary",
    "RebalancingMethod",
    "RebalancingNeed",
    "RebalancingResult",
    "RiskMetrics",
    "TradeAction",
    "TradeReason",
    "TradeRecommendation",
    "REBALANCING_MODES",
    "canonical_symbol",
    "is_unclassified",
    "require_data",
}
SCHEMA_NAMES |= {"ACCOUNT_KINDS", "Account", "Household", "HouseholdResult"}  # households (#25)


def test_schemas_keeps_its_names_after_the_split() -> None:
    import finwiz.schemas

    assert set(finwiz.schemas.__all__) == SCHEMA_NAMES
    for name in SCHEMA_NAMES:
        assert getattr(finwiz.schemas, name) is not None
    assert GRAPH["finwiz.schemas"] <= {m for m in MODULES if m.startswith("finwiz.schemas.")}


def test_the_notebook_view_and_plot_come_from_reporting_without_an_import() -> None:
    from finwiz.cli._demo import demo_configuration
    from finwiz.data import sample_latest_prices
    from finwiz.optimizer import rebalance
    from finwiz.reporting import result_summary_html

    result = rebalance(demo_configuration(), sample_latest_prices())
    assert result._repr_html_() == result_summary_html(result)
    assert not any(m.startswith("finwiz.reporting") for m in GRAPH["finwiz.schemas._result"])
