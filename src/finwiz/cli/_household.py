"""``finwiz rebalance household.toml``: a household file (a portfolio file with ``[[accounts]]``)
rebalanced with :func:`finwiz.rebalance_household`; the trades per account on stdout, the result
as JSON (``--json``) and the account x asset frame as CSV (``--csv``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from finwiz.cli._file_syntax import parse_text
from finwiz.cli._files import UsageError, csv_safe, terminal_text, write_text
from finwiz.cli._portfolio_file import PORTFOLIO_FILE_SUFFIXES, _normalise_holdings, _read_input
from finwiz.cli._prices import terminal_orchestrator
from finwiz.errors import InvalidPortfolioError
from finwiz.schemas import Household, HouseholdResult
from finwiz.settings import RebalancingSettings

__all__ = ["is_household_file", "load_household_file", "rebalance_household_file", "refuse_single_account_options"]


def _data(path: Path) -> Any:
    fmt = PORTFOLIO_FILE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        return None
    return parse_text(_read_input(path, "portfolio file", "file", "utf-8"), fmt, str(path))


def is_household_file(path: str | Path) -> bool:
    """Whether ``path`` is a TOML/YAML file with an ``accounts`` list (a household)."""
    try:
        data = _data(Path(path))
    except InvalidPortfolioError:
        return False  # the portfolio loader says what is wrong
    return isinstance(data, dict) and isinstance(data.get("accounts"), list)


def load_household_file(path: str | Path) -> Household:
    """A :class:`Household` from a file: the household's fields at the top level, one
    ``[[accounts]]`` table per account (``holdings`` as a ``symbol = shares`` table or a list)."""
    file = Path(path)
    data = _data(file)
    if not isinstance(data, dict):
        raise InvalidPortfolioError(f"{file}: expected a table of household fields", field="file")
    for account in data.get("accounts", []):
        if isinstance(account, dict):
            _normalise_holdings(account, str(file))
    try:
        return Household(**data)
    except InvalidPortfolioError as exc:
        raise type(exc)(f"{file}: {exc}", field=exc.field, symbol=exc.symbol) from exc


async def _prices(settings: RebalancingSettings, symbols: list[str]) -> dict[str, float]:
    async with terminal_orchestrator(settings) as orchestrator:
        return await orchestrator.fetch_prices(symbols)


def _text(result: HouseholdResult) -> str:
    from finwiz.reporting import trades_table

    lines = []
    for account_id, account in result.accounts.items():
        lines.append(f"Account {account_id} ({result.kinds[account_id]})")
        table = trades_table(account).splitlines() if account.trades else ["no trades"]
        lines += [f"  {line}" for line in table]
        lines.append(f"  cash {account.cash_before:,.2f} -> {account.cash_after:,.2f}")
    lines.append(
        f"Household value {result.value_before:,.2f} -> {result.value_after:,.2f}; tracking distance "
        f"{result.tracking_distance_before:.4f} -> {result.tracking_distance_after:.4f}; yearly tax drag "
        f"{result.tax_drag_before:,.2f} -> {result.tax_drag_after:,.2f}"
    )
    return "\n".join(lines)


def refuse_single_account_options(args: argparse.Namespace) -> None:
    """Refuse the options of a single-account rebalance a household file does not take (yet)."""
    for option in ("lots", "targets", "cash", "orders", "mode", "exposures"):
        if getattr(args, option, None) is not None:
            raise UsageError(f"--{option} is not available for a household file (one with [[accounts]]) yet")


def rebalance_household_file(args: argparse.Namespace, settings: RebalancingSettings) -> HouseholdResult:
    """Load, price, rebalance; write ``--json``/``--csv``; print the trades per account. The
    caller has refused the options it does not take and outputs on its inputs."""
    from finwiz.optimizer import rebalance_household

    household = load_household_file(args.portfolio_file)
    symbols = list(
        dict.fromkeys([*(h.symbol for a in household.accounts for h in a.holdings), *household.target_weights])
    )
    prices = asyncio.run(_prices(settings, symbols))
    if args.method is not None:
        household = household.model_copy(update={"method": args.method})
    result = rebalance_household(household, prices)
    if args.json is not None:
        write_text(Path(args.json), result.model_dump_json(indent=2) + "\n", "the JSON")
    if args.csv is not None:
        write_text(Path(args.csv), csv_safe(result.to_frame()).to_csv(), "the CSV")
    sys.stdout.write(terminal_text(_text(result)) + "\n")
    if not args.no_report:
        from finwiz.reporting import household_report_html

        report = Path(args.report)
        write_text(report, household_report_html(result), "the report")
        sys.stdout.write(terminal_text(f"Report written to {report.resolve()}") + "\n")
    return result
