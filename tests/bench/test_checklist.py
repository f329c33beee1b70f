"""The TRIPOD+AI / CLAIM checklist fills what results.json says and marks what it cannot."""

from __future__ import annotations

from labral.bench import checklist, markdown
from labral.bench.report import checklist as checklist_report
from labral.reporting_topics import TOPICS


def _results(definition: dict | None) -> dict:
    block = {"value": 0.9, "ci_low": 0.8, "ci_high": 0.95, "n_boot": 100}
    return {
        "suite": {
            "name": "real",
            "manifest": "/data/real.jsonl",
            "content_hash": "ab" * 32,
            "definition": definition,
        },
        "models": [{"name": "m", "path": "/nowhere/bundle", "sha256": "cd" * 32, "threshold": 0.4}],
        "settings": {"prevalence": [0.1]},
        "overlap": {"mode": "refuse"},
        "versions": {"labral": "0.1.0"},
        "results": {
            "m": {
                "n_clips": 40,
                "n_positive": 20,
                "n_patients": 20,
                "overall": {"auroc": block, "ece": block, "brier": {**block, "value": 0.12}},
                "hip_level": None,
                "input_check": {"checked": False},
                "subgroups": {"min_n": 20, "columns": {}},
            }
        },
    }


def test_checklist_marks_items_it_cannot_fill() -> None:
    rows = dict(checklist.checklist(_results(None)))  # a manifest, an unreadable bundle
    for topic in (
        "participants and eligibility criteria",
        "outcome and reference standard",
        "missing data",
        "subgroups and fairness",
        "ethics approval, consent and registration",
        "intended use and clinical setting",
    ):
        assert rows[topic].startswith("not filled: "), topic
        assert len(rows[topic]) > len("not filled: ") + 5  # a reason is given
    assert rows["sample size (clips, patients, hips)"].startswith("40 clips (20 positive)")
    assert "0.900 [0.800, 0.950]" in rows["discrimination with CIs (AUROC)"]
    assert "prevalence 0.1" in rows["clinical utility"]
    assert "m brier 0.120 [0.800, 0.950]" in rows["calibration (ECE, Brier, reliability)"]
    assert "m: threshold 0.400" in rows["model, version and operating threshold"]


def test_synthetic_suite_fills_provenance_and_reference() -> None:
    rows = dict(checklist.checklist(_results({"n_patients": 20}), specs={"m": None}))
    assert not rows["outcome and reference standard"].startswith("not filled")
    assert "synthetic" in rows["limitations"]
    html = "".join(checklist_report.html_section(_results(None)))
    assert "Reporting checklist" in html and "6 of 16 are marked" in html


def test_results_json_block_flags_unfilled_topics_and_markdown_prints_them() -> None:
    results = _results(None)
    block = checklist.checklist_block(results)
    assert [item["topic"] for item in block] == [title for _, title in TOPICS]
    unfilled = {item["topic"] for item in block if not item["filled"]}
    assert unfilled == {t for t, text in checklist.checklist(results) if text.startswith("not ")}
    assert "ethics approval, consent and registration" in unfilled
    text = "\n".join(checklist_report.markdown_section({"checklist": block}, markdown._row))
    assert "| intended use and clinical setting | not filled: the authors state it |" in text
