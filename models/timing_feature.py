"""The handcrafted timing feature as a model: does a region darken while the image moves?

Not a deep network: fixed image operations turn a clip into timing features, and only a
linear layer over them is learned (``labral train model=timing_feature``), so a benchmark
can show what a learned spatiotemporal model adds over the classic hand-built detector of
the sign (fluid appears in the cleft while the hip is loaded).

For a clip x float32 (B, 1, T, H, W):

1. *Motion from the pixels*: the image's vertical velocity v (B, T-1) by one-dimensional
   least-squares optical flow, ``-sum(dI/dt * dI/dy) / sum((dI/dy)^2)``: the femoral head
   glides toward the probe as the hip is loaded, so v follows the loading (and the probe's
   own rocking: the detector cannot tell the two apart, as a hand-built one could not).
2. *Darkening per region*: the clip's mean intensity on a ``grid`` x ``grid`` grid of
   cells, d_c(t) = -(m_c(t+1) - m_c(t)) (B, T-1, G*G): fluid darkens the cleft.
3. *Timing features*: for every cell and for lags 0..``lags``-1, the correlation over time
   of d_c(t) with v(t - lag) (z-scored per clip): (B, lags * G*G) in [-1, 1].
4. A linear layer: logit = w . features + b. The relevance of frame t is its term in those
   correlations, ``w . (z(d(t)) * z(v(t - lag))) + b``, so ``logits == relevance.mean(1)``
   over the T-1 frame steps (frame 0 repeats step 1's value).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from labral.errors import BadConfigError


class TimingFeatureNet(nn.Module):
    """Handcrafted darkening-vs-motion timing features and a learned linear read-out.

    Args:
        in_channels: C of the input clip (1; the features use channel 0).
        grid: cells per side of the darkening grid (>= 1).
        lags: motion lags 0..lags-1 in frames (>= 1).
        init_weights: a local state dict to start training from (``model.init_weights``;
            ignored by the constructor).

    Raises:
        BadConfigError: grid or lags below 1.
    """

    def __init__(
        self, in_channels: int = 1, grid: int = 8, lags: int = 2, init_weights: str | None = None
    ) -> None:
        super().__init__()
        if grid < 1 or lags < 1:
            raise BadConfigError(f"model.grid={grid} and model.lags={lags} must be >= 1")
        self.grid, self.lags = int(grid), int(lags)
        self.head = nn.Linear(self.lags * self.grid * self.grid, 1)

    @staticmethod
    def _zscore(x: torch.Tensor) -> torch.Tensor:
        """Standardise along dim 1 (time): float (B, S, ...) -> same shape."""
        mean = x.mean(dim=1, keepdim=True)
        std = x.std(dim=1, keepdim=True, unbiased=False)
        return (x - mean) / (std + 1e-6)

    def vertical_velocity(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (B, T, H, W) frames -> (B, T-1) least-squares vertical image velocity."""
        dt = x[:, 1:] - x[:, :-1]
        mid = 0.5 * (x[:, 1:] + x[:, :-1])
        dy = torch.zeros_like(mid)
        dy[:, :, 1:-1] = 0.5 * (mid[:, :, 2:] - mid[:, :, :-2])
        return -(dt * dy).sum(dim=(2, 3)) / ((dy * dy).sum(dim=(2, 3)) + 1e-6)

    def terms(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step feature terms: float32 (B, 1, T, H, W) -> (B, T-1, lags * G*G)."""
        frames = x[:, 0]
        velocity = self._zscore(self.vertical_velocity(frames))  # (B, S)
        cells = F.adaptive_avg_pool2d(frames, self.grid).flatten(2)  # (B, T, G*G)
        darkening = self._zscore(-(cells[:, 1:] - cells[:, :-1]))  # (B, S, G*G)
        parts = []
        for lag in range(self.lags):
            shifted = torch.roll(velocity, shifts=lag, dims=1)
            if lag > 0:
                shifted[:, :lag] = 0.0
            parts.append(darkening * shifted.unsqueeze(2))
        return torch.cat(parts, dim=2)

    def forward_with_relevance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and per-frame relevance.

        Args:
            x: float32 (B, 1, T, H, W), intensities in [0, 1], T >= 2.

        Returns:
            logits float32 (B,) and relevance float32 (B, T).
        """
        per_step = self.head(self.terms(x)).squeeze(2)  # (B, T-1)
        logits = per_step.mean(dim=1)
        relevance = torch.cat([per_step[:, :1], per_step], dim=1)
        return logits, relevance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (B, 1, T, H, W) -> logits float32 (B,)."""
        return self.forward_with_relevance(x)[0]
