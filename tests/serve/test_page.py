"""The clinician page in real headless chromium against the live server."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
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
    # the strip's brightest bars are orange (r high, b 40); nothing else on the page is (the
    # disclaimer's border, b 76, alone would pass a looser b < 80)
    orange = (r > 200) & (g > 100) & (g < 220) & (b < 60)
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
    assert re.search(r'<tr data-decision="true"[^>]*><td>[\d-]+ [\d:]+</td><td>upload</td>', dom)


# ---- a clip the input check refuses (issue 22) ----------------------------------------
@pytest.fixture(scope="module")
def checked_server(
    tmp_path_factory, checked_bundle: Path, clips, port_finder, serve_runner
) -> Iterator[str]:
    """``labral serve`` with a bundle that has an input check (``rule_check``), the sample
    clips (``blank.dcm`` among them) served from ``/samples``."""
    root = tmp_path_factory.mktemp("checked-page")
    port = port_finder()
    cmd = [
        sys.executable, "-m", "labral.cli", "serve", f"bundle={checked_bundle}", f"port={port}",
        f"samples_dir={clips['blank.dcm'].parent}", f"paths.output_root={root / 'out'}",
    ]  # fmt: skip
    with serve_runner(cmd, root / "serve.log", port, name="checked server") as (_, base):
        yield base


def test_page_says_not_assessable_why_and_what_to_do(chromium, checked_server, tmp_path):
    url = f"{checked_server}/?sample=/samples/blank.dcm"
    dom = run_chromium(chromium, url, tmp_path / "profile", "--dump-dom").stdout
    assert 'data-state="done"' in dom and 'data-verdict="not_assessable"' in dom, dom[-2000:]
    panel = re.search(r'<div id="not-assessable"[^>]*>(.*?)</div>\s*<div id="score-row"', dom, re.S)
    assert panel and "hidden" not in panel.group(0).split(">", 1)[0], dom[-3000:]
    text = panel.group(1)
    assert "Not assessable" in text
    assert '<li data-reason="image_quality">Image quality too poor to assess</li>' in text
    assert re.search(r'id="advice"[^>]*>The image cannot be read \(the frames are blank\)', text)
    # no decision, no score, no relevance strip, no key frames
    for hidden_id in ("score-row", "timeline", "timeline-caption", "evidence"):
        assert re.search(rf'id="{hidden_id}"[^>]*hidden', dom), hidden_id
    assert 'id="probability" class="probability">-<' in dom
    assert "detachment suggested" not in dom.split('id="recent"')[0]
    assert "Not assessable (checked in" in dom
    # the recent results list it as not assessable
    assert re.search(r'<tr data-decision="null" data-status="not_assessable">', dom)
    assert "not assessable: image quality" in dom


def test_page_screenshot_of_a_refused_clip_has_no_strip(chromium, checked_server, tmp_path):
    """Screenshot (kept at tmp_path/not-assessable.png): the grey-blue panel is there, the
    orange relevance strip is not."""
    shot = tmp_path / "not-assessable.png"
    url = f"{checked_server}/?sample=/samples/blank.dcm"
    run_chromium(chromium, url, tmp_path / "profile", f"--screenshot={shot}")
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    strip = (r > 200) & (g > 100) & (g < 220) & (b < 60)  # the strip's bars have blue 40
    assert strip.sum() == 0  # (the disclaimer's border, blue 76, is no bar)
    panel = (abs(r - 0xEE) <= 2) & (abs(g - 0xF1) <= 2) & (abs(b - 0xF6) <= 2)
    assert panel.sum() > 5000  # the "Not assessable" panel's background
