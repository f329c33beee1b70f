"""Decision curves: net benefit pinned to a hand computation, and a bench run's outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labral.bench import command, decision_curves, markdown
from labral.bench.decision_curves import net_benefit, operating_points
from labral.bench.settings import BenchSettings

#: 5 clips: 2 positives, 3 negatives (prevalence 0.4).
Y = np.array([1, 1, 0, 0, 0])
P = np.array([0.9, 0.4, 0.6, 0.2, 0.1])


def test_net_benefit_equals_a_hand_computation() -> None:
    # t = 0.3: decisions [1, 1, 1, 0, 0]: TP 2, FP 1 -> sens 1, spec 2/3.
    points = operating_points(Y, P, [0.3, 0.5])
    assert points["prevalence"] == pytest.approx(0.4)
    assert points["sensitivity"] == pytest.approx([1.0, 0.5])
    assert points["specificity"] == pytest.approx([2 / 3, 2 / 3])
    # counts: TP/n - FP/n * t/(1-t) = 2/5 - 1/5 * 3/7
    curve = decision_curves.curves(points, 0.4, [0.3, 0.5])
    assert curve["model"][0] == pytest.approx(2 / 5 - 1 / 5 * 3 / 7)
    # t = 0.5: TP 1, FP 1 -> 1/5 - 1/5 * 1 = 0
    assert curve["model"][1] == pytest.approx(0.0)
    # treat all: 0.4 - 0.6 * t / (1 - t); treat none: 0
    assert curve["treat all"] == pytest.approx([0.4 - 0.6 * 3 / 7, 0.4 - 0.6])
    assert curve["treat none"] == pytest.approx([0.0, 0.0])
    # at a user prevalence 0.1: sens * 0.1 - (1 - spec) * 0.9 * 3/7
    assert decision_curves.curves(points, 0.1, [0.3])["model"][0] == pytest.approx(
        0.1 - (1 / 3) * 0.9 * 3 / 7
    )


def test_reference_tests_are_operating_points() -> None:
    # published ultrasound readers (0.66 / 0.82) at p = 0.1, t = 0.1: 0.066 - 0.18 * 0.9 / 9
    assert float(net_benefit(0.66, 0.82, 0.1, 0.1)) == pytest.approx(0.066 - 0.018)
    curve = decision_curves.curves(operating_points(Y, P, [0.1]), 0.1, [0.1])
    assert curve["MR arthrography (Zhang 2022)"][0] == pytest.approx(0.089 - 0.31 * 0.9 / 9)


def _results(prevalence: list[float]) -> dict:
    """A results dict with one model's decision_curve block (no hip truth)."""
    block = decision_curves.model_block((Y, P), None)
    return {
        "models": [{"name": "m"}],
        "results": {"m": {"decision_curve": block}},
        "settings": {"prevalence": prevalence},
    }


def test_summary_rows_cover_every_strategy_and_prevalence() -> None:
    summary = decision_curves.summary(_results([0.1, 0.3]))
    assert summary["thresholds"] == [0.05, 0.1, 0.2, 0.3, 0.5]
    strategies = {r["strategy"] for r in summary["rows"]}
    assert strategies == {"m", "treat all", "treat none", *decision_curves.REFERENCE_TESTS}
    prevalences = sorted({(r["prevalence_source"], r["prevalence"]) for r in summary["rows"]})
    assert prevalences == [("suite", 0.4), ("user", 0.1), ("user", 0.3)]
    row = next(r for r in summary["rows"] if r["strategy"] == "m" and r["prevalence"] == 0.1)
    assert row["net_benefit"][3] == pytest.approx(0.1 - (1 / 3) * 0.9 * 3 / 7)  # t = 0.3
    assert {r["level"] for r in summary["rows"]} == {"clip"}  # no hip truth: no hip rows


def test_one_class_suite_has_no_rows() -> None:
    results = _results([])
    results["results"]["m"]["decision_curve"] = decision_curves.model_block(
        (np.zeros(4, int), np.linspace(0, 1, 4)), None
    )
    assert decision_curves.summary(results)["rows"] == []


def test_bench_run_writes_decision_curves(bench_assets, compose_bench, tmp_path) -> None:
    cfg = compose_bench(
        tmp_path,
        [
            f"bundle=[{bench_assets['bundle']},{bench_assets['bundle_b']}]",
            f"suite={bench_assets['manifest']}",
            "prevalence=[0.1,0.3]",
            "controls=false",
            "pointing_game=false",
        ],
    )
    command.run(cfg)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["settings"]["prevalence"] == [0.1, 0.3]
    block = results["decision_curves"]
    levels = {(r["level"], r["prevalence_source"]) for r in block["rows"]}
    assert ("clip", "user") in levels and ("clip", "suite") in levels
    first = results["results"]["blob-detector"]["decision_curve"]
    assert len(first["thresholds"]) == 99 == len(first["clip"]["sensitivity"])
    report = (tmp_path / "out" / "report.html").read_text()
    assert "Decision curves" in report and "data:image/svg+xml;base64," in report
    assert "Decision curves (net benefit" in markdown.tables(results)
    # the other derived block, sized from the same run's intervals
    assert {r["metric"] for r in results["sample_size"]["per_model"]["blunt"]} >= {"auroc"}
    assert "Sample size for a target CI width" in report
    # the toy manifest carries no grouping column: an empty subgroups block, said so
    assert results["results"]["blunt"]["subgroups"] == {"min_n": 20, "columns": {}}
    assert "No subgroups" in report


def test_prevalence_setting_rejects_values_outside_0_1() -> None:
    with pytest.raises(ValueError, match="prevalence"):
        BenchSettings(prevalence=[0.0])
