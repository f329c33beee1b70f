"""The one in-memory form of a cine clip that every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Clip:
    """A decoded, cropped, grayscale cine clip with its timing and geometry.

    Attributes:
        frames: uint8 array of shape (T, H, W), grayscale, cropped to the tissue region;
            from an uncompressed DICOM a read-only view of the file's bytes (copy to edit).
        fps: frames per second (from the file, or a stated default with a warning).
        spacing_mm: physical pixel size (row, column) in millimetres, or None if unknown.
        source: facts about the file with no patient identity in them (format, SOP class,
            transfer syntax, photometric interpretation, manufacturer, original shape,
            ``instance_hash`` = SHA-256 of the SOP Instance UID, ...).
        warnings: human-readable notes about fallbacks taken while reading.
    """

    frames: np.ndarray
    fps: float
    spacing_mm: tuple[float, float] | None = None
    source: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.frames.dtype != np.uint8 or self.frames.ndim != 3:
            raise ValueError(
                f"Clip.frames must be uint8 (T, H, W); got {self.frames.dtype} {self.frames.shape}"
            )

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return int(self.frames.shape[0])

    @property
    def duration_s(self) -> float:
        """Clip length in seconds (T / fps)."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    def facts(self) -> dict[str, Any]:
        """JSON-ready summary: frames, fps, duration, region size, spacing."""
        return {
            "frames": self.num_frames,
            "fps": round(float(self.fps), 3),
            "duration_s": round(self.duration_s, 3),
            "region_size": [int(self.frames.shape[1]), int(self.frames.shape[2])],
            "spacing_mm": list(self.spacing_mm) if self.spacing_mm else None,
        }
