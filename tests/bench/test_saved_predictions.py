"""``labral bench predictions=<csv>``: saved (out-of-fold) predictions scored with no model."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from labral.bench import command
from labral.bench.markdown import tables
from labral.errors import BadConfigError, BadManifestError
from tests.helpers.clips import tiny_clip

COLUMNS = ("path", "patient", "hip", "label", "hip_label", "fold", "probability", "threshold")


def cohort(n_patients: int = 24, seed: int = 0, noise: float = 0.35) -> list[dict]:
    """``n_patients`` x 1 hip x 2 clips, every other patient's hip detached (one of its two
    clips shows it), two folds with their own thresholds; scores partly separable."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        detached = p % 2 == 0
        for c in range(2):
            label = int(detached and c == 0)
            score = np.clip(0.3 + 0.4 * label + rng.normal(0, noise), 0.0, 1.0)
            rows.append(
                {
                    "path": f"p{p}_c{c}.npy",
                    "patient": f"P{p}",
                    "hip": f"P{p}_R",
                    "label": label,
                    "hip_label": int(detached),
                    "fold": (p // 2) % 2,
                    "probability": round(float(score), 6),
                    "threshold": 0.45 if (p // 2) % 2 else 0.55,
                }
            )
    return rows


def write_csv(path: Path, rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_metrics_equal_sklearn_overall_per_hip_and_per_fold(tmp_path: Path, compose_bench) -> None:
    rows = cohort()
    csv_path = write_csv(tmp_path / "cv_run" / "oof_predictions.csv", rows)
    results = command.run(compose_bench(tmp_path, [f"predictions={csv_path}"]))
    out = tmp_path / "out"
    assert json.loads((out / "results.json").read_text())["source"] == "saved_predictions"
    assert "Per fold (AUROC)" in (out / "report.html").read_text()
    assert [m["name"] for m in results["models"]] == ["cv_run"]  # the parent folder
    assert results["models"][0]["thresholds"] == [0.45, 0.55]
    block = results["results"]["cv_run"]
    y = np.array([r["label"] for r in rows])
    p = np.array([r["probability"] for r in rows])
    overall = block["overall"]["auroc"]
    assert overall["value"] == pytest.approx(roc_auc_score(y, p))
    assert overall["ci_low"] <= overall["value"] <= overall["ci_high"]  # 12 patients a class
    # hip level, max rule: a hip's score is its most suspicious clip
    hips = sorted({r["hip"] for r in rows})
    hip_y = [next(r["hip_label"] for r in rows if r["hip"] == h) for h in hips]
    hip_max = [max(r["probability"] for r in rows if r["hip"] == h) for h in hips]
    hip_mean = [np.mean([r["probability"] for r in rows if r["hip"] == h]) for h in hips]
    rules = block["hip_level"]["rules"]
    assert rules["max"]["auroc"]["value"] == pytest.approx(roc_auc_score(hip_y, hip_max))
    assert rules["mean"]["auroc"]["value"] == pytest.approx(roc_auc_score(hip_y, hip_mean))
    assert block["hip_level"]["n_hips"] == 24 and block["hip_level"]["n_detached"] == 12
    folds = np.array([r["fold"] for r in rows])
    assert list(block["per_fold"]) == ["0", "1"]
    for fold in (0, 1):
        entry = block["per_fold"][str(fold)]
        expected = roc_auc_score(y[folds == fold], p[folds == fold])
        assert entry["auroc"]["value"] == pytest.approx(expected)
        assert entry["n"] == int((folds == fold).sum())
        thresholds = {r["threshold"] for r in rows if r["fold"] == fold}
        assert {entry["threshold"]} == thresholds  # each fold's own threshold
        decided = p[folds == fold] >= entry["threshold"]
        sens = decided[y[folds == fold] == 1].mean()
        assert entry["sensitivity"]["value"] == pytest.approx(sens)
    own = (p >= np.array([r["threshold"] for r in rows])).astype(bool)
    assert block["at_row_thresholds"]["sensitivity"]["value"] == pytest.approx(own[y == 1].mean())
    text = tables(json.loads((out / "results.json").read_text()))  # the markdown tool reads it
    assert "cv_run" in text and "Hip-level AUROC" in text


def test_two_csvs_give_a_paired_difference_in_any_row_order(tmp_path: Path, compose_bench) -> None:
    rows = cohort()
    sharp = [dict(r, probability=float(r["label"]) * 0.6 + 0.2) for r in rows]
    a = write_csv(tmp_path / "noisy" / "oof_predictions.csv", rows)
    b = write_csv(tmp_path / "sharp" / "oof_predictions.csv", sharp[::-1])  # reversed order
    results = command.run(compose_bench(tmp_path, [f"predictions=[{a},{b}]"]))
    comp = results["comparisons"][0]
    assert (comp["a"], comp["b"]) == ("noisy", "sharp")
    y = np.array([r["label"] for r in rows])
    p = np.array([r["probability"] for r in rows])
    assert comp["value"] == pytest.approx(roc_auc_score(y, p) - 1.0)
    assert comp["ci_high"] <= 0 and comp["p_value"] is not None
    assert np.isfinite(comp["delong"]["value"])
    assert results["results"]["sharp"]["overall"]["auroc"]["value"] == 1.0
    report = (tmp_path / "out" / "report.html").read_text()
    assert "Paired tests of the AUROC difference" in report


def test_mismatched_csvs_name_the_first_missing_clip(tmp_path: Path, compose_bench) -> None:
    rows = cohort()
    a = write_csv(tmp_path / "a" / "oof.csv", rows)
    b = write_csv(tmp_path / "b" / "oof.csv", rows[1:])
    with pytest.raises(BadConfigError, match=r"b/oof.csv has no row for clip 'p0_c0.npy'"):
        command.run(compose_bench(tmp_path, [f"predictions=[{a},{b}]"]))
    relabelled = [dict(r, label=1 - r["label"]) if r["path"] == "p3_c1.npy" else r for r in rows]
    c = write_csv(tmp_path / "c" / "oof.csv", relabelled)
    with pytest.raises(BadConfigError, match=r"clip 'p3_c1.npy' has label 0 in .* but 1 in"):
        command.run(compose_bench(tmp_path, [f"predictions=[{a},{c}]"]))


def test_bad_inputs_raise_typed_errors_that_name_the_problem(tmp_path: Path, compose_bench) -> None:
    def bench(path: Path) -> None:
        command.run(compose_bench(tmp_path, [f"predictions={path}"]))

    rows = cohort()
    with pytest.raises(BadConfigError, match="no such file.*cv.folds"):
        bench(tmp_path / "nope.csv")
    few = ("path", "hip", "label")
    with pytest.raises(BadManifestError, match="missing column.*patient, probability"):
        bench(write_csv(tmp_path / "cols.csv", rows, few))
    bad = [dict(r) for r in rows]
    bad[4]["probability"] = 1.5
    with pytest.raises(BadManifestError, match=r"line 6: probability='1.5' is not a number in"):
        bench(write_csv(tmp_path / "range.csv", bad))
    bad[4]["probability"] = "high"
    with pytest.raises(BadManifestError, match=r"line 6: probability='high'"):
        bench(write_csv(tmp_path / "text.csv", bad))
    bad[4]["probability"], bad[7]["label"] = 0.5, 2
    with pytest.raises(BadManifestError, match=r"line 9: label='2' must be 0 or 1"):
        bench(write_csv(tmp_path / "label.csv", bad))
    negatives = [dict(r, label=0) for r in rows]
    with pytest.raises(BadManifestError, match="has label 0.*both classes"):
        bench(write_csv(tmp_path / "one_class.csv", negatives))
    with pytest.raises(BadConfigError, match="not both"):
        command.run(compose_bench(tmp_path, [f"predictions={tmp_path / 'x.csv'}", "bundle=b"]))


def test_status_and_reasons_columns_give_the_input_check(tmp_path: Path, compose_bench) -> None:
    """A CSV's verdicts become the input_check block; a CSV without them is all scored."""
    rows = cohort()
    for i, row in enumerate(rows):
        refused = i % 5 == 0
        row["status"] = "not_assessable" if refused else "scored"
        row["reasons"] = "image_quality;no_manoeuvre" if refused else ""
    columns = (*COLUMNS, "status", "reasons")
    csv_path = write_csv(tmp_path / "checked" / "oof_predictions.csv", rows, columns)
    results = command.run(compose_bench(tmp_path, [f"predictions={csv_path}"]))
    block = results["results"]["checked"]["input_check"]
    refused = np.array([r["status"] == "not_assessable" for r in rows])
    assert block["checked"] and block["n_refused"] == int(refused.sum())
    part = block["valid"]["all"]
    assert part["false_refusal_rate"]["value"] == pytest.approx(refused.mean())
    assert part["reasons"]["no_manoeuvre"] == pytest.approx(refused.mean())
    y = np.array([r["label"] for r in rows])
    p = np.array([r["probability"] for r in rows])
    passing = part["passing_clips"]["auroc"]["value"]
    assert passing == pytest.approx(roc_auc_score(y[~refused], p[~refused]))
    assert "<h2>Input check</h2>" in (tmp_path / "out" / "report.html").read_text()
    old = write_csv(tmp_path / "old" / "oof_predictions.csv", rows)  # no status column
    block = command.run(compose_bench(tmp_path, [f"predictions={old}"]))["results"]["old"]
    assert not block["input_check"]["checked"] and block["input_check"]["n_refused"] == 0
    rows[3]["status"] = "maybe"
    bad = write_csv(tmp_path / "bad" / "oof_predictions.csv", rows, columns)
    with pytest.raises(BadManifestError, match=r"line 5: status='maybe'"):
        command.run(compose_bench(tmp_path, [f"predictions={bad}"]))
    rows[3]["status"], rows[3]["reasons"] = "not_assessable", "blurry"
    bad = write_csv(tmp_path / "bad" / "oof_predictions.csv", rows, columns)
    with pytest.raises(BadManifestError, match=r"line 5: reasons='blurry' is not a reason"):
        command.run(compose_bench(tmp_path, [f"predictions={bad}"]))


def test_without_hip_or_fold_columns_and_the_gate(tmp_path: Path, compose_bench) -> None:
    rows = cohort()
    plain = write_csv(
        tmp_path / "plain" / "p.csv", rows, ("path", "patient", "label", "probability")
    )
    results = command.run(compose_bench(tmp_path, [f"predictions={plain}"]))
    block = results["results"]["plain"]
    assert block["hip_level"] is None and block["per_fold"] == {}
    assert "at_row_thresholds" not in block and results["models"][0]["threshold"] == 0.5
    from labral.bench.gate import GateFailedError

    with pytest.raises(GateFailedError, match="auroc"):
        command.run(compose_bench(tmp_path, [f"predictions={plain}", "fail_under.auroc=0.999"]))
    assert (tmp_path / "out" / "results.json").is_file()


# --- end to end: a real `labral train cv.folds=3` run's oof_predictions.csv -------------------


def test_a_real_cv_run_goes_to_bench_predictions(tmp_path: Path, train_cfg) -> None:
    from labral.train.command import run as train

    data = tmp_path / "data"
    data.mkdir()
    lines = []
    for p in range(12):
        for c in range(2):
            name = f"p{p}_{c}.npy"
            np.save(data / name, tiny_clip(p % 2, seed=2 * p + c))
            row = {"path": name, "label": p % 2, "hip_label": p % 2, "patient": f"P{p}"}
            lines.append(json.dumps({**row, "hip": f"P{p}_R"}) + "\n")
    (data / "manifest.jsonl").write_text("".join(lines))
    run_dir = tmp_path / "cv"
    cfg = train_cfg(
        f"data.manifest={data / 'manifest.jsonl'}",
        "data.cache_dir=null",
        "cv.folds=3",
        "cv.bootstrap=20",
        "trainer.max_epochs=1",
        "logger.tensorboard=false",
        run_name="cv",
    )
    summary = train(cfg)
    out = tmp_path / "bench"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "labral.cli",
            "bench",
            f"predictions={run_dir / 'oof_predictions.csv'}",
            f"out={out}",
            "bootstrap.n=50",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    block = results["results"]["cv"]
    assert block["overall"]["auroc"]["value"] == pytest.approx(summary["pooled"]["auroc"])
    for fold in summary["per_fold"]:
        if fold["auroc"] is not None:
            assert block["per_fold"][str(fold["fold"])]["auroc"]["value"] == pytest.approx(
                fold["auroc"]
            )
    assert block["hip_level"]["n_hips"] == 12 and (out / "report.html").is_file()
    shown = subprocess.run(
        [sys.executable, "-m", "labral.bench.markdown", str(out / "results.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0 and "Clip-level AUROC" in shown.stdout, shown.stderr
