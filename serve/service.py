"""The scoring pipeline of one process: bundle -> decode -> eval transform -> batched model.

Decode and preprocessing run in a small thread pool, the model in the batcher's single
worker thread, so the event loop keeps answering health checks while clips are scored.
Every step after decoding is :meth:`ScoringService.score_clip`, which every route calls
(uploads, DICOM, a live session's recorded clip): :class:`labral.scoring.ClipScorer`'s
``prepare`` in the pool, ``forward`` in the batcher, ``finish`` per request (the scorer
``labral bench`` uses).
``prepare`` also runs the bundle's input check, so every route reads one verdict from the
score (:mod:`labral.serve.verdicts`): a not-assessable clip is counted by reason at
``/metrics`` here, and its row (:func:`result_fields`) holds no probability or decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from labral.bundle import Bundle, load_bundle
from labral.datasets.io.clip import Clip
from labral.datasets.io.reader import read_cine
from labral.errors import CorruptPixelDataError, LabralError
from labral.scoring import ClipScore, ClipScorer, PreparedClip
from labral.serve.batching import MicroBatcher
from labral.serve.http.errors import BusyError, NotReadyError
from labral.serve.http.prometheus import ServeMetrics
from labral.serve.settings import ServeSettings

log = logging.getLogger("labral.serve")


@dataclass
class ScoredClip:
    """One scored upload: the clip, its :class:`~labral.scoring.ClipScore`, timings, warnings."""

    clip: Clip
    score: ClipScore
    timing_ms: dict[str, float]
    warnings: list[str] = field(default_factory=list)


def result_fields(scored: ScoredClip) -> dict[str, Any]:
    """What a results row holds of a ``ScoringService.score`` result.

    ``status`` (scored | not_assessable), ``reasons`` and ``advice`` (the input check's),
    ``probability`` and ``decision`` (None when the clip is not assessable: no decision is
    reported, on any route), ``timing_ms`` and ``warnings``.
    """
    score = scored.score
    assessable = score.assessable
    return {
        "status": score.status,
        "reasons": list(score.verdict.reasons),
        "advice": score.verdict.advice or None,
        "probability": float(score.probability) if assessable else None,
        "decision": score.reported_decision,
        "timing_ms": dict(scored.timing_ms),
        "warnings": list(scored.warnings),
    }


class ScoringService:
    """Owns the bundle, the eval transform, the decode pool and the batcher.

    Args:
        settings: validated service settings.
        metrics: where stage latencies, batch sizes and load time are recorded.
    """

    def __init__(self, settings: ServeSettings, metrics: ServeMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.bundle: Bundle | None = None
        self.scorer: ClipScorer | None = None
        self.batcher: MicroBatcher | None = None
        self.load_error: str | None = None
        self.ready = threading.Event()
        self.pending = 0  # admitted requests (event loop only)
        self.decoding = 0  # requests between admission and batch submission (event loop only)
        self._decode_pool = ThreadPoolExecutor(
            max_workers=settings.decode_workers, thread_name_prefix="labral-decode"
        )

    # ---- life cycle -------------------------------------------------------------------
    def load(self) -> None:
        """Load the bundle, build its scorer (eval transform included), warm both up (blocking)."""
        start = time.perf_counter()
        try:
            torch.set_num_threads(self.settings.torch_threads)
            bundle = load_bundle(self.settings.bundle, runtime=self.settings.runtime)
            self.scorer = ClipScorer(bundle)
            self.bundle = bundle
            self.batcher = MicroBatcher(
                self.scorer.forward,
                self.settings.max_batch,
                self.settings.batch_window_ms,
                on_batch=self.metrics.batch_size.observe,
                incoming=lambda: self.decoding,
            )
            self._warm_up()
        except Exception as exc:  # reported by /readyz and /healthz; the process stays up
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("bundle failed to load: %s", self.load_error)
            return
        elapsed = time.perf_counter() - start
        self.metrics.model_load_seconds.set(elapsed)
        log.info(
            "model %s (runtime %s) loaded and warmed in %.2f s",
            bundle.identity(),
            bundle.runtime,
            elapsed,
        )

    def _warm_up(self) -> None:
        spec = self.bundle.spec["eval_transform"]  # build_eval_transform required these keys
        height, width = (int(v) for v in spec["size"])
        frames = np.random.default_rng(0).integers(
            0, 255, (max(int(spec["frames"]), 2), height, width), dtype=np.uint8
        )
        for _ in range(self.settings.warmup_runs):
            prepared = self.scorer.prepare(Clip(frames=frames, fps=float(spec["fps"])))
            self.batcher.run_now(prepared.image)

    def start(self) -> None:
        """Start the batcher on the running loop after a successful ``load``; mark ready."""
        if self.batcher is not None and self.load_error is None:
            self.batcher.start()
            self.metrics.model_ready.set(1)
            self.ready.set()

    async def stop(self) -> None:
        """Stop the batcher and the decode pool."""
        if self.batcher is not None:
            await self.batcher.stop()
        self._decode_pool.shutdown(wait=False, cancel_futures=True)

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of ``max_pending`` request slots (event loop only).

        Raises:
            BusyError: all slots are taken.
        """
        if self.pending >= self.settings.max_pending:
            raise BusyError(
                f"{self.pending} requests are being scored (serve max_pending); retry shortly"
            )
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    def model_fields(self) -> dict[str, Any]:
        """The model's identity and threshold as a results row holds them ({} before load)."""
        bundle = self.bundle
        if bundle is None:
            return {}
        identity = bundle.identity()
        return {
            "model_name": identity.get("name"),
            "model_version": identity.get("version"),
            "model_sha256": identity.get("sha256"),
            "threshold": float(bundle.threshold),
        }

    # ---- scoring ----------------------------------------------------------------------
    def _decode(self, data: bytes) -> tuple[Clip, float]:
        """Read an upload into a clip; returns (clip, milliseconds spent)."""
        t0 = time.perf_counter()
        try:
            clip = read_cine(data, limits=self.settings.read_limits())
        except LabralError:
            raise
        except Exception as exc:  # a decoder choking on hostile bytes is still bad input
            raise CorruptPixelDataError(
                f"the upload could not be decoded ({type(exc).__name__}: {exc}); "
                "send an intact DICOM cine or MP4/AVI/MOV export"
            ) from exc
        return clip, (time.perf_counter() - t0) * 1000

    def _prepare(self, clip: Clip) -> tuple[PreparedClip, float]:
        """The eval transform and the input check; returns (prepared, milliseconds spent)."""
        t0 = time.perf_counter()
        prepared = self.scorer.prepare(clip)
        return prepared, (time.perf_counter() - t0) * 1000

    def clip_warnings(self, clip: Clip) -> list[str]:
        """Reader warnings plus the service's own checks (short clip, low frame rate)."""
        s = self.settings
        spec = self.bundle.spec["eval_transform"]
        notes = list(clip.warnings)
        if clip.duration_s < s.min_duration_s:
            notes.append(
                f"short clip: {clip.duration_s:.2f} s < {s.min_duration_s:.2f} s; the dynamic "
                "sign may not be captured"
            )
        if clip.num_frames < int(spec["frames"]):
            notes.append(
                f"short clip: {clip.num_frames} frames < the model's {spec['frames']}; frames "
                "were repeated"
            )
        if clip.fps < s.min_fps:
            notes.append(f"low frame rate: {clip.fps:.1f} fps < {s.min_fps:.1f} fps")
        return notes

    def _require_ready(self) -> None:
        if not self.ready.is_set() or self.batcher is None:
            raise NotReadyError("the model is still loading; retry when /readyz answers 200")

    async def score(self, data: bytes, *, spatial: bool = False) -> ScoredClip:
        """Decode, preprocess and score one upload (decoding, then :meth:`score_clip`).

        Args:
            data: the uploaded file's bytes.
            spatial: also compute the spatial maps on the peak frames (one extra forward and
                backward pass, run in the decode pool).

        Raises:
            NotReadyError: the model is not loaded yet.
            LabralError: bad input (typed, mapped to a 4xx by the error handlers).
        """
        self._require_ready()
        t0 = time.perf_counter()
        self.decoding += 1
        try:
            clip, decode_ms = await asyncio.get_running_loop().run_in_executor(
                self._decode_pool, self._decode, data
            )
        finally:
            self.decoding -= 1
        self.metrics.stage_latency.labels(stage="decode").observe(decode_ms / 1000)
        # no await between decoding and score_clip's own count: the batcher never sees a gap
        scored = await self.score_clip(clip, spatial=spatial)
        total_ms = (time.perf_counter() - t0) * 1000
        scored.timing_ms = {"decode": round(decode_ms, 2), **scored.timing_ms}
        scored.timing_ms["total"] = round(total_ms, 2)
        return scored

    async def score_clip(
        self, clip: Clip, *, spatial: bool = False, executor: Executor | None = None
    ) -> ScoredClip:
        """Score one decoded clip: what every route runs after decoding.

        ``ClipScorer.prepare`` (the eval transform and the input check) runs in ``executor``,
        the model call in the batcher, ``finish`` here (in ``executor`` when it makes spatial
        maps). The verdict is counted at ``/metrics``; warnings are :meth:`clip_warnings` and
        the verdict's own.

        Args:
            clip: the decoded clip, frames uint8 (T, H, W), with its fps and spacing.
            spatial: also compute the spatial maps on the peak frames (assessable clips only).
            executor: where the CPU steps run; None is the decode pool (a live session's
                final scoring passes the stream pool).

        Returns:
            The scored clip; ``timing_ms`` holds ``preprocess``, ``model`` and ``total``.

        Raises:
            NotReadyError: the model is not loaded yet.
        """
        self._require_ready()
        pool = executor or self._decode_pool
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        self.decoding += 1  # counted until its batch submission (the batcher's ``incoming``)
        try:
            prepared, prep_ms = await loop.run_in_executor(pool, self._prepare, clip)
        finally:
            self.decoding -= 1
        t1 = time.perf_counter()
        out = await self.batcher.submit(prepared.image)
        model_ms = (time.perf_counter() - t1) * 1000
        # a clip the input check refused gets no decision: its evidence maps are not made
        spatial = spatial and prepared.verdict.assessable
        finish = functools.partial(
            self.scorer.finish, prepared, out["logits"], out["relevance"], spatial=spatial
        )
        # without spatial maps finishing is a few array operations: no thread hop for it
        score = await loop.run_in_executor(pool, finish) if spatial else finish()
        self.metrics.stage_latency.labels(stage="preprocess").observe(prep_ms / 1000)
        self.metrics.stage_latency.labels(stage="model").observe(model_ms / 1000)
        self.metrics.count_verdict(score.verdict)
        warnings = self.clip_warnings(clip)
        if score.verdict.warning:  # a bundle without an input check: scored, with a warning
            warnings.append(score.verdict.warning)
        timing = {
            "preprocess": round(prep_ms, 2),
            "model": round(model_ms, 2),
            "total": round((time.perf_counter() - t0) * 1000, 2),
        }
        return ScoredClip(clip=clip, score=score, timing_ms=timing, warnings=warnings)
