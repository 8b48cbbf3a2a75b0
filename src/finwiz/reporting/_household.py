"""A household's HTML report: the household's figures, the location table (each asset's value in
each account after the trades) and one section per account (its trades and figures)."""

from __future__ import annotations

import html

import pandas as pd

from finwiz.reporting._html import result_summary_html
from finwiz.schemas import HouseholdResult

__all__ = ["household_report_html"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:0.2em 0.6em;"
    "text-align:right}th{background:#f3f3f3}h2{margin-top:1.5em}"
)


def _location_table(result: HouseholdResult) -> str:
    frame = result.to_frame()
    if frame.empty:
        return "<p>No positions.</p>"
    values = frame["value_after"].unstack("account").fillna(0.0)
    values["household weight"] = pd.Series(result.weights_after)
    values["target"] = pd.Series(result.target_weights)
    formatters = {c: "{:,.2f}".format for c in values.columns if c not in ("household weight", "target")}
    formatters.update({"household weight": "{:.2%}".format, "target": "{:.2%}".format})
    return str(values.to_html(formatters=formatters, na_rep="", border=0))


def household_report_html(result: HouseholdResult, title: str = "Household rebalance") -> str:
    """The whole report as one self-contained HTML document."""
    name = html.escape(result.household_id or "")
    facts = [
        ("Value before / after", f"{result.value_before:,.2f} / {result.value_after:,.2f}"),
        (
            "Tracking distance before / after",
            f"{result.tracking_distance_before:.4f} / {result.tracking_distance_after:.4f}",
        ),
        ("Yearly tax drag before / after", f"{result.tax_drag_before:,.2f} / {result.tax_drag_after:,.2f}"),
        ("Estimated tax", f"{result.tax.estimated_tax:,.2f}" if result.tax is not None else "none (no taxable sales)"),
        ("Every limit holds", "yes" if result.is_compliant else "NO"),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    accounts = "".join(
        f'<section id="account-{html.escape(account_id)}"><h2>Account {html.escape(account_id)} '
        f"({html.escape(result.kinds[account_id])})</h2>{result_summary_html(account)}</section>"
        for account_id, account in result.accounts.items()
    )
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)} {name}</h1>"
        f'<section id="summary"><table>{rows}</table></section>'
        f'<section id="location"><h2>Where each asset is held (value after trading)</h2>'
        f"{_location_table(result)}</section>{accounts}"
        + (f'<section id="warnings"><h2>Warnings</h2><ul>{warnings}</ul></section>' if warnings else "")
        + "</body></html>"
    )
