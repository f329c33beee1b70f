"""The default compact spatiotemporal CNN: factorised (2+1)D residual blocks for CPU work.

Layout for a (B, 1, 16, 96, 96) clip with the default widths (16, 32, 64, 128):

    input   the clip and its frame differences x[t] - x[t-1] -> (B, 2, 16, 96, 96)
    stem    (1,5,5)/s(1,2,2) conv + (3,1,1) conv          -> (B, 16, 16, 48, 48)
    stage 1 (2+1)D block, stride (1,2,2)                  -> (B, 32, 16, 24, 24)
    stage 2 (2+1)D block, stride (2,2,2)                  -> (B, 64,  8, 12, 12)
    stage 3 (2+1)D block, stride (2,2,2)                  -> (B, 128, 4,  6,  6)
    head    avg+max spatial pool, temporal CAM (``layers.TemporalCamHead``)
                                                          -> logits (B,), relevance (B, T)

Time is kept at full resolution through the stem and the first stage so that fast motion
(a fluid tongue appearing for a few frames, flow flicker) reaches temporal filters before
any temporal subsampling. On 360 synthetic training clips (16x96x96, 1 CPU thread), plain
input with average pooling stayed at chance after 8 epochs and max pooling alone reached
0.55 test AUROC after 4; the frame-difference channel with avg+max pooling reached 0.71 after
4 epochs, hence the defaults. About 0.8 GFLOPs (FlopCounterMode, multiply-add = 2) per
16x96x96 clip.
"""

from __future__ import annotations

import torch
from torch import nn

from labral.errors import BadConfigError
from labral.models.layers import (
    TemporalCamHead,
    check_widths,
    make_act,
    make_norm,
    with_frame_difference,
)


class Conv2Plus1d(nn.Sequential):
    """A (1,k,k) spatial conv, norm, activation, then a (3,1,1) temporal conv.

    Args:
        in_channels: C_in of (B, C_in, T, H, W).
        out_channels: C_out.
        stride: (t, h, w) stride; the spatial part takes (1, h, w), the temporal part (t, 1, 1).
        norm: norm name for the middle norm (see ``layers.make_norm``).
        act: activation name.
        kernel: spatial kernel size k.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: tuple[int, int, int] = (1, 1, 1),
        norm: str = "batch",
        act: str = "relu",
        kernel: int = 3,
    ) -> None:
        super().__init__(
            nn.Conv3d(
                in_channels,
                out_channels,
                (1, kernel, kernel),
                stride=(1, stride[1], stride[2]),
                padding=(0, kernel // 2, kernel // 2),
                bias=False,
            ),
            make_norm(norm, out_channels),
            make_act(act),
            nn.Conv3d(
                out_channels,
                out_channels,
                (3, 1, 1),
                stride=(stride[0], 1, 1),
                padding=(1, 0, 0),
                bias=False,
            ),
        )


class ResidualBlock2Plus1d(nn.Module):
    """Two (2+1)D convs with a projected shortcut: (B, C_in, T, H, W) -> (B, C_out, T/s, H/s, W/s).

    Args:
        in_channels: C_in.
        out_channels: C_out.
        stride: (t, h, w) stride of the first conv and of the shortcut.
        norm: norm name.
        act: activation name.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: tuple[int, int, int],
        norm: str = "batch",
        act: str = "relu",
    ) -> None:
        super().__init__()
        self.conv1 = Conv2Plus1d(in_channels, out_channels, stride, norm, act)
        self.norm1 = make_norm(norm, out_channels)
        self.act1 = make_act(act)
        self.conv2 = Conv2Plus1d(out_channels, out_channels, (1, 1, 1), norm, act)
        self.norm2 = make_norm(norm, out_channels)
        if in_channels != out_channels or stride != (1, 1, 1):
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False),
                make_norm(norm, out_channels),
            )
        else:
            self.shortcut = nn.Identity()
        self.act2 = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, H, W) float32 -> (B, C_out, T', H', W') float32."""
        y = self.act1(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return self.act2(y + self.shortcut(x))


class CompactVideoNet(nn.Module):
    """Compact (2+1)D CNN: one detachment logit and a temporal relevance per clip.

    Args:
        in_channels: C of the input clip (1 for grayscale ultrasound).
        widths: channels of the stem and of each stage; stage i has width ``widths[i + 1]``.
        temporal_strides: temporal stride of each stage (len(widths) - 1 entries); keep the
            first ones at 1 so fast motion survives.
        norm: ``batch`` | ``instance`` | ``group`` | ``none``.
        act: ``relu`` | ``gelu`` | ``silu`` | ``leaky_relu``.
        dropout: dropout before the linear head.
        pool: spatial pooling before the head, ``avg`` | ``max`` | ``avgmax``.
        motion_channel: also feed the frame-to-frame difference x[t] - x[t-1] (0 at t = 0) to
            the stem as a second channel, so flow flicker and a growing tongue are visible
            to the very first filters.
        init_weights: a local state dict to start training from (``model.init_weights``).
            ``labral train`` loads it after building the net
            (:func:`labral.models.weights.load_init_weights`); the constructor ignores it,
            so a net rebuilt from a run's config (``labral export``) never needs the file.

    Raises:
        BadConfigError: widths/strides of inconsistent length, unknown norm, act or pool.
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: tuple[int, ...] | list[int] = (16, 32, 64, 128),
        temporal_strides: tuple[int, ...] | list[int] = (1, 2, 2),
        norm: str = "batch",
        act: str = "relu",
        dropout: float = 0.2,
        pool: str = "avgmax",
        motion_channel: bool = True,
        init_weights: str | None = None,
    ) -> None:
        super().__init__()
        widths = check_widths(widths)
        strides = [int(s) for s in temporal_strides]
        if len(strides) != len(widths) - 1 or min(strides, default=1) < 1:
            raise BadConfigError(
                f"model.temporal_strides={strides} needs one stride >= 1 per stage "
                f"(len(model.widths) - 1 = {len(widths) - 1})"
            )
        stem_width = widths[0]
        self.motion_channel = bool(motion_channel)
        stem_in = in_channels * (2 if self.motion_channel else 1)
        self.stem = nn.Sequential(
            Conv2Plus1d(stem_in, stem_width, (1, 2, 2), norm, act, kernel=5),
            make_norm(norm, stem_width),
            make_act(act),
        )
        stages = [
            ResidualBlock2Plus1d(widths[i], widths[i + 1], (strides[i], 2, 2), norm, act)
            for i in range(len(strides))
        ]
        self.stages = nn.Sequential(*stages)
        self.head = TemporalCamHead(widths[-1], dropout, pool)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, H, W) float32 -> last feature map (B, C, T', H', W')."""
        if self.motion_channel:
            x = with_frame_difference(x)
        return self.stages(self.stem(x))

    def forward_with_relevance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and per-frame relevance.

        Args:
            x: float32 (B, 1, T, H, W), intensities in [0, 1].

        Returns:
            logits float32 (B,) and relevance float32 (B, T) with ``logits == relevance.mean(1)``.
        """
        return self.head(self.features(x), x.shape[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (B, 1, T, H, W) -> logits float32 (B,)."""
        return self.forward_with_relevance(x)[0]
