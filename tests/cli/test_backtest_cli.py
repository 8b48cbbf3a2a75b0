"""``finwiz backtest`` through main(argv): policies from the command line, metrics, the report."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from finwiz.backtest import BandRebalance, CalendarRebalance, NeverRebalance, OptimizedRebalance
from finwiz.cli import main
from finwiz.cli._backtest import parse_policy
from finwiz.data import sample_price_history
from finwiz.errors import ConfigurationError

PORTFOLIO = """\
cash = 10000.0
tolerance = 0.0
min_trade_size = 0.0

[holdings]
AAPL = 3000
MSFT = 200
JNJ = 1000

[target_weights]
AAPL = 0.32
MSFT = 0.32
JNJ = 0.32
"""


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    path = tmp_path / "book.toml"
    path.write_text(PORTFOLIO, encoding="utf-8")
    return path


def test_policies_parse_from_their_command_line_form() -> None:
    assert isinstance(parse_policy("never"), NeverRebalance)
    monthly = parse_policy("monthly,transaction_cost_rate=0.002")
    assert isinstance(monthly, CalendarRebalance)
    assert (monthly.every, monthly.overrides) == ("M", {"transaction_cost_rate": 0.002})
    assert parse_policy("calendar:21").every == 21
    band = parse_policy("band:0.05,check=W")
    assert isinstance(band, BandRebalance)
    assert (band.tolerance, band.check_every) == (0.05, "W")
    optimized = parse_policy("optimized:minimize_costs,every=Q,max_turnover=0.2")
    assert isinstance(optimized, OptimizedRebalance)
    assert (optimized.method, optimized.every, optimized.overrides) == ("minimize_costs", "Q", {"max_turnover": 0.2})
    for bad in ("sometimes", "band", "band:x", "calendar:fortnight"):
        with pytest.raises(ConfigurationError, match=r"--policy|frequency"):
            parse_policy(bad)


def test_backtest_prints_one_row_per_policy_and_writes_the_report(
    portfolio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "out.html"
    status = main(
        [
            "backtest",
            str(portfolio),
            "--prices",
            "sample",
            "--start",
            "2015-01-01",
            "--end",
            "2018-12-31",
            "--policy",
            "monthly",
            "--policy",
            "band:0.05",
            "--policy",
            "optimized:minimize_costs,every=M",
            "--report",
            str(report),
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:6] == [
        "final_value",
        "annual_return",
        "volatility",
        "max_drawdown",
        "sharpe",
        "tracking_error",
    ]
    assert [line.split()[0] for line in lines[2:5]] == ["monthly", "band:0.05", "optimized:minimize_costs,every=M"]
    assert "Backtesting 3 policies over 1006 days (2015-01-02 to 2018-12-31)" in err
    html = report.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 3
    assert "optimized:minimize_costs,every=M" in html


def test_backtest_reads_a_csv_price_table(portfolio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prices = sample_price_history().loc["2020-01-01":"2020-12-31", ["AAPL", "MSFT", "JNJ"]]
    prices.to_csv(tmp_path / "prices.csv")
    assert main(["-q", "backtest", str(portfolio), "--prices", f"csv:{tmp_path / 'prices.csv'}"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[2].split()[0] == "monthly"  # the default policy


@pytest.mark.parametrize(
    ("argv", "message", "status"),
    [
        (["--policy", "sometimes"], "--policy 'sometimes' is not a policy", 2),
        (["--prices", "yahoo"], "unknown price source 'yahoo' for a backtest", 2),
        (["--prices", "csv:missing.csv"], "no such file", 2),
        (["--start", "2030-01-01"], "no dates between start and end", 1),
        (["--report", "/no/such/dir/out.html"], "cannot write the report", 2),
    ],
)
def test_backtest_errors_are_one_line_and_exit_1_or_2_for_a_bad_command_line(
    portfolio: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str, status: int
) -> None:
    assert main(["backtest", str(portfolio), *argv]) == status
    _, err = capsys.readouterr()
    assert err.startswith("finwiz: error: ")
    assert message in err
    assert "Traceback" not in err


def test_a_policy_that_cannot_run_is_reported_and_exits_1(portfolio: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["-q", "backtest", str(portfolio), "--start", "2020-01-01", "--policy", "monthly,no_such_field=1"]
    assert main(argv) == 1
    out, _ = capsys.readouterr()
    assert "no policy could run" in out
    assert "monthly,no_such_field=1: failed: PolicyError" in out
    assert "overrides are refused" in out


def test_a_symbol_missing_from_the_prices_is_named(
    portfolio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = sample_price_history().loc["2020", ["AAPL", "JNJ"]]
    prices.to_csv(tmp_path / "prices.csv")
    assert main(["backtest", str(portfolio), "--prices", f"csv:{tmp_path / 'prices.csv'}"]) == 1
    assert "no column for MSFT" in capsys.readouterr().err


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI for the browser test (apt-get install chromium)")
    pytest.skip("chromium is not installed (this test runs, and must pass, in CI)")


@pytest.mark.browser
def test_chromium_renders_the_comparison_report(portfolio: Path, tmp_path: Path) -> None:
    browser = _chromium()
    report = tmp_path / "out.html"
    argv = ["-q", "backtest", str(portfolio), "--start", "2019-01-01", "--policy", "monthly", "--policy", "never"]
    assert main([*argv, "--report", str(report)]) == 0
    screenshot = tmp_path / "report.png"
    completed = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={screenshot}",
            "--window-size=1280,1600",
            report.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    pixels = imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (1600, 1280)
    header = np.abs(pixels[:40] - np.array([0x1F, 0x3B, 0x57]) / 255.0).max(axis=-1) < 0.02
    assert header.mean() > 0.5, "the inline stylesheet was not applied"
    # The charts were decoded and drawn: many distinct colours below the header.
    body = pixels[300:1500].reshape(-1, 3)
    assert len(np.unique((body * 255).astype(np.uint8), axis=0)) > 50
    assert float(pixels.std()) > 0.05, "the screenshot is blank"
