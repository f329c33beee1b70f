"""The shortcut study: can anything but the motion tell the classes apart, at each level?

For each difficulty level, a data set is planned and rendered exactly as ``labral synth``
does (hips, provocation, negative mix; :func:`labral.datasets.synth.dataset.plan_dataset`),
then every clip is seen the way the models see it (resampled to the eval transform's frame
rate, its centre window, resized to its size: ``configs/transforms/default.yaml``), and
simple classifiers are scored with patient-grouped 5-fold cross-validation (``GroupKFold``):

- (a) ``still_frame``: features of one random frame: a 4x4 grid of regional means and
  standard deviations plus the cleft region (mean, std, dark fraction) and the ring around it;
- (b) ``order_free``: the same per-frame features pooled over frames (mean, std, min, max);
- (c) ``change_pooled``: two-frame change features (absolute frame differences per grid cell
  and in the cleft region, speckle decorrelation and flicker in the cleft region), pooled
  without order (mean, std, max);
- (d) ``timing_best``: the best single handcrafted timing feature: cleft darkness or cleft
  change against the femur's loading, at lags -1..1. The loading is the generator's own
  trace (an oracle no image-based estimate can beat), so this is the strongest timing null;
  each feature is scored on its own and the best AUROC is reported (optimistic, on purpose);
- ``timing_probe``: a logistic regression on all the timing features together;
- ``timing_pixels``: the best single timing feature with the loading *estimated from the
  pixels* (the first temporal principal component of the region beside the cleft, which the
  femoral neck swings through, signed by the rise of the neck cortex): what a handcrafted
  detector without the generator's traces gets.
- (e) ``direction_<classifier>``: the six timing features and the direction-aware ones of
  :mod:`labral.datasets.synth.shortcut_timing` (which way the darkening travels along the
  cleft, joint side to capsular side, against the loading at lags -4..4 frames, its phase in
  the loading cycle, matched filters for forward, backward and in-and-out packets), given
  the generator's loading trace and the cleft's location and axis, scored by a logistic
  regression and by gradient boosting (``--classifier``); ``direction_pixels_<classifier>``:
  the same with the loading tracked from the pixels (the femoral head's rise).
- ``strongest_null``: the best of (d), the timing probe and (e) (a maximum over classifiers,
  optimistic on purpose): the AUROC a model must beat at the level; ``strongest_null_pixels``
  the best of the pixels-only ones. ``--json`` writes every figure;
  :func:`read_strongest_nulls` reads them back per level.

Targets (issue 9): (a)-(c) <= 0.62 at every level; (d) >= 0.95 at easy and <= 0.80 at hard
and expert, so that a learned model has room above a handcrafted one.

Run: ``PYTHONSAFEPATH=1 .venv/bin/python -m labral.datasets.synth.shortcuts --patients 160
--json outputs/shortcuts.json``
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from labral.datasets.synth.dataset import plan_dataset
from labral.datasets.synth.difficulty import known_levels
from labral.datasets.synth.jobs import ClipJob, render_job
from labral.datasets.synth.settings import SynthSettings
from labral.datasets.synth.shortcut_features import (
    TIMING_FEATURES,
    clip_feature_row,
    eval_spec,
    model_view,
)
from labral.datasets.synth.shortcut_timing import (
    cleft_axis,
)

#: The classifiers of the study: a linear one, and one that can combine features non-linearly
#: (direction *and* time: forward travel on the loading stroke).
CLASSIFIERS = ("logistic", "boosting")


def make_classifier(name: str) -> Any:
    """A fresh scikit-learn classifier by name (one of :data:`CLASSIFIERS`).

    ``logistic``: standardised logistic regression (C = 1). ``boosting``: histogram gradient
    boosting with small trees (a few hundred clips per fold), 100 rounds, fixed seed.
    """
    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    if name == "boosting":
        return HistGradientBoostingClassifier(
            learning_rate=0.1,
            max_iter=100,
            max_leaf_nodes=8,
            min_samples_leaf=10,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=0,
        )
    raise ValueError(f"classifier {name!r} is unknown; use one of {list(CLASSIFIERS)}")


def out_of_fold_scores(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5, classifier: str = "logistic"
) -> np.ndarray:
    """float (N,) out-of-fold scores of a classifier, folds grouped by patient.

    Args:
        x: float (N, F) features; y: int (N,) labels; groups: (N,) patient ids.
        folds: number of folds.
        classifier: one of :data:`CLASSIFIERS` (:func:`make_classifier`).
    """
    scores = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        clf = make_classifier(classifier)
        with threadpool_limits(1):  # a few hundred rows: threads only contend on 2 cores
            clf.fit(x[train], y[train])
        scores[test] = clf.predict_proba(x[test])[:, 1]
    return scores


def grouped_auroc(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5, classifier: str = "logistic"
) -> float:
    """AUROC of the pooled :func:`out_of_fold_scores` (the same arguments)."""
    return float(roc_auc_score(y, out_of_fold_scores(x, y, groups, folds, classifier)))


def study_settings(level: str, n_patients: int, seed: int) -> SynthSettings:
    """``labral synth`` settings of the study at one level (nothing is written)."""
    return SynthSettings.from_config(
        {"out": "unused", "seed": seed, "n_patients": n_patients, "difficulty": level},
        check_out=False,
    )


_SETTINGS: SynthSettings | None = None


def _featurise(job: ClipJob) -> tuple[dict[str, np.ndarray], int, str]:
    assert _SETTINGS is not None
    clip = render_job(job, _SETTINGS)
    loading = clip.params["traces"]["loading"]
    spec = eval_spec()
    view = model_view(clip.frames, clip.fps, clip.params["cleft_roi_px"], loading, spec)
    view.axis = cleft_axis(clip.params["anatomy"], clip.frames.shape[1:], tuple(spec["size"]))
    rng = np.random.default_rng(job.seed)
    return clip_feature_row(view, rng), clip.label, job.patient


def _init(settings: SynthSettings) -> None:
    global _SETTINGS
    _SETTINGS = settings


def featurise_level(
    level: str, n_patients: int, seed: int = 0, workers: int = 2
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, int]:
    """Render one level's data set as ``labral synth`` plans it and featurise every clip.

    Returns:
        ``(mats, y, groups, hips)``: design matrices float32 (N, F_k) by name (the keys of
        :func:`clip_feature_row`), labels int (N,), patient ids (N,), number of hips.
    """
    settings = study_settings(level, n_patients, seed)
    jobs = plan_dataset(settings)
    if workers > 1:
        with mp.get_context("fork").Pool(workers, _init, (settings,)) as pool:
            rows = pool.map(_featurise, jobs, chunksize=8)
    else:
        _init(settings)
        rows = [_featurise(job) for job in jobs]
    y = np.array([r[1] for r in rows])
    groups = np.array([r[2] for r in rows])
    mats = {k: np.stack([r[0][k] for r in rows]) for k in rows[0][0]}
    return mats, y, groups, len({j.hip for j in jobs})


def score_timing_nulls(
    mats: dict[str, np.ndarray],
    y: np.ndarray,
    groups: np.ndarray,
    classifiers: Sequence[str] = CLASSIFIERS,
    folds: int = 5,
) -> dict[str, Any]:
    """The timing nulls of one level: (d) and its probes, old and direction-aware.

    Args:
        mats: from :func:`featurise_level` (``timing``, ``timing_pixels``, ``direction``,
            ``direction_pixels``); y: int (N,) labels; groups: (N,) patient ids.
        classifiers: which of :data:`CLASSIFIERS` score the direction-aware features.
        folds: patient-grouped folds of every cross-validation.

    Returns:
        ``timing_best`` (+ ``_feature``), ``timing_probe``, ``timing_pixels``,
        ``timing_single``, ``direction_<classifier>`` and ``direction_pixels_<classifier>``
        per classifier, ``strongest_null`` (the best of the oracle timing nulls: (d), the
        timing probe and the direction-aware ones) and ``strongest_null_pixels`` (the best
        of those from the pixels alone).
    """
    auroc = functools.partial(grouped_auroc, y=y, groups=groups, folds=folds)
    single = {name: auroc(mats["timing"][:, i : i + 1]) for i, name in enumerate(TIMING_FEATURES)}
    best = max(single, key=single.__getitem__)
    pixels = max(auroc(mats["timing_pixels"][:, i : i + 1]) for i in range(len(TIMING_FEATURES)))
    out: dict[str, Any] = {
        "timing_best": single[best],
        "timing_best_feature": best,
        "timing_probe": auroc(mats["timing"]),
        "timing_pixels": pixels,
        "timing_single": single,
    }
    for name in classifiers:
        out[f"direction_{name}"] = auroc(mats["direction"], classifier=name)
        out[f"direction_pixels_{name}"] = auroc(mats["direction_pixels"], classifier=name)
    out["strongest_null"] = max(
        out["timing_best"], out["timing_probe"], *(out[f"direction_{n}"] for n in classifiers)
    )
    out["strongest_null_pixels"] = max(
        out["timing_pixels"], *(out[f"direction_pixels_{n}"] for n in classifiers)
    )
    return out


def study_level(
    level: str,
    n_patients: int,
    seed: int = 0,
    workers: int = 2,
    classifiers: Sequence[str] = CLASSIFIERS,
) -> dict[str, Any]:
    """Render one level's data set, featurise it and score every classifier.

    Returns:
        ``{"level", "clips", "hips", "positives", "still_frame", "order_free",
        "change_pooled"}`` and the timing nulls of :func:`score_timing_nulls`, among them
        ``"strongest_null"`` and ``"strongest_null_pixels"``.
    """
    mats, y, groups, hips = featurise_level(level, n_patients, seed, workers)
    result: dict[str, Any] = {
        "level": level,
        "clips": len(y),
        "hips": hips,
        "positives": int(y.sum()),
    }
    for name in ("still_frame", "order_free", "change_pooled"):
        result[name] = grouped_auroc(mats[name], y, groups)
    result.update(score_timing_nulls(mats, y, groups, classifiers))
    return result


def table_lines(classifiers: Sequence[str] = CLASSIFIERS) -> list[str]:
    """The header and rule of the study's Markdown table (columns follow ``classifiers``)."""
    heads = [
        "level",
        "clips / hips",
        "(a) still frame",
        "(b) order-free",
        "(c) two-frame change",
        "(d) best timing feature",
        "timing probe",
        "timing from pixels",
        *(f"(e) direction-aware, {name}" for name in classifiers),
        *(f"(e) from pixels, {name}" for name in classifiers),
        "strongest null",
        "strongest null from pixels",
    ]
    return ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]


