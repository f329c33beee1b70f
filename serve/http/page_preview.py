"""A small preview of the clip for the web page: frames and key frames as base64 PNGs."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def png_b64(frame: np.ndarray, width: int) -> str:
    """A frame uint8 (H, W) as a base64 PNG at most ``width`` pixels wide (bilinear)."""
    image = Image.fromarray(frame)
    if image.width > width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def build_preview(
    frames: np.ndarray,
    fps: float,
    key_frames: list[int],
    *,
    max_frames: int = 48,
    width: int = 192,
    key_width: int = 320,
) -> dict:
    """Downsampled frames for playback plus the key frames larger.

    Args:
        frames: uint8 (T, H, W) source frames.
        fps: source frame rate.
        key_frames: source-frame indices to return at ``key_width``.
        max_frames: most frames in the playback strip (evenly subsampled).
        width: playback frame width in pixels (never upscaled).
        key_width: key-frame width in pixels (never upscaled).

    Returns:
        ``{"fps", "frame_index": [int], "frames": [base64 PNG], "key_frames":
        [{"frame", "png"}]}``; ``frame_index[i]`` is the source frame of ``frames[i]`` and
        ``fps`` the playback rate that keeps real time.
    """
    total = int(frames.shape[0])
    index = np.unique(np.linspace(0, total - 1, min(total, max_frames)).round().astype(int))
    step = total / max(len(index), 1)
    return {
        "fps": float(fps) / step if step > 0 else float(fps),
        "frame_index": [int(i) for i in index],
        "frames": [png_b64(frames[i], width) for i in index],
        "key_frames": [{"frame": int(i), "png": png_b64(frames[i], key_width)} for i in key_frames],
    }
