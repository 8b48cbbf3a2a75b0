"""The report as a real browser renders it: headless Chromium lays it out, runs it, screenshots it.

Set ``FINWIZ_SCREENSHOTS=DIR`` to keep the screenshots (``report-20.png``, ``report-431.png``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from finwiz.reporting import HTMLReportGenerator
from finwiz.schemas import RebalancingResult

from .conftest import build_large_result

HEADER_RGB = np.array([0x1F, 0x3B, 0x57]) / 255.0  # the report header's background colour
SECTIONS = ["summary", "weights", "sectors", "trades", "costs", "compliance", "warnings"]
WIDTH = 1280

# Appended to a copy of the report: measures the laid-out page after the report's own script ran,
# exercises the sorter and the filter, and writes what it saw into the DOM for --dump-dom.
PROBE = """
<script>
(function () {
  var out = {innerWidth: window.innerWidth};
  Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) { d.open = true; });
  out.scrollWidth = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
  out.sections = Array.prototype.map.call(document.querySelectorAll("main > section"), function (s) {
    var box = s.getBoundingClientRect();
    return {id: s.id, height: box.height, right: box.right};
  });
  out.innerOverflow = Array.prototype.filter.call(document.querySelectorAll(".table-wrap"), function (w) {
    return w.scrollWidth > w.clientWidth + 1;
  }).map(function (w) { return w.querySelector("table").id; });
  out.images = Array.prototype.map.call(document.images, function (i) {
    return {natural: i.naturalWidth, shown: i.getBoundingClientRect().width};
  });
  var table = document.getElementById("trades-table");
  function values(column) {
    var seen = [];
    Array.prototype.forEach.call(table.tBodies, function (body) {
      var group = [];
      Array.prototype.forEach.call(body.rows, function (row) {
        if (!row.classList.contains("group") && !row.hidden) {
          group.push(parseFloat(row.cells[column].getAttribute("data-value")));
        }
      });
      seen.push(group);
    });
    return seen;
  }
  var value = table.tHead.rows[0].cells[5].querySelector("button");
  out.hasSortButtons = value !== null;
  value.click();
  out.firstSort = values(5);
  value.click();
  out.secondSort = values(5);
  var input = document.querySelector("#trades .table-tools input");
  input.value = "sell";
  input.dispatchEvent(new Event("input"));
  out.afterFilter = values(5);
  out.counter = document.querySelector("#trades .table-tools span").textContent;
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}());
</script>
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI for the browser test (apt-get install chromium)")
    pytest.skip("chromium is not installed (this test runs, and must pass, in CI)")


def _run(browser: str, profile: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
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
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed


def _probe(browser: str, report: Path, tmp_path: Path) -> dict[str, Any]:
    probed = tmp_path / f"probe-{report.name}"
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    completed = _run(
        browser,
        tmp_path / "profile-probe",
        "--dump-dom",
        "--virtual-time-budget=10000",
        f"--window-size={WIDTH},900",
        probed.resolve().as_uri(),
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', completed.stdout, re.DOTALL)
    assert found, "the probe did not run: " + completed.stdout[-500:]
    data: dict[str, Any] = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    return data


def _screenshot(browser: str, report: Path, tmp_path: Path, height: int) -> np.ndarray:
    shot = tmp_path / f"{report.stem}.png"
    _run(
        browser,
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        f"--window-size={WIDTH},{height}",
        report.resolve().as_uri(),
    )
    keep = os.environ.get("FINWIZ_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    pixels: np.ndarray = imread(shot)[..., :3]
    return pixels


@pytest.mark.browser
@pytest.mark.parametrize("n_assets", [20, 431])
def test_report_fits_1280_px_with_every_section_and_working_tables(n_assets: int, tmp_path: Path) -> None:
    browser = _chromium()
    result: RebalancingResult = build_large_result(n_assets, min(145, n_assets * 2 // 3))
    report = HTMLReportGenerator().write(result, tmp_path / f"report-{n_assets}.html")
    seen = _probe(browser, report, tmp_path)

    assert seen["innerWidth"] == WIDTH
    assert seen["scrollWidth"] <= WIDTH, "the page scrolls sideways"
    assert seen["innerOverflow"] == [], "a table scrolls sideways inside its box"
    assert [s["id"] for s in seen["sections"]] == SECTIONS
    assert all(s["height"] > 40 and s["right"] <= WIDTH for s in seen["sections"])
    # Charts are drawn at their natural size, so their 10 pt labels are not shrunk.
    assert len(seen["images"]) == 2
    assert all(i["natural"] > 0 and i["shown"] >= 0.99 * i["natural"] for i in seen["images"])

    # The sorter: first click on Value sorts each sector group descending, the second ascending.
    assert seen["hasSortButtons"]
    groups = seen["firstSort"]
    assert sum(map(len, groups)) == len(result.trades)
    assert all(g == sorted(g, reverse=True) for g in groups)
    assert all(g == sorted(g) for g in seen["secondSort"])
    # The filter: "sell" keeps exactly the sells (negative values).
    kept = [v for g in seen["afterFilter"] for v in g]
    assert len(kept) == len(result.sells)
    assert all(v < 0 for v in kept)
    assert seen["counter"] == f"{len(result.sells)} of {len(result.trades)} rows shown"


@pytest.mark.browser
@pytest.mark.parametrize("n_assets", [20, 431])
def test_chromium_renders_a_non_blank_report(n_assets: int, tmp_path: Path) -> None:
    browser = _chromium()
    result = build_large_result(n_assets, min(145, n_assets * 2 // 3))
    report = HTMLReportGenerator().write(result, tmp_path / f"report-{n_assets}.html")
    pixels = _screenshot(browser, report, tmp_path, 2000)
    assert pixels.shape[:2] == (2000, WIDTH)
    assert float(pixels.std()) > 0.05, "the screenshot is blank"
    # The inline stylesheet was applied: the header colour covers a band at the top.
    header = np.abs(pixels[:40] - HEADER_RGB).max(axis=-1) < 0.02
    assert header.mean() > 0.5
    # The embedded charts were decoded: their orange post-trade bars are on screen.
    orange = np.abs(pixels - np.array([0xE0, 0x7B, 0x24]) / 255.0).max(axis=-1) < 0.03
    assert orange.sum() > 500


def test_fixture_result_renders(result: RebalancingResult, tmp_path: Path) -> None:
    """The hand-built three-asset result still writes (the browser tests use the generated ones)."""
    assert HTMLReportGenerator().write(result, tmp_path / "r.html").stat().st_size > 10_000
