"""The finwiz command line through main(argv) and through its entry point (python -m finwiz)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from finwiz.cli import main
from tests.cli.conftest import PORTFOLIO_TOML
from tests.reporting.conftest import parse_html

pytestmark = pytest.mark.usefixtures("cli_sandbox")


def test_demo_writes_report_in_current_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    report = tmp_path / "report.html"
    assert f"Report written to {report}" in out
    assert "Symbol  Side" in out
    assert "Fetching prices for 20 symbols from sample: 100%" in err  # tqdm's bar, on stderr only
    assert "20/20" in err
    assert "Fetching" not in out
    page = parse_html(report.read_text(encoding="utf-8"))
    assert page.section_ids[:7] == ["summary", "weights", "sectors", "trades", "costs", "compliance", "warnings"]
    assert len(page.images) == 2


def test_demo_report_option_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "demo", "--report", str(tmp_path / "out.html")]) == 0
    _, err = capsys.readouterr()
    assert err == ""
    assert (tmp_path / "out.html").exists()


def test_rebalance_with_json_and_csv(portfolio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            "rebalance",
            str(portfolio),
            "--prices",
            "sample",
            "--method",
            "minimize_costs",
            "--json",
            "r.json",
            "--csv",
            "r.csv",
        ]
    )
    out, _ = capsys.readouterr()
    assert status == 0, out
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["method"] == "minimize_costs"
    assert data["portfolio_id"] == "acct"
    frame = pd.read_csv(tmp_path / "r.csv", index_col="symbol")
    assert list(frame.index) == ["AAPL", "MSFT", "JNJ", "CASH"]
    assert (tmp_path / "report.html").exists()
    assert "JSON written to" in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("cash = 1\nholdings = = 2\n", "acct.toml: invalid TOML"),
        (PORTFOLIO_TOML.replace("cash = 10000.0", "cash = 10000.0\nbudget = 3"), "unknown key 'budget' (line 2)"),
        (PORTFOLIO_TOML.replace("MSFT = 20", 'MSFT = "twenty"'), "acct.toml (line 7)"),
        (PORTFOLIO_TOML.replace("AAPL = 0.3", "AAPL = 0.9"), "target_weights sum to"),
    ],
)
def test_bad_portfolio_files_give_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    path = tmp_path / "acct.toml"
    path.write_text(content, encoding="utf-8")
    assert main(["rebalance", str(path)]) == 1
    _, err = capsys.readouterr()
    assert expected in err
    assert err.startswith("finwiz: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_unknown_symbol_price_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "acct.yaml"
    path.write_text("cash: 1000\nholdings:\n  ZZZZ: 10\ntarget_weights:\n  ZZZZ: 0.5\n", encoding="utf-8")
    assert main(["rebalance", str(path), "--no-report"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    *progress, error = err.split("\n")[:-1]
    assert "Fetching prices for 1 symbol from sample" in progress[-1]
    # on its own line (the bar was closed first), short, and saying what to do
    assert error.startswith("finwiz: error: 1 of 1 symbol unknown to the sample provider (ZZZZ)")
    assert "--prices csv:PATH" in error
    assert err.count("\n") == 2


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--report", "missing/r.html"], "cannot write the report to 'missing/r.html'"),
        (["--json", "."], "cannot write the JSON to '.': it is a directory"),
        (["--prices", "bloomberg"], "unknown price source 'bloomberg'"),
        (["--prices", "csv:"], "csv:PATH needs a file path"),
        (["--prices", "csv:nope.csv"], "nope.csv"),
    ],
)
def test_bad_options_give_one_line(
    portfolio: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert main(["rebalance", str(portfolio), *argv]) == 2  # a bad command line (the README's 2)
    _, err = capsys.readouterr()
    assert expected in err
    assert "Traceback" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["rebalance"]) == 2
    assert main(["rebalance", "x.toml", "--method", "yolo"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_help_reads_well(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "demo" in text
    assert "rebalance" in text
    assert "Exit status" in text
    assert main(["rebalance", "--help"]) == 0
    assert "--prices SOURCE" in capsys.readouterr().out


def test_entry_point_runs_as_a_module(tmp_path: Path) -> None:
    env = {**os.environ, "REBALANCING_PRICE_PROVIDER": "sample", "REBALANCING_FALLBACK_PROVIDERS": "[]"}

    def finwiz(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "finwiz", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)

    done = finwiz("demo", "--report", "demo.html")
    assert done.returncode == 0, done.stderr
    assert "Report written to" in done.stdout
    assert (tmp_path / "demo.html").exists()
    bad = finwiz("rebalance", "absent.toml")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "finwiz: error: absent.toml: no such portfolio file"
