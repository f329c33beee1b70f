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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import labral.configs
from labral.datasets.synth.dataset import plan_dataset
from labral.datasets.synth.difficulty import known_levels
from labral.datasets.synth.jobs import ClipJob, render_job
from labral.datasets.synth.settings import SynthSettings
from labral.datasets.synth.shortcut_timing import (
    cleft_axis,
    cleft_profile,
    direction_features,
    pixel_loading,
    tracked_loading,
)
from labral.datasets.transforms.clip_transforms import (
    evenly_spaced_starts,
    resample_indices,
    resize_frames,
)


@dataclass
class ModelView:
    """A clip as the model sees it.

    Attributes:
        frames: float32 (T, h, w) frames of the eval window, 0..255.
        roi: (r0, r1, c0, c1) the cleft region in the resized frame (from the anatomy).
        loading: float32 (T,) the generator's loading trace on the same frames (0..1).
        axis: float32 (h, w) position along the cleft (0 joint side .. 1 capsular side, NaN
            outside it; :func:`~labral.datasets.synth.shortcut_timing.cleft_axis`), or
            ``None`` when not known (the direction features then need it).
    """

    frames: np.ndarray
    roi: tuple[int, int, int, int]
    loading: np.ndarray
    axis: np.ndarray | None = None


@functools.cache
def eval_spec() -> dict[str, Any]:
    """The eval transform spec of ``configs/transforms/default.yaml`` (frames, fps, size).

    Read once per process (every clip of a study uses it): the dict is shared, read it only.
    """
    path = Path(labral.configs.__file__).resolve().parent / "transforms" / "default.yaml"
    spec = OmegaConf.to_container(OmegaConf.load(path).eval, resolve=True)
    assert isinstance(spec, dict)
    return spec


def model_view(
    frames: np.ndarray, fps: float, roi_px: Sequence[int], loading: Sequence[float], spec: dict
) -> ModelView:
    """Resample (nearest frame) to the spec's rate, take its centre window, resize.

    Args:
        frames: uint8 (T, H, W) source frames.
        fps: source frame rate.
        roi_px: (r0, r1, c0, c1) of the cleft region in source pixels.
        loading: float (T,) the generator's loading trace of the source frames.
        spec: ``{"frames", "fps", "size"}`` of the eval transform.

    Returns:
        :class:`ModelView` with float32 (spec frames, h, w) frames.
    """
    index = resample_indices(frames.shape[0], fps, float(spec["fps"]))
    length = int(spec["frames"])
    start = evenly_spaced_starts(len(index), length, 1)[0]
    window = index[np.minimum(start + np.arange(length), len(index) - 1)]
    h, w = (int(v) for v in spec["size"])
    resized = resize_frames(frames[window], (h, w)).astype(np.float32)
    sy, sx = h / frames.shape[1], w / frames.shape[2]
    r0, r1, c0, c1 = roi_px
    roi = (
        int(r0 * sy),
        max(int(np.ceil(r1 * sy)), int(r0 * sy) + 1),
        int(c0 * sx),
        max(int(np.ceil(c1 * sx)), int(c0 * sx) + 1),
    )
    return ModelView(resized, roi, np.asarray(loading, np.float32)[window])


