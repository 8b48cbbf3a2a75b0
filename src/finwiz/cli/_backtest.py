"""``finwiz backtest PORTFOLIO_FILE --prices ... --policy ... [--report out.html]``.

Policies on the command line (repeat ``--policy``; each is one row of the comparison):

* ``never``; ``weekly``, ``monthly``, ``quarterly``, ``yearly``; ``calendar:M`` or ``calendar:21``
  (every 21 trading days);
* ``band:0.05`` (checked daily) or ``band:0.05,check=W``;
* ``optimized`` or ``optimized:minimize_costs,every=M,max_turnover=0.2``: the engine, with any
  ``key=value`` configuration override (numbers, ``true``/``false``).

Any policy also takes overrides after a comma, e.g. ``monthly,transaction_cost_rate=0.002``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from finwiz.cli._files import UsageError, check_outputs, source_file, terminal_text
from finwiz.errors import InvalidPortfolioError

__all__ = ["add_backtest_parser", "cash_flow_series", "parse_policy", "price_table"]

_CALENDAR = {"weekly": "W", "monthly": "M", "quarterly": "Q", "yearly": "Y", "annual": "Y"}
_POLICY_HELP = (
    "never | monthly | quarterly | yearly | calendar:M|N | band:TOL[,check=W] | optimized[:METHOD,every=M,...]"
)


def _value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text.strip()


def parse_policy(spec: str) -> Any:
    """A policy object from its command-line form (see the module docstring)."""
    from finwiz.backtest import BandRebalance, CalendarRebalance, NeverRebalance, OptimizedRebalance

    head, _, rest = spec.partition(":")
    kind = head.strip().lower()
    parts = [p for p in (rest.split(",") if rest else []) if p.strip()]
    if "," in kind:  # "monthly,transaction_cost_rate=0.002"
        kind, *more = kind.split(",")
        parts = more + parts
    positional = [p for p in parts if "=" not in p]
    options = {k.strip(): _value(v) for k, _, v in (p.partition("=") for p in parts if "=" in p)}
    try:
        if kind == "never" and not positional:
            return NeverRebalance(**options)
        if kind in _CALENDAR and not positional:
            return CalendarRebalance(_CALENDAR[kind], **options)
        if kind == "calendar" and len(positional) == 1:
            return CalendarRebalance(_value(positional[0]), **options)
        if kind == "band" and len(positional) == 1:
            check = options.pop("check", "D")
            return BandRebalance(float(positional[0]), check_every=check, **options)
        if kind == "optimized" and len(positional) <= 1:
            every = options.pop("every", "M")
            method = positional[0].strip() if positional else "minimize_trades"
            return OptimizedRebalance(method, every=every, **options)
    except ValueError as exc:
        raise UsageError(f"--policy {spec!r}: {exc}") from exc
    raise UsageError(f"--policy {spec!r} is not a policy; use {_POLICY_HELP}")


def price_table(source: str, *, date_format: str | None = None, option: str = "--prices") -> pd.DataFrame:
    """``sample`` (the bundled 20 stocks) or ``csv:PATH`` (wide ``Date,AAPL,...`` or long
    ``symbol,date,price``, gzip allowed) as a DataFrame of dates x symbols.

    Text dates are read with ``date_format`` (e.g. ``%d/%m/%Y``) when given, else as ISO dates or
    in a format whose day and month cannot be swapped; ambiguous dates (``01/03/2024``) and a date
    given twice (for one symbol, in the long form) are refused by name; a source that is missing
    or not a regular file of at most 64 MiB is a :class:`UsageError` (exit 2)."""
    from finwiz.backtest._data import parse_dates

    if source == "sample":
        from finwiz.data import sample_price_history

        return sample_price_history()
    if not source.startswith("csv:") or not source[4:]:
        raise UsageError(f"unknown price source {source!r} for a backtest; use sample or csv:PATH")
    path = source_file(source[4:], option)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InvalidPortfolioError(f"{path}: cannot read the price table ({exc})", field="prices") from exc
    what = f"{path}"
    lower = {str(c).strip().lower(): c for c in frame.columns}
    if {"symbol", "date", "price"} <= set(lower):
        date, symbol, price = lower["date"], lower["symbol"], lower["price"]
        frame[date] = parse_dates(frame[date], f"{what}, column {date}", date_format)
        twice = frame.duplicated([symbol, date])
        if twice.any():
            row = frame[twice].iloc[0]
            raise InvalidPortfolioError(
                f"{what}: {row[symbol]} has two prices on {row[date].date()}", field="prices", symbol=str(row[symbol])
            )
        return frame.pivot(index=date, columns=symbol, values=price)
    if frame.columns.empty:
        raise InvalidPortfolioError(f"{what}: the price table is empty", field="prices")
    first = frame.columns[0]
    table = frame.set_index(first)
    table.index = parse_dates(table.index, f"{what}, column {first}", date_format)
    repeated = table.index.duplicated()
    if repeated.any():
        raise InvalidPortfolioError(f"{what}: date {table.index[repeated][0].date()} appears twice", field="prices")
    return table


def _write_metrics(metrics: pd.DataFrame, out: Any) -> None:
    if metrics.empty:
        out.write("no policy could run\n")
        return
    shown = metrics[
        [
            "final_value",
            "annual_return",
            "volatility",
            "max_drawdown",
            "sharpe",
            "tracking_error",
            "mean_drift",
            "turnover_per_year",
            "costs_per_year",
            "costs_bp_per_year",
        ]
    ].copy()
    shown.insert(len(shown.columns), "trades", metrics["trades"])
    shown.insert(len(shown.columns), "failed", metrics["failed_rebalances"])
    formats = {
        "final_value": "{:,.2f}".format,
        "annual_return": "{:.2%}".format,
        "volatility": "{:.2%}".format,
        "max_drawdown": "{:.2%}".format,
        "sharpe": "{:.2f}".format,
        "tracking_error": "{:.2%}".format,
        "mean_drift": "{:.2%}".format,
        "turnover_per_year": "{:.1%}".format,
        "costs_per_year": "{:,.2f}".format,
        "costs_bp_per_year": "{:.2f}".format,
    }
    out.write(terminal_text(shown.to_string(formatters=formats)) + "\n")


def cash_flow_series(path: str, *, date_format: str | None = None) -> pd.Series:
    """A ``date,amount`` CSV (a deposit > 0, a withdrawal < 0; header names in any case) as the
    Series ``Backtest(cash_flows=...)`` takes; dates are read as the price table's
    (``date_format``), amounts must be numbers (refused naming the row), a date given twice is
    refused (give one net amount)."""
    from finwiz.backtest._data import parse_dates

    file = source_file(path, "--cash-flows")
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except (OSError, ValueError) as exc:
        raise InvalidPortfolioError(f"{file}: cannot read the cash flows ({exc})", field="cash_flows") from exc
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if set(columns) != {"date", "amount"}:
        raise InvalidPortfolioError(
            f"{file}: a cash-flow CSV has the columns date,amount, not {','.join(map(str, frame.columns))}",
            field="cash_flows",
        )
    dates, amounts = frame[columns["date"]].str.strip(), frame[columns["amount"]].str.strip()
    numbers = pd.to_numeric(amounts, errors="coerce")
    bad = numbers.isna() | ~numbers.abs().lt(float("inf"))
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise InvalidPortfolioError(
            f"{file}, row {row + 2}, column amount: {amounts.iloc[row]!r} is not a finite number", field="cash_flows"
        )
    when = parse_dates(pd.Index(dates), f"{file}, column date", date_format)
    if when.has_duplicates:
        raise InvalidPortfolioError(
            f"{file}: date {when[when.duplicated()][0].date()} appears twice; give one net amount", field="cash_flows"
        )
    return pd.Series(numbers.to_numpy(float), index=when, name="cash_flow")


def _run(args: argparse.Namespace) -> int:
    from finwiz.backtest import Backtest
    from finwiz.cli._portfolio_file import input_files, load_portfolio_file

    report = Path(args.report) if args.report else None
    if report is not None and (report.is_dir() or not report.parent.is_dir()):
        raise UsageError(f"cannot write the report to {str(report)!r}: no such directory or a directory")
    inputs = [("the portfolio file", path) for path in input_files(args.portfolio_file)]
    inputs.append(("the targets file", args.targets))
    if args.prices.startswith("csv:") and args.prices[4:]:
        inputs.append(("the --prices file", args.prices[4:]))
    inputs.append(("the --volumes file", args.volumes))
    inputs.append(("the --cash-flows file", args.cash_flows))
    check_outputs({"--report": report}, inputs)
    policies = {spec: parse_policy(spec) for spec in (args.policy or ["monthly"])}
    config = load_portfolio_file(args.portfolio_file, targets=args.targets, cash=args.cash)
    prices = price_table(args.prices, date_format=args.date_format)
    volumes = (
        price_table(f"csv:{args.volumes}", date_format=args.date_format, option="--volumes") if args.volumes else None
    )
    flows = cash_flow_series(args.cash_flows, date_format=args.date_format) if args.cash_flows else None
    backtest = Backtest(
        prices,
        initial=config,
        volumes=volumes,
        start=args.start,
        end=args.end,
        cash_flows=flows,
        risk_free_rate=args.risk_free_rate,
    )
    if not args.quiet:
        first, last = backtest.prices.index[0].date(), backtest.prices.index[-1].date()
        sys.stderr.write(
            f"Backtesting {len(policies)} policies over {len(backtest.prices)} days ({first} to {last})...\n"
        )
    # A bar of rebalance dates where someone watches (a terminal), none in logs and pipes.
    comparison = backtest.compare(policies, progress=not args.quiet and sys.stderr.isatty())
    _write_metrics(comparison.metrics, sys.stdout)
    for name, message in comparison.failures.items():
        sys.stdout.write(terminal_text(f"{name}: failed: {message}") + "\n")
    for name, result in comparison.results.items():
        if len(result.failures):
            first_failure = result.failures.iloc[0]
            line = f"{name}: {len(result.failures)} failed rebalances (first: {first_failure['reason']})"
            sys.stdout.write(terminal_text(line) + "\n")
    if report is not None:
        comparison.write_html(report, title=f"Backtest of {Path(args.portfolio_file).name}")
        sys.stdout.write(terminal_text(f"Report written to {report.resolve()}") + "\n")
    return 1 if comparison.failures else 0


def add_backtest_parser(commands: Any) -> None:
    """Add the ``backtest`` subcommand to the ``finwiz`` parser's subcommands."""
    parser = commands.add_parser(
        "backtest",
        help="play rebalancing policies over a price history and compare them",
        description="Start from the book in PORTFOLIO_FILE (TOML or YAML, the fields of "
        "PortfolioConfiguration) on the first date and play each --policy over the price history: "
        "whole shares, costs, market impact with --volumes. Prints one row of metrics per policy.",
    )
    from finwiz.cli._holdings_csv import add_holdings_options

    parser.add_argument(
        "portfolio_file",
        metavar="PORTFOLIO_FILE",
        help="portfolio .toml, .yaml or .yml, or a holdings .csv (symbol,shares[,target_weight][,sector])",
    )
    add_holdings_options(parser)
    parser.add_argument("--prices", default="sample", metavar="SOURCE", help="sample | csv:PATH (default: sample)")
    parser.add_argument("--policy", action="append", metavar="POLICY", help=f"{_POLICY_HELP} (repeatable)")
    parser.add_argument("--volumes", metavar="PATH", help="CSV of daily dollar volumes (dates x symbols)")
    parser.add_argument(
        "--date-format",
        metavar="FORMAT",
        help="strftime format of the CSV dates, e.g. %%d/%%m/%%Y (needed when day and month could be swapped)",
    )
    parser.add_argument(
        "--cash-flows",
        metavar="PATH",
        help="CSV of dated deposits (> 0) and withdrawals (< 0): date,amount",
    )
    parser.add_argument(
        "--risk-free-rate",
        type=float,
        default=0.0,
        metavar="RATE",
        help="annual risk-free rate of the Sharpe ratio, e.g. 0.03 (default: 0)",
    )
    parser.add_argument("--start", metavar="DATE", help="first date (default: the first of the prices)")
    parser.add_argument("--end", metavar="DATE", help="last date (default: the last of the prices)")
    parser.add_argument("--report", metavar="PATH", help="write the comparison as a self-contained HTML report")
    parser.set_defaults(handler=_run)
