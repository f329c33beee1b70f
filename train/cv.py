"""Patient-grouped K-fold cross-validation: ``labral train cv.folds=5``.

For a cohort too small to spare a fixed test split (50 to 300 hips):

- Patients are dealt into K folds, stratified by the patient's diagnosis (``hip_label``; a
  patient is positive if any hip is; ``label`` where a manifest has no ``hip_label``):
  :func:`labral.datasets.manifests.splits.patient_folds`. Rows whose ``split`` is ``test`` stay out
  (a final test set you keep aside); any other ``split`` value is ignored.
- Fold k holds out fold k, validates on fold k+1 (mod K: early stopping, temperature and
  threshold are fitted there, so the held-out fold never tunes anything) and trains on the
  other K-2. Each fold is an ordinary training run under ``<run dir>/fold_<k>/``, with
  checkpoints and ``calibration.json``, so ``labral export run_dir=<run>/fold_<k>`` works.
- Out of fold, every clip gets its fold model's calibrated probability:
  ``oof_predictions.csv`` (path, patient, hip, label, hip_label, fold, probability,
  threshold). ``cv.json`` holds per-fold and pooled AUROC, the pooled one with a
  patient-bootstrap CI (:func:`labral.metrics.cluster_bootstrap_ci`), at clip level
  (``label``) and at hip level (``hip_label`` against the mean probability of the hip's
  clips).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, open_dict

from labral.datasets.manifests.manifest import load_manifest
from labral.datasets.manifests.splits import patient_folds
from labral.errors import BadConfigError, BadManifestError
from labral.metrics import auroc, cluster_bootstrap_ci, decision, sensitivity, specificity
from labral.scoring import calibrated_probability
from labral.train.checkpoint_files import load_checkpoint
from labral.train.data import datasets_from_rows, manifest_path
from labral.train.loop import evaluate
from labral.train.parts import build_model, make_loader, select_device
from labral.train.settings import TrainSettings, train_settings

PREDICTIONS_NAME = "oof_predictions.csv"
SUMMARY_NAME = "cv.json"
COLUMNS = ("path", "patient", "hip", "label", "hip_label", "fold", "probability", "threshold")


def fold_rows(rows: list[dict[str, Any]], folds: list[int], fold: int, k: int) -> list[dict]:
    """The rows of one fold's run: ``split`` test (fold), val (fold + 1 mod k), else train."""
    val = (fold + 1) % k
    names = {fold: "test", val: "val"}
    return [{**row, "split": names.get(f, "train")} for row, f in zip(rows, folds, strict=True)]


