"""Sample size from the run's CI widths: n_now * (width_now / width_target) ** 2."""

from __future__ import annotations

import pytest

from labral.bench import markdown, sample_size
from labral.bench.report import sample_size as sample_size_report


def _block(low: float | None, high: float | None, note: str | None = None) -> dict:
    block = {"value": 0.8, "ci_low": low, "ci_high": high, "n_boot": 100}
    return block | ({"ci_note": note} if note else {})


def _results() -> dict:
    overall = {
        "auroc": _block(0.70, 0.90),  # width 0.2
        "sensitivity": _block(None, None, "not estimable: 3 patients"),
        "specificity": _block(1.0, 1.0),  # a ceiling
    }
    hip = {"n_hips": 80, "n_detached": 40, "rules": {"max": {"auroc": _block(0.75, 0.85)}}}
    return {
        "models": [{"name": "m"}],
        "settings": {"ci_level": 0.95},
        "results": {"m": {"n_patients": 40, "overall": overall, "hip_level": hip}},
    }


def test_needed_is_the_square_law() -> None:
    assert sample_size.needed(40, 0.2, 0.1) == 160
    assert sample_size.needed(40, 0.2, 0.05) == 640
    assert sample_size.needed(10, 0.11, 0.1) == 13  # ceil(12.1)


def test_summary_sizes_each_metric_and_says_when_it_cannot() -> None:
    rows = {(r["level"], r["metric"]): r for r in sample_size.summary(_results())["per_model"]["m"]}
    auroc = rows[("clip", "auroc")]
    assert auroc["width_now"] == pytest.approx(0.2)
    assert auroc["needed"] == {"0.1": {"patients": 160}, "0.05": {"patients": 640}}
    assert rows[("clip", "sensitivity")]["needed"]["0.1"] is None
    assert "not estimable" in rows[("clip", "sensitivity")]["note"]
    assert "zero-width" in rows[("clip", "specificity")]["note"]
    hip = rows[("hip (max rule)", "auroc")]  # width 0.1: the same units for 0.1, 4x for 0.05
    assert hip["needed"]["0.1"] == {"hips": 80, "patients": 40}
    assert hip["needed"]["0.05"] == {"hips": 320, "patients": 160}
    assert rows[("hip (max rule)", "sensitivity")]["note"] == "no interval"


def test_tables_show_the_counts() -> None:
    html = "".join(sample_size_report.html_section(_results()))
    assert "640 patients" in html and "320 hips / 160 patients" in html
    assert "0.000 (zero-width interval" in html
    results = _results() | {"sample_size": sample_size.summary(_results())}
    text = "\n".join(sample_size_report.markdown_section(results, {}, markdown._row))
    assert sample_size_report.markdown_section(_results(), {}, markdown._row) == []
    assert "| m | clip | auroc | 0.200 | 40 patients | 160 patients | 640 patients |" in text
