"""Score a suite with one or more bundles: decode in a prefetch pool, run the model in batches.

Decoding (``read_cine``) and each bundle's eval transform run in a small thread pool that
stays ``prefetch`` clips ahead of the model, so the model call on one batch overlaps the
decoding of the next. A clip is decoded once and fed to every bundle's own transform (bundles
may differ in frames, fps, size). With several windows per clip (``windows`` > 1 in the eval
spec), the clip's logit is the mean of its windows' logits and its temporal relevance is the
mapping of every window back onto the source frames.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from labral.bench import perturb
from labral.bundle import Bundle, clip_score
from labral.datasets.clip import Clip

Prepared = tuple[int, list[tuple[torch.Tensor, torch.Tensor]], int]


@dataclass
class ModelScores:
    """Per-clip outputs of one bundle on one pass over a suite.

    Attributes:
        logits: float64 (N,) mean logit over windows.
        probability: float64 (N,) sigmoid(logit / temperature).
        relevance: list of N float64 arrays (T_source,) temporal relevance on source frames.
    """

    logits: np.ndarray
    probability: np.ndarray
    relevance: list[np.ndarray] = field(default_factory=list)


@dataclass
class PassResult:
    """One pass over the suite: scores per bundle, wall-clock seconds of the whole pass
    (decoding shared by all bundles) and seconds spent inside each bundle's forward."""

    scores: list[ModelScores]
    seconds: float
    model_seconds: list[float] = field(default_factory=list)


def model_threads(workers: int) -> int:
    """Torch intra-op threads that leave one core per decoding thread: max(1, cores - workers).

    On a 2-core machine with one decoding thread, two torch threads plus the decoder
    oversubscribe the cores and the pipeline runs no faster than decoding inline; one torch
    thread beside the decoder ran about 1.8x faster (benchmarks/scoring_speed.py).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - max(workers, 0))


def eval_transforms(bundles: Sequence[Bundle]) -> list[Callable[[dict], dict]]:
    """Each bundle's eval transform, built from the spec it carries (never redeclared)."""
    from labral.datasets.transforms import build_eval_transform

    return [build_eval_transform(bundle.spec["eval_transform"]) for bundle in bundles]


class ClipSource:
    """Decoded clips of a suite: read on demand, optionally kept in memory for later passes.

    Args:
        paths: (N,) file paths. keep: keep decoded clips (robustness sweeps re-use them).
    """

    def __init__(self, paths: Sequence[str], keep: bool = False) -> None:
        self.paths = list(paths)
        self.keep = keep
        self._clips: dict[int, Clip] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> Clip:
        """The decoded clip ``index`` (uint8 (T, H, W) frames)."""
        if index in self._clips:
            return self._clips[index]
        from labral.datasets.reader import read_cine

        clip = read_cine(self.paths[index])
        if self.keep:
            self._clips[index] = clip
        return clip


def prepare_clip(
    source: ClipSource,
    index: int,
    transforms: Sequence[Callable[[dict], dict]],
    perturbation: tuple[str, float, int] | None = None,
) -> Prepared:
    """Decode clip ``index``, perturb it if asked, and run every bundle's eval transform.

    Returns:
        ``(index, [(image float32 (W, 1, T, H, W), frame_index int64 (W, T)) per bundle],
        num_source_frames)``.
    """
    clip = source.get(index)
    if perturbation is not None:
        name, level, seed = perturbation
        clip = perturb.apply(clip, name, level, seed * 1_000_003 + index)
    outputs = []
    for transform in transforms:
        data = transform({"clip": clip})
        image = torch.as_tensor(data["image"], dtype=torch.float32)
        frame_index = torch.as_tensor(data["frame_index"], dtype=torch.int64)
        if image.ndim == 4:  # a transform that returns (1, T, H, W): one window
            image, frame_index = image.unsqueeze(0), frame_index.reshape(1, -1)
        outputs.append((image, frame_index))
    return index, outputs, clip.num_frames


