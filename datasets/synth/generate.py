"""Generate one synthetic dynamic hip ultrasound clip with its ground truth.

Pipeline per clip (all vectorised over the (T, H, W) stack):

1. tissue maps of the hip on a reference grid (:mod:`anatomy`), per-frame echogenicity
   (labrum/capsule anisotropy with the probe angle, the cleft-channel filling of the clip
   type, effusion) and complex scatterers that decorrelate where tissue strains or fluid
   flows (``s_t = rho s_{t-1} + sqrt(1 - rho^2) n_t``);
2. warp: every image pixel looks up the tissue point it sees (probe tilt, drift, pressure,
   then femur displacement weighted by how much the tissue follows the femur); nearest
   neighbour lookup keeps the scatterers attached to their tissue;
3. image formation (:mod:`imaging`): baseband PSF, envelope, attenuation with imperfect
   TGC, receiver noise, log compression; dropped frames repeat the previous frame.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np

from labral.datasets.synth import imaging
from labral.datasets.synth.anatomy import (
    ECHO,
    TissueMaps,
    draw_anatomy,
    hip_anatomy,
    render_tissue,
)
from labral.datasets.synth.motion import (
    draw_motion_params,
    half_wave_extent,
    make_traces,
    packet_bounds,
)
from labral.datasets.synth.scenarios import CLIP_TYPES, pick_scenario, static_extent
from labral.datasets.synth.types import POSITIVE_TYPE, SynthClip
from labral.errors import BadConfigError

MARGIN = 10
#: Sparse scatterers in fluid: fraction of pixels and their echo power.
SPECK_FRACTION = 0.15
SPECK_ECHO = 0.05
#: Clip-level imaging parameters that ``overrides`` may replace (besides anatomy keys).
CLIP_KEYS = ("dynamic_range_db", "gain_db", "noise_level", "probe_motion", "tgc_error")


def draw_patient(seed: int) -> dict[str, Any]:
    """Anatomy and probe set-up of one synthetic patient (JSON-ready).

    Args:
        seed: patient seed; the same seed gives the same anatomy.

    Returns:
        dict of anatomy sizes (mm), angles (degrees), probe settings and a texture seed.

    Raises:
        BadConfigError: if ``seed`` is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BadConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return draw_anatomy(int(seed))


def _validate(
    anatomy: Any,
    clip_type: str,
    seed: Any,
    frames: int,
    height: int,
    width: int,
    fps: float,
    side: str,
    overrides: dict[str, Any] | None,
) -> None:
    if not isinstance(anatomy, dict) or "patient_seed" not in anatomy:
        raise BadConfigError("anatomy must be the dict returned by draw_patient(seed)")
    if clip_type not in CLIP_TYPES:
        raise BadConfigError(f"clip_type {clip_type!r} is unknown; use one of {list(CLIP_TYPES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BadConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(frames, (int, np.integer)) or frames < 4:
        raise BadConfigError(
            f"frames must be an integer >= 4 (the motion needs time), got {frames!r}"
        )
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, (int, np.integer)) or not 48 <= value <= 1024:
            raise BadConfigError(f"{name} must be an integer in [48, 1024] pixels, got {value!r}")
    if not isinstance(fps, (int, float)) or not 2.0 <= fps <= 240.0:
        raise BadConfigError(f"fps must be a number in [2, 240], got {fps!r}")
    if side not in ("L", "R"):
        raise BadConfigError(f"side must be 'L' or 'R', got {side!r}")
    if overrides:
        for key, value in overrides.items():
            if key not in anatomy and key not in CLIP_KEYS:
                raise BadConfigError(
                    f"overrides key {key!r} is unknown; use an anatomy key "
                    f"or one of {list(CLIP_KEYS)}"
                )
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise BadConfigError(f"overrides[{key!r}] must be a number, got {value!r}")
        if "depth_mm" in overrides and not 25.0 <= overrides["depth_mm"] <= 90.0:
            raise BadConfigError(
                f"overrides['depth_mm'] must be in [25, 90], got {overrides['depth_mm']}"
            )
        if "center_freq_mhz" in overrides and not 2.0 <= overrides["center_freq_mhz"] <= 20.0:
            raise BadConfigError("overrides['center_freq_mhz'] must be in [2, 20] MHz")
        if "dynamic_range_db" in overrides and not 20.0 <= overrides["dynamic_range_db"] <= 90.0:
            raise BadConfigError("overrides['dynamic_range_db'] must be in [20, 90] dB")
        if overrides.get("noise_level", 0.0) < 0 or overrides.get("probe_motion", 1.0) < 0:
            raise BadConfigError("overrides['noise_level'] and ['probe_motion'] must be >= 0")


