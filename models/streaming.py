"""The compact (2+1)D net run one frame at a time: a stream buffer per temporal convolution.

:class:`~labral.models.compact.CompactVideoNet` factorises every convolution into a spatial
(1, k, k) part, which sees one frame, and a temporal (3, 1, 1) part, which sees three. So
the net can run on an unbounded stream with no recomputation: every per-frame operation
(spatial conv, norm, activation, the residual shortcut) runs once on each new frame, and
every temporal conv keeps the last inputs it needs in a small buffer (MoViNet's stream
buffer, for a symmetric kernel: output ``j`` of a conv with temporal stride ``s`` is made
once input ``s * j + 1`` has arrived). Work per model frame is the window's work divided by
its frame count (1/16 at the default 16 frames); memory is a few frames per layer, constant
over the stream::

    frame (1, 1, h, w) -> [+ frame difference] -> stem -> stages -> per-step head value
    (one model frame)     (1, 2, 1, h, w)                  (1, C, 1, h', w')   cam[j], j = t // S

Within a stream, step ``j``'s value is exactly what a window whose receptive field holds
it computes; the zero padding of a window's edges (and the zero frame difference of its
first frame) differ, so a running logit over the last window's steps is close to, not
equal to, the window's logit. :meth:`StreamingCompactNet.flush` pads the stream's end as a
window pads its own, so streaming one whole window and flushing gives the window's
``forward_with_relevance`` (tested). The service reports the stream's values while a
session runs and scores the recorded clip offline when it closes (``docs/streaming.md``).

It reads the structure of ``CompactVideoNet`` (``stem``, ``stages``, ``head``,
``motion_channel``), eager or TorchScript; :func:`streaming_net_of` finds it inside a
bundle's module. ``models/compact.py`` itself is unchanged.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Frame = torch.Tensor  # float32 (1, C, 1, H, W): one time step of a feature map


def supports_streaming(module: Any) -> bool:
    """Whether ``module`` has the compact net's structure (eager or TorchScript)."""
    return all(hasattr(module, name) for name in ("stem", "stages", "head", "motion_channel"))


def streaming_net_of(module: Any) -> Any | None:
    """The compact net inside a bundle's module, or None when it has none.

    A bundle runs ``RelevanceModule(net)`` (its ``model``), through TorchScript or, with
    ONNX Runtime, a session whose ``differentiable`` is that TorchScript module.
    """
    candidates = [module, getattr(module, "model", None)]
    torch_twin = getattr(module, "differentiable", None)
    candidates += [torch_twin, getattr(torch_twin, "model", None)]
    return next((m for m in candidates if m is not None and supports_streaming(m)), None)


class _PerFrame:
    """A stateless per-frame operation: spatial conv, norm, activation."""

    def __init__(self, fn: Callable[[Frame], Frame]) -> None:
        self.fn = fn

    def push(self, x: Frame) -> list[Frame]:
        return [self.fn(x)]

    def flush(self) -> list[Frame]:
        return []

    def fork(self) -> _PerFrame:
        return self  # no state


class _TemporalConv:
    """A (3, 1, 1) conv with padding 1 and temporal stride ``s`` over a stream.

    Keeps the inputs that later outputs still need (at most 3); output ``j`` reads inputs
    ``s*j - 1, s*j, s*j + 1``, with zeros before the start (and, on flush, after the end).
    """

    def __init__(self, conv: nn.Module) -> None:
        self.weight = conv.weight.detach()  # (C_out, C_in, 3, 1, 1)
        self.stride = int(conv.stride[0])
        self.buffer: dict[int, Frame] = {}
        self.received = 0
        self.emitted = 0

    def _output(self, j: int) -> Frame:
        s = self.stride
        taps = [self.buffer.get(s * j + k - 1) for k in range(3)]
        some = next(t for t in taps if t is not None)
        x = torch.cat([t if t is not None else torch.zeros_like(some) for t in taps], dim=2)
        for index in [i for i in self.buffer if i < s * (j + 1) - 1]:
            del self.buffer[index]  # no later output reads it
        return F.conv3d(x, self.weight)  # (1, C_out, 1, H, W)

    def push(self, x: Frame) -> list[Frame]:
        self.buffer[self.received] = x
        self.received += 1
        out = []
        while self.stride * self.emitted + 1 <= self.received - 1:
            out.append(self._output(self.emitted))
            self.emitted += 1
        return out

    def fork(self) -> _TemporalConv:
        """A copy whose buffer can be flushed without touching this one (frames are shared:
        nothing writes into a buffered frame)."""
        twin = copy.copy(self)
        twin.buffer = dict(self.buffer)
        return twin

    def flush(self) -> list[Frame]:
        total = (self.received - 1) // self.stride + 1 if self.received else 0
        out = []
        while self.emitted < total:
            out.append(self._output(self.emitted))
            self.emitted += 1
        return out


def _push_chain(nodes: list[Any], x: Frame) -> list[Frame]:
    pending = [x]
    for node in nodes:
        pending = [y for item in pending for y in node.push(item)]
    return pending


