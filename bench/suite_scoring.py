"""Score a suite with one or more bundles: decode in a prefetch pool, run the model in batches.

Decoding (``read_cine``) and each bundle's eval transform run in a small thread pool that
stays ``prefetch`` clips ahead of the model, so the model call on one batch overlaps the
decoding of the next. A clip is decoded once and fed to every bundle's own transform (bundles
may differ in frames, fps, size). Every clip's score comes from
:class:`labral.scoring.ClipScorer` (``prepare`` per clip, ``forward`` per batch, ``finish``
per clip), the same function the service and training-time evaluation use.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from labral.bench import perturb
from labral.bundle import Bundle
from labral.datasets.io import reader
from labral.datasets.io.clip import Clip
from labral.datasets.transforms.clip_transforms import build_eval_transform
from labral.scoring import ClipScore, ClipScorer, PreparedClip
from labral.threads import cores_per_rank

Prepared = tuple[int, list[PreparedClip]]


@dataclass
class ModelScores:
    """Per-clip outputs of one bundle on one pass over a suite (see :class:`ClipScore`).

    The model's numbers are computed for every clip, refused or not; the input check's
    verdict on each clip is kept beside them, so the benchmark can report refusal rates and
    the metrics of the clips that pass beside those of all clips (:mod:`labral.bench.refusals`).

    Attributes:
        logits: float64 (N,) mean logit over windows.
        probability: float64 (N,) calibrated probability.
        decision: bool (N,) probability >= the bundle's threshold.
        relevance: list of N float64 arrays (T_source,) temporal relevance in [0, 1].
        clips: the N :class:`ClipScore` objects (peak frames, spatial maps if asked for).
        assessable: bool (N,) the check let the clip through (True without a check).
        reasons: N lists of the reason codes that refused each clip (empty when assessable).
        checked: bool (N,) an input check ran on the clip (False: a bundle without one).
        check_scores: reason -> float64 (N,) that detector's continuous score (higher = more
            likely a wrong input), NaN on a clip without it; only the reasons some verdict
            scored (none for a bundle without a check).
    """

    logits: np.ndarray
    probability: np.ndarray
    decision: np.ndarray
    relevance: list[np.ndarray] = field(default_factory=list)
    clips: list[ClipScore | None] = field(default_factory=list)
    assessable: np.ndarray | None = None
    reasons: list[list[str]] | None = None
    checked: np.ndarray | None = None
    check_scores: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Scores without verdicts (saved predictions, hand-made): every clip assessable."""
        n = self.probability.size
        if self.assessable is None:
            self.assessable = np.ones(n, bool)
        if self.reasons is None:
            self.reasons = [[] for _ in range(n)]
        if self.checked is None:
            self.checked = np.zeros(n, bool)

    @classmethod
    def empty(cls, n: int) -> ModelScores:
        """Room for ``n`` clips, filled in by :meth:`put`."""
        return cls(np.zeros(n), np.zeros(n), np.zeros(n, bool), [np.zeros(0)] * n, [None] * n)

    def put(self, index: int, score: ClipScore) -> None:
        """Store clip ``index``'s score and its input check's verdict."""
        self.logits[index] = score.logit
        self.probability[index] = score.probability
        self.decision[index] = score.decision
        self.relevance[index] = score.relevance
        self.clips[index] = score
        verdict = score.verdict
        self.assessable[index] = verdict.assessable
        self.reasons[index] = list(verdict.reasons)
        self.checked[index] = verdict.checked
        for reason, value in verdict.scores.items():
            if reason not in self.check_scores:
                self.check_scores[reason] = np.full(self.probability.size, np.nan)
            self.check_scores[reason][index] = float(value)


@dataclass
class PassResult:
    """One pass over the suite: scores per bundle, wall-clock seconds of the whole pass
    (decoding shared by all bundles) and seconds spent inside each bundle's forward."""

    scores: list[ModelScores]
    seconds: float
    model_seconds: list[float] = field(default_factory=list)


def model_threads(workers: int) -> int:
    """Torch intra-op threads that leave one core per decoding thread: max(1, this process's
    cores - workers), where a process started by torchrun owns its share of the cores
    (cores / ``LOCAL_WORLD_SIZE``, :mod:`labral.threads`).

    On a 2-core machine with one decoding thread, two torch threads plus the decoder
    oversubscribe the cores and the pipeline runs no faster than decoding inline; one torch
    thread beside the decoder ran about 1.8x faster (benchmarks/scoring_speed.py).
    """
    return max(1, cores_per_rank() - max(workers, 0))


def eval_transforms(bundles: Sequence[Bundle]) -> list[Callable[[dict], dict]]:
    """Each bundle's eval transform, built from the spec it carries (never redeclared)."""
    return [build_eval_transform(bundle.spec["eval_transform"]) for bundle in bundles]


