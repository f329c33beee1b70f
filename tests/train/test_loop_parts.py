"""Schedule, sampler and checkpoint pieces of the loop."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from labral.errors import BadConfigError
from labral.train.checkpoint_files import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from labral.train.distributed import EpochSampler
from labral.train.schedule import warmup_cosine


def lrs(steps_per_epoch: int, epochs: int, **kwargs) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    total = steps_per_epoch * epochs
    scheduler = warmup_cosine(
        optimizer, total_steps=total, steps_per_epoch=steps_per_epoch, **kwargs
    )
    out = []
    for _ in range(total):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_warmup_then_cosine_to_min_ratio():
    values = lrs(10, 5, warmup_epochs=1.0, min_lr_ratio=0.1)
    assert all(a < b for a, b in zip(values[:10], values[1:11], strict=True))
    assert max(values) == pytest.approx(1.0, abs=1e-6)
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))
    assert values[-1] == pytest.approx(0.1, abs=0.01)
    with pytest.raises(BadConfigError, match="min_lr_ratio"):
        lrs(10, 1, min_lr_ratio=2.0)


def test_sampler_is_seeded_by_epoch_and_splits_over_ranks():
    labels = [0] * 30 + [1] * 6
    a, b = EpochSampler(labels, seed=7), EpochSampler(labels, seed=7)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    assert sorted(a) == list(range(36))
    ranks = [EpochSampler(labels, seed=7, rank=r, world_size=2) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(2)
    assert sorted(list(ranks[0]) + list(ranks[1])) == sorted(a)


def test_balanced_sampler_draws_classes_equally():
    labels = [0] * 900 + [1] * 100
    sampler = EpochSampler(labels, seed=1, balanced=True)
    drawn = np.array(labels)[list(sampler)]
    assert drawn.mean() == pytest.approx(0.5, abs=0.06)


def test_checkpoint_is_atomic_weights_only_and_restores_rng(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = {"model": torch.nn.Linear(2, 1).state_dict(), "rng": capture_rng_state(), "epoch": 4}
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    path = save_checkpoint(state, tmp_path / "checkpoints" / "last.pt")
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left
    loaded = load_checkpoint(path)  # weights_only=True inside
    restore_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert loaded["epoch"] == 4
    with pytest.raises(BadConfigError, match="ckpt_path"):
        load_checkpoint(tmp_path / "missing.pt")
