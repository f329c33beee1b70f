"""The fixed uint8 -> float32 [0, 1] scale that ends every clip pipeline, and the keys type.

Both the eval tail (:class:`~labral.datasets.transforms.clip_transforms.ToClipTensord`) and
the augmentation (:mod:`labral.datasets.transforms.augment`, which works in float after
:class:`ScaleUint8d`) use it, so it lives below both.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.transforms import MapTransform, Transform

#: the ``keys`` argument of a dictionary transform: one key or several
KeysLike = Hashable | Sequence[Hashable]


class ScaleUint8(Transform):
    """Array transform: uint8 [0, 255] -> float32 [0, 1] (fixed scale, not per-clip min-max).

    A fixed scale keeps gain differences between clips visible to the model.
    """

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Args: frames uint8 (...). Returns: float32 (...) in [0, 1]."""
        if frames.dtype == np.uint8:  # one pass; the same values as astype, then multiply
            return np.multiply(frames, np.float32(1 / 255), dtype=np.float32)
        return np.clip(frames, 0.0, 1.0).astype(np.float32, copy=False)


class ScaleUint8d(MapTransform):
    """Dictionary version of :class:`ScaleUint8`: uint8 -> float32 in [0, 1]."""

    def __init__(self, keys: KeysLike = "frames") -> None:
        super().__init__(keys)
        self.scaler = ScaleUint8()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.scaler(d[key])
        return d
