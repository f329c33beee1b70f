"""The still-frame baseline: a 2-D CNN scores every frame alone; the clip logit is their mean.

It cannot see motion by construction (the logit is invariant to the order of the frames),
so every run can show what the spatiotemporal models add over appearance alone.
"""

from __future__ import annotations

import torch
from torch import nn

from labral.models.layers import check_widths, make_act, make_norm


class StillFrameNet(nn.Module):
    """Per-frame 2-D CNN, mean-pooled over time.

    Args:
        in_channels: C of the input clip (1 for grayscale ultrasound).
        widths: channels of the 3x3 conv stages, each stage halving H and W (a stride-2 conv
            then a stride-1 conv).
        norm: ``batch`` | ``instance`` | ``group`` | ``none`` (2-D).
        act: ``relu`` | ``gelu`` | ``silu`` | ``leaky_relu``.
        dropout: dropout before the linear head.
        init_weights: a local state dict to start training from (``model.init_weights``).
            ``labral train`` loads it after building the net
            (:func:`labral.models.weights.load_init_weights`); the constructor ignores it,
            so a net rebuilt from a run's config (``labral export``) never needs the file.

    Raises:
        BadConfigError: empty widths, unknown norm or act.
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: tuple[int, ...] | list[int] = (16, 32, 64, 128),
        norm: str = "batch",
        act: str = "relu",
        dropout: float = 0.2,
        init_weights: str | None = None,
    ) -> None:
        super().__init__()
        widths = check_widths(widths)
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False),
                make_norm(norm, width, dims=2),
                make_act(act),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                make_norm(norm, width, dims=2),
                make_act(act),
            ]
            channels = width
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, 1)

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Score every frame alone.

        Args:
            x: float32 (B, C, T, H, W).

        Returns:
            float32 (B, T), one logit per frame.
        """
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        pooled = self.body(frames).mean(dim=(2, 3))  # (B*T, C')
        return self.head(self.dropout(pooled)).reshape(b, t)

    def forward_with_relevance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and per-frame relevance (the per-frame logits).

        Args:
            x: float32 (B, 1, T, H, W), intensities in [0, 1].

        Returns:
            logits float32 (B,) and relevance float32 (B, T) with ``logits == relevance.mean(1)``.
        """
        relevance = self.frame_logits(x)
        return relevance.mean(dim=1), relevance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (B, 1, T, H, W) -> logits float32 (B,)."""
        return self.forward_with_relevance(x)[0]
