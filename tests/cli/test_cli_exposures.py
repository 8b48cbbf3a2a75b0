"""``finwiz rebalance ... --exposures PATH``: look-through exposures from a
``symbol,exposure,weight`` CSV, their caps from the portfolio file, kept in the JSON result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finwiz.cli import main
from finwiz.cli._exposures_csv import read_exposures_csv
from finwiz.cli._portfolio_file import parse_portfolio_text
from finwiz.errors import InvalidPortfolioError
from tests.cli.conftest import PORTFOLIO_TOML

pytestmark = pytest.mark.usefixtures("cli_sandbox")

# The CLI tests' portfolio (a 60 % sector cap) with a tighter look-through cap on the same sector.
PORTFOLIO = PORTFOLIO_TOML + '\n[exposure_caps]\n"Information Technology" = 0.5\n'

EXPOSURES = """\
symbol,exposure,weight
AAPL,Information Technology,1
MSFT,Information Technology,1
JNJ,Health Care,1
"""


def test_exposures_from_a_csv_and_caps_from_the_file_bind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "acct.toml").write_text(PORTFOLIO, encoding="utf-8")
    (tmp_path / "exposures.csv").write_text(EXPOSURES, encoding="utf-8")
    status = main(["rebalance", "acct.toml", "--exposures", "exposures.csv", "--no-report", "--json", "r.json"])
    _, err = capsys.readouterr()
    assert status == 0, err
    result = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    after = result["post_trade_weights"]
    assert after["AAPL"] + after["MSFT"] <= 0.5 + 1e-9
    assert after["AAPL"] + after["MSFT"] > 0.49  # the targets ask for 0.6: the cap binds
    checks = {c["constraint"]: c for c in result["compliance"]}
    assert checks["exposure_cap[Information Technology]"]["satisfied"]


def test_without_the_csv_the_cap_names_the_missing_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "acct.toml").write_text(PORTFOLIO, encoding="utf-8")
    status = main(["rebalance", "acct.toml", "--no-report"])
    _, err = capsys.readouterr()
    assert status == 1
    assert "exposure_caps" in err
    assert "no exposures table" in err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("symbol,exposure,weight\nSPY,US,x\n", "row 2, column weight: 'x' is not a number"),
        ("symbol,exposure,weight\nSPY,US,0.5\nSPY,US,0.5\n", "row 3: SPY has exposure 'US' twice"),
        ("symbol,exposure,weight\nSPY,,0.5\n", "row 2, column exposure: empty"),
        ("symbol,exposure\nSPY,US\n", "missing column weight"),
        ("symbol,exposure,weight\n", "no rows"),
    ],
)
def test_a_bad_exposures_csv_is_refused_naming_the_row(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(InvalidPortfolioError, match=words):
        read_exposures_csv(tmp_path / "e.csv", text)


def test_a_symbol_outside_the_portfolio_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "acct.toml").write_text(PORTFOLIO, encoding="utf-8")
    (tmp_path / "exposures.csv").write_text(EXPOSURES + "SPY,Information Technology,0.3\n", encoding="utf-8")
    status = main(["rebalance", "acct.toml", "--exposures", "exposures.csv", "--no-report"])
    _, err = capsys.readouterr()
    assert status == 1
    assert "unknown symbol SPY" in err


def test_a_portfolio_file_may_hold_the_table_itself() -> None:
    text = (
        PORTFOLIO
        + '\n[exposures.AAPL]\n"Information Technology" = 1.0\n[exposures.MSFT]\n"Information Technology" = 1.0\n'
    )
    config = parse_portfolio_text(text, "toml")
    assert config.exposures == {"AAPL": {"Information Technology": 1.0}, "MSFT": {"Information Technology": 1.0}}
    assert config.exposure_caps == {"Information Technology": 0.5}


MODELS = """\
cash = 5000.0
tolerance = 0.0
target_weights = "growth"

[holdings]
AAPL = 100
JNJ = 100

[models.growth]
tech = 0.8
health = 0.2

[models.tech]
AAPL = 0.5
MSFT = 0.5

[models.health]
JNJ = 1.0
"""


def test_a_portfolio_file_names_a_blended_model_as_its_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = parse_portfolio_text(MODELS, "toml")
    assert config.target_weights == pytest.approx({"AAPL": 0.4, "MSFT": 0.4, "JNJ": 0.2})
    assert set(config.sleeves) == {"growth", "growth/tech", "growth/health"}
    (tmp_path / "acct.toml").write_text(MODELS, encoding="utf-8")
    assert main(["rebalance", "acct.toml", "--no-report", "--json", "r.json"]) == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert result["sleeve_weights"]["growth/health"] == {"JNJ": pytest.approx(0.2)}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (MODELS.replace("JNJ = 1.0", "growth = 1.0"), "a cycle growth -> health -> growth"),
        (MODELS.replace('target_weights = "growth"', 'target_weights = "value"'), "no model named 'value'"),
        (MODELS.replace('target_weights = "growth"\n', ""), "target_weights names no model"),
        (MODELS.replace("MSFT = 0.5", "MSFT = 0.4"), "model tech: weights sum to 0.9"),
    ],
)
def test_bad_models_in_a_file_are_refused_naming_the_file(text: str, words: str) -> None:
    with pytest.raises(InvalidPortfolioError, match=words) as caught:
        parse_portfolio_text(text, "toml", source="acct.toml")
    assert str(caught.value).startswith("acct.toml")