def _grid(f: np.ndarray, cells: int = 4) -> np.ndarray:
    t, h, w = f.shape
    return f[:, : h - h % cells, : w - w % cells].reshape(t, cells, h // cells, cells, w // cells)


def per_frame_features(view: ModelView) -> np.ndarray:
    """float32 (T, 37): grid means/stds (32) and cleft-region statistics (5) per frame."""
    f = view.frames
    grid = _grid(f)
    r0, r1, c0, c1 = view.roi
    roi = f[:, r0:r1, c0:c1]
    ring = f[:, max(r0 - 4, 0) : r1 + 4, max(c0 - 4, 0) : c1 + 4]
    cleft = np.stack(
        [
            roi.mean(axis=(1, 2)),
            roi.std(axis=(1, 2)),
            (roi < 50).mean(axis=(1, 2)),
            ring.mean(axis=(1, 2)),
            (ring < 50).mean(axis=(1, 2)),
        ],
        axis=1,
    )
    t = f.shape[0]
    feats = [grid.mean(axis=(2, 4)).reshape(t, -1), grid.std(axis=(2, 4)).reshape(t, -1), cleft]
    return np.concatenate(feats, axis=1).astype(np.float32)


def change_features(view: ModelView) -> np.ndarray:
    """float32 (T-1, 20): two-frame change features per consecutive pair (no order kept).

    Absolute difference per grid cell (16), in the cleft region, speckle decorrelation
    there (1 - correlation of the two frames) and flicker (share of its pixels changing by
    more than 40 grey levels), and the change in the cleft relative to the tissue above.
    """
    f = view.frames
    diff = np.abs(np.diff(f, axis=0))
    t1 = diff.shape[0]
    cells = _grid(diff).mean(axis=(2, 4)).reshape(t1, -1)
    r0, r1, c0, c1 = view.roi
    a, b = f[:-1, r0:r1, c0:c1].reshape(t1, -1), f[1:, r0:r1, c0:c1].reshape(t1, -1)
    a_c, b_c = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    denom = np.sqrt((a_c**2).sum(1) * (b_c**2).sum(1)) + 1e-6
    decorrelation = 1.0 - (a_c * b_c).sum(1) / denom
    roi_diff = diff[:, r0:r1, c0:c1]
    above = diff[:, max(r0 - 12, 0) : max(r0 - 4, 1), c0:c1]
    cleft = np.stack(
        [
            roi_diff.mean(axis=(1, 2)),
            decorrelation,
            (roi_diff > 40).mean(axis=(1, 2)),
            roi_diff.mean(axis=(1, 2)) / (above.mean(axis=(1, 2)) + 1.0),
        ],
        axis=1,
    )
    return np.concatenate([cells, cleft], axis=1).astype(np.float32)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() < 1e-6 or b.std() < 1e-6:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


TIMING_FEATURES = (
    "darkness_vs_velocity",
    "darkness_vs_velocity_lag1",
    "darkness_vs_velocity_lead1",
    "darkness_vs_position",
    "change_vs_velocity",
    "change_vs_speed",
)


def timing_features(view: ModelView, loading: np.ndarray | None = None) -> np.ndarray:
    """float32 (6,): cleft darkness / change against the loading (order: TIMING_FEATURES).

    Args:
        view: the clip as the model sees it.
        loading: float (T,) loading to use; ``None`` = the generator's trace in ``view``.
    """
    f = view.frames
    r0, r1, c0, c1 = view.roi
    darkness = -f[:, r0:r1, c0:c1].mean(axis=(1, 2))
    position = view.loading if loading is None else np.asarray(loading, np.float32)
    velocity = np.gradient(position)
    change = np.abs(np.diff(f[:, r0:r1, c0:c1], axis=0)).mean(axis=(1, 2))
    return np.array(
        [
            _corr(darkness, velocity),
            _corr(darkness[1:], velocity[:-1]),
            _corr(darkness[:-1], velocity[1:]),
            _corr(darkness, position),
            _corr(change, velocity[1:]),
            _corr(change, np.abs(velocity[1:])),
        ],
        dtype=np.float32,
    )


def direction_row(view: ModelView, loading: np.ndarray | None = None) -> np.ndarray:
    """float32 (len(TIMING_FEATURES) + len(DIRECTION_FEATURES),): the timing features of
    :func:`timing_features` and the direction-aware ones of :mod:`shortcut_timing`.

    Args:
        view: the clip as the model sees it, with its cleft ``axis``.
        loading: float (T,) loading to use; ``None`` = the generator's trace in ``view``.
    """
    if view.axis is None:
        raise ValueError("the direction features need the cleft's axis (ModelView.axis)")
    position = view.loading if loading is None else np.asarray(loading, np.float32)
    profile = cleft_profile(view.frames, view.axis)
    return np.concatenate(
        [timing_features(view, loading), direction_features(profile, position)]
    ).astype(np.float32)


def clip_feature_row(view: ModelView, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The design-matrix rows of one clip for every classifier of the study."""
    per_frame = per_frame_features(view)
    change = change_features(view)
    estimated = pixel_loading(view.frames, view.roi)
    tracked = tracked_loading(view.frames, view.roi, float(eval_spec()["fps"]))
    return {
        "still_frame": per_frame[rng.integers(0, len(per_frame))],
        "order_free": np.concatenate(
            [per_frame.mean(0), per_frame.std(0), per_frame.min(0), per_frame.max(0)]
        ),
        "change_pooled": np.concatenate([change.mean(0), change.std(0), change.max(0)]),
        "timing": timing_features(view),
        "timing_pixels": timing_features(view, estimated),
        "direction": direction_row(view),
        "direction_pixels": direction_row(view, tracked),
    }


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


def grouped_auroc(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5, classifier: str = "logistic"
) -> float:
    """Out-of-fold AUROC of a classifier, folds grouped by patient.

    Args:
        x: float (N, F) features; y: int (N,) labels; groups: (N,) patient ids.
        folds: number of folds.
        classifier: one of :data:`CLASSIFIERS` (:func:`make_classifier`).

    Returns:
        AUROC of the pooled out-of-fold scores.
    """
    scores = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        clf = make_classifier(classifier)
        with threadpool_limits(1):  # a few hundred rows: threads only contend on 2 cores
            clf.fit(x[train], y[train])
        scores[test] = clf.predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


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