class ClipSource:
    """Decoded clips of a suite: read on demand, optionally kept in memory for later passes.

    Args:
        paths: (N,) file paths.
        keep: keep decoded clips for later passes: True for all (robustness sweeps re-score
            every clip), or the indices of some (the positives, which the order controls and
            the pointing game score again).
    """

    def __init__(self, paths: Sequence[str], keep: bool | Collection[int] = False) -> None:
        self.paths = list(paths)
        self.keep = keep if isinstance(keep, bool) else frozenset(int(i) for i in keep)
        self._clips: dict[int, Clip] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> Clip:
        """The decoded clip ``index`` (uint8 (T, H, W) frames)."""
        if index in self._clips:
            return self._clips[index]
        clip = reader.read_cine(self.paths[index])  # looked up per call: tests count decodes
        if self.keep is True or (not isinstance(self.keep, bool) and index in self.keep):
            self._clips[index] = clip
        return clip

    def subset(self, indices: Sequence[int]) -> ClipSource:
        """A source over some of these clips (its clip ``k`` is this one's ``indices[k]``)
        that shares this source's decoded clips."""
        return _ClipSubset(self, indices)


class _ClipSubset(ClipSource):
    def __init__(self, parent: ClipSource, indices: Sequence[int]) -> None:
        super().__init__([parent.paths[int(i)] for i in indices])
        self.parent, self.indices = parent, [int(i) for i in indices]

    def get(self, index: int) -> Clip:
        return self.parent.get(self.indices[index])


def prepare_clip(
    source: ClipSource,
    index: int,
    scorers: Sequence[ClipScorer],
    perturbation: tuple[str, float, int] | None = None,
    check: bool = True,
) -> Prepared:
    """Decode clip ``index``, perturb it if asked, and run every bundle's input check (unless
    ``check`` is False) and eval transform.

    Returns:
        ``(index, [PreparedClip per bundle])``.
    """
    clip = source.get(index)
    if perturbation is not None:
        name, level, seed = perturbation
        clip = perturb.apply(clip, name, level, seed * 1_000_003 + index)
    return index, [scorer.prepare(clip, check=check) for scorer in scorers]


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
    scorers: Sequence[ClipScorer],
    batch: list[Prepared],
    scores: list[ModelScores],
    model_seconds: list[float],
    spatial: bool,
) -> None:
    for b, scorer in enumerate(scorers):
        prepared = [item[1][b] for item in batch]
        started = time.perf_counter()
        out = scorer.forward(torch.cat([p.image for p in prepared]))
        model_seconds[b] += time.perf_counter() - started
        start = 0
        for (index, _), clip in zip(batch, prepared, strict=True):
            stop = start + clip.image.shape[0]
            score = scorer.finish(
                clip, out["logits"][start:stop], out["relevance"][start:stop], spatial=spatial
            )
            scores[b].put(index, score)
            start = stop


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
    spatial: bool = False,
    check: bool = True,
) -> PassResult:
    """Score every clip of ``source`` with every bundle.

    Args:
        source: the suite's clips. bundles: loaded bundles. transforms: their eval
            transforms (:func:`eval_transforms`).
        batch_size: clips per model call. workers: decoding threads (0 = decode inline).
        prefetch: clips decoded ahead of the model (default 2 x batch_size).
        perturbation: ``(name, level, seed)`` applied to every decoded clip, or None.
        progress: called with the number of clips just scored (e.g. a tqdm ``update``).
        spatial: also compute each clip's spatial maps (one extra forward and backward pass
            per clip and bundle).
        check: False skips the bundles' input checks (a pass whose verdicts are not read).

    Returns:
        :class:`PassResult` with one :class:`ModelScores` per bundle, clips in suite order.
    """
    n = len(source)
    scorers = [ClipScorer(b, t) for b, t in zip(bundles, transforms, strict=True)]
    scores = [ModelScores.empty(n) for _ in bundles]
    model_seconds = [0.0] * len(bundles)
    started = time.perf_counter()

    def work(index: int) -> Prepared:
        return prepare_clip(source, index, scorers, perturbation, check)

    batch: list[Prepared] = []
    for item in _prefetched(n, work, workers, prefetch or 2 * batch_size):
        batch.append(item)
        if len(batch) == batch_size:
            _score_batch(scorers, batch, scores, model_seconds, spatial)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        _score_batch(scorers, batch, scores, model_seconds, spatial)
        if progress:
            progress(len(batch))
    return PassResult(scores, time.perf_counter() - started, model_seconds)


def single_clip_latency(
    source: ClipSource, bundle: Bundle, transform: Callable[[dict], dict], n_clips: int
) -> list[float]:
    """Seconds per clip, end to end (decode + transform + model + score, batch of one), for
    the first ``n_clips`` clips (after one warm-up call)."""
    scorer = ClipScorer(bundle, transform)
    timings = []
    for index in range(min(n_clips, len(source)) + 1):
        started = time.perf_counter()
        scorer.score(reader.read_cine(source.paths[index % len(source)]))
        timings.append(time.perf_counter() - started)
    return timings[1:]
