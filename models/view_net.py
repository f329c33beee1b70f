"""The input check's view network: is this the anterior oblique view of the hip?

A small 2-D CNN on a clip's 3-channel summary image
(:func:`labral.input_check.features.view_image`: temporal mean, temporal spread, middle
frame). It answers with a logit (positive: not the anterior hip view) and the pooled
features its head reads, on which the input check fits its out-of-distribution statistics
(:mod:`labral.input_check.fit`). About 3 MFLOP per clip: a rounding error beside the
detector's forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

#: Channels of the summary image (mean, spread, middle frame).
VIEW_CHANNELS = 3


class ViewNet(nn.Module):
    """Four stride-2 conv stages (conv, batch norm, ReLU), global average pooling, a linear head.

    The head tells the anterior hip view (class 0) from each kind of wrong input it was
    trained on (classes 1 to ``wrong_classes``): features that must tell a transverse from
    a lateral view also keep more of what the out-of-distribution statistics look at than
    features that only tell "hip" from "not hip".

    Args:
        widths: channels of the four stages.
        dropout: dropout before the head (training only).
        wrong_classes: kinds of wrong input the head tells apart (at least 1).
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (16, 32, 48, 64),
        dropout: float = 0.1,
        wrong_classes: int = 1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = VIEW_CHANNELS
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, 1 + wrong_classes)
        self.feature_dim = channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score summary images.

        Args:
            x: float32 (B, 3, H, W) summary images.

        Returns:
            ``(logits (B,), features (B, F))``: the log-odds of "not the anterior hip view"
            (log-sum-exp of the wrong classes' scores minus the hip's); features are the
            pooled activations the head reads (F = widths[-1]).
        """
        features = self.body(x).mean(dim=(2, 3))
        scores = self.class_scores(features)
        return torch.logsumexp(scores[:, 1:], dim=1) - scores[:, 0], features

    def class_scores(self, features: torch.Tensor) -> torch.Tensor:
        """float32 (B, 1 + wrong_classes) class scores of pooled features (B, F)."""
        return self.head(self.dropout(features))
