"""The household report (#25): the household's figures, the location table, one section per account."""

from __future__ import annotations

import re

import pytest

from finwiz import Account, Holding, Household, rebalance_household
from finwiz.reporting import household_report_html


def test_the_report_has_the_location_table_and_a_section_per_account() -> None:
    household = Household(
        accounts=[
            Account(account_id="joint", kind="taxable", holdings=[Holding(symbol="BND", shares=600)]),
            Account(account_id="ira<1>", kind="traditional", holdings=[Holding(symbol="VTI", shares=400)]),
        ],
        target_weights={"BND": 0.3, "VTI": 0.7},
        tax_drag={"BND": {"taxable": 0.012}, "VTI": {"taxable": 0.002}},
        transaction_cost_rate=0.0,
    )
    result = rebalance_household(household, {"BND": 100.0, "VTI": 100.0})
    page = household_report_html(result)
    assert 'id="account-joint"' in page
    assert 'id="account-ira&lt;1&gt;"' in page  # escaped
    assert "ira<1>" not in page
    table = page.split('id="location"')[1].split("</table>")[0]
    head, body = table.split("</thead>")
    columns = re.findall(r"<th>(.*?)</th>", head.split("</tr>")[0])[1:]
    location = {
        re.findall(r"<th>(.*?)</th>", row)[0]: dict(zip(columns, re.findall(r"<td>(.*?)</td>", row), strict=True))
        for row in body.split("</tr>")[:-1]
    }
    assert location["BND"]["ira&lt;1&gt;"] == "30,000.00"
    assert location["BND"]["joint"] == "0.00"
    assert location["VTI"]["household weight"] == f"{result.weights_after['VTI']:.2%}"
    assert f"{result.tax_drag_after:,.2f}" in page
    assert result.tax_drag_after == pytest.approx(119.8)
