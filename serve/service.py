"""The scoring pipeline of one process: bundle -> decode -> eval transform -> batched model.

Decode and preprocessing run in a small thread pool, the model in the batcher's single
worker thread, so the event loop keeps answering health checks while clips are scored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from labral.bundle import Bundle, clip_score, load_bundle
from labral.datasets.clip import Clip
from labral.errors import CorruptPixelDataError, LabralError
from labral.serve.batching import MicroBatcher
from labral.serve.errors import BusyError, NotReadyError
from labral.serve.metrics import ServeMetrics
from labral.serve.settings import ServeSettings

log = logging.getLogger("labral.serve")


@dataclass
class ScoredClip:
    """One scored upload: the clip, the model outputs mapped onto source frames, timings."""

    clip: Clip
    probability: float
    decision: bool
    relevance: np.ndarray  # float32 (T_source,)
    peak_frames: list[int]
    timing_ms: dict[str, float]
    warnings: list[str] = field(default_factory=list)


def peak_frames(relevance: np.ndarray, k: int = 3) -> list[int]:
    """Source frames where the evidence peaks: the ``k`` highest local maxima, best first.

    A run of equal values (relevance is often repeated across source frames that map to
    one model frame) counts as one peak, reported at its middle frame.

    Args:
        relevance: float (T,) per-source-frame relevance.
        k: how many frames at most.

    Returns:
        Up to ``k`` frame indices of strict local maxima, highest relevance first.
    """
    rel = np.asarray(relevance, dtype=np.float64).reshape(-1)
    if rel.size == 0:
        return []
    change = np.flatnonzero(np.diff(rel) != 0) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [rel.size]])
    values = rel[starts]
    left = np.concatenate([[-np.inf], values[:-1]])
    right = np.concatenate([values[1:], [-np.inf]])
    runs = np.flatnonzero((values > left) & (values > right))
    runs = runs[np.argsort(-values[runs], kind="stable")][:k]
    return [int((starts[r] + ends[r] - 1) // 2) for r in runs]


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
        self.transform: Any = None
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
        """Load the bundle, build its eval transform and warm both up (blocking)."""
        from labral.datasets.transforms import build_eval_transform

        start = time.perf_counter()
        try:
            torch.set_num_threads(self.settings.torch_threads)
            bundle = load_bundle(self.settings.bundle)
            self.transform = build_eval_transform(bundle.spec["eval_transform"])
            self.bundle = bundle
            self.batcher = MicroBatcher(
                bundle.predict,
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
        log.info("model %s loaded and warmed in %.2f s", bundle.identity(), elapsed)

    def _warm_up(self) -> None:
        spec = self.bundle.spec["eval_transform"]  # build_eval_transform required these keys
        height, width = (int(v) for v in spec["size"])
        frames = np.random.default_rng(0).integers(
            0, 255, (max(int(spec["frames"]), 2), height, width), dtype=np.uint8
        )
        for _ in range(self.settings.warmup_runs):
            item = self.transform({"clip": Clip(frames=frames, fps=float(spec["fps"]))})
            self.batcher.run_now(item["image"])

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

    # ---- scoring ----------------------------------------------------------------------
    def _decode_and_preprocess(self, data: bytes) -> tuple[Clip, dict, float, float]:
        from labral.datasets.reader import ReadLimits, read_cine

        s = self.settings
        limits = ReadLimits(
            max_frames=s.max_frames,
            max_rows=s.max_rows,
            max_cols=s.max_cols,
            max_bytes=s.max_upload_bytes,
        )
        t0 = time.perf_counter()
        try:
            clip = read_cine(data, limits=limits)
        except LabralError:
            raise
        except Exception as exc:  # a decoder choking on hostile bytes is still bad input
            raise CorruptPixelDataError(
                f"the upload could not be decoded ({type(exc).__name__}: {exc}); "
                "send an intact DICOM cine or MP4/AVI/MOV export"
            ) from exc
        t1 = time.perf_counter()
        item = self.transform({"clip": clip})
        t2 = time.perf_counter()
        return clip, item, (t1 - t0) * 1000, (t2 - t1) * 1000

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

    async def score(self, data: bytes) -> ScoredClip:
        """Decode, preprocess and score one upload.

        Raises:
            NotReadyError: the model is not loaded yet.
            LabralError: bad input (typed, mapped to a 4xx by the error handlers).
        """
        if not self.ready.is_set() or self.batcher is None:
            raise NotReadyError("the model is still loading; retry when /readyz answers 200")
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        self.decoding += 1
        try:
            clip, item, decode_ms, prep_ms = await loop.run_in_executor(
                self._decode_pool, self._decode_and_preprocess, data
            )
        finally:
            self.decoding -= 1
        t1 = time.perf_counter()
        out = await self.batcher.submit(item["image"])
        model_ms = (time.perf_counter() - t1) * 1000
        # the same window -> clip rule as the benchmark: mean logit, bundle temperature
        _, probability, relevance = clip_score(
            out["logits"],
            out["relevance"],
            item["frame_index"],
            clip.num_frames,
            self.bundle.temperature,
        )
        relevance = relevance.astype(np.float32)
        self.metrics.stage_latency.labels(stage="decode").observe(decode_ms / 1000)
        self.metrics.stage_latency.labels(stage="preprocess").observe(prep_ms / 1000)
        self.metrics.stage_latency.labels(stage="model").observe(model_ms / 1000)
        return ScoredClip(
            clip=clip,
            probability=probability,
            decision=probability >= self.bundle.threshold,
            relevance=relevance,
            peak_frames=peak_frames(relevance),
            timing_ms={
                "decode": round(decode_ms, 2),
                "preprocess": round(prep_ms, 2),
                "model": round(model_ms, 2),
                "total": round((time.perf_counter() - t0) * 1000, 2),
            },
            warnings=self.clip_warnings(clip),
        )
