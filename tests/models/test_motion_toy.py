"""A toy motion task: the compact net learns frame order, the still-frame baseline cannot.

Positives: a dark tongue grows steadily through a bright wedge. Negatives ("incoherent
twins"): the very same frames in a shuffled order. Every frame of a negative also appears in
a positive, so only the order separates the classes.
"""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from labral.models.compact import CompactVideoNet
from labral.models.still_frame import StillFrameNet


def toy_clips(
    n: int, seed: int, frames: int = 8, size: int = 24
) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 (n, 1, T, S, S) clips in [0, 1] and float32 (n,) labels, half positive."""
    gen = torch.Generator().manual_seed(seed)
    clips = torch.empty(n, 1, frames, size, size)
    labels = torch.zeros(n)
    for i in range(n):
        base = 0.3 + 0.1 * torch.rand(size, size, generator=gen)
        top = int(torch.randint(4, 8, (1,), generator=gen))
        col = int(torch.randint(6, size - 10, (1,), generator=gen))
        base[top : top + 12, col : col + 6] = 0.9  # bright wedge
        movie = base.repeat(frames, 1, 1)
        for t in range(frames):
            movie[t, top : top + 1 + t * 11 // (frames - 1), col + 2 : col + 4] = 0.05
        movie = movie + 0.05 * torch.randn(movie.shape, generator=gen)
        if i % 2:  # negative: the same frames, shuffled (never the original order)
            perm = torch.randperm(frames, generator=gen)
            while torch.equal(perm, torch.arange(frames)):
                perm = torch.randperm(frames, generator=gen)
            movie = movie[perm]
        else:
            labels[i] = 1.0
        clips[i, 0] = movie.clamp(0, 1)
    return clips, labels


def train_and_score(model: nn.Module, epochs: int = 12) -> float:
    """Train on 192 toy clips with Adam; returns AUROC on 96 held-out clips."""
    x, y = toy_clips(192, seed=1)
    x_test, y_test = toy_clips(96, seed=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(16):
            optimizer.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        scores = model(x_test)
    return float(roc_auc_score(y_test.numpy(), scores.numpy()))


@pytest.mark.slow
def test_compact_learns_frame_order_and_still_frame_cannot() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    compact = train_and_score(CompactVideoNet(widths=[8, 16, 32], temporal_strides=[1, 2]))
    torch.manual_seed(0)
    still = train_and_score(StillFrameNet(widths=[8, 16, 32]))
    assert compact >= 0.9, compact
    assert still <= 0.7, still
