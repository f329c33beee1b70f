"""Are the static shortcuts closed? Simple classifiers on handcrafted features of synthetic clips.

Generates a data set in memory (patients with one or two hips, several clips each, negative
types drawn from the default mix), then fits, with patient-grouped cross-validation
(``GroupKFold``), three simple classifiers:

- ``still_frame``: features of one random frame: a 4x4 grid of regional intensity means and
  standard deviations plus the cleft/labrum region (mean, std, dark fraction) and the ring
  around it;
- ``order_free``: the same per-frame features pooled over all frames (mean, std, min, max);
- ``motion_aware``: the cleft darkness correlated with the femoral velocity measured from the
  pixels (phase correlation of a femoral-head window), plus frame-difference energy in the
  cleft relative to the tissue above (flow decorrelation), and its correlation with the
  velocity.

Targets (issue 2): still_frame <= 0.65, order_free <= 0.70, motion_aware >= 0.85 AUROC.
Also prints the generation speed (ms per 32x128x128 clip on one core).

Run: ``PYTHONSAFEPATH=1 .venv/bin/python -m labral.bench.synth_shortcuts --patients 160``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.datasets.synth.scenarios import DEFAULT_NEGATIVE_MIX
from labral.datasets.synth.types import SynthClip


@dataclass
class ClipFeatures:
    """Handcrafted features of one clip: per-frame (T, F) and motion-aware (M,)."""

    per_frame: np.ndarray
    motion: np.ndarray


def make_clips(
    n_patients: int,
    clips_per_hip: int,
    frames: int,
    size: int,
    seed: int = 0,
    prevalence: float = 0.5,
) -> tuple[list[SynthClip], np.ndarray]:
    """Generate a grouped synthetic data set in memory.

    Args:
        n_patients: number of synthetic patients (one or two hips each).
        clips_per_hip: clips per hip.
        frames, size: clip length and frame size (square).
        seed: master seed.
        prevalence: probability that a clip is positive.

    Returns:
        ``(clips, groups)``: the clips and an int array (N,) of patient ids.
    """
    rng = np.random.default_rng(seed)
    types = list(DEFAULT_NEGATIVE_MIX)
    weights = np.array([DEFAULT_NEGATIVE_MIX[t] for t in types])
    clips, groups = [], []
    for pid in range(n_patients):
        patient = draw_patient(seed * 100_000 + pid)
        sides = ["L", "R"] if rng.random() < 0.5 else [str(rng.choice(["L", "R"]))]
        for side in sides:
            for _ in range(clips_per_hip):
                ctype = (
                    "positive" if rng.random() < prevalence else str(rng.choice(types, p=weights))
                )
                clip = generate_clip(
                    patient,
                    ctype,
                    int(rng.integers(0, 2**31 - 1)),
                    frames=frames,
                    height=size,
                    width=size,
                    side=side,
                )
                clips.append(clip)
                groups.append(pid)
    return clips, np.array(groups)


def _femur_shift(frames: np.ndarray, roi: list[int]) -> np.ndarray:
    """How far the femoral neck cortex has moved (rows, (T,)) since frame 0.

    The cortex is the strongest bright-to-shadow edge of each column in the right third of
    the image (the head-neck junction and neck, which swing as the femur rotates); the
    position is the mean change of that edge depth against frame 0.
    """
    h, w = frames.shape[1:]
    win = frames[:, max(roi[0] - 8, 0) :, (2 * w) // 3 :].astype(np.float32)
    win = (win[:, :, :-2] + win[:, :, 1:-1] + win[:, :, 2:]) / 3.0  # light lateral smoothing
    edge = win[:, :-4] + win[:, 1:-3] - win[:, 3:-1] - win[:, 4:]  # bright above, shadow below
    depth = edge.argmax(axis=1).astype(np.float32)  # (T, W')
    return (depth - depth[0]).mean(axis=1).astype(np.float32)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() < 1e-6 or b.std() < 1e-6:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def clip_features(clip: SynthClip) -> ClipFeatures:
    """Per-frame and motion-aware features of one clip.

    Args:
        clip: a generated clip; its frames uint8 (T, H, W) and ``params["cleft_roi_px"]``
            (the labrum/cleft region a reader would place from the anatomy) are used.

    Returns:
        :class:`ClipFeatures` with ``per_frame`` float32 (T, 37) and ``motion`` float32 (6,).
    """
    f = clip.frames.astype(np.float32)
    t, h, w = f.shape
    grid = f[:, : h - h % 4, : w - w % 4].reshape(t, 4, h // 4, 4, w // 4)
    g_mean = grid.mean(axis=(2, 4)).reshape(t, -1)
    g_std = grid.std(axis=(2, 4)).reshape(t, -1)
    r0, r1, c0, c1 = clip.params["cleft_roi_px"]
    roi = f[:, r0:r1, c0:c1]
    ring = f[:, max(r0 - 6, 0) : r1 + 6, max(c0 - 6, 0) : c1 + 6]
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
    per_frame = np.concatenate([g_mean, g_std, cleft], axis=1)

    darkness = -roi.mean(axis=(1, 2))
    position = _femur_shift(clip.frames, clip.params["cleft_roi_px"])
    velocity = np.gradient(position)
    diff_roi = np.abs(np.diff(roi, axis=0)).mean(axis=(1, 2))
    above = f[:, max(r0 - 20, 0) : max(r0 - 8, 1), c0:c1]
    diff_ref = np.abs(np.diff(above, axis=0)).mean(axis=(1, 2)) + 1.0
    motion = np.array(
        [
            _corr(darkness, velocity),
            _corr(darkness[1:], velocity[:-1]),
            _corr(darkness, position),
            float(np.median(diff_roi / diff_ref)),
            _corr(diff_roi, np.abs(velocity[1:])),
            _corr(diff_roi / diff_ref, velocity[1:]),
        ],
        dtype=np.float32,
    )
    return ClipFeatures(per_frame=per_frame.astype(np.float32), motion=motion)


def feature_sets(feats: list[ClipFeatures], seed: int = 0) -> dict[str, np.ndarray]:
    """The three design matrices: still_frame (N, F), order_free (N, 4F), motion_aware (N, M)."""
    rng = np.random.default_rng(seed)
    still = np.stack([x.per_frame[rng.integers(0, len(x.per_frame))] for x in feats])
    pooled = np.stack(
        [
            np.concatenate(
                [x.per_frame.mean(0), x.per_frame.std(0), x.per_frame.min(0), x.per_frame.max(0)]
            )
            for x in feats
        ]
    )
    motion = np.stack([x.motion for x in feats])
    return {"still_frame": still, "order_free": pooled, "motion_aware": motion}


def grouped_auroc(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, model: str = "logreg", folds: int = 5
) -> float:
    """Out-of-fold AUROC with patient-grouped K-fold cross-validation.

    Args:
        x: float (N, F) features; y: int (N,) labels; groups: int (N,) patient ids.
        model: ``"logreg"`` (standardised L2 logistic regression) or ``"forest"``.
        folds: number of folds.

    Returns:
        AUROC of the pooled out-of-fold scores.
    """
    scores = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        if model == "forest":
            clf = RandomForestClassifier(
                n_estimators=200, min_samples_leaf=3, random_state=0, n_jobs=1
            )
        else:
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        clf.fit(x[train], y[train])
        scores[test] = clf.predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


def run_shortcuts(
    n_patients: int,
    clips_per_hip: int = 2,
    frames: int = 32,
    size: int = 128,
    seed: int = 0,
    models: tuple[str, ...] = ("logreg",),
) -> dict[str, float]:
    """Generate, featurise and score; returns ``{"<set>/<model>": auroc}``."""
    clips, groups = make_clips(n_patients, clips_per_hip, frames, size, seed)
    y = np.array([c.label for c in clips])
    sets = feature_sets([clip_features(c) for c in clips], seed)
    return {
        f"{name}/{m}": grouped_auroc(x, y, groups, m) for name, x in sets.items() for m in models
    }


def generation_ms_per_clip(repeats: int = 5, clips: int = 8) -> tuple[float, float]:
    """Generation time of one 32x128x128 clip on one core, median over ``repeats`` batches.

    Returns:
        ``(wall_ms, cpu_ms)``: wall-clock and process CPU time per clip, a new hip every
        second clip (CPU time is the fairer figure on a shared machine).
    """
    types = ["positive", *DEFAULT_NEGATIVE_MIX]
    generate_clip(draw_patient(10**6), "positive", 0)
    wall, cpu = [], []
    for r in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(clips):  # a new hip every 2 clips (the tissue maps are cached per hip)
            patient = draw_patient(r * 1000 + i // 2)
            generate_clip(patient, types[i % len(types)], r * 1000 + i)
        wall.append((time.perf_counter() - t0) / clips * 1000.0)
        cpu.append((time.process_time() - c0) / clips * 1000.0)
    return float(np.median(wall)), float(np.median(cpu))


def main() -> None:
    """Command-line entry: prints AUROCs and generation speed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=160)
    ap.add_argument("--clips-per-hip", type=int, default=2)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--forest", action="store_true", help="also score a random forest")
    args = ap.parse_args()
    wall_ms, cpu_ms = generation_ms_per_clip()
    print(f"generation: {wall_ms:.1f} ms wall, {cpu_ms:.1f} ms CPU per 32x128x128 clip (one core)")
    t0 = time.perf_counter()
    models = ("logreg", "forest") if args.forest else ("logreg",)
    res = run_shortcuts(
        args.patients, args.clips_per_hip, args.frames, args.size, args.seed, models
    )
    targets = {"still_frame": "<= 0.65", "order_free": "<= 0.70", "motion_aware": ">= 0.85"}
    for key, auc in res.items():
        print(f"{key:24s} AUROC {auc:.3f}   target {targets[key.split('/')[0]]}")
    print(f"({time.perf_counter() - t0:.0f} s for {args.patients} patients)")


if __name__ == "__main__":
    main()
