"""The report as a real browser renders it: headless Chromium takes a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from finwiz.reporting import HTMLReportGenerator
from finwiz.schemas import RebalancingResult

HEADER_RGB = np.array([0x1F, 0x3B, 0x57]) / 255.0  # the report header's background colour


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI for the browser test (apt-get install chromium)")
    pytest.skip("chromium is not installed (this test runs, and must pass, in CI)")


@pytest.mark.browser
def test_chromium_renders_a_non_blank_report(result: RebalancingResult, tmp_path: Path) -> None:
    browser = _chromium()
    report = HTMLReportGenerator().write(result, tmp_path / "report.html")
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
            "--window-size=1280,2000",
            report.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    pixels = imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    assert float(pixels.std()) > 0.05, "the screenshot is blank"
    # The inline stylesheet was applied: the header colour covers a band at the top.
    header = np.abs(pixels[:40] - HEADER_RGB).max(axis=-1) < 0.02
    assert header.mean() > 0.5
    # The embedded charts were decoded: their orange post-trade bars are on screen.
    orange = np.abs(pixels - np.array([0xE0, 0x7B, 0x24]) / 255.0).max(axis=-1) < 0.03
    assert orange.sum() > 500
