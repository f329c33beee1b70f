"""The clinician page in real headless chromium against the live server."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def chromium(require_tool: Callable[[str], str]) -> str:
    """The chromium executable (a failure under LABRAL_REQUIRE_TOOLS=1 when missing)."""
    return require_tool("chromium")


def run_chromium(
    chromium: str, url: str, profile: Path, *extra: str
) -> subprocess.CompletedProcess:
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--virtual-time-budget=20000", "--window-size=900,1400", *extra, url,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_page_scores_a_sample_and_draws_the_relevance_strip(chromium, live_server, tmp_path):
    url = f"{live_server['url']}/?sample=/samples/bright.dcm"
    dom = run_chromium(chromium, url, tmp_path / "profile", "--dump-dom").stdout
    assert 'data-state="done"' in dom, dom[-2000:]
    assert "Research tool, not a diagnosis." in dom
    probability = re.search(r'id="probability"[^>]*>([\d.]+) %<', dom)
    assert probability and float(probability.group(1)) > 90.0
    assert 'data-decision="true"' in dom and "detachment suggested" in dom
    assert re.search(r'id="timeline"[^>]*data-bars="24"', dom)  # one bar per source frame
    assert len(re.findall(r'alt="key frame \d+"', dom)) >= 1
    assert "frame 12 (0.60 s)" in dom  # the strongest key frame is the blob's peak
    # the spatial map is drawn over every key frame that has one, its maximum marked
    peaks = re.findall(
        r'<canvas class="spatial-map" data-frame="(\d+)" [^>]*data-peak="(\d+),(\d+)"', dom
    )
    assert peaks and "evidence map overlaid" in dom, dom[-3000:]


def test_page_screenshot_shows_the_strip(chromium, live_server, tmp_path):
    shot = tmp_path / "page.png"
    url = f"{live_server['url']}/?sample=/samples/bright.dcm"
    run_chromium(chromium, url, tmp_path / "profile", f"--screenshot={shot}")
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # the strip's brightest bars are orange (r high, b low); nothing else on the page is
    orange = (r > 200) & (g > 100) & (g < 220) & (b < 80)
    assert orange.sum() > 50


def test_page_shows_errors_from_the_server(chromium, live_server, tmp_path):
    url = f"{live_server['url']}/?sample=/samples/short.dcm"
    dom = run_chromium(chromium, url, tmp_path / "profile", "--dump-dom").stdout
    assert 'data-state="done"' in dom
    assert "low frame rate" in dom  # warnings are listed


def test_page_lists_recent_results(chromium, live_server, tmp_path):
    """After scoring, the page lists the stored results (GET /v1/results), newest first."""
    url = f"{live_server['url']}/?sample=/samples/bright.dcm"
    dom = run_chromium(chromium, url, tmp_path / "profile", "--dump-dom").stdout
    table = re.search(r'<table id="recent-results"[^>]*data-rows="(\d+)"', dom)
    assert table and int(table.group(1)) >= 1, dom[-2000:]
    assert re.search(r'<tr data-decision="true"><td>[\d-]+ [\d:]+</td><td>upload</td>', dom)
