"""Per-frame geometry and noise of a clip: where each image pixel looks in the tissue.

``lookup_index`` warps the image onto the reference grid (probe tilt, drift and pressure;
the femur's rotation and glide weighted by how much each tissue follows it);
``receiver_noise`` gives the per-frame complex noise fields.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

#: Reference-grid margin in pixels around the image (probe motion never samples outside).
MARGIN = 10


def receiver_noise(
    rng: np.random.Generator, frames: int, height: int, width: int, level: float
) -> list[np.ndarray]:
    """Complex white noise, T views (H, W): random crops of one field (cheap, new per frame)."""
    pad = 24
    field = rng.standard_normal((2, height + pad, width + pad), dtype=np.float32) * np.float32(
        level
    )
    field_c = (field[0] + 1j * field[1]).astype(np.complex64)
    offs = rng.integers(0, pad, (frames, 2))
    return [field_c[a : a + height, b : b + width] for a, b in offs]


def lookup_index(maps: Any, tr: Any, height: int, width: int, hip: dict[str, Any]) -> np.ndarray:
    """Flat int32 indices (T, H, W) into the (T, Hr, Wr) reference stacks, one per pixel.

    Probe tilt is a small rotation about the labrum, drift/pressure a shift; the femur
    rotates about the femoral head centre, and each pixel's displacement is weighted by how
    much its tissue follows the femur (looked up at the pixel's un-moved position: the probe
    moves by a few pixels at most).
    """
    frames = tr.loading.shape[0]
    hr, wr = maps.echo.shape
    m = MARGIN
    zpx = np.arange(height, dtype=np.float32)[None, :, None]
    xpx = np.arange(width, dtype=np.float32)[None, None, :]
    theta = np.deg2rad(tr.probe_tilt_deg).astype(np.float32)[:, None, None]
    # the sonographer rocks the probe about the labrum, keeping it in view
    b0, b1, b2, b3 = maps.cleft_box
    zp_px, xp_px = np.float32((b0 + b1) / 2 - m), np.float32((b2 + b3) / 2 - m)
    ratio = np.float32(maps.dz / maps.dx)
    w_img = maps.moves[m : m + height, m : m + width][None]
    col_t = (tr.probe_dx_mm / maps.dx)[:, None, None] - theta * (zpx - zp_px) * ratio
    row_t = (tr.probe_dz_mm / maps.dz)[:, None, None] + theta * (xpx - xp_px) / ratio
    # femur rotation about the head centre: source = c + R(-phi) (p - c), weighted by w
    phi = np.deg2rad(tr.femur_rot_deg).astype(np.float32)[:, None, None]
    cos1, sin = np.cos(phi) - np.float32(1.0), np.sin(phi)
    u = (xpx + 0.5) * np.float32(maps.dx) - np.float32(maps.pivot_mm[0])  # mm, (1, 1, W)
    v = (zpx + 0.5) * np.float32(maps.dz) - np.float32(maps.pivot_mm[1])  # mm, (1, H, 1)
    d_col = (u * cos1 + v * sin) * np.float32(1.0 / maps.dx)
    d_row = (v * cos1 - u * sin) * np.float32(1.0 / maps.dz)
    # the head glides toward the probe as the joint is loaded; the tissue above follows it
    # less and less (weights smoothed in depth, so the cortex line moves whole, unbroken)
    glide_w = ndimage.gaussian_filter1d(maps.moves, sigma=3.0, axis=0)[
        m : m + height, m : m + width
    ]
    glide = (tr.femur_glide_mm / maps.dz).astype(np.float32)[:, None, None]
    rows = (zpx + np.float32(m + 0.5)) + row_t.astype(np.float32)
    rows += w_img * d_row + glide_w[None] * glide
    cols = (xpx + np.float32(m + 0.5)) + col_t.astype(np.float32)
    cols += w_img * d_col
    np.clip(rows, 0, hr - 1, out=rows)
    np.clip(cols, 0, wr - 1, out=cols)
    ri = rows.astype(np.int32)
    ri += (np.arange(frames, dtype=np.int32) * hr)[:, None, None]
    ri *= np.int32(wr)
    ri += cols.astype(np.int32)
    return ri
