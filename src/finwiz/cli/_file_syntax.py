"""TOML and YAML portfolio text as data: parsing with the line at fault, tickers kept as text."""

from __future__ import annotations

import re
import tomllib
from typing import Any

from finwiz.errors import InvalidPortfolioError

__all__ = ["key_line", "parse_text", "symbols_as_text"]


def key_line(text: str, key: str, fmt: str) -> int | None:
    """1-based line where ``key`` is defined in ``text``, when a plain scan can tell."""
    name = re.escape(key)
    if fmt == "toml":
        pattern = rf"^\s*(?:{name}\s*=|\[\[?\s*{name}\s*\]\]?)"
    else:
        pattern = rf"^\s*(?:-\s*)?['\"]?{name}['\"]?\s*:"
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(pattern, line):
            return number
    return None


def parse_text(text: str, fmt: str, where: str) -> Any:
    if fmt == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidPortfolioError(f"{where}: invalid TOML: {exc}", field="file") from exc
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InvalidPortfolioError(f"{where}: invalid YAML{at}: {problem}", field="file") from exc


_YAML_LOADER: Any = None
_BOOL = "tag:yaml.org,2002:bool"


def _yaml_loader() -> Any:
    """A ``SafeLoader`` reading YAML as a portfolio file needs: every mapping key as its text
    (tickers ``ON``, ``TRUE`` or ``7203`` stay tickers) and only ``true``/``false`` as booleans
    (YAML 1.2; YAML 1.1 also reads ``on``, ``off``, ``yes``, ``no`` as booleans)."""
    global _YAML_LOADER
    if _YAML_LOADER is not None:
        return _YAML_LOADER
    import yaml

    class PortfolioLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            self.flatten_mapping(node)  # merge keys (<<) first: they are not text keys
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key_node.tag = "tag:yaml.org,2002:str"
            return super().construct_mapping(node, deep=deep)

    PortfolioLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    PortfolioLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    _YAML_LOADER = PortfolioLoader
    return PortfolioLoader


def symbols_as_text(data: Any) -> None:
    """A YAML ticker ``TRUE`` or ``false`` read as a boolean, or ``7203`` read as a number, where a
    symbol belongs (a holding's ``symbol``, the restricted lists, recent sales and purchases) is
    that ticker."""
    if not isinstance(data, dict):
        return

    def text(value: Any) -> Any:
        if isinstance(value, bool):
            return str(value).upper()
        return str(value) if isinstance(value, int) else value  # a numeric ticker (7203)

    entries = (
        [e for e in data.get("holdings") or [] if isinstance(e, dict)] if isinstance(data.get("holdings"), list) else []
    )
    tax = data.get("tax")
    if isinstance(tax, dict):
        for kind in ("recent_sales", "recent_purchases"):
            if isinstance(tax.get(kind), list):
                entries += [e for e in tax[kind] if isinstance(e, dict)]
    for entry in entries:
        if "symbol" in entry:
            entry["symbol"] = text(entry["symbol"])
    for key in ("no_buy", "no_sell", "no_trade"):
        if isinstance(data.get(key), list):
            data[key] = [text(v) for v in data[key]]
