"""Template overrides: a user's folder replaces a built-in template or one block of it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from finwiz.errors import ConfigurationError
from finwiz.reporting import HTMLReportGenerator
from finwiz.schemas import RebalancingResult

from .conftest import EVIL_PORTFOLIO, parse_html

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_report.py"
BUILT_IN = ["summary", "weights", "sectors", "trades", "costs", "compliance", "warnings"]


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "templates"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_a_block_of_the_page_can_be_overridden(make_result: Callable[..., RebalancingResult], tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        {
            "report.html.j2": '{% extends "finwiz/report.html.j2" %}'
            '{% block footer %}<footer id="sign">Signed for {{ result.portfolio_id }}</footer>{% endblock %}'
        },
    )
    document = HTMLReportGenerator(template_dir=folder).generate_html(make_result(evil=True))
    page = parse_html(document)
    assert page.section_ids == BUILT_IN  # everything else is the built-in page
    assert f"Signed for {EVIL_PORTFOLIO}" in page.text
    assert "<img src=x" not in document  # the user's template is autoescaped too
    assert ("footer", {"id": "sign"}) in page.tags


def test_a_section_template_can_be_replaced(result: RebalancingResult, tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"sections/warnings.html.j2": "<p>{{ warnings | length }} notes</p>"})
    page = parse_html(HTMLReportGenerator(template_dir=[folder]).generate_html(result))
    assert "1 notes" in page.text
    assert "rounded 2 trades to whole shares" not in page.text
    assert page.section_ids == BUILT_IN


def test_folders_are_searched_in_order(result: RebalancingResult, tmp_path: Path) -> None:
    first = _folder(tmp_path / "a", {"sections/warnings.html.j2": "<p>first</p>"})
    second = _folder(tmp_path / "b", {"sections/warnings.html.j2": "<p>second</p>"})
    text = parse_html(HTMLReportGenerator(template_dir=[first, second]).generate_html(result)).text
    assert "first" in text
    assert "second" not in text


def test_risk_section_is_absent_until_its_block_is_filled(result: RebalancingResult, tmp_path: Path) -> None:
    assert "risk" not in parse_html(HTMLReportGenerator().generate_html(result)).section_ids
    folder = _folder(
        tmp_path,
        {
            "sections/risk.html.j2": '{% extends "finwiz/sections/risk.html.j2" %}'
            "{% block risk %}<p>Turnover {{ result.turnover | percent }}</p>{% endblock %}"
        },
    )
    page = parse_html(HTMLReportGenerator(template_dir=folder).generate_html(result))
    assert page.section_ids == ["summary", "weights", "sectors", "trades", "costs", "risk", "compliance", "warnings"]
    assert "Turnover 29.00%" in page.text
    assert ("a", {"href": "#risk"}) in page.tags


def test_risk_context_reaches_the_risk_block(result: RebalancingResult, tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"sections/risk.html.j2": "{% block risk %}<p>VaR {{ var | money }}</p>{% endblock %}"})

    class WithRisk(HTMLReportGenerator):
        def risk_context(self, result: RebalancingResult) -> dict[str, Any]:
            return {"var": 0.02 * result.portfolio_value_after}

    page = parse_html(WithRisk(template_dir=folder).generate_html(result))
    assert "risk" in page.section_ids
    assert f"VaR {0.02 * result.portfolio_value_after:,.2f}" in page.text


def test_template_errors_name_the_template(result: RebalancingResult, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is not a directory"):
        HTMLReportGenerator(template_dir=tmp_path / "missing")
    broken = _folder(tmp_path / "broken", {"report.html.j2": "line one\n{% block footer %}\n"})
    with pytest.raises(ConfigurationError, match=r"report\.html\.j2.*line 2"):
        HTMLReportGenerator(template_dir=broken).generate_html(result)
    typo = _folder(tmp_path / "typo", {"sections/costs.html.j2": "{{ no_such_name }}"})
    with pytest.raises(ConfigurationError, match="no_such_name"):
        HTMLReportGenerator(template_dir=typo).generate_html(result)


def test_render_escapes_for_custom_sections(make_result: Callable[..., RebalancingResult], tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"mine.html.j2": "<p class='mine'>{{ result.portfolio_id }}</p>"})
    generator = HTMLReportGenerator(template_dir=folder)
    result = make_result(evil=True)
    generator.add_section("Mine", generator.render("mine.html.j2", result=result), raw_html=True)
    document = generator.generate_html(result)
    assert "<p class='mine'>&lt;img src=x" in document


def test_templates_ship_as_package_data() -> None:
    root = resources.files("finwiz.reporting") / "templates"
    names = {"base.html.j2", "report.html.j2", "report.css", "report.js", "notebook.html.j2"}
    assert all((root / name).is_file() for name in names)
    for anchor in [*BUILT_IN, "risk", "custom"]:
        assert (root / "sections" / f"{anchor}.html.j2").is_file(), anchor


def test_custom_report_example_runs(tmp_path: Path) -> None:
    output = tmp_path / "custom.html"
    completed = subprocess.run(
        [sys.executable, str(EXAMPLE), str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "Report written to" in completed.stdout
    page = parse_html(output.read_text(encoding="utf-8"))
    assert page.section_ids == [*BUILT_IN, "section-1", "section-2"]
    assert page.headings[-2:] == ["Sector analysis", "Risk attribution"]
    assert "prepared for the investment committee" in page.text  # its header block
    assert "Approved by" in page.text  # its footer block
    assert "Equity <beta>: 82.0% of risk" in page.text  # escaped, read back as written
    assert page.title == "Enhanced Portfolio Rebalancing Report"
    sector_rows = page.tables["sector-analysis"][1:]
    assert sum(int(row[1]) for row in sector_rows) == 6
