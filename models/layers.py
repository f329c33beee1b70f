"""Building blocks shared by labral's networks: norm/activation by name and the temporal CAM.

Every network ends the same way: features (B, C, T', H', W') are pooled over space only,
the linear head is applied at each time step (a class-activation map over time), the map is
brought back to the T input frames by nearest-neighbour indexing, and the logit is the mean
of that per-frame relevance. So ``logits == relevance.mean(dim=1)`` holds exactly, by
construction, for every input length; when T is a multiple of the network's temporal stride
this is the same as the usual global-average-pool + linear head.
"""

from __future__ import annotations

import torch
from torch import nn

from labral.errors import BadConfigError

NORMS = ("batch", "instance", "group", "none")
ACTS = ("relu", "gelu", "silu", "leaky_relu")


def make_act(name: str) -> nn.Module:
    """An activation module by name (one of ``ACTS``).

    Raises:
        BadConfigError: unknown name (the message names the setting ``act``).
    """
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "gelu":
        return nn.GELU()
    if name == "silu":
        return nn.SiLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.1, inplace=True)
    raise BadConfigError(f"model.act={name!r} is not known; use one of {list(ACTS)}")


def make_norm(name: str, channels: int, dims: int = 3) -> nn.Module:
    """A normalisation module by name (one of ``NORMS``) for 2-D or 3-D feature maps.

    Args:
        name: ``batch`` | ``instance`` | ``group`` (8 groups, or fewer if C is small) | ``none``.
        channels: C of the (B, C, [T,] H, W) feature map.
        dims: 2 or 3 spatial(-temporal) dimensions.

    Raises:
        BadConfigError: unknown name (the message names the setting ``norm``).
    """
    if name == "batch":
        return nn.BatchNorm3d(channels) if dims == 3 else nn.BatchNorm2d(channels)
    if name == "instance":
        cls = nn.InstanceNorm3d if dims == 3 else nn.InstanceNorm2d
        return cls(channels, affine=True)
    if name == "group":
        groups = 8 if channels % 8 == 0 else 1
        return nn.GroupNorm(groups, channels)
    if name == "none":
        return nn.Identity()
    raise BadConfigError(f"model.norm={name!r} is not known; use one of {list(NORMS)}")


def with_frame_difference(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, 2C, T, H, W): the clip and its frame difference x[t] - x[t-1]
    (0 at t = 0), so flow flicker and a growing tongue reach the first filters."""
    diff = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2)
    return torch.cat([x, diff], dim=1)


def check_widths(widths: list[int] | tuple[int, ...], setting: str = "model.widths") -> list[int]:
    """Validate a list of positive channel widths; returns it as a list of int.

    Raises:
        BadConfigError: empty list or a width < 1.
    """
    out = [int(w) for w in widths]
    if not out or min(out) < 1:
        raise BadConfigError(f"{setting}={list(widths)} must be a non-empty list of widths >= 1")
    return out


POOLS = ("avg", "max", "avgmax")


class TemporalCamHead(nn.Module):
    """Class activation over time: a linear head applied to spatially pooled features per step.

    Args:
        in_features: C of the last feature map.
        dropout: dropout on the pooled features before the linear layer.
        pool: spatial pooling per time step: ``avg``, ``max`` (a small, local event such as
            a fluid tongue is not diluted by the whole field of view), or ``avgmax`` (both,
            concatenated: the head sees 2C features).

    Raises:
        BadConfigError: unknown ``pool``.
    """

    def __init__(self, in_features: int, dropout: float = 0.0, pool: str = "avg") -> None:
        super().__init__()
        if pool not in POOLS:
            raise BadConfigError(f"model.pool={pool!r} is not known; use one of {list(POOLS)}")
        self.pool = pool
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features * (2 if pool == "avgmax" else 1), 1)

    def forward(self, features: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and one relevance value per input frame.

        Args:
            features: float32 (B, C, T', H', W') last feature map.
            num_frames: T, the number of input frames.

        Returns:
            logits float32 (B,) and relevance float32 (B, T): the head applied to the spatially
            pooled features at each time step, repeated onto the input frames (frame t takes
            step floor(t * T' / T)); ``logits == relevance.mean(dim=1)`` exactly.
        """
        flat = features.flatten(3)  # (B, C, T', H'*W')
        if self.pool == "avg":
            pooled = flat.mean(dim=3)
        elif self.pool == "max":
            pooled = flat.amax(dim=3)
        else:
            pooled = torch.cat([flat.mean(dim=3), flat.amax(dim=3)], dim=1)
        cam = self.linear(self.dropout(pooled.transpose(1, 2))).squeeze(2)  # (B, T')
        steps = cam.shape[1]
        index = torch.div(
            torch.arange(num_frames, device=cam.device) * steps, num_frames, rounding_mode="floor"
        )
        relevance = cam.index_select(1, index)
        return relevance.mean(dim=1), relevance