def hip_scores(predictions: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per hip: ``(hip_label int (H,), mean clip probability float64 (H,), patient (H,))``
    over the rows that have a ``hip_label`` (empty arrays when none has)."""
    by_hip: dict[str, list[dict[str, Any]]] = {}
    for row in predictions:
        if row.get("hip_label") is not None:
            by_hip.setdefault(str(row.get("hip") or row["patient"]), []).append(row)
    labels = np.array([rows[0]["hip_label"] for rows in by_hip.values()], dtype=np.int64)
    scores = np.array([np.mean([r["probability"] for r in rows]) for rows in by_hip.values()])
    return labels, scores, [rows[0]["patient"] for rows in by_hip.values()]


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def summarize(predictions: list[dict[str, Any]], n_boot: int, seed: int) -> dict[str, Any]:
    """AUROC (clip and hip level) with patient-bootstrap CIs, and the sensitivity and
    specificity of each clip's decision at its fold's threshold, over ``predictions``."""
    y = np.array([r["label"] for r in predictions], dtype=np.int64)
    p = np.array([r["probability"] for r in predictions], dtype=np.float64)
    patients = [r["patient"] for r in predictions]
    # each clip's decision at its own fold's threshold, as 0/1 scores thresholded at 0.5
    decided = np.array([decision(r["probability"], r["threshold"]) for r in predictions])
    low, high, valid = cluster_bootstrap_ci(y, p, patients, n_boot=n_boot, seed=seed)
    out: dict[str, Any] = {
        "n_clips": int(y.size),
        "n_patients": len(set(patients)),
        "auroc": _finite(auroc(y, p)),
        "auroc_ci": [_finite(low), _finite(high)],
        "n_boot": valid,
        "sensitivity": _finite(sensitivity(y, decided.astype(float), 0.5)),
        "specificity": _finite(specificity(y, decided.astype(float), 0.5)),
    }
    hip_y, hip_p, hip_patients = hip_scores(predictions)
    if hip_y.size:
        low, high, valid = cluster_bootstrap_ci(
            hip_y, hip_p, hip_patients, n_boot=n_boot, seed=seed
        )
        out.update(
            n_hips=int(hip_y.size),
            hip_auroc=_finite(auroc(hip_y, hip_p)),
            hip_auroc_ci=[_finite(low), _finite(high)],
        )
    return out


def _relative(path: str, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return path


def _fold_predictions(
    cfg: DictConfig, fold_dir: Path, datasets: dict, result: dict, fold: int, base: Path
) -> list[dict[str, Any]]:
    """The held-out clips of one fold scored by its best checkpoint and its calibration."""
    device = select_device(train_settings(cfg).trainer)
    bare = cfg.copy()
    with open_dict(bare):
        bare.model.init_weights = None  # best.pt replaces every tensor anyway
    model = build_model(bare).to(device)
    best = load_checkpoint(fold_dir / "checkpoints" / "best.pt", map_location=device)
    model.load_state_dict(best["model"])
    logits, _ = evaluate(model, make_loader(datasets["test"], cfg), device)
    probs = calibrated_probability(logits, float(result["temperature"]))
    records = datasets["test"].records
    return [
        {
            "path": _relative(str(record["path"]), base),
            "patient": str(record["patient"]),
            "hip": record.get("hip"),
            "label": int(record["label"]),
            "hip_label": record.get("hip_label"),
            "fold": fold,
            "probability": float(prob),
            "threshold": float(result["threshold"]),
        }
        for record, prob in zip(records, probs, strict=True)
    ]


def _write_predictions(path: Path, predictions: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in predictions:
            writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})


#: one training run: ``train(cfg, datasets=...)`` -> its result (``labral.train.command.train``)
TrainFn = Callable[..., dict[str, Any]]


def run_cv(cfg: DictConfig, train: TrainFn) -> dict[str, Any]:
    """Cross-validate ``cfg`` (``cv.folds`` K >= 3) on ``data.manifest``.

    Args:
        cfg: the composed train config.
        train: runs one fold (:func:`labral.train.command.train`; passed in by the command,
            which sits above this module).

    Returns:
        The ``cv.json`` summary: ``{"folds", "per_fold": [...], "pooled": {...},
        "predictions", "run_dir"}``.

    Raises:
        BadConfigError: K < 3, DDP, or no manifest. BadManifestError: a fold with fewer than
            2 patients of a class (naming class and fold), or a fold's split that cannot
            train (named with its fold).
    """
    settings = train_settings(cfg)
    k = _checked_folds(settings)
    path = manifest_path(cfg)
    rows = [r for r in load_manifest(path) if r.get("split") != "test"]
    if not rows:
        raise BadManifestError(f"{path}: no rows outside the test split to cross-validate")
    folds = patient_folds(rows, k, seed=settings.cv.seed)
    run_dir = Path(str(cfg.paths.output_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    n_boot, seed = settings.cv.bootstrap, settings.cv.seed
    predictions: list[dict[str, Any]] = []
    per_fold: list[dict[str, Any]] = []
    for fold in range(k):
        fold_dir = run_dir / f"fold_{fold}"
        fold_cfg = cfg.copy()
        with open_dict(fold_cfg):
            fold_cfg.paths.output_dir = str(fold_dir)
            fold_cfg.cv.folds = 0
        print(f"cv fold {fold + 1}/{k}: held out fold {fold}, validating on {(fold + 1) % k}")
        try:
            datasets = datasets_from_rows(fold_cfg, fold_rows(rows, folds, fold, k), str(path))
        except BadManifestError as error:
            raise BadManifestError(f"cv fold {fold}: {error.message}") from error
        result = train(fold_cfg, datasets=datasets)
        held = _fold_predictions(fold_cfg, fold_dir, datasets, result, fold, path.parent)
        predictions += held
        per_fold.append(
            {
                "fold": fold,
                **summarize(held, n_boot, seed),
                "val_auroc": result["val"]["auroc"],
                "best_epoch": result["best_epoch"],
                "temperature": result["temperature"],
                "threshold": result["threshold"],
                "run_dir": str(fold_dir),
            }
        )
    _write_predictions(run_dir / PREDICTIONS_NAME, predictions)
    summary = {
        "folds": k,
        "manifest": str(path),
        "per_fold": per_fold,
        "pooled": summarize(predictions, n_boot, seed),
        "predictions": str(run_dir / PREDICTIONS_NAME),
        "run_dir": str(run_dir),
    }
    (run_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2))
    _print_summary(summary, run_dir / SUMMARY_NAME)
    return summary


def _checked_folds(settings: TrainSettings) -> int:
    """``cv.folds`` K, checked: K >= 3 and one process.

    Raises:
        BadConfigError: K < 3 or trainer=ddp.
    """
    k = settings.cv.folds
    if k < 3:
        raise BadConfigError(
            f"cv.folds={k}: cross-validation needs at least 3 folds (one held out, one to "
            "validate and calibrate on, the rest to train); cv.folds=0 trains once"
        )
    if settings.trainer.strategy == "ddp":
        raise BadConfigError("cv.folds with trainer=ddp is not supported; run folds on one process")
    return k


def _print_summary(summary: dict[str, Any], written: Path) -> None:
    """One line: the pooled out-of-fold AUROC with its CI, each fold's, and the file."""
    pooled, per_fold = summary["pooled"], summary["per_fold"]
    ci = pooled["auroc_ci"]
    text = "n/a" if pooled["auroc"] is None else f"{pooled['auroc']:.3f}"
    bounds = "n/a" if None in ci else f"{ci[0]:.3f}-{ci[1]:.3f}"
    print(
        f"cv: {summary['folds']} folds, pooled out-of-fold clip AUROC {text} (95% "
        "patient-bootstrap CI "
        f"{bounds}); per fold "
        + ", ".join("n/a" if f["auroc"] is None else f"{f['auroc']:.3f}" for f in per_fold)
        + f"; {written}"
    )
