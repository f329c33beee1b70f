"""Tables the docs show are the code's output: one text form of a metric with its interval.

``bench.markdown`` (the docs' results tables) and ``scripts/demo_summary.py`` (the demo's
last table) both print a zero-width interval at 1.000 as ``1.000 (ceiling)``, so a rerun
reproduces the documents without an edit by hand.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console

from labral.bench.bootstrap import format_with_ci
from labral.bench.markdown import tables
from labral.bench.report.terminal import SUMMARY_METRICS, print_summary
from labral.datasets.synth.shortcuts import read_strongest_nulls

REPO = Path(__file__).resolve().parents[2]
CEILING = {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}
BELOW = {"value": 0.8123, "ci_low": 0.75, "ci_high": 0.87}


@pytest.mark.parametrize(
    ("block", "text"),
    [
        (CEILING, "1.000 (ceiling)"),
        ({"value": 1.0, "ci_low": 0.99951, "ci_high": 1.0}, "1.000 (ceiling)"),  # prints 1.000
        ({"value": 1.0, "ci_low": 0.98, "ci_high": 1.0}, "1.000 [0.980, 1.000]"),
        ({"value": 0.0, "ci_low": 0.0, "ci_high": 0.0}, "0.000 [0.000, 0.000]"),
        (BELOW, "0.812 [0.750, 0.870]"),
        ({"value": 1.0, "ci_low": None, "ci_high": None}, "1.000"),
        ({**CEILING, "ci_note": "too few patients"}, "1.000 [CI not estimable]"),
    ],
)
def test_a_zero_width_interval_at_the_maximum_is_the_ceiling(block: dict, text: str) -> None:
    assert format_with_ci(block) == text


def _results() -> dict:
    """A results.json of one model on two generator levels: at the ceiling on easy."""
    return {
        "suite": {"name": "graded", "content_hash": "0" * 64, "n_clips": 8, "n_patients": 4},
        "models": [{"name": "compact-net"}],
        "results": {
            "compact-net": {
                "per_shift": {"hard": {"auroc": BELOW}, "easy": {"auroc": CEILING}},
                "overall": {"auroc": BELOW},
                "localisation": {**BELOW, "chance": 0.25},
            }
        },
    }


def test_markdown_prints_the_temporal_hit_per_part() -> None:
    results = _results()
    part_loc = {**BELOW, "n": 12, "vs_velocity_null": BELOW}
    results["results"]["compact-net"]["per_shift"]["hard"]["localisation"] = part_loc
    text = tables(results)
    lines = text.splitlines()
    title = lines.index("Temporal hit per part (model - velocity null in brackets):")
    row = next(line for line in lines[title:] if line.startswith("| compact-net"))
    assert row.count("0.812 [0.750, 0.870]") == 2 and "n/a" in row  # easy has none
    assert "Temporal hit per part" not in tables(_results())  # none recorded: no table


def test_markdown_tables_print_the_ceiling() -> None:
    text = tables(_results())
    assert "| compact-net | 1.000 (ceiling) | 0.812 [0.750, 0.870] | 0.812 [0.750, 0.870] |" in text
    assert "[1.000, 1.000]" not in text


def _demo_summary() -> ModuleType:
    """``scripts/demo_summary.py`` as a module (scripts are not a package)."""
    path = REPO / "scripts" / "demo_summary.py"
    spec = importlib.util.spec_from_file_location("demo_summary", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_summary_labels_the_test_split_and_prints_the_ceiling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "results.json").write_text(json.dumps(_results()))
    for model, name, auroc in (("cleft", "compact-net", 0.9512), ("still_frame", "still", 0.6)):
        for folder, file, content in (
            (f"train_{model}", "test_metrics.json", {"auroc": auroc}),
            (f"bundles/{model}", "metadata.json", {"model_name": name}),
        ):
            (tmp_path / folder).mkdir(parents=True)
            (tmp_path / folder / file).write_text(json.dumps(content))
    _demo_summary().main(tmp_path, 75)
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model"))
    assert lines[header].split()[:3] == ["model", "test", "AUROC"]
    assert "(test split)" in lines[header + 1] and "train split" not in "\n".join(lines)
    cleft = next(line for line in lines if line.startswith("cleft "))
    assert cleft.split()[1] == "0.951" and "1.000 (ceiling)" in cleft
    assert "[1.000, 1.000]" not in cleft
    # the margin over the shortcut study's strongest nulls (docs/shortcut_study.json)
    nulls = read_strongest_nulls(REPO / "docs" / "shortcut_study.json")
    title = lines.index("cleft: margin over the shortcut study's strongest null (AUROC difference)")
    hard = next(line for line in lines[title:] if line.startswith("hard"))
    margin = round(BELOW["value"] - nulls["hard"]["oracle"], 3)
    assert hard.split()[:4] == ["hard", "0.812", f"{nulls['hard']['oracle']:.3f}", f"{margin:+.3f}"]


def test_terminal_summary_prints_a_comparison_without_a_p_value(tmp_path: Path) -> None:
    """Too few patients for a paired test (p_value None) is "n/a", not a crash at the end."""
    metric_blocks = {metric: BELOW for metric in SUMMARY_METRICS}
    results = _results() | {
        "models": [{"name": "a"}, {"name": "b"}],
        "results": {name: {"overall": metric_blocks, "localisation": BELOW} for name in "ab"},
        "speed": {name: {"clips_per_s": 10.0, "latency_ms_median": 5.0} for name in "ab"},
        "comparisons": [{"a": "a", "b": "b", "value": 0.0, "ci_low": None, "p_value": None}],
    }
    console = Console(file=io.StringIO(), width=200)
    print_summary(results, tmp_path, console)
    assert "AUROC a - b: 0.000, paired bootstrap p=n/a" in console.file.getvalue()
