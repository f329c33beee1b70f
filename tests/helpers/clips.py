"""Tiny synthetic clips for tests that need pixels but no generator."""

from __future__ import annotations

import numpy as np


def tiny_clip(label: int, seed: int, frames: int = 8, size: int = 32) -> np.ndarray:
    """uint8 (T, H, W): a blob that moves down over time (label 1) or stays put (label 0)."""
    rng = np.random.default_rng(seed)
    clip = rng.integers(0, 40, size=(frames, size, size)).astype(np.float32)
    row0, col = int(rng.integers(6, 12)), int(rng.integers(8, size - 8))
    for t in range(frames):
        row = row0 + (2 * t if label == 1 else 0)
        clip[t, row : row + 4, col - 3 : col + 3] = 220
    return clip.clip(0, 255).astype(np.uint8)
