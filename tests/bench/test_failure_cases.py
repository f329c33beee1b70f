"""Failure cases: the most confident errors at the bundle's decision, under pseudonyms."""

from __future__ import annotations

import csv
import json
import re

import numpy as np

from labral.bench import command, failure_cases


def _row(label: int, p: float, decision: int, status: str = "scored") -> dict[str, str]:
    return {
        "label": str(label),
        "p_m": str(p),
        "decision_m": str(decision),
        "status_m": status,
        "patient": "P1",
    }


def test_failures_rank_by_confidence_and_skip_refused_clips() -> None:
    rows = [
        _row(0, 0.7, 1),  # FP
        _row(0, 0.9, 1),  # FP, more confident
        _row(0, 0.95, 1, "not_assessable"),  # refused: left out
        _row(1, 0.2, 0),  # FN
        _row(1, 0.05, 0),  # FN, more missed
        _row(1, 0.8, 1),  # TP
        _row(0, 0.1, 0),  # TN
    ]
    assert failure_cases.failures(rows, "m", top=5) == {
        "false_positive": [1, 0],
        "false_negative": [4, 3],
    }
    assert failure_cases.failures(rows, "m", top=1)["false_negative"] == [4]


def test_pseudonym_is_stable_and_hides_the_id() -> None:
    a = failure_cases.pseudonym("P007", "hash")
    assert a == failure_cases.pseudonym("P007", "hash") != failure_cases.pseudonym("P007", "x")
    assert re.fullmatch(r"case-[0-9a-f]{8}", a) and "P007" not in a


def test_failure_page_of_a_bench_run(bench_assets, compose_bench, tmp_path) -> None:
    cfg = compose_bench(
        tmp_path,
        [
            f"bundle={bench_assets['bundle_b']}",
            f"suite={bench_assets['manifest']}",
            "controls=false",
            "pointing_game=false",
            "+spatial_maps=true",
        ],
    )
    command.run(cfg)
    run = tmp_path / "out"
    assert (run / "spatial_maps.npz").is_file()
    assert failure_cases.main([str(run), "--top", "2"]) == 0
    page = (run / "failure_cases.html").read_text()
    assert "False positives" in page and "False negatives" in page
    shown = page.count('src="data:image/png;base64,')
    with open(run / "predictions.csv", newline="") as handle:
        rows = failure_cases.failures(list(csv.DictReader(handle)), "blunt", 2)
    assert shown == len(rows["false_positive"]) + len(rows["false_negative"]) > 0
    assert "Spatial maps (orange)" in page and "No spatial maps" not in page
    maps = dict(np.load(run / "spatial_maps.npz"))
    for i in rows["false_negative"]:  # every case drawn has its map (at some peak frame)
        assert failure_cases.spatial_map(maps, 0, i, key=-1) is not None
    assert "P00" not in page and "clips/p" not in page  # no manifest ids, no paths


def test_bench_report_shows_failure_cases_with_their_maps(
    bench_assets, compose_bench, tmp_path, monkeypatch
) -> None:
    computed: list[dict] = []
    first_model_maps = failure_cases.first_model_maps

    def spy(*args):  # the maps labral bench computes for the cases it shows
        computed.append(first_model_maps(*args))
        return computed[-1]

    monkeypatch.setattr(failure_cases, "first_model_maps", spy)
    cfg = compose_bench(
        tmp_path,
        [
            f"bundle={bench_assets['bundle_b']}",
            f"suite={bench_assets['manifest']}",
            "controls=false",
            "pointing_game=false",
            "failure_cases=2",
        ],
    )
    results = command.run(cfg)
    run = tmp_path / "out"
    assert not (run / "spatial_maps.npz").exists()  # no +spatial_maps=true
    with open(run / "predictions.csv", newline="") as handle:
        picked = failure_cases.failures(list(csv.DictReader(handle)), "blunt", 2)
    shown = picked["false_positive"] + picked["false_negative"]
    assert shown
    (maps,) = computed
    for i in shown:  # every case shown has its spatial map, computed for it alone
        assert failure_cases.spatial_map(maps, 0, i, key=-1) is not None
    assert {int(k.split("_clip")[1].split("_")[0]) for k in maps} == set(shown)
    report = (run / "report.html").read_text()
    section = report.split("<h2>Failure cases of blunt")[1].split("<h2>")[0]
    assert section.count('src="data:image/png;base64,') == len(shown)
    assert "Spatial maps (orange)" in section
    assert "P00" not in section and "clips/p" not in section  # no manifest ids, no paths
    written = json.loads((run / "results.json").read_text())["failure_cases"]
    assert written == results["failure_cases"]
    for kind, rows in picked.items():
        assert [case["row"] for case in written[kind]] == rows
        assert all(re.fullmatch(r"case-[0-9a-f]{8}", case["patient"]) for case in written[kind])
