"""Does a model point at the extrusion? Temporal and spatial localisation against strong nulls.

Temporal (on positives whose truth names ``extrusion_frames``): a hit is a relevance peak
within ``tolerance`` source frames of an extrusion frame
(:func:`labral.bench.bootstrap.peak_hits_truth`). Beside the model's hit rate:

- ``chance``: a peak drawn uniformly over the clip's frames (long extrusions make hits easy);
- ``velocity_null``: the hit rate of an image-free relevance, the positive part of the femur's
  loading velocity from the generator's traces (``loading_velocity`` in a synthetic suite's
  rows): the extrusion happens while the hip is loaded, so timing alone already points near
  it. ``vs_velocity_null`` is the paired patient-bootstrap difference (model - null); a
  model localises the extrusion itself only where that interval excludes 0.

Spatial, the pointing game (on positives with an ``extrusion_mask``): the spatial map
(|d logit / d image| from :func:`labral.scoring.spatial_maps`, the function the service's
``spatial=true`` uses) on the clip's *key frame* (the source frame with the largest
extrusion area) is a hit when its maximum lies in the extrusion mask taken to model input
size by the bundle's own crop and resize (a model pixel counts as mask when any of it is).
``chance`` is the mask's share of the key frame at that size: the hit rate of a uniformly
random point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from labral.bench import bootstrap as M
from labral.bench.suite_scoring import ClipSource, ModelScores
from labral.bundle import Bundle
from labral.datasets.transforms.clip_transforms import ResizeClip, check_spec
from labral.scoring import ClipScorer, spatial_maps


def velocity_relevance(record: dict[str, Any]) -> np.ndarray | None:
    """The image-free null: max(0, loading velocity) on every source frame, or None."""
    trace = record.get("loading_velocity")
    if not trace:
        return None
    return np.maximum(np.asarray(trace, dtype=np.float64), 0.0)


def temporal(
    records: Sequence[dict[str, Any]],
    scores: ModelScores,
    bootstrap: M.ClusterBootstrap,
    tolerance: int,
    level: float,
    mask: np.ndarray | None = None,
) -> dict[str, Any]:
    """The model's temporal hit rate with its CI, uniform chance and the velocity null.

    Args:
        mask: bool (N,) the clips to count (a part of the suite, e.g. one level); None = all.
    """
    has_truth = np.array(
        [int(r["label"]) == 1 and bool(r.get("extrusion_frames")) for r in records], dtype=bool
    )
    if mask is not None:
        has_truth &= np.asarray(mask, dtype=bool)

    def hits_of(relevance: Sequence[np.ndarray | None]) -> np.ndarray:
        return np.array(
            [
                bool(truth and rel is not None)
                and M.peak_hits_truth(rel, r.get("extrusion_frames") or [], tolerance)
                for r, rel, truth in zip(records, relevance, has_truth, strict=True)
            ],
            dtype=bool,
        )

    model_hits = hits_of(scores.relevance)
    out = M.rate_with_ci(model_hits, bootstrap, has_truth, level)
    out["tolerance_frames"] = tolerance
    chance = [
        M.chance_hit_rate(rel.size, r["extrusion_frames"], tolerance)
        for r, rel, truth in zip(records, scores.relevance, has_truth, strict=True)
        if truth
    ]
    out["chance"] = float(np.mean(chance)) if chance else float("nan")
    null = [velocity_relevance(r) for r in records]
    with_null = has_truth & np.array([v is not None for v in null])
    if with_null.any():
        null_hits = hits_of(null)
        out["velocity_null"] = M.rate_with_ci(null_hits, bootstrap, with_null, level)
        difference = model_hits.astype(float) - null_hits.astype(float)
        paired = M.rate_with_ci(difference, bootstrap, with_null, level)
        out["vs_velocity_null"] = paired
    return out


def key_frame(mask_file: str) -> tuple[int, np.ndarray]:
    """The source frame with the largest extrusion area and its bool (H, W) mask."""
    with np.load(mask_file) as data:
        frames, masks = data["frames"], data["mask"]
    best = int(np.argmax(masks.reshape(masks.shape[0], -1).sum(axis=1)))
    return int(frames[best]), masks[best]


def mask_at_model_size(mask: np.ndarray, eval_spec: dict[str, Any]) -> np.ndarray:
    """bool (H, W) source mask -> bool (h, w) at model input size (the bundle's crop + resize;
    a model pixel is in the mask when any source pixel under it is)."""
    spec = check_spec(eval_spec)
    resized = ResizeClip(spec["size"], spec.get("crop"))(mask.astype(np.uint8)[None] * 255)[0]
    return resized > 0


def pointing_game(
    records: Sequence[dict[str, Any]],
    source: ClipSource,
    bundles: Sequence[Bundle],
    transforms: Sequence[Callable[[dict], dict]],
    bootstrap: M.ClusterBootstrap,
    level: float,
    progress: Callable[[int], Any] | None = None,
) -> list[dict[str, Any]]:
    """The pointing game of every bundle on the suite's positives with an extrusion mask.

    Returns:
        Per bundle ``{"value", "ci_low", "ci_high", "n_boot", "n", "chance",
        "examples": [{"clip", "frame", "map" float32 (h, w), "mask" bool (h, w)}] (3 at
        most, for the report)}``; an empty list when no row has a mask.
    """
    rows = [i for i, r in enumerate(records) if int(r["label"]) == 1 and r.get("extrusion_mask")]
    if not rows:
        return []
    scorers = [ClipScorer(b, t) for b, t in zip(bundles, transforms, strict=True)]
    n = len(records)
    hits = [np.zeros(n, bool) for _ in bundles]
    chance = [np.zeros(n) for _ in bundles]
    examples: list[list[dict[str, Any]]] = [[] for _ in bundles]
    for index in rows:
        frame, mask = key_frame(records[index]["extrusion_mask"])
        clip = source.get(index)
        for b, scorer in enumerate(scorers):
            prepared = scorer.prepare(clip, check=False)  # checked in the clean pass
            (smap,) = spatial_maps(
                scorer.bundle.module, prepared.image, prepared.frame_index, [frame]
            )
            target = mask_at_model_size(mask, scorer.bundle.spec["eval_transform"])
            peak = np.unravel_index(int(np.argmax(smap.values)), smap.values.shape)
            hits[b][index] = bool(smap.values.max() > 0 and target[peak])
            chance[b][index] = float(target.mean())
            if len(examples[b]) < 3:
                examples[b].append(
                    {"clip": index, "frame": frame, "map": smap.values, "mask": target}
                )
        if progress:
            progress(1)
    counted = np.zeros(n, bool)
    counted[rows] = True
    out = []
    for b in range(len(bundles)):
        block = M.rate_with_ci(hits[b], bootstrap, counted, level)
        block["chance"] = float(chance[b][counted].mean())
        block["examples"] = examples[b]
        out.append(block)
    return out