def table_row(r: dict[str, Any], classifiers: Sequence[str] = CLASSIFIERS) -> str:
    """One level's row of the table (:func:`table_lines`) from :func:`study_level`'s result."""
    cells = [
        r["level"],
        f"{r['clips']} / {r['hips']}",
        *(f"{r[k]:.3f}" for k in ("still_frame", "order_free", "change_pooled")),
        f"{r['timing_best']:.3f} ({r['timing_best_feature']})",
        f"{r['timing_probe']:.3f}",
        f"{r['timing_pixels']:.3f}",
        *(f"{r[f'direction_{name}']:.3f}" for name in classifiers),
        *(f"{r[f'direction_pixels_{name}']:.3f}" for name in classifiers),
        f"**{r['strongest_null']:.3f}**",
        f"{r['strongest_null_pixels']:.3f}",
    ]
    return "| " + " | ".join(cells) + " |"


def read_strongest_nulls(path: Path) -> dict[str, dict[str, float]]:
    """The per-level strongest nulls of a study written with ``--json``.

    Returns:
        ``{level: {"oracle": strongest_null, "pixels": strongest_null_pixels}}``, the AUROC
        a model must beat at each level (oracle: given the generator's loading trace and the
        cleft's location; pixels: the loading estimated from the image).
    """
    results = json.loads(Path(path).read_text())
    return {
        r["level"]: {"oracle": r["strongest_null"], "pixels": r["strongest_null_pixels"]}
        for r in results
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the per-level table (and write it as JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=160, help="patients per level")
    ap.add_argument("--levels", nargs="*", default=None, help="default: every level")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--classifier",
        choices=[*CLASSIFIERS, "both"],
        default="both",
        help="what scores the direction-aware timing features (default: both)",
    )
    ap.add_argument(
        "--json", type=Path, default=None, help="also write the results here (after each level)"
    )
    args = ap.parse_args(argv)
    levels = args.levels or known_levels()
    classifiers = CLASSIFIERS if args.classifier == "both" else (args.classifier,)
    results = []
    print("\n".join(table_lines(classifiers)))
    for level in levels:
        t0 = time.perf_counter()
        r = study_level(level, args.patients, args.seed, args.workers, classifiers)
        results.append(r)
        print(f"{table_row(r, classifiers)}  <!-- {time.perf_counter() - t0:.0f} s -->", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