def _prefetched(
    count: int, work: Callable[[int], Prepared], workers: int, prefetch: int
) -> Iterator[Prepared]:
    """Yield ``work(i)`` in order, computing up to ``prefetch`` ahead in ``workers`` threads."""
    if workers <= 0:
        for index in range(count):
            yield work(index)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-decode") as pool:
        pending: deque[Future[Prepared]] = deque()
        next_index = 0
        while next_index < count or pending:
            while next_index < count and len(pending) < max(prefetch, 1):
                pending.append(pool.submit(work, next_index))
                next_index += 1
            yield pending.popleft().result()


def _score_batch(
    bundles: Sequence[Bundle],
    batch: list[Prepared],
    scores: list[ModelScores],
    model_seconds: list[float],
) -> None:
    for b, bundle in enumerate(bundles):
        images = [item[1][b][0] for item in batch]
        counts = [image.shape[0] for image in images]
        started = time.perf_counter()
        with torch.inference_mode():
            logits, relevance = bundle.module(torch.cat(images))
        model_seconds[b] += time.perf_counter() - started
        logits = logits.double().numpy()
        relevance = relevance.double().numpy()
        start = 0
        for (index, prepared, num_source), n in zip(batch, counts, strict=True):
            logit, probability, clip_relevance = clip_score(
                logits[start : start + n],
                relevance[start : start + n],
                prepared[b][1],
                num_source,
                bundle.temperature,
            )
            scores[b].logits[index] = logit
            scores[b].probability[index] = probability
            scores[b].relevance[index] = clip_relevance
            start += n


def score_pass(
    source: ClipSource,
    bundles: Sequence[Bundle],
    transforms: Sequence[Callable[[dict], dict]],
    *,
    batch_size: int = 16,
    workers: int = 1,
    prefetch: int | None = None,
    perturbation: tuple[str, float, int] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> PassResult:
    """Score every clip of ``source`` with every bundle.

    Args:
        source: the suite's clips. bundles: loaded bundles. transforms: their eval transforms.
        batch_size: clips per model call. workers: decoding threads (0 = decode inline).
        prefetch: clips decoded ahead of the model (default 2 x batch_size).
        perturbation: ``(name, level, seed)`` applied to every decoded clip, or None.
        progress: called with the number of clips just scored (e.g. a tqdm ``update``).

    Returns:
        :class:`PassResult` with one :class:`ModelScores` per bundle, clips in suite order.
    """
    n = len(source)
    scores = [ModelScores(np.zeros(n), np.zeros(n), [np.zeros(0)] * n) for _ in bundles]
    model_seconds = [0.0] * len(bundles)
    started = time.perf_counter()

    def work(index: int) -> Prepared:
        return prepare_clip(source, index, transforms, perturbation)

    batch: list[Prepared] = []
    for item in _prefetched(n, work, workers, prefetch or 2 * batch_size):
        batch.append(item)
        if len(batch) == batch_size:
            _score_batch(bundles, batch, scores, model_seconds)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        _score_batch(bundles, batch, scores, model_seconds)
        if progress:
            progress(len(batch))
    return PassResult(scores, time.perf_counter() - started, model_seconds)


def single_clip_latency(
    source: ClipSource, bundle: Bundle, transform: Callable[[dict], dict], n_clips: int
) -> list[float]:
    """Seconds per clip, end to end (decode + transform + model, batch of one), for the first
    ``n_clips`` clips (after one warm-up call)."""
    from labral.datasets.reader import read_cine

    timings = []
    for index in range(min(n_clips, len(source)) + 1):
        started = time.perf_counter()
        clip = read_cine(source.paths[index % len(source)])
        image = torch.as_tensor(transform({"clip": clip})["image"], dtype=torch.float32)
        if image.ndim == 4:
            image = image.unsqueeze(0)
        with torch.inference_mode():
            bundle.module(image)
        timings.append(time.perf_counter() - started)
    return timings[1:]
