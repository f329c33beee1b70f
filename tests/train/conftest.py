"""Fixtures for the training tests: tiny in-memory clip datasets (8 frames of 32x32) whose
classes differ only by motion. The real train config shrunk to tiny sizes (``train_cfg``) is
in tests/conftest.py, as the bench tests compose training runs too."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch
from torch.utils.data import Dataset

from tests.helpers.clips import tiny_clip


class TinyClips(Dataset):
    """In-memory dataset with the items the loop expects: ``{"image", "label", "index"}``.

    ``fail_after``: raise RuntimeError after this many item reads (simulates a killed run).
    """

    def __init__(self, labels: Sequence[int], seed: int, fail_after: int | None = None) -> None:
        self.labels = [int(x) for x in labels]
        self.clips = [tiny_clip(y, seed * 1000 + i) for i, y in enumerate(self.labels)]
        self.rows = [
            {"path": f"clip{seed}_{i}.npy", "label": y, "patient": f"p{seed}_{i}"}
            for i, y in enumerate(self.labels)
        ]
        self.fail_after = fail_after
        self.reads = 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            raise RuntimeError("simulated kill")
        image = torch.from_numpy(self.clips[index]).float().div(255.0)[None]
        return {"image": image, "label": self.labels[index], "index": index}


@pytest.fixture
def tiny_datasets() -> Callable[..., dict[str, Dataset]]:
    """Factory: ``tiny_datasets(fail_after=None)`` -> train 16 / val 8 / test 8 clips."""

    def make(fail_after: int | None = None) -> dict[str, Dataset]:
        return {
            "train": TinyClips([0, 1] * 8, seed=1, fail_after=fail_after),
            "val": TinyClips([0, 1] * 4, seed=2),
            "test": TinyClips([0, 1] * 4, seed=3),
        }

    return make


@pytest.fixture
def motion_datasets() -> dict[str, Dataset]:
    """The tiny motion task at a size the compact net learns in a few epochs: train 64 /
    val 16 / test 32 clips, half of them moving (see tests/train/test_train_learning.py)."""
    return {
        "train": TinyClips([0, 1] * 32, seed=1),
        "val": TinyClips([0, 1] * 8, seed=2),
        "test": TinyClips([0, 1] * 16, seed=3),
    }
