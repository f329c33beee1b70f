"""The scoring passes of one ``labral bench`` run over a suite, under one progress bar.

One clean pass (every bundle), the order controls (every positive reversed, shuffled and
motionless, :mod:`labral.bench.controls`), the pointing game on positives with extrusion masks
(:mod:`labral.bench.localisation`, rank 0 alone under torchrun) and the robustness sweep.
Every clip is decoded once: the positives (or, for a sweep, every clip) are kept in memory
for the passes after the clean one and for the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from labral.bench import controls, localisation
from labral.bench.distributed import score_pass_distributed, world
from labral.bench.settings import BenchSettings
from labral.bench.suite_scoring import ClipSource, PassResult
from labral.bundle import Bundle


@dataclass
class ScoredSuite:
    """Every pass of a run over the suite's N clips.

    Attributes:
        source: the N clips (decoded once; the kept ones stay in memory).
        positives: int (K,) indices of the label-1 clips.
        clean: the clean pass over the N clips, every bundle.
        controls: control name -> its pass over the K positives (empty when off).
        pointing: one pointing-game block per bundle (empty when off, on ranks > 0, or
            without extrusion masks).
        sweep: ``(perturbation, level)`` -> its pass over the N clips.
        timings: ``controls_seconds`` / ``pointing_seconds`` when those passes ran.
    """

    source: ClipSource
    positives: np.ndarray
    clean: PassResult
    controls: dict[str, PassResult] = field(default_factory=dict)
    pointing: list[dict[str, Any]] = field(default_factory=list)
    sweep: dict[tuple[str, float], PassResult] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def score_suite(
    settings: BenchSettings,
    records: Sequence[dict[str, Any]],
    perturbations: Sequence[dict[str, Any]],
    bundles: Sequence[Bundle],
    transforms: Sequence[Callable[[dict], dict]],
) -> ScoredSuite:
    """Run every pass the settings ask for over the suite's records.

    Args:
        records: the suite's N manifest rows (``path``, ``label``, ``patient``, ...).
        perturbations: the robustness sweep ``[{"name", "levels"}]`` (empty if none).
        bundles/transforms: the bundles and their eval transforms, in the same order.
    """
    positives = np.flatnonzero([int(r["label"]) == 1 for r in records])
    keep = True if perturbations else positives.tolist()
    source = ClipSource([r["path"] for r in records], keep=keep)
    n_pointing = sum(1 for i in positives if records[i].get("extrusion_mask"))
    n_passes = 1 + sum(len(p["levels"]) for p in perturbations)
    total = (
        len(source) * n_passes
        + (len(positives) * len(controls.CONTROLS) if settings.controls else 0)
        + (n_pointing if settings.pointing_game else 0)
    )
    score = dict(batch_size=settings.batch_size, workers=settings.workers)
    with tqdm(total=total, desc="scoring", unit="clip", disable=not settings.progress) as bar:
        clean = score_pass_distributed(
            source, bundles, transforms, **score, progress=bar.update, spatial=settings.spatial_maps
        )
        scored = ScoredSuite(source, positives, clean)
        if settings.controls and positives.size:
            started = time.perf_counter()
            scored.controls = controls.score_controls(
                source.subset(positives),
                bundles,
                transforms,
                settings.bootstrap.seed,
                progress=bar.update,
                **score,
            )
            scored.timings["controls_seconds"] = time.perf_counter() - started
        if settings.pointing_game and n_pointing and world()[0] == 0:  # rank 0 under torchrun
            started = time.perf_counter()
            scored.pointing = _pointing_game(settings, records, source, bundles, transforms, bar)
            scored.timings["pointing_seconds"] = time.perf_counter() - started
        for item in perturbations:
            for level in item["levels"]:
                scored.sweep[(item["name"], level)] = score_pass_distributed(
                    source,
                    bundles,
                    transforms,
                    **score,
                    perturbation=(item["name"], float(level), settings.bootstrap.seed),
                    progress=bar.update,
                )
    return scored


def _pointing_game(
    settings: BenchSettings,
    records: Sequence[dict[str, Any]],
    source: ClipSource,
    bundles: Sequence[Bundle],
    transforms: Sequence[Callable[[dict], dict]],
    bar: tqdm,
) -> list[dict[str, Any]]:
    """The pointing game of every bundle on the positives with extrusion masks."""
    boot = settings.bootstrap
    return localisation.pointing_game(
        records, source, bundles, transforms, boot.plan(records), boot.level, bar.update
    )
