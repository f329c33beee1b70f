"""Hip-level truth: a hip is detached or intact; a clip shows the sign only if it loads it.

Detachment is a property of the hip, not of a clip. Each synthetic hip is drawn detached or
intact (exactly ``prevalence`` of the hips, shuffled) and gets an *extrusion threshold*;
each clip draws a *provocation* in [0, 1]: how far that clip's movement (flexion, adduction,
internal rotation, most of it out of the image plane) loads the joint. The one rule
(:func:`extrusion_visible`): fluid extrudes through the cleft in a clip only if the hip is
detached and the clip's provocation reaches the hip's threshold. So some clips of a
detached hip show no extrusion, and an intact hip never does.

Provocation and threshold are drawn the same way for every hip and clip (intact hips too),
so neither tells the diagnosis; they decide the clip label and are not rendered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from labral.datasets.synth.types import NEGATIVE_TYPES, POSITIVE_TYPE


def extrusion_visible(hip_label: int, provocation: float, threshold: float) -> bool:
    """The rule: a clip shows the extrusion iff its hip is detached and loaded enough."""
    return bool(hip_label) and provocation >= threshold


def allocate_counts(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` into integer counts proportional to ``weights`` (largest remainder).

    Args:
        total: number of items to share out, >= 0.
        weights: non-negative weight per name (zero-weight names get 0).

    Returns:
        name -> count, summing to ``total`` (all zeros if every weight is 0).
    """
    names = [n for n, w in weights.items() if w > 0]
    if total <= 0 or not names:
        return dict.fromkeys(weights, 0)
    wsum = sum(weights[n] for n in names)
    exact = {n: total * weights[n] / wsum for n in names}
    counts = {n: int(np.floor(v)) for n, v in exact.items()}
    by_remainder = sorted(names, key=lambda n: (-(exact[n] - counts[n]), names.index(n)))
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    return {n: counts.get(n, 0) for n in weights}


@dataclass(frozen=True)
class ClipTruth:
    """Ground truth of one planned clip.

    Attributes:
        hip_label: 1 = the hip is detached, 0 = intact.
        extrusion_threshold: the hip's threshold (same on all its clips).
        provocation: how far this clip loads the joint, in [0, 1].
        clip_type: ``"positive"`` when the extrusion is visible, else a negative type.
    """

    hip_label: int
    extrusion_threshold: float
    provocation: float
    clip_type: str

    @property
    def label(self) -> int:
        """1 if the extrusion is visible in this clip."""
        return int(self.clip_type == POSITIVE_TYPE)


def draw_hip_truth(
    clips_per_hip: Sequence[int],
    prevalence: float,
    threshold_range: tuple[float, float],
    negative_mix: Mapping[str, float],
    rng: np.random.Generator,
) -> list[list[ClipTruth]]:
    """Draw the diagnosis of every hip and the truth of every clip.

    Exactly ``round(prevalence * hips)`` hips are detached (shuffled); clips without a
    visible extrusion (every clip of an intact hip, the under-loaded clips of a detached
    one) get negative types shared out exactly by ``negative_mix`` and shuffled.

    Args:
        clips_per_hip: number of clips of each hip, in plan order.
        prevalence: share of detached hips, in [0, 1].
        threshold_range: inclusive range of the hips' extrusion thresholds.
        negative_mix: negative type -> weight (>= 0; positive sum when negatives occur).
        rng: the plan's generator.

    Returns:
        Per hip, its clips' :class:`ClipTruth` in order.
    """
    n_hips = len(clips_per_hip)
    n_detached = int(round(prevalence * n_hips))
    hip_labels = np.zeros(n_hips, np.int64)
    hip_labels[rng.permutation(n_hips)[:n_detached]] = 1
    thresholds = rng.uniform(threshold_range[0], threshold_range[1], n_hips)
    provocations = [rng.uniform(0.0, 1.0, n) for n in clips_per_hip]
    visible = [
        [extrusion_visible(int(hip_labels[h]), float(p), float(thresholds[h])) for p in provs]
        for h, provs in enumerate(provocations)
    ]
    n_negative = sum(not v for hip in visible for v in hip)
    counts = allocate_counts(n_negative, negative_mix)
    negatives = [t for t in NEGATIVE_TYPES for _ in range(counts.get(t, 0))]
    negatives = [negatives[i] for i in rng.permutation(len(negatives))]
    truth: list[list[ClipTruth]] = []
    for h, provs in enumerate(provocations):
        row = []
        for k, prov in enumerate(provs):
            clip_type = POSITIVE_TYPE if visible[h][k] else negatives.pop()
            row.append(ClipTruth(int(hip_labels[h]), float(thresholds[h]), float(prov), clip_type))
        truth.append(row)
    return truth
