"""One live session: frames in, running updates out, the recorded clip at the end.

Everything here is synchronous (the route runs it in a worker thread, off the event loop)::

    frame uint8 (H, W)  -> spool file (the recorded clip, on disk: memory stays flat)
                        -> recent frames ring (the running input check reads these)
                        -> nearest-frame resampling to the model rate (ResampleFPSd's rule)
                        -> crop + resize + /255 (the bundle's eval transform, per frame)
                        -> the running engine (serve/stream/engines.py)
    every k frames      -> update: frame index, input-check state, running probability and
                           decision (once assessable), relevance of recent frames
    at close            -> Clip of every frame received -> the same ClipScorer as
                           POST /v1/predictions (so the final result equals offline scoring)
"""

from __future__ import annotations

import bisect
import math
import tempfile
import time
from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labral.bundle import calibrated_probability, decide, normalise_relevance
from labral.datasets.io.clip import Clip
from labral.datasets.transforms.clip_transforms import ResizeClip
from labral.input_check.verdict import CheckVerdict, check_failed
from labral.scoring import DECIMALS, ClipScorer
from labral.serve.settings import StreamSettings
from labral.serve.stream.engines import running_engine
from labral.serve.stream.limits import StreamOverLimitError

#: The input-check states an update names (docs/streaming.md).
STATES = {
    "collecting": "collecting frames: the clip is still too short to check",
    "waiting_for_manoeuvre": "waiting for the manoeuvre: the hip has not moved yet",
    "image_quality": "the image cannot be read: check probe contact, gel and gain",
    "not_hip_view": "not the anterior hip view: align the probe with the femoral neck",
    "out_of_distribution": "unlike the training clips: check the view and scanner settings",
    "check_failed": "the input check could not run",
    "assessable": "assessable",
    "unchecked": "this bundle has no input check: scores are unchecked",
}


@dataclass(frozen=True)
class SessionSpec:
    """What the client declared when opening (validated by serve/stream/protocol.py).

    Attributes:
        fps: source frame rate.
        height, width: frame size in pixels (every frame has it).
        encoding: ``raw`` (H*W bytes of 8-bit grey) or ``jpeg``.
        spacing_mm: (row, column) pixel spacing, if known.
        update_every: k, frames between two updates.
    """

    fps: float
    height: int
    width: int
    encoding: str = "raw"
    spacing_mm: tuple[float, float] | None = None
    update_every: int = 1


def state_of(verdict: CheckVerdict) -> str:
    """The state an update names for a running input check's verdict (:data:`STATES`)."""
    if not verdict.checked:
        return "unchecked"
    if verdict.assessable:
        return "assessable"
    first = verdict.reasons[0]
    if first == "image_quality" and verdict.details.get(first) == "too_short":
        return "collecting"
    if first == "no_manoeuvre" or "no_manoeuvre" in verdict.reasons:
        return "waiting_for_manoeuvre" if first != "image_quality" else first
    return first if first in STATES else "check_failed"


