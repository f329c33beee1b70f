"""Patient-grouped K-fold cross-validation (``labral train cv.folds=K``) on tiny .npy clips."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from labral.datasets.manifests.splits import patient_folds
from labral.errors import BadManifestError
from labral.metrics import auroc, cluster_bootstrap_ci
from labral.train.command import run
from labral.train.cv import COLUMNS, fold_rows

from .conftest import tiny_clip  # noqa: TID252 - importlib mode: conftest is a sibling module


def write_cohort(folder: Path, n_patients: int, positive_every: int = 2) -> Path:
    """Patients with 1-2 hips of 2 clips each (.npy); every ``positive_every``-th patient has
    a detached right hip (both clips show it); a test-split patient that CV must leave out."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in range(n_patients + 1):
        detached = p % positive_every == 0
        for side in ("R", "L") if p % 3 == 0 else ("R",):
            hip_label = int(detached and side == "R")
            for c in range(2):
                name = f"p{p}_{side}{c}.npy"
                np.save(folder / name, tiny_clip(hip_label, seed=len(rows)))
                row = {"path": name, "label": hip_label, "hip_label": hip_label}
                row.update(patient=f"P{p}", hip=f"P{p}_{side}", side=side, clip=c)
                if p == n_patients:
                    row["split"] = "test"
                rows.append(row)
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_folds_group_patients_and_stratify_by_hip_label(tmp_path):
    rows = [r for r in _rows(write_cohort(tmp_path, 20)) if r.get("split") != "test"]
    folds = patient_folds(rows, 5, seed=3)
    fold_of: dict[str, set[int]] = defaultdict(set)
    for row, fold in zip(rows, folds, strict=True):
        fold_of[row["patient"]].add(fold)
    assert all(len(f) == 1 for f in fold_of.values())  # a patient is in one fold
    positives = {r["patient"] for r in rows if r["hip_label"] == 1}
    per_fold = [sum(1 for p in positives if fold_of[p] == {k}) for k in range(5)]
    assert per_fold == [2, 2, 2, 2, 2]  # 10 positive patients dealt evenly
    assert patient_folds(rows, 5, seed=3) == folds
    split = fold_rows(rows, folds, fold=4, k=5)
    assert {r["split"] for r, f in zip(split, folds, strict=True) if f == 4} == {"test"}
    assert {r["split"] for r, f in zip(split, folds, strict=True) if f == 0} == {"val"}


def test_a_fold_short_of_a_class_names_the_class_and_the_fold(tmp_path):
    rows = [r for r in _rows(write_cohort(tmp_path, 12, positive_every=3)) if "split" not in r]
    # 4 positive patients into 3 folds: one fold gets a single detached patient
    with pytest.raises(
        BadManifestError, match=r"cv fold \d of 3 holds 1 patient\(s\) of class 1 \(hip_label 1"
    ):
        patient_folds(rows, 3, seed=0)


def test_cluster_bootstrap_resamples_whole_patients():
    y = np.array([0, 1, 0, 1, 0, 1])
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.3])
    low, high, n = cluster_bootstrap_ci(y, s, ["a", "a", "b", "b", "c", "c"], n_boot=200)
    assert n == 200 and low < auroc(y, s) < high
    # every replicate is a multiset of the 3 patients: AUROC only takes a few values
    assert cluster_bootstrap_ci(y, s, ["a", "a", "b", "b", "c", "c"], n_boot=200) == (low, high, n)


def test_cv_writes_out_of_fold_predictions_and_summary(train_cfg, tmp_path):
    manifest = write_cohort(tmp_path / "data", 12)
    cfg = train_cfg(
        f"data.manifest={manifest}",
        "data.cache_dir=null",
        "cv.folds=3",
        "cv.bootstrap=50",
        "trainer.max_epochs=1",
        "logger.tensorboard=false",
    )
    summary = run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    with (run_dir / "oof_predictions.csv").open() as handle:
        predictions = list(csv.DictReader(handle))
    assert tuple(predictions[0]) == COLUMNS
    cohort = [r for r in _rows(manifest) if r.get("split") != "test"]
    assert sorted(p["path"] for p in predictions) == sorted(r["path"] for r in cohort)
    assert "P12" not in {p["patient"] for p in predictions}  # the test split stays out
    folds = dict(zip((r["path"] for r in cohort), patient_folds(cohort, 3, seed=0), strict=True))
    assert all(int(p["fold"]) == folds[p["path"]] for p in predictions)  # scored out of fold
    for fold in range(3):
        calibration = json.loads((run_dir / f"fold_{fold}" / "calibration.json").read_text())
        threshold = {float(p["threshold"]) for p in predictions if p["fold"] == str(fold)}
        assert threshold == {calibration["threshold"]}
        tested = json.loads((run_dir / f"fold_{fold}" / "test_metrics.json").read_text())
        assert summary["per_fold"][fold]["auroc"] == pytest.approx(tested["auroc"])
    saved = json.loads((run_dir / "cv.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert [f["fold"] for f in saved["per_fold"]] == [0, 1, 2]
    pooled = saved["pooled"]
    y = np.array([int(p["label"]) for p in predictions])
    prob = np.array([float(p["probability"]) for p in predictions])
    assert pooled["auroc"] == pytest.approx(auroc(y, prob))
    assert pooled["n_clips"] == len(predictions) and pooled["n_hips"] == 16
    low, high = pooled["auroc_ci"]
    assert 0.0 <= low <= pooled["auroc"] <= high <= 1.0


def test_cv_cli_stops_on_a_fold_short_of_a_class(tmp_path):
    manifest = write_cohort(tmp_path / "data", 12, positive_every=3)  # 4 detached, 8 intact
    done = subprocess.run(
        [sys.executable, "-m", "labral.cli", "train", f"data.manifest={manifest}", "cv.folds=3"]
        + [f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "holds 1 patient(s) of class 1 (hip_label 1, detachment)" in done.stderr
    assert "cv fold 1 of 3" in done.stderr
