"""Portfolio files: TOML and YAML, both holdings forms, and errors that name file, line, key."""

from __future__ import annotations

from pathlib import Path

import pytest

from finwiz.cli._portfolio_file import load_portfolio_file, parse_portfolio_text
from finwiz.errors import InvalidPortfolioError

TOML = """\
cash = 5000.0
method = "minimize_costs"
max_sector_weight = 0.6

[[holdings]]
symbol = "aapl"
shares = 10

[[holdings]]
symbol = "MSFT"
shares = 5

[target_weights]
AAPL = 0.5
MSFT = 0.4

[sectors]
AAPL = "Information Technology"
MSFT = "Information Technology"
"""

YAML = """\
cash: 5000.0
holdings:
  AAPL: 10
  MSFT: 5
target_weights:
  AAPL: 0.5
  MSFT: 0.4
"""


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TOML, encoding="utf-8")
    config = load_portfolio_file(path)
    assert config.shares_by_symbol() == {"AAPL": 10.0, "MSFT": 5.0}
    assert config.cash == 5000.0
    assert config.max_sector_weight == 0.6
    assert config.method == "minimize_costs"


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_file_with_short_holdings(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"p{suffix}"
    path.write_text(YAML, encoding="utf-8")
    config = load_portfolio_file(path)
    assert config.shares_by_symbol() == {"AAPL": 10.0, "MSFT": 5.0}
    assert config.target_weights == {"AAPL": 0.5, "MSFT": 0.4}


def test_bad_toml_names_file_and_line() -> None:
    with pytest.raises(InvalidPortfolioError, match=r"p\.toml: invalid TOML: .*line 2"):
        parse_portfolio_text("cash = 1\nholdings = = 3\n", "toml", source="p.toml")


def test_bad_yaml_names_file_and_line() -> None:
    text = "cash: 1\nholdings:\n  - symbol: A\n bad: [\n"
    with pytest.raises(InvalidPortfolioError, match=r"p\.yaml: invalid YAML at line 4"):
        parse_portfolio_text(text, "yaml", source="p.yaml")


def test_unknown_key_is_named_with_its_line() -> None:
    text = TOML.replace("cash = 5000.0", "cash = 5000.0\ncahs = 1.0")
    with pytest.raises(InvalidPortfolioError, match=r"p\.toml: unknown key 'cahs' \(line 2\)"):
        parse_portfolio_text(text, "toml", source="p.toml")


def test_wrong_type_names_the_key_and_line() -> None:
    text = TOML.replace("cash = 5000.0", 'cash = "lots"')
    with pytest.raises(InvalidPortfolioError, match=r"p\.toml \(line 1\): .*invalid cash"):
        parse_portfolio_text(text, "toml", source="p.toml")


def test_wrong_share_type_points_at_the_symbol() -> None:
    text = YAML.replace("MSFT: 5", "MSFT: five")
    with pytest.raises(InvalidPortfolioError, match=r"p\.yaml \(line 4\): .*shares.*MSFT"):
        parse_portfolio_text(text, "yaml", source="p.yaml")


def test_custom_constraints_are_refused_with_a_hint() -> None:
    with pytest.raises(InvalidPortfolioError, match="max_sector_weight"):
        parse_portfolio_text(YAML + "custom_constraints: [x]\n", "yaml", source="p.yaml")


def test_top_level_must_be_a_table() -> None:
    with pytest.raises(InvalidPortfolioError, match="top level"):
        parse_portfolio_text("- 1\n- 2\n", "yaml", source="p.yaml")


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidPortfolioError, match="no such portfolio file"):
        load_portfolio_file(tmp_path / "absent.toml")
    with pytest.raises(InvalidPortfolioError, match=r"unsupported portfolio file type '\.json'"):
        load_portfolio_file(tmp_path / "p.json")
