"""torchvision's video ResNets (r2plus1d_18, r3d_18, mc3_18) for 1-channel clips.

Randomly initialised (``weights=None``: nothing downloads); ``model.init_weights=PATH``
starts from torchvision's Kinetics-400 file, downloaded by the user
(:mod:`labral.models.weights`). The stem's first convolution is
replaced by one with ``in_channels`` inputs and the classifier by the temporal CAM head, so
these nets have the same ``forward`` / ``forward_with_relevance`` as the compact model.
Meant for users with GPUs: about 60 GFLOPs per 16x96x96 clip, 70x the compact model.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import video

from labral.errors import BadConfigError
from labral.models.layers import TemporalCamHead

ARCHS = ("r2plus1d_18", "r3d_18", "mc3_18")


class VideoResNet(nn.Module):
    """A torchvision video ResNet-18 with a 1-channel stem and a temporal CAM head.

    Args:
        in_channels: C of the input clip (1 for grayscale ultrasound).
        arch: ``r2plus1d_18`` | ``r3d_18`` | ``mc3_18``.
        dropout: dropout before the linear head.
        init_weights: a local state dict to start training from (``model.init_weights``).
            ``labral train`` loads it after building the net
            (:func:`labral.models.weights.load_init_weights`); the constructor ignores it,
            so a net rebuilt from a run's config never needs the file.

    Raises:
        BadConfigError: unknown ``arch``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        arch: str = "r2plus1d_18",
        dropout: float = 0.0,
        init_weights: str | None = None,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise BadConfigError(f"model.arch={arch!r} is not known; use one of {list(ARCHS)}")
        net = getattr(video, arch)(weights=None)
        first = net.stem[0]
        net.stem[0] = nn.Conv3d(
            in_channels,
            first.out_channels,
            kernel_size=first.kernel_size,
            stride=first.stride,
            padding=first.padding,
            bias=first.bias is not None,
        )
        nn.init.kaiming_normal_(net.stem[0].weight, mode="fan_out", nonlinearity="relu")
        self.arch = arch
        self.stem = net.stem
        self.layers = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)
        self.head = TemporalCamHead(net.fc.in_features, dropout)

    def forward_with_relevance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and per-frame relevance.

        Args:
            x: float32 (B, 1, T, H, W), intensities in [0, 1].

        Returns:
            logits float32 (B,) and relevance float32 (B, T) with ``logits == relevance.mean(1)``.
        """
        return self.head(self.layers(self.stem(x)), x.shape[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (B, 1, T, H, W) -> logits float32 (B,)."""
        return self.forward_with_relevance(x)[0]
