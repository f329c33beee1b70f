"""report.html is self-contained and renders its figures in headless chromium."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labral.bench import command
from labral.bench.pdf import HEADLESS_FLAGS, find_chromium

CHROMIUM = find_chromium()


@pytest.fixture(scope="module")
def robustness_report(bench_assets, compose_bench, tmp_path_factory) -> Path:
    """A two-model run with a two-point robustness sweep, its report path."""
    import json

    from labral.bench import suites

    tmp = tmp_path_factory.mktemp("report")
    cfg = compose_bench(
        tmp,
        [
            f"bundle=[{bench_assets['bundle']},{bench_assets['bundle_b']}]",
            f"suite={bench_assets['manifest']}",
        ],
    )
    sweep = [{"name": "noise", "levels": [10.0, 40.0]}, {"name": "shorter", "levels": [0.5]}]
    original = suites.resolve_suite

    def with_sweep(*args, **kwargs):
        suite = original(*args, **kwargs)
        suite.perturbations = sweep
        return suite

    command.resolve_suite = with_sweep
    try:
        results = command.run(cfg)
    finally:
        command.resolve_suite = original
    assert set(results["robustness"]) == {"noise", "shorter"}
    assert [pt["level"] for pt in results["robustness"]["noise"]["blunt"]] == [10.0, 40.0]
    json.loads((tmp / "out" / "results.json").read_text())
    return tmp / "out" / "report.html"


def test_report_is_self_contained(robustness_report: Path) -> None:
    text = robustness_report.read_text()
    assert (
        len(re.findall(r'src="data:image/png;base64,', text)) == 3
    )  # curves, reliability, robustness
    assert not re.search(r'(src|href)="(http|//)', text)  # nothing fetched from a network
    for needed in (
        "Models side by side",
        "Paired test",
        "Per hard-negative type",
        "Troelsen",
        "Robustness",
        "Temporal localisation",
    ):
        assert needed in text


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(robustness_report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            *HEADLESS_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            robustness_report.resolve().as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    image = np.asarray(Image.open(shot).convert("RGB")).astype(np.float64)
    assert image.shape[:2] == (2000, 1200)
    assert image.std() > 20  # not a blank page
    # plotted curves: matplotlib's default blue (#1f77b4) and orange (#ff7f0e) lines appear
    blue = np.all(np.abs(image - [31, 119, 180]) < 30, axis=-1).sum()
    orange = np.all(np.abs(image - [255, 127, 14]) < 30, axis=-1).sum()
    assert blue > 200 and orange > 200