def generate_clip(
    anatomy: dict[str, Any],
    clip_type: str,
    seed: int,
    *,
    frames: int = 32,
    height: int = 128,
    width: int = 128,
    fps: float = 20.0,
    side: str = "R",
    overrides: dict[str, Any] | None = None,
) -> SynthClip:
    """Generate one clip of one hip.

    Args:
        anatomy: the patient, from :func:`draw_patient`.
        clip_type: ``"positive"`` or one of ``types.NEGATIVE_TYPES``.
        seed: clip seed (with the anatomy, fixes every random draw).
        frames: T (>= 4).
        height, width: frame size in pixels (rows = depth), 48..1024.
        fps: frame rate (2..240).
        side: ``"L"`` or ``"R"`` (small, stable per-hip anatomy differences).
        overrides: replace drawn parameters by name: any anatomy key (``center_freq_mhz``,
            ``depth_mm``, ...) or ``dynamic_range_db``, ``gain_db``, ``noise_level``,
            ``tgc_error``, ``probe_motion`` (a multiplier on all probe-motion amplitudes).

    Returns:
        :class:`SynthClip`: frames uint8 (T, H, W), label, extrusion_mask bool (T, H, W),
        extrusion_frames, params (JSON-ready; per-frame traces under ``"traces"``).

    Raises:
        BadConfigError: unknown clip type or override, frames < 4, sizes outside 48..1024,
            bad fps/side/seed; the message names the argument.
    """
    _validate(anatomy, clip_type, seed, frames, height, width, fps, side, overrides)
    overrides = dict(overrides or {})
    type_index = CLIP_TYPES.index(clip_type)
    rng = np.random.default_rng([int(anatomy["patient_seed"]), int(seed), type_index, 0xC11B])
    hip = hip_anatomy(anatomy, side)
    hip.update({k: float(v) for k, v in overrides.items() if k in anatomy})
    scen, variant = pick_scenario(clip_type, rng)
    imaging_p = {
        "dynamic_range_db": float(rng.uniform(45.0, 58.0)),
        "gain_db": float(rng.uniform(-3.0, 3.0)),
        "noise_level": float(rng.uniform(0.004, 0.012)),
        "tgc_error": float(rng.normal(0.0, 0.12)),
        "tgc_wobble_db": float(rng.uniform(0.5, 2.5)),
        "tgc_wobble_phase": float(rng.uniform(0, 2 * np.pi)),
        "probe_motion": 1.0,
    }
    imaging_p.update({k: float(v) for k, v in overrides.items() if k in CLIP_KEYS})
    probe_scale = float(rng.uniform(*scen.probe_scale)) * imaging_p["probe_motion"]
    motion_p = draw_motion_params(rng, probe_scale)
    if scen.drive == "rocking":
        # the probe angle that makes the labral base hypoechoic is reached on the unloading
        # strokes: with psi = theta / 2 - pi / 4, 2 sin^2(psi) - 1 = -sin(theta)
        motion_p["rock_phase"] = float((motion_p["loading_phase"] / 2 - np.pi / 4) % (2 * np.pi))
    tr = make_traces(motion_p, frames, fps, rng)
    maps = _cached_tissue(json.dumps(hip, sort_keys=True), height, width)
    hr, wr = maps.echo.shape

    # --- cleft channel: extent per frame and the tongue it fills
    if scen.drive == "loading":
        extent = half_wave_extent(tr.loading_velocity)
    elif scen.drive == "unloading":
        extent = half_wave_extent(-tr.loading_velocity)
    elif scen.drive == "rocking":
        # hypoechoic beyond ~71% of the rocking excursion, either way (2 sin^2 - 1 = -cos 2psi)
        extent = half_wave_extent(2.0 * tr.probe_tilt_norm**2 - 1.0)
    elif scen.drive == "static":
        extent = np.full(frames, static_extent(clip_type, rng), np.float32)
    else:
        extent = np.zeros(frames, np.float32)
    b0, b1, b2, b3 = maps.cleft_box
    inside = np.isfinite(maps.cleft_s[b0:b1, b2:b3])
    if scen.width_scale < 1.0:  # narrow channel: keep the centre line of the cleft
        inside &= _narrow(inside, scen.width_scale)
    s_safe = np.where(inside, maps.cleft_s[b0:b1, b2:b3], np.inf)
    # fluid moves as a packet: joint -> capsule in positives, reversed in the look-alikes
    lo, hi = packet_bounds(extent, forward=scen.drive == "loading")
    tongue = (
        (s_safe[None] <= hi[:, None, None])
        & (s_safe[None] >= lo[:, None, None])
        & (extent[:, None, None] > 0.04)
    )

    # --- scatterers: static everywhere, except in the joint box where tissue strains and
    # fluid may flow (s_t = rho s_{t-1} + sqrt(1 - rho^2) n_t); amplitude = sqrt(echo) * s
    base_echo = maps.echo.copy()
    if scen.effusion:
        base_echo[maps.recess_fluid] = ECHO["fluid"]
    cplx = rng.standard_normal((2, hr, wr), dtype=np.float32)
    amp_ref = (np.sqrt(base_echo) * (cplx[0] + 1j * cplx[1])).astype(np.complex64)
    amp = np.broadcast_to(amp_ref, (frames, hr, wr)).copy()
    j0, j1 = max(b0 - 12, 0), min(b1 + 12, hr)
    j2, j3 = max(b2 - 12, 0), min(b3 + 16, wr)
    jshape = (frames, j1 - j0, j3 - j2)
    moves_j = maps.moves[j0:j1, j2:j3]
    strain = ((moves_j > 0) & (moves_j < 1)) | (maps.echo[j0:j1, j2:j3] == ECHO["cartilage"])
    rho = np.where(strain[None], 1.0 - 0.35 * np.abs(tr.loading_velocity)[:, None, None], 1.0)
    rho = np.broadcast_to(rho, jshape).astype(np.float32)
    tj = np.zeros(jshape, bool)
    tj[:, b0 - j0 : b1 - j0, b2 - j2 : b3 - j2] = tongue
    if scen.filling == "flow":
        rho = np.where(tj, np.float32(0.1), rho)
    noise = rng.standard_normal((2, *jshape), dtype=np.float32)
    scat = np.empty(jshape, np.complex64)
    scat[0] = cplx[0, j0:j1, j2:j3] + 1j * cplx[1, j0:j1, j2:j3]
    innov = np.sqrt(1.0 - rho**2) * (noise[0] + 1j * noise[1])
    for t in range(1, frames):
        scat[t] = rho[t] * scat[t - 1] + innov[t]
    echo_j = np.broadcast_to(base_echo[j0:j1, j2:j3], jshape).copy()
    # fluid (or fibres seen at a steep angle): anechoic with sparse bright specks, which are
    # re-drawn every frame where fluid flows and stay put otherwise
    if scen.filling == "flow":
        specks = rng.random(jshape, dtype=np.float32) < SPECK_FRACTION
    else:
        specks = np.broadcast_to(rng.random(jshape[1:], dtype=np.float32) < SPECK_FRACTION, jshape)
    echo_j[tj] = np.where(specks[tj], np.float32(SPECK_ECHO), np.float32(ECHO["fluid"]))
    amp[:, j0:j1, j2:j3] = np.sqrt(echo_j) * scat

    # --- anisotropy |cos|^k of the labrum and the capsule/tendon with the probe angle
    lab_k = float(rng.uniform(*scen.labrum_k))
    lab_off = float(rng.uniform(*scen.labrum_offset_deg)) + hip["labrum_fiber_deg"]
    lab_gain = np.abs(np.cos(np.deg2rad(lab_off + tr.probe_tilt_deg))) ** lab_k
    sheet_gain = np.abs(np.cos(np.deg2rad(tr.probe_tilt_deg))) ** 4.0
    for mask, gains in ((maps.labrum, lab_gain), (maps.sheet, sheet_gain)):
        rows, cols = np.nonzero(mask)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        sub = amp[:, r0:r1, c0:c1]
        sub[:, mask[r0:r1, c0:c1]] *= np.sqrt(gains).astype(np.float32)[:, None]

    # --- warp (image pixel -> tissue point) and image formation
    idx = _lookup_index(maps, tr, height, width, hip)
    iq = np.take(amp.ravel(), idx)
    focus_mm = hip["focus_frac"] * hip["depth_mm"]
    axial, lateral, psf_info = imaging.psf_kernels(
        height,
        maps.dz,
        maps.dx,
        width,
        hip["center_freq_mhz"],
        hip["bandwidth_frac"],
        focus_mm,
        hip["f_number"],
    )
    row_gain = imaging.depth_gain(
        height,
        maps.dz,
        hip["center_freq_mhz"],
        hip["atten_db_cm_mhz"],
        imaging_p["tgc_error"],
        imaging_p["tgc_wobble_db"],
        imaging_p["tgc_wobble_phase"],
    )
    iq = imaging.convolve_psf(iq, axial, lateral * row_gain)
    noise_iq = _receiver_noise(rng, frames, height, width, imaging_p["noise_level"])
    frame_gain = imaging_p["gain_db"] + tr.gain_db
    for t in range(frames):
        iq[t] += noise_iq[t]
    bmode = imaging.log_compress(iq, frame_gain, imaging_p["dynamic_range_db"])

    label = int(clip_type == POSITIVE_TYPE)
    if label:
        tongue_ref = np.zeros((frames, hr, wr), bool)
        tongue_ref[:, b0:b1, b2:b3] = tongue
        mask = np.take(tongue_ref.ravel(), idx)
    else:
        mask = np.zeros((frames, height, width), bool)
    bmode, mask = bmode[tr.shown_frame], mask[tr.shown_frame]
    extrusion_frames = [int(t) for t in np.nonzero(mask.any(axis=(1, 2)))[0]]

    params = {
        "clip_type": clip_type,
        "variant": variant,
        "seed": int(seed),
        "side": side,
        "frames": int(frames),
        "fps": float(fps),
        "size": [int(height), int(width)],
        "anatomy": hip,
        "imaging": {**imaging_p, **psf_info, "focus_mm": float(focus_mm)},
        "motion": {**motion_p, "probe_scale": probe_scale},
        "labrum_anisotropy": {"k": lab_k, "offset_deg": lab_off},
        "cleft_roi_px": _roi_px(maps.cleft_box, height, width),
        "overrides": {k: float(v) for k, v in overrides.items()},
        "traces": {
            "loading": _r(tr.loading),
            "loading_velocity": _r(tr.loading_velocity),
            "probe_tilt_deg": _r(tr.probe_tilt_deg),
            "cleft_extent": _r(extent),
            "gain_db": _r(frame_gain),
            "shown_frame": [int(v) for v in tr.shown_frame],
        },
    }
    return SynthClip(
        frames=np.ascontiguousarray(bmode),
        label=label,
        clip_type=clip_type,
        fps=float(fps),
        spacing_mm=(float(maps.dz), float(maps.dx)),
        extrusion_mask=np.ascontiguousarray(mask),
        extrusion_frames=extrusion_frames,
        params=params,
    )


