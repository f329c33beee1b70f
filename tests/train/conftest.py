"""Fixtures for the training tests: the real train config shrunk to tiny sizes, and tiny
in-memory clip datasets (8 frames of 32x32) whose classes differ only by motion."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from torch.utils.data import Dataset


def tiny_clip(label: int, seed: int, frames: int = 8, size: int = 32) -> np.ndarray:
    """uint8 (T, H, W): a blob that moves down over time (label 1) or stays put (label 0)."""
    rng = np.random.default_rng(seed)
    clip = rng.integers(0, 40, size=(frames, size, size)).astype(np.float32)
    row0, col = int(rng.integers(6, 12)), int(rng.integers(8, size - 8))
    for t in range(frames):
        row = row0 + (2 * t if label == 1 else 0)
        clip[t, row : row + 4, col - 3 : col + 3] = 220
    return clip.clip(0, 255).astype(np.uint8)


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


@pytest.fixture
def train_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Factory: the real ``configs/train.yaml`` composed with ``debug=default`` (the tiny
    settings) and ``overrides``, writing into tmp_path."""

    def make(*overrides: str, run_name: str = "run") -> DictConfig:
        GlobalHydra.instance().clear()
        run_dir = tmp_path / run_name
        with initialize_config_module(config_module="labral.configs", version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    f"paths.root_dir={tmp_path}",
                    f"hydra.run.dir={run_dir}",
                    "debug=default",  # configs/debug/default.yaml: tiny model, 8x32x32, 2 epochs
                    *overrides,
                ],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(run_dir)
        return cfg

    return make