def _flush_chain(nodes: list[Any]) -> list[Frame]:
    pending: list[Frame] = []
    for node in nodes:
        pending = [y for item in pending for y in node.push(item)] + node.flush()
    return pending


def _parts(sequential: nn.Module) -> list[Any]:
    """The layers of a Sequential (a loaded TorchScript Sequential cannot be indexed)."""
    return list(sequential.children())


def _conv2plus1d(block: nn.Module) -> list[Any]:
    """Nodes of a ``Conv2Plus1d``: (spatial conv, norm, act) per frame, then the temporal conv."""
    spatial, norm, act, temporal = _parts(block)
    return [_PerFrame(lambda x: act(norm(spatial(x)))), _TemporalConv(temporal)]


class _Residual:
    """A ``ResidualBlock2Plus1d`` over a stream: the shortcut of every s-th input waits in a
    queue for the main branch's output of the same step."""

    def __init__(self, block: nn.Module) -> None:
        self.main = [
            *_conv2plus1d(block.conv1),
            _PerFrame(lambda x: block.act1(block.norm1(x))),
            *_conv2plus1d(block.conv2),
            _PerFrame(block.norm2),
        ]
        self.stride = int(_parts(block.conv1)[3].stride[0])
        self.shortcut = block.shortcut
        self.act = block.act2
        self.waiting: deque[Frame] = deque()
        self.received = 0

    def _join(self, outputs: list[Frame]) -> list[Frame]:
        return [self.act(y + self.waiting.popleft()) for y in outputs]

    def push(self, x: Frame) -> list[Frame]:
        if self.received % self.stride == 0:
            self.waiting.append(self.shortcut(x))
        self.received += 1
        return self._join(_push_chain(self.main, x))

    def flush(self) -> list[Frame]:
        return self._join(_flush_chain(self.main))

    def fork(self) -> _Residual:
        twin = copy.copy(self)
        twin.main = [node.fork() for node in self.main]
        twin.waiting = deque(self.waiting)
        return twin


class StreamingCompactNet:
    """A compact (2+1)D net's per-step head values, one model frame at a time.

    Args:
        module: a ``CompactVideoNet`` (eager or TorchScript, in eval mode).

    Attributes:
        stride: S, the net's total temporal stride: head step ``j`` covers model frames
            ``S*j .. S*j + S - 1``.
    """

    def __init__(self, module: Any) -> None:
        if not supports_streaming(module):
            raise TypeError("the module is not a CompactVideoNet (no stem/stages/head)")
        self.module = module
        self.motion = bool(module.motion_channel)
        conv, norm, act = _parts(module.stem)
        residuals = [_Residual(block) for block in _parts(module.stages)]
        self.nodes: list[Any] = [
            *_conv2plus1d(conv),
            _PerFrame(lambda x: act(norm(x))),
            *residuals,
        ]
        self.stride = 1
        for residual in residuals:
            self.stride *= residual.stride
        self.previous: torch.Tensor | None = None
        self.frames = 0

    def _head(self, features: Frame) -> float:
        """One step's head value from features (1, C, 1, H', W')."""
        flat = features.flatten(3)  # (1, C, 1, H'*W')
        pool = self.module.head.pool
        if pool == "avg":
            pooled = flat.mean(dim=3)
        elif pool == "max":
            pooled = flat.amax(dim=3)
        else:
            pooled = torch.cat([flat.mean(dim=3), flat.amax(dim=3)], dim=1)
        return float(self.module.head.linear(pooled.transpose(1, 2)).reshape(()))

    @torch.inference_mode()
    def push(self, frame: torch.Tensor) -> list[float]:
        """Feed one model frame; return the head values of the steps it completed.

        Args:
            frame: float32 (h, w) in [0, 1], one frame at the model's rate and size.

        Returns:
            The head values (logits) of 0 or more newly completed steps, in order.
        """
        x = frame.reshape(1, 1, 1, *frame.shape[-2:]).float()
        if self.motion:
            diff = torch.zeros_like(x) if self.previous is None else x - self.previous
            self.previous = x
            x = torch.cat([x, diff], dim=1)
        self.frames += 1
        return [self._head(f) for f in _push_chain(self.nodes, x)]

    @torch.inference_mode()
    def flush(self) -> list[float]:
        """End the stream as a window ends (zero padding); return the remaining steps."""
        return [self._head(f) for f in _flush_chain(self.nodes)]

    @torch.inference_mode()
    def peek(self) -> list[float]:
        """The steps :meth:`push` has not completed yet, as if the stream ended now.

        What :meth:`flush` would return, computed on a fork of the buffers, so the stream
        goes on unchanged. It removes the look-ahead lag of the symmetric temporal kernels
        from a running value: these steps are the ones a window ending at the newest frame
        computes with its end padding. It costs about as much as a few frames' pushes.
        """
        return [self._head(f) for f in _flush_chain([node.fork() for node in self.nodes])]