class StreamSession:
    """The state of one live session (one thread at a time).

    Args:
        scorer: the service's :class:`~labral.scoring.ClipScorer` (bundle, eval transform).
        spec: the opened session.
        limits: the server's stream limits.
        spool_dir: where the recorded frames are written (a temporary file, removed by
            :meth:`discard`).
        checker: where the running input check runs in the background (its latest verdict
            is reported, so a frame never waits for it); None runs it inline, in ``add``.
    """

    def __init__(
        self,
        scorer: ClipScorer,
        spec: SessionSpec,
        limits: StreamSettings,
        spool_dir: Path | None,
        checker: Executor | None = None,
    ) -> None:
        self.scorer = scorer
        self.spec = spec
        self.limits = limits
        eval_spec = scorer.bundle.spec["eval_transform"]
        self.model_fps = float(eval_spec["fps"])
        self.window = int(eval_spec["frames"])
        self.resize = ResizeClip(eval_spec["size"], eval_spec.get("crop"))
        self.engine = running_engine(scorer.bundle.module, self.window, limits.running_without_lag)
        self.max_frames = max(1, math.floor(limits.max_seconds * spec.fps))
        self.spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by discard()
            dir=spool_dir, prefix="labral-stream-", suffix=".u8"
        )
        self.frames = 0
        self.model_frames = 0
        self.model_source: dict[int, int] = {}  # model frame -> source frame (recent only)
        recent = max(2, math.ceil(limits.check_seconds * spec.fps))
        self.recent: deque[np.ndarray] = deque(maxlen=recent)
        self.check_every = max(1, round(limits.check_every_s * spec.fps))
        self.verdict: CheckVerdict | None = None
        self.checker = checker
        self.pending: Future[CheckVerdict] | None = None
        self.work_s = 0.0

    # ---- frames ------------------------------------------------------------------------
    def add(self, frame: np.ndarray) -> None:
        """Record one frame and run it through the running engine.

        Args:
            frame: uint8 (H, W), the declared size.

        Raises:
            StreamOverLimitError: the session already holds ``max_seconds`` of video.
        """
        if self.frames >= self.max_frames:
            raise StreamOverLimitError(
                f"the session reached {self.limits.max_seconds:g} s of video "
                f"({self.max_frames} frames at {self.spec.fps:g} fps); open a new session"
            )
        start = time.perf_counter()
        self.spool.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        self.recent.append(frame)
        index = self.frames
        self.frames += 1
        ratio = self.spec.fps / self.model_fps
        x = None  # resized once, however many model frames show this source frame
        # ResampleFPSd's rule: model frame k shows source frame floor(k * ratio + 0.5)
        while math.floor(self.model_frames * ratio + 0.5) <= index:
            if x is None:
                image = self.resize(frame[None])[0]
                x = torch.from_numpy(np.multiply(image, np.float32(1 / 255), dtype=np.float32))
            self.engine.push(x, self.model_frames)
            self.model_source[self.model_frames] = index
            self.model_frames += 1
        for old in [k for k in self.model_source if k < self.model_frames - 4 * self.window]:
            del self.model_source[old]
        due = index % self.check_every == self.check_every - 1
        if due or (self.verdict is None and self.pending is None):
            self._start_check()
        self.work_s += time.perf_counter() - start

    def _start_check(self) -> None:
        """Run the input check on the recent frames: inline, or in the background when no
        earlier check is still running."""
        if self.checker is None:
            self.verdict = self.scorer.check(self.recent_clip())
        elif self.pending is None:
            self.pending = self.checker.submit(self.scorer.check, self.recent_clip())

    def _latest_verdict(self) -> CheckVerdict | None:
        """The newest finished check's verdict (a background check is collected here)."""
        if self.pending is not None and self.pending.done():
            try:
                self.verdict = self.pending.result()
            except Exception as exc:  # the check itself failed: reported, never hidden
                self.verdict = check_failed(exc)
            self.pending = None
        return self.verdict

    def recent_clip(self) -> Clip:
        """The last ``check_seconds`` of video as a clip (what the running check reads)."""
        return Clip(
            frames=np.stack(self.recent), fps=self.spec.fps, spacing_mm=self.spec.spacing_mm
        )

    def due(self) -> bool:
        """Whether the frame just added is one that gets an update (every k-th)."""
        return self.frames > 0 and self.frames % self.spec.update_every == 0

    # ---- updates -----------------------------------------------------------------------
    def update(self) -> dict[str, Any]:
        """The update after the latest frame (the ``update`` message, docs/streaming.md)."""
        start = time.perf_counter()
        logit, raw = self.engine.evaluate()
        verdict = self._latest_verdict()
        state = state_of(verdict) if verdict is not None else "collecting"
        assessable = logit is not None and state in ("assessable", "unchecked")
        bundle = self.scorer.bundle
        probability = (
            float(calibrated_probability(logit, bundle.temperature)) if assessable else None
        )
        body: dict[str, Any] = {
            "type": "update",
            "frame": self.frames - 1,
            "model_frames": self.model_frames,
            "input_check": {
                "state": state,
                "message": STATES[state],
                "reasons": list(verdict.reasons) if verdict is not None else [],
            },
            "probability": probability,
            "decision": bool(decide(probability, bundle.threshold)) if assessable else None,
            "relevance": self._recent_relevance(raw),
            "engine": self.engine.kind,
        }
        self.work_s += time.perf_counter() - start
        return body

    def _recent_relevance(self, raw: dict[int, float]) -> list[dict[str, float]]:
        """Relevance of recent source frames, scaled to [0, 1] over what is shown.

        A source frame the resampling skipped takes the value of the latest model frame
        before it (offline relevance fills such frames from the nearest model frame too).
        """
        by_frame: dict[int, float] = {}
        for model_index, value in raw.items():
            source = self.model_source.get(model_index)
            if source is not None:
                by_frame[source] = max(value, by_frame.get(source, -math.inf))
        if not by_frame:
            return []
        last = max(by_frame)
        frames = list(range(max(min(by_frame), last - self.limits.relevance_frames + 1), last + 1))
        known = sorted(by_frame)
        values = [by_frame[known[bisect.bisect_right(known, f) - 1]] for f in frames]
        scaled = normalise_relevance(np.array(values))
        return [
            {"frame": f, "value": round(float(v), DECIMALS)}
            for f, v in zip(frames, scaled, strict=True)
        ]

    # ---- the end -----------------------------------------------------------------------
    def recorded_clip(self) -> Clip:
        """Every frame received, as the clip offline scoring reads: uint8 (T, H, W)."""
        self.spool.flush()
        shape = (self.frames, self.spec.height, self.spec.width)
        frames = np.fromfile(self.spool.name, dtype=np.uint8).reshape(shape)
        return Clip(
            frames=frames,
            fps=self.spec.fps,
            spacing_mm=self.spec.spacing_mm,
            source={"format": "stream", "encoding": self.spec.encoding},
        )

    def summary(self) -> dict[str, Any]:
        """The session's own figures for the ``result`` message: frames, engine, and the
        server's frame work per frame in ms (decode and the background check excluded)."""
        per_frame = 1000 * self.work_s / self.frames if self.frames else 0.0
        return {
            "frames": self.frames,
            "model_frames": self.model_frames,
            "engine": self.engine.kind,
            "work_ms_per_frame": round(per_frame, 3),
        }

    def discard(self) -> None:
        """Remove the spool file (and forget a background check still running)."""
        if self.pending is not None:
            self.pending.cancel()
        self.spool.close()
