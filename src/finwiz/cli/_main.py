"""The ``finwiz`` command line: ``finwiz demo``, ``finwiz rebalance PORTFOLIO_FILE`` and
``finwiz backtest PORTFOLIO_FILE`` (in ``finwiz.cli._backtest``).

Errors print one line on stderr (no traceback unless ``--debug``) and set the exit status:
0 success, 1 refused input or no feasible trades (any finwiz error), 2 bad command line (an
unknown or missing ``--prices`` source, an output path in a missing folder or naming an input
or another output's file), 3 unexpected internal error, 130 interrupted (Ctrl-C anywhere: one line, no traceback).
Outputs never overwrite an input nor each other; ``--csv`` cells that a spreadsheet would run as
formulas are neutralised; text printed to the terminal has its control characters removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from finwiz.cli._files import UsageError, check_outputs, csv_safe, source_file, terminal_text
from finwiz.cli._files import write_text as _write_text
from finwiz.cli._holdings_csv import add_holdings_options
from finwiz.cli._prices import terminal_orchestrator
from finwiz.errors import FinwizError
from finwiz.schemas import REBALANCING_MODES, PortfolioConfiguration, RebalancingMethod, RebalancingResult
from finwiz.settings import RebalancingSettings

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FINWIZ_ERROR, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_METHODS = [m.value for m in RebalancingMethod]
_PRICE_SOURCES = "sample | csv:PATH | yahoo | alpha_vantage"


class _Progress:
    """Price-fetch progress on stderr as a tqdm bar; nothing at all with ``--quiet``."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream, self.quiet = stream, quiet
        self._bar: Any = None

    def begin(self, count: int, source: str) -> None:
        from tqdm.auto import tqdm

        self.end()
        self._bar = tqdm(
            total=count,
            desc=f"Fetching prices for {count} symbol{'' if count == 1 else 's'} from {source}",
            unit="symbol",
            file=self.stream,
            disable=self.quiet,
            dynamic_ncols=True,
        )

    def __call__(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._bar.n)

    def end(self) -> None:
        """Close the bar (idempotent: also called when the fetch fails)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _settings_for(prices: str | None) -> RebalancingSettings:
    """Settings from the environment, with ``--prices`` overriding the provider."""
    settings = RebalancingSettings()
    if prices is None:
        return settings
    if prices.startswith("csv:"):
        path = prices[len("csv:") :]
        if not path:
            raise UsageError("--prices csv:PATH needs a file path after 'csv:'")
        source_file(path, "--prices")
        return settings.model_copy(update={"price_provider": "csv", "csv_price_path": path, "fallback_providers": []})
    if prices == "csv":
        raise UsageError("--prices csv needs a file: use --prices csv:PATH")
    if prices not in ("sample", "yahoo", "alpha_vantage"):
        raise UsageError(f"unknown price source {prices!r}; use {_PRICE_SOURCES}")
    return settings.model_copy(update={"price_provider": prices, "fallback_providers": []})


def _check_writable(path: Path, what: str) -> None:
    """Refuse an output path before any work, so a typo does not cost a solve."""
    if path.is_dir():
        raise UsageError(f"cannot write {what} to {str(path)!r}: it is a directory")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {what} to {str(path)!r}: directory {str(path.parent)!r} does not exist")


def _result_json(result: RebalancingResult) -> str:
    """The full result as JSON, with each trade's ``trade_value`` signed like ``to_frame()``'s
    (negative for a sell) and its signed ``trade_shares`` beside ``shares`` and ``action``."""
    data = json.loads(result.model_dump_json())
    for trade, dumped in zip(result.trades, data["trades"], strict=True):
        dumped["trade_shares"] = trade.signed_shares
        dumped["trade_value"] = trade.signed_trade_value
    return json.dumps(data, indent=2) + "\n"


async def _run(
    config: PortfolioConfiguration,
    settings: RebalancingSettings,
    portfolio_id: str,
    report: Path | None,
    quiet: bool,
) -> tuple[RebalancingResult, Path | None]:
    progress = _Progress(sys.stderr, quiet)
    async with terminal_orchestrator(settings, progress, write_reports=report is not None) as orchestrator:

        def on_started(event: object) -> None:
            chain = " -> ".join([settings.price_provider, *settings.fallback_providers])
            progress.begin(len(config.symbols), chain)

        orchestrator.event_bus.subscribe("rebalancing_started", on_started)
        # The engine labels the result in config.currency; fetch_prices refuses other currencies.
        result = await orchestrator.rebalance_portfolio(config, portfolio_id, report_path=report)
    return result, orchestrator.last_report_path


def _print_result(result: RebalancingResult, report: Path | None, out: TextIO) -> None:
    from finwiz.reporting import lots_table, summary_text, trades_table

    lots = lots_table(result)  # a tax-aware rebalance: the lots its sells relieve
    text = trades_table(result) + "\n\n" + (f"Lots sold\n{lots}\n\n" if lots else "") + summary_text(result)
    out.write(terminal_text(text) + "\n")
    if report is not None:
        out.write(terminal_text(f"\nReport written to {report.resolve()}") + "\n")


def _demo(args: argparse.Namespace) -> int:
    from finwiz.cli._demo import DEMO_SECTOR_CAP, demo_configuration
    from finwiz.data import SAMPLE_ATTRIBUTION

    report = None if args.no_report else Path(args.report)
    if report is not None:
        _check_writable(report, "the report")
    config = demo_configuration()
    if not args.quiet:
        sys.stderr.write(
            f"Demo: rebalancing a drifted $1M portfolio of 20 S&P 500 stocks "
            f"under {DEMO_SECTOR_CAP:.0%} sector caps (bundled sample prices, offline).\n"
        )
    settings = RebalancingSettings().model_copy(update={"price_provider": "sample", "fallback_providers": []})
    result, written = asyncio.run(_run(config, settings, "demo", report, args.quiet))
    _print_result(result, written, sys.stdout)
    if not args.quiet:
        sys.stderr.write(SAMPLE_ATTRIBUTION + "\n")
    return EXIT_OK


def _rebalance(args: argparse.Namespace) -> int:
    from finwiz.cli._household import is_household_file, rebalance_household_file, refuse_single_account_options
    from finwiz.cli._portfolio_file import input_files, load_portfolio_file

    outputs = {
        "report": None if args.no_report else args.report,
        "JSON": args.json,
        "CSV": args.csv,
        "orders": args.orders,
    }
    for what, target in outputs.items():
        if target is not None:
            _check_writable(Path(target), f"the {what}")
    settings = _settings_for(args.prices)
    household = is_household_file(args.portfolio_file)  # households (#25): [[accounts]] in the file
    if household:
        refuse_single_account_options(args)
    inputs: list[tuple[str, str | Path | None]] = [("the portfolio file", Path(args.portfolio_file))]
    inputs += [("the lots file", path) for path in input_files(args.portfolio_file, lots=args.lots)[1:]]
    inputs.append(("the targets file", args.targets))
    inputs.append(("the exposures file", args.exposures))
    if settings.price_provider == "csv":
        inputs.append(("the price file", settings.csv_price_path))
    check_outputs(
        {"--report": outputs["report"], "--json": args.json, "--csv": args.csv, "--orders": args.orders}, inputs
    )
    if household:
        rebalance_household_file(args, settings)
        return EXIT_OK
    config = load_portfolio_file(
        args.portfolio_file,
        lots=args.lots,
        max_lots=settings.max_lots,
        targets=args.targets,
        cash=args.cash,
        exposures=args.exposures,
    )
    if args.method is not None:
        config = config.model_copy(update={"method": RebalancingMethod(args.method)})
    if args.mode is not None:
        config = config.model_copy(update={"mode": args.mode})
    portfolio_id = args.portfolio_id or Path(args.portfolio_file).stem
    report = None if args.no_report else Path(args.report)
    result, written = asyncio.run(_run(config, settings, portfolio_id, report, args.quiet))
    if args.json is not None:
        _write_text(Path(args.json), _result_json(result), "the JSON")
    if args.csv is not None:
        _write_text(Path(args.csv), csv_safe(result.to_frame()).to_csv(), "the CSV")
    if args.orders is not None:
        _write_text(
            Path(args.orders), csv_safe(result.orders()).to_csv(index=False, float_format="%.12g"), "the orders"
        )
    _print_result(result, written, sys.stdout)
    for what, target in (("JSON", args.json), ("CSV", args.csv), ("Orders", args.orders)):
        if target is not None:
            sys.stdout.write(terminal_text(f"{what} written to {Path(target).resolve()}") + "\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``finwiz`` command."""
    from finwiz import __version__

    parser = argparse.ArgumentParser(
        prog="finwiz",
        description="Rebalance a portfolio to its targets in whole shares, under costs and limits.",
        epilog="Exit status: 0 ok, 1 refused input or infeasible limits, 2 bad command line, "
        "3 internal error. Settings come from REBALANCING_* environment variables.",
    )
    parser.add_argument("--version", action="version", version=f"finwiz {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or notes on stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    from finwiz.cli._backtest import add_backtest_parser

    _add_demo_parser(commands)
    _add_rebalance_parser(commands)
    add_backtest_parser(commands)
    return parser


def _add_demo_parser(commands: Any) -> None:
    """Add the ``demo`` subcommand."""
    demo = commands.add_parser(
        "demo",
        help="rebalance a bundled 20-stock sample portfolio offline and write report.html",
        description="Rebalance a drifted $1M portfolio of the 20 bundled S&P 500 stocks under 30%% "
        "sector caps, print the trades and write an HTML report. Needs no network.",
    )
    demo.add_argument("--report", default="report.html", metavar="PATH", help="report path (default: %(default)s)")
    demo.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    demo.set_defaults(handler=_demo)


def _add_rebalance_parser(commands: Any) -> None:
    """Add the ``rebalance`` subcommand."""
    rebalance = commands.add_parser(
        "rebalance",
        help="rebalance the portfolio described in a TOML or YAML file",
        description="Rebalance the portfolio in PORTFOLIO_FILE (TOML or YAML with the fields of "
        "PortfolioConfiguration: holdings, cash, target_weights, limits, and for a taxable account "
        "a [tax] table and tax lots; or a custodian-style holdings CSV with the columns symbol, "
        "shares and optionally target_weight and sector, with --targets and --cash), print the "
        "trades and write the report (and optionally JSON, CSV and orders).",
    )
    rebalance.add_argument(
        "portfolio_file",
        metavar="PORTFOLIO_FILE",
        help="portfolio .toml, .yaml or .yml, or a holdings .csv (symbol,shares[,target_weight][,sector])",
    )
    add_holdings_options(rebalance)
    rebalance.add_argument(
        "--exposures",
        metavar="PATH",
        help="look-through exposures CSV (symbol,exposure,weight); replaces the file's exposures, "
        "whose caps and floors stay in the portfolio file",
    )
    rebalance.add_argument(
        "--prices",
        metavar="SOURCE",
        help=f"price source: {_PRICE_SOURCES} (default: REBALANCING_PRICE_PROVIDER or sample)",
    )
    rebalance.add_argument(
        "--lots",
        metavar="PATH",
        help="tax lots CSV (symbol,shares,cost_basis,acquired[,lot_id]); replaces the file's lots key",
    )
    rebalance.add_argument("--method", choices=_METHODS, help="override the file's rebalancing method")
    rebalance.add_argument(
        "--mode", choices=REBALANCING_MODES, help="override the file's mode: full, buy_only, sell_only, band_edge"
    )
    rebalance.add_argument("--portfolio-id", metavar="ID", help="name used in the report (default: file name)")
    rebalance.add_argument("--report", default="report.html", metavar="PATH", help="report path (default: %(default)s)")
    rebalance.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    rebalance.add_argument("--json", metavar="PATH", help="also write the full result as JSON")
    rebalance.add_argument("--csv", metavar="PATH", help="also write one row per asset as CSV")
    rebalance.add_argument(
        "--orders",
        metavar="PATH",
        help="also write the trades as market orders (CSV, sells before buys; see RebalancingResult.orders)",
    )
    rebalance.set_defaults(handler=_rebalance)


def _interrupted(exc: BaseException) -> bool:
    """``exc`` is, or was caused by, a Ctrl-C (a library may wrap it in its own error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    A Ctrl-C anywhere (parsing, reading files, fetching prices, solving) returns 130 after one
    line on stderr, never a traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        sys.stderr.write("finwiz: interrupted\n")
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    # Library warnings already reach the user through the result or the error line; show the
    # log only when debugging, so the terminal holds the trades and one line per problem.
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR, format="finwiz: %(name)s: %(message)s")
    try:
        status: int = args.handler(args)
    except KeyboardInterrupt:
        raise
    except UsageError as exc:
        if args.debug:
            raise
        sys.stderr.write(terminal_text(f"finwiz: error: {exc}") + "\n")
        return EXIT_USAGE
    except FinwizError as exc:
        return _failed(exc, args.debug, f"finwiz: error: {exc}", EXIT_FINWIZ_ERROR)
    except Exception as exc:
        message = f"finwiz: internal error: {type(exc).__name__}: {exc} (run with --debug for details)"
        return _failed(exc, args.debug, message, EXIT_INTERNAL)
    return status


def _failed(exc: Exception, debug: bool, message: str, status: int) -> int:
    """One line on stderr and ``status``: a wrapped Ctrl-C is an interruption, ``--debug`` re-raises."""
    if _interrupted(exc):
        raise KeyboardInterrupt from exc
    if debug:
        raise exc
    sys.stderr.write(terminal_text(message) + "\n")
    return status
