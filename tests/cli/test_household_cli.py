"""``finwiz rebalance household.toml`` (#25): a file with ``[[accounts]]`` is a household."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from finwiz.cli import main

HOUSEHOLD_TOML = """\
tolerance = 0.0
transaction_cost_rate = 0.0
target_weights = {AAPL = 0.4, JNJ = 0.4}

[tax_drag.JNJ]
taxable = 0.02

[[accounts]]
account_id = "joint"
kind = "taxable"
cash = 1000.0
[accounts.holdings]
JNJ = 200

[[accounts]]
account_id = "ira"
kind = "traditional"
cash = 20000.0
[accounts.holdings]
AAPL = 100
"""

pytestmark = pytest.mark.usefixtures("cli_sandbox")


def _household(tmp_path: Path, text: str = HOUSEHOLD_TOML) -> Path:
    path = tmp_path / "household.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _rebalance(capsys: pytest.CaptureFixture[str], path: Path, *options: str) -> tuple[int, str, str]:
    """``finwiz rebalance PATH --prices sample OPTIONS``: the status, stdout and stderr."""
    status = main(["rebalance", str(path), "--prices", "sample", *options])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_household_file_rebalances_every_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _household(tmp_path)
    status, out, _ = _rebalance(capsys, path, "--json", "h.json", "--csv", "h.csv")
    assert status == 0, out
    assert "Account joint (taxable)" in out
    assert "Account ira (traditional)" in out
    data = json.loads((tmp_path / "h.json").read_text(encoding="utf-8"))
    assert set(data["accounts"]) == {"joint", "ira"}
    assert data["weights_after"]["JNJ"] == pytest.approx(0.4, abs=0.02)
    assert data["tax_drag_after"] < data["tax_drag_before"]  # JNJ moved toward the IRA
    frame = pd.read_csv(tmp_path / "h.csv", index_col=["account", "symbol"])
    assert frame.loc[("ira", "JNJ"), "shares_after"] > 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="account-joint"' in page
    assert 'id="location"' in page


def test_a_household_file_with_an_account_twice_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _household(tmp_path, HOUSEHOLD_TOML.replace('account_id = "ira"', 'account_id = "JOINT"'))
    status, _, err = _rebalance(capsys, path)
    assert status == 1
    assert "household.toml" in err
    assert "listed twice" in err


def test_options_a_household_file_does_not_take_yet_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _household(tmp_path)
    status, _, err = _rebalance(capsys, path, "--orders", "o.csv")
    assert status == 2
    assert "--orders" in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--mode", "buy_only"), ("--exposures", "exposures.csv")], ids=["mode", "exposures"]
)
def test_mode_and_exposures_are_refused_for_a_household_file_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    path = _household(tmp_path)
    (tmp_path / "exposures.csv").write_text("symbol,exposure,weight\nAAPL,US,1\n", encoding="utf-8")
    status, _, err = _rebalance(capsys, path, option, value, "--json", "h.json")
    assert status == 2
    assert option in err
    assert not (tmp_path / "h.json").exists()


@pytest.mark.parametrize("option", ["--json", "--csv", "--report"])
def test_an_output_on_the_household_file_is_refused_and_the_file_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    path = _household(tmp_path)
    status, _, err = _rebalance(capsys, path, option, str(path))
    assert status == 2
    assert "would overwrite the portfolio file" in err
    assert path.read_text(encoding="utf-8") == HOUSEHOLD_TOML


def test_a_household_with_symbols_the_price_source_lacks_fails_in_one_short_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    many = ", ".join(f"ZZ{i} = 0.01" for i in range(12))
    path = _household(tmp_path, HOUSEHOLD_TOML.replace("JNJ = 0.4}", f"JNJ = 0.2, {many}}}"))
    status, _, err = _rebalance(capsys, path, "--no-report")
    assert status == 1
    assert "12 of 14 symbols unknown to the sample provider" in err
    assert "and 7 more" in err


def test_each_account_s_trades_are_the_single_account_blotter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _household(tmp_path)
    status, out, _ = _rebalance(capsys, path, "--json", "h.json", "--no-report")
    assert status == 0
    data = json.loads((tmp_path / "h.json").read_text(encoding="utf-8"))
    blocks = out.split("Account ")[1:]
    assert len(blocks) == 2
    for block in blocks:
        account_id = block.split(" ", 1)[0]
        lines = block.splitlines()
        assert lines[1].split()[:3] == ["Symbol", "Side", "Shares"]
        rows = [line.split() for line in lines[3:] if line.startswith("  ") and not line.startswith("  Net ")]
        rows = [r for r in rows if r[0] != "cash"]
        traded = {(t["symbol"], t["action"].upper()) for t in data["accounts"][account_id]["trades"]}
        assert {(r[0], r[1]) for r in rows} == traded
