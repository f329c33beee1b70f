"""Perturbations applied to a decoded clip for the robustness sweep.

Each perturbation takes a :class:`~labral.datasets.io.clip.Clip` and a level and returns a new
clip; randomness comes from a generator seeded by the caller (clip index + perturbation), so
a sweep is reproducible. Levels (the units are in ``UNITS``):

- ``gain``: dB added to the displayed image (uint8 scaled by 10^(dB/20), clipped);
- ``noise``: standard deviation of additive Gaussian noise in grey levels;
- ``jpeg_quality``: every frame re-encoded as JPEG at this quality (Pillow) and decoded;
- ``fps_resample``: factor on the frame rate (0.5 keeps every other frame, fps halved;
  non-integer steps take the nearest source frame);
- ``frame_drop``: fraction of frames removed at random (fps unchanged, so motion jumps);
- ``shorter``: fraction of the clip kept (a centred window);
- ``reversed``, ``shuffled`` and ``motionless`` (the order controls of
  :mod:`labral.bench.controls`; the level is ignored): the frames backwards, in a random
  order, or the middle frame repeated for the clip's length.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from PIL import Image

from labral.datasets.io.clip import Clip
from labral.errors import BadConfigError

UNITS = {
    "gain": "dB",
    "noise": "grey-level SD",
    "jpeg_quality": "JPEG quality",
    "fps_resample": "x frame rate",
    "frame_drop": "fraction dropped",
    "shorter": "fraction kept",
    "reversed": "(no level)",
    "shuffled": "(no level)",
    "motionless": "(no level)",
}
MIN_FRAMES = 2


def _with_frames(clip: Clip, frames: np.ndarray, fps: float | None = None) -> Clip:
    return replace(clip, frames=np.ascontiguousarray(frames), fps=clip.fps if fps is None else fps)


def gain(clip: Clip, level: float, rng: np.random.Generator) -> Clip:
    """Scale intensities by 10^(level/20) (uint8, clipped)."""
    scaled = clip.frames.astype(np.float32) * np.float32(10 ** (level / 20))
    return _with_frames(clip, np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def noise(clip: Clip, level: float, rng: np.random.Generator) -> Clip:
    """Add Gaussian noise with SD ``level`` grey levels (uint8, clipped)."""
    noisy = clip.frames.astype(np.float32) + rng.normal(0, level, clip.frames.shape).astype(
        np.float32
    )
    return _with_frames(clip, np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def jpeg_quality(clip: Clip, level: float, rng: np.random.Generator) -> Clip:
    """Round-trip every frame through JPEG at quality ``level`` (1-95)."""
    out = np.empty_like(clip.frames)
    for t, frame in enumerate(clip.frames):
        buffer = io.BytesIO()
        Image.fromarray(frame, mode="L").save(buffer, format="JPEG", quality=int(level))
        out[t] = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"))
    return _with_frames(clip, out)


def fps_resample(clip: Clip, level: float, rng: np.random.Generator) -> Clip:
    """Resample in time to ``level`` x the frame rate (nearest source frame)."""
    n_out = max(MIN_FRAMES, int(round(clip.num_frames * level)))
    index = np.clip(np.rint(np.arange(n_out) / level), 0, clip.num_frames - 1).astype(np.int64)
    return _with_frames(clip, clip.frames[index], fps=clip.fps * level)


def frame_drop(clip: Clip, level: float, rng: np.random.Generator) -> Clip:
    """Remove a random fraction ``level`` of the frames, keeping order and fps."""
    n_keep = max(MIN_FRAMES, clip.num_frames - int(round(clip.num_frames * level)))
    keep = np.sort(rng.choice(clip.num_frames, size=n_keep, replace=False))
    return _with_frames(clip, clip.frames[keep])


def shorter(clip: Clip, level: float, rng: np.random.Generator) -> Clip:
    """Keep the centred fraction ``level`` of the frames."""
    n_keep = max(MIN_FRAMES, int(round(clip.num_frames * level)))
    start = (clip.num_frames - n_keep) // 2
    return _with_frames(clip, clip.frames[start : start + n_keep])


def reversed_order(clip: Clip, level: float, rng: np.random.Generator) -> Clip:
    """The clip played backwards (``level`` ignored)."""
    return _with_frames(clip, clip.frames[::-1])


def shuffled_order(clip: Clip, level: float, rng: np.random.Generator) -> Clip:
    """The clip's frames in a random order drawn from ``rng`` (``level`` ignored)."""
    return _with_frames(clip, clip.frames[rng.permutation(clip.num_frames)])


def motionless(clip: Clip, level: float, rng: np.random.Generator) -> Clip:
    """The clip's middle frame repeated for its length: what it shows, without the motion
    (``level`` ignored)."""
    middle = clip.frames[clip.num_frames // 2]
    return _with_frames(clip, np.repeat(middle[None], clip.num_frames, axis=0))


PERTURBATIONS: dict[str, Callable[[Clip, float, np.random.Generator], Clip]] = {
    "gain": gain,
    "noise": noise,
    "jpeg_quality": jpeg_quality,
    "fps_resample": fps_resample,
    "frame_drop": frame_drop,
    "shorter": shorter,
    "reversed": reversed_order,
    "shuffled": shuffled_order,
    "motionless": motionless,
}


def check_sweep(sweep: list[dict]) -> None:
    """Check a robustness sweep definition ``[{"name", "levels"}]``.

    Raises:
        BadConfigError: unknown perturbation name or empty levels (names the setting).
    """
    for index, item in enumerate(sweep):
        name = item.get("name")
        if name not in PERTURBATIONS:
            raise BadConfigError(
                f"perturbations[{index}].name={name!r}: unknown; "
                f"choose from {sorted(PERTURBATIONS)}"
            )
        if not item.get("levels"):
            raise BadConfigError(
                f"perturbations[{index}].levels: give at least one level for {name}"
            )


def apply(clip: Clip, name: str, level: float, seed: int) -> Clip:
    """Apply perturbation ``name`` at ``level`` with a generator seeded by ``seed``."""
    return PERTURBATIONS[name](clip, float(level), np.random.default_rng(seed))
