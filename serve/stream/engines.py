"""The running score of a live session: model frames in, a running logit and relevance out.

Two engines with one interface (``push`` a model frame, ``evaluate`` the recent window):

* :class:`StepEngine` for the compact (2+1)D net: :class:`labral.models.streaming.
  StreamingCompactNet` runs each model frame once through the net's stream buffers, so the
  work per frame is a window's divided by its frame count; ``evaluate`` adds the newest
  steps as a window ending at the newest frame computes them (``peek``, once per new model
  frame) and takes the mean over one window's span.
* :class:`WindowEngine` for any other bundle module: the last ``frames`` model frames are
  kept and ``evaluate`` runs the module on them (one window per update, so the work per
  frame is a window divided by the update interval).

Neither gives the final result: the session scores the recorded clip when it closes.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

import numpy as np
import torch

from labral.models.streaming import StreamingCompactNet, streaming_net_of


class RunningEngine(Protocol):
    """What a session needs from an engine."""

    #: ``streaming`` or ``window``.
    kind: str

    def push(self, frame: torch.Tensor, model_index: int) -> None:
        """Feed model frame ``model_index``: float32 (h, w) in [0, 1]."""

    def evaluate(self) -> tuple[float | None, dict[int, float]]:
        """(running logit over the last window, or None before a window is full;
        raw relevance of recent model frames, model frame index -> value)."""


class StepEngine:
    """Running logit of the compact net from its per-step head values.

    Args:
        module: a ``CompactVideoNet`` (eager or TorchScript).
        frames: T, model frames per eval window; the running logit is the mean of the last
            ``T // S`` steps (S: the net's temporal stride), the span of one window: the
            completed steps and, for the newest frames, the steps as a window ending there
            computes them (:meth:`StreamingCompactNet.peek`, so the value does not lag).
        peek: False leaves the newest steps out: cheaper (no peek per model frame), but the
            running value then lags the newest frame by the kernels' look-ahead (9 model
            frames for the default net).
    """

    kind = "streaming"

    def __init__(self, module: Any, frames: int, peek: bool = True) -> None:
        self.net = StreamingCompactNet(module)
        self.window = frames
        self.span = max(1, frames // self.net.stride)
        self.steps: deque[float] = deque(maxlen=self.span)
        self.completed = 0
        self.provisional: list[float] = []
        self.peeked_at = -1
        self.peek = peek

    def push(self, frame: torch.Tensor, model_index: int) -> None:
        for value in self.net.push(frame):
            self.steps.append(value)
            self.completed += 1

    def evaluate(self) -> tuple[float | None, dict[int, float]]:
        if self.peek and self.peeked_at != self.net.frames:  # a new model frame: a new tail
            self.provisional = self.net.peek()
            self.peeked_at = self.net.frames
        values = [*self.steps, *self.provisional][-self.span :]
        first = self.completed + len(self.provisional) - len(values)
        stride = self.net.stride
        relevance = {
            (first + i) * stride + k: value
            for i, value in enumerate(values)
            for k in range(stride)
            if (first + i) * stride + k < self.net.frames
        }
        if self.net.frames < self.window or len(values) < self.span:
            return None, relevance
        return float(np.mean(values)), relevance


class WindowEngine:
    """Running logit of any bundle module: the module on the last window of model frames.

    Args:
        module: ``forward(x float32 (1, 1, T, h, w)) -> (logits (1,), relevance (1, T))``.
        frames: T, model frames per window.
    """

    kind = "window"

    def __init__(self, module: Any, frames: int) -> None:
        self.module = module
        self.frames: deque[tuple[int, torch.Tensor]] = deque(maxlen=frames)

    def push(self, frame: torch.Tensor, model_index: int) -> None:
        self.frames.append((model_index, frame))

    @torch.inference_mode()
    def evaluate(self) -> tuple[float | None, dict[int, float]]:
        if len(self.frames) < (self.frames.maxlen or 1):
            return None, {}
        x = torch.stack([f for _, f in self.frames])[None, None]  # (1, 1, T, h, w)
        logits, relevance = self.module(x)
        values = relevance.float().reshape(-1).tolist()
        return float(logits.reshape(-1)[0]), {
            i: v for (i, _), v in zip(self.frames, values, strict=True)
        }


def running_engine(module: Any, frames: int, peek: bool = True) -> StepEngine | WindowEngine:
    """The engine for a bundle's module: :class:`StepEngine` when it holds the compact net
    (``peek``: see there), else :class:`WindowEngine`."""
    net = streaming_net_of(module)
    if net is not None:
        return StepEngine(net, frames, peek)
    return WindowEngine(module, frames)


def warm_up(module: Any, spec: dict[str, Any], peek: bool = True) -> None:
    """Run an engine over a window and a half of blank model frames, once per process.

    TorchScript specialises a submodule on its first calls with a new input shape; the
    stream calls them one frame at a time (shapes the service's own warm-up never used),
    so without this the first session's first updates would pay for it.

    Args:
        module: the bundle's module.
        spec: the bundle's eval transform (``frames``, ``size``).
    """
    frames = int(spec["frames"])
    engine = running_engine(module, frames, peek)
    blank = torch.zeros(*[int(v) for v in spec["size"]])
    for index in range(frames + frames // 2 + 12):
        engine.push(blank, index)
        engine.evaluate()
