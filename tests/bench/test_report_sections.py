"""Issue 25's sections from ``labral bench predictions=...`` (no model, so fast): decision
curves, subgroups with the ``subgroup_min_n`` setting, sample size, the checklist and the
failure cases, in results.json and report.html."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from labral.bench import command, pdf
from labral.errors import BadConfigError
from labral.reporting_topics import NOT_FILLED
from tests.bench.test_saved_predictions import COLUMNS, cohort, write_csv

#: 60 patients: shift a/b by halves; site B holds the last 7 patients (14 clips)
SITE_B_FROM = 53


def _csv(tmp_path: Path) -> Path:
    rows = [
        dict(r, shift="a" if int(r["patient"][1:]) < 30 else "b", site="B")
        if int(r["patient"][1:]) >= SITE_B_FROM
        else dict(r, shift="a" if int(r["patient"][1:]) < 30 else "b", site="A")
        for r in cohort(n_patients=60)
    ]
    return write_csv(tmp_path / "cv" / "oof_predictions.csv", rows, (*COLUMNS, "shift", "site"))


def test_saved_predictions_get_every_new_section(tmp_path: Path, compose_bench) -> None:
    overrides = [f"predictions={_csv(tmp_path)}", "subgroup_min_n=10", "failure_cases=3"]
    results = command.run(compose_bench(tmp_path, overrides))
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    block = results["results"]["cv"]
    # subgroups from the CSV's own columns, at the setting's minimum (site B: 14 clips)
    groups = block["subgroups"]["columns"]
    assert block["subgroups"]["min_n"] == 10 == written["settings"]["subgroup_min_n"]
    assert groups["site"]["groups"]["B"]["n"] == 14 and groups["site"]["groups"]["B"]["estimable"]
    # a subgroup's CI is the bench's bootstrap on the same rows: the per-part block
    for part in ("a", "b"):
        for metric in ("auroc", "ece"):
            assert groups["shift"]["groups"][part][metric] == block["per_shift"][part][metric]
    assert groups["shift"]["groups"]["a"]["auroc"]["ci_low"] is not None  # a real interval
    # decision curves at clip and hip level, sample size, the checklist, the failure cases
    assert {r["level"] for r in written["decision_curves"]["rows"]} == {"clip", "hip"}
    assert written["sample_size"]["per_model"]["cv"]
    checklist = {item["topic"]: item for item in written["checklist"]}
    assert checklist["data source and provenance"]["filled"] is not False
    assert "saved predictions" in checklist["data source and provenance"]["text"]
    unfilled = [i for i in written["checklist"] if not i["filled"]]
    assert unfilled and all(i["text"].startswith(NOT_FILLED) for i in unfilled)
    assert checklist["subgroups and fairness"]["filled"]  # the CSV carries grouping columns
    cases = written["failure_cases"]
    assert cases["top"] == 3 and len(cases["false_positive"]) == 3
    threshold = results["models"][0]["threshold"]
    assert all(c["probability"] >= threshold and c["label"] == 0 for c in cases["false_positive"])
    assert all(c["patient"].startswith("case-") for c in cases["false_negative"])
    report = (tmp_path / "out" / "report.html").read_text()
    for title in (
        "Decision curves (net benefit",
        "Subgroups (AUROC and ECE",
        "Sample size for a target CI width",
        "Reporting checklist (TRIPOD+AI / CLAIM)",
        "Failure cases",
    ):
        assert title in report, title
    assert not re.search(r">P\d+<", report)  # pseudonyms only, never the CSV's patient ids


def test_pdf_auto_without_chromium_says_so_and_keeps_the_html(
    tmp_path: Path, compose_bench, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(pdf.shutil, "which", lambda name: None)
    saved = _csv(tmp_path)
    command.run(compose_bench(tmp_path, [f"predictions={saved}", "pdf=auto"]))
    assert (tmp_path / "out" / "report.html").is_file()
    assert not (tmp_path / "out" / "report.pdf").exists()
    assert "no PDF: headless Chromium" in capsys.readouterr().err
    with pytest.raises(BadConfigError, match="pdf=true: no PDF"):  # refused before any work
        command.run(
            compose_bench(tmp_path / "again", [f"predictions={_csv(tmp_path)}", "pdf=true"])
        )
    assert not (tmp_path / "again" / "out").exists()