@functools.lru_cache(maxsize=8)
def _cached_tissue(hip_json: str, height: int, width: int) -> TissueMaps:
    """Tissue maps of a hip, cached: clips of the same hip share them (read-only arrays)."""
    maps = render_tissue(json.loads(hip_json), height, width, MARGIN)
    for arr in (maps.echo, maps.moves, maps.labrum, maps.sheet, maps.cleft_s, maps.recess_fluid):
        arr.flags.writeable = False
    return maps


def _r(a: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in a]


def _roi_px(box: tuple[int, int, int, int], height: int, width: int) -> list[int]:
    r0, r1, c0, c1 = (v - MARGIN for v in box)
    return [max(r0, 0), min(r1, height), max(c0, 0), min(c1, width)]


def _narrow(inside: np.ndarray, scale: float) -> np.ndarray:
    """Keep the central ``scale`` fraction of each row of the channel (a thin, regular cleft)."""
    out = np.zeros_like(inside)
    for r in range(inside.shape[0]):
        cols = np.nonzero(inside[r])[0]
        if cols.size:
            keep = max(1, int(round(cols.size * scale)))
            start = cols[0] + (cols.size - keep) // 2
            out[r, start : start + keep] = True
    return out


def _receiver_noise(
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


def _lookup_index(maps: Any, tr: Any, height: int, width: int, hip: dict[str, Any]) -> np.ndarray:
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
    rows = (zpx + np.float32(m + 0.5)) + row_t.astype(np.float32)
    rows += w_img * d_row
    cols = (xpx + np.float32(m + 0.5)) + col_t.astype(np.float32)
    cols += w_img * d_col
    np.clip(rows, 0, hr - 1, out=rows)
    np.clip(cols, 0, wr - 1, out=cols)
    ri = rows.astype(np.int32)
    ri += (np.arange(frames, dtype=np.int32) * hr)[:, None, None]
    ri *= np.int32(wr)
    ri += cols.astype(np.int32)
    return ri
