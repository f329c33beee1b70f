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
from labral.datasets.synth.difficulty import Difficulty, load_difficulty
from labral.datasets.synth.motion import burst_extent, make_traces, packet_bounds
from labral.datasets.synth.params import CLIP_KEYS, clip_rng, draw_clip_params
from labral.datasets.synth.scenarios import CLIP_TYPES, Scenario, pick_scenario
from labral.datasets.synth.types import POSITIVE_TYPE, SynthClip
from labral.datasets.synth.warp import MARGIN, lookup_index, receiver_noise
from labral.errors import BadConfigError

#: Sparse scatterers in fluid: fraction of pixels and their echo power.
SPECK_FRACTION = 0.15
SPECK_ECHO = 0.05
#: A tongue is drawn in frames whose extent exceeds this (fraction of the cleft length).
MIN_EXTENT = 0.04


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
    difficulty: str | dict[str, Any] | Difficulty | None = None,
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
        difficulty: a level name (``"easy"`` .. ``"expert"``), a mapping of knobs, or a
            checked :class:`Difficulty`; ``None`` = the default level of configs/synth.yaml.

    Returns:
        :class:`SynthClip`: frames uint8 (T, H, W), label, extrusion_mask bool (T, H, W),
        extrusion_frames, params (JSON-ready; per-frame traces under ``"traces"``). A
        ``"positive"`` whose burst falls outside the clip's frames (a short clip) comes back
        as ``clip_type="normal"``, label 0, variant ``"burst_outside_clip"``: the label is
        always "the extrusion is visible in this clip".

    Raises:
        BadConfigError: unknown clip type, override or level, frames < 4, sizes outside
            48..1024, bad fps/side/seed or knob ranges; the message names the argument.
    """
    _validate(anatomy, clip_type, seed, frames, height, width, fps, side, overrides)
    level = load_difficulty(difficulty)
    overrides = dict(overrides or {})
    rng = clip_rng(int(anatomy["patient_seed"]), int(seed), clip_type)
    hip = hip_anatomy(anatomy, side)
    hip.update({k: float(v) for k, v in overrides.items() if k in anatomy})
    drawn = draw_clip_params(rng, level, frames, float(fps), overrides)
    cleft = drawn["cleft"]
    scen, variant = pick_scenario(clip_type, cleft["variant_draw"])
    tr = make_traces(drawn["motion"], frames, fps, rng)
    maps = _cached_tissue(json.dumps(hip, sort_keys=True), height, width)
    hr, wr = maps.echo.shape

    # --- cleft channel: extent per frame and the tongue it fills
    extent = _cleft_extent(scen, tr, cleft, frames)
    if clip_type == POSITIVE_TYPE and not (extent[tr.shown_frame] > MIN_EXTENT).any():
        # the clip ends before the burst comes: it shows a detached hip without extrusion
        clip_type, variant = "normal", "burst_outside_clip"
    b0, b1, b2, b3 = maps.cleft_box
    inside = np.isfinite(maps.cleft_s[b0:b1, b2:b3])
    inside &= _narrow(inside, 0.55 if scen.narrow else cleft["width_scale"])
    s_safe = np.where(inside, maps.cleft_s[b0:b1, b2:b3], np.inf)
    lo, hi = packet_bounds(extent, scen.packet)
    tongue = (
        (s_safe[None] <= hi[:, None, None])
        & (s_safe[None] >= lo[:, None, None])
        & (extent[:, None, None] > MIN_EXTENT)
    )

    # --- scatterers: static everywhere, except in the dynamic box (joint, cleft, and the
    # recess when it holds an effusion), where tissue strains and fluid may move
    # (s_t = rho s_{t-1} + sqrt(1 - rho^2) n_t); amplitude = sqrt(echo) * s
    base_echo = maps.echo
    effusion = bool(hip.get("effusion", 0))
    cplx = rng.standard_normal((2, hr, wr), dtype=np.float32)
    amp_ref = (np.sqrt(base_echo) * (cplx[0] + 1j * cplx[1])).astype(np.complex64)
    amp = np.broadcast_to(amp_ref, (frames, hr, wr)).copy()
    j0, j1, j2, j3 = _dynamic_box(maps, effusion)
    jshape = (frames, j1 - j0, j3 - j2)
    moves_j = maps.moves[j0:j1, j2:j3]
    speed = np.abs(tr.loading_velocity)[:, None, None]
    strain = ((moves_j > 0) & (moves_j < 1)) | (maps.echo[j0:j1, j2:j3] == ECHO["cartilage"])
    rho = np.where(strain[None], 1.0 - 0.35 * speed, 1.0)
    fluid_j = np.zeros(jshape, bool)  # anechoic fluid (with specks): tongue and effusion
    moving = np.zeros(jshape, bool)  # where specks move and speckle decorrelates
    flow_rho = np.float32(cleft["flow_rho"])
    if effusion:  # effusion fluid is pushed along the neck as the joint moves
        recess = np.broadcast_to(maps.recess_fluid[j0:j1, j2:j3][None], jshape)
        rho = np.where(recess, 1.0 - (1.0 - flow_rho) * speed, rho)
        fluid_j |= recess
        moving |= recess
    tj = np.zeros(jshape, bool)
    tj[:, b0 - j0 : b1 - j0, b2 - j2 : b3 - j2] = tongue
    if scen.filling in ("flow", "aniso"):
        rho = np.where(tj, flow_rho, rho)
    if scen.filling == "flow":
        moving |= tj
    rho = np.broadcast_to(rho, jshape).astype(np.float32)
    noise = rng.standard_normal((2, *jshape), dtype=np.float32)
    scat = np.empty(jshape, np.complex64)
    scat[0] = cplx[0, j0:j1, j2:j3] + 1j * cplx[1, j0:j1, j2:j3]
    innov = np.sqrt(1.0 - rho**2) * (noise[0] + 1j * noise[1])
    for t in range(1, frames):
        scat[t] = rho[t] * scat[t - 1] + innov[t]
    tissue_j = np.broadcast_to(base_echo[j0:j1, j2:j3], jshape)
    echo_j = np.where(fluid_j, np.float32(ECHO["fluid"]), tissue_j)
    specks = _specks(rng, jshape, moving, 1.0 - flow_rho)
    fluid_echo = np.where(specks, np.float32(SPECK_ECHO), np.float32(ECHO["fluid"]))
    echo_j = np.where(fluid_j, fluid_echo, echo_j)
    # the tongue: tissue mixed toward fluid (or, for anisotropy, toward no echo) in the log
    # domain by the drawn contrast; 1 = anechoic
    target = np.float32(ECHO["fluid"]) if scen.filling == "aniso" else fluid_echo
    contrast = np.float32(cleft["fluid_contrast"])
    mixed = tissue_j ** (np.float32(1.0) - contrast) * np.broadcast_to(target, jshape) ** contrast
    echo_j = np.where(tj, mixed, echo_j)
    amp[:, j0:j1, j2:j3] = np.sqrt(echo_j) * scat

    # --- anisotropy |cos|^k of the labrum and the capsule/tendon with the probe angle
    lab_k = drawn["labrum_anisotropy"]["k"]
    lab_off = drawn["labrum_anisotropy"]["offset_deg"] + hip["labrum_fiber_deg"]
    lab_gain = np.abs(np.cos(np.deg2rad(lab_off + tr.probe_tilt_deg))) ** lab_k
    sheet_gain = np.abs(np.cos(np.deg2rad(tr.probe_tilt_deg))) ** 4.0
    for mask, gains in ((maps.labrum, lab_gain), (maps.sheet, sheet_gain)):
        rows, cols = np.nonzero(mask)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        sub = amp[:, r0:r1, c0:c1]
        sub[:, mask[r0:r1, c0:c1]] *= np.sqrt(gains).astype(np.float32)[:, None]

    # --- warp (image pixel -> tissue point) and image formation
    idx = lookup_index(maps, tr, height, width, hip)
    iq = np.take(amp.ravel(), idx)
    imaging_p = drawn["imaging"]
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
    noise_iq = receiver_noise(rng, frames, height, width, imaging_p["noise_level"])
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
        "difficulty": level.to_json(),
        "anatomy": hip,
        "imaging": {**imaging_p, **psf_info, "focus_mm": float(focus_mm)},
        "motion": drawn["motion"],
        "labrum_anisotropy": drawn["labrum_anisotropy"],
        "cleft": cleft,
        "cleft_roi_px": _roi_px(maps.cleft_box, height, width),
        "overrides": {k: float(v) for k, v in overrides.items()},
        "traces": {
            "loading": _r(tr.loading),
            "loading_velocity": _r(tr.loading_velocity),
            "femur_rot_deg": _r(tr.femur_rot_deg),
            "femur_glide_mm": _r(tr.femur_glide_mm),
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


def _cleft_extent(scen: Scenario, tr: Any, cleft: dict[str, Any], frames: int) -> np.ndarray:
    """float32 (T,) extent of the cleft channel's tongue under the scenario's drive.

    Onsets, in strokes after the loading stroke starts: the positive ``lag``; a look-alike
    on the unloading stroke ``1 + lag``; a backward pocket, and fluid or a flicker that the
    probe squeezes in and out, their own ``pocket_onset`` (on the unloading stroke at easy,
    anywhere in the cycle at the harder levels: then only the way the fluid moves tells them
    from a positive).
    """
    clock, lag = tr.loading_clock, cleft["lag"]
    if scen.drive == "loading":
        return burst_extent(clock, lag, cleft)
    if scen.drive == "unloading":
        onset = cleft["pocket_onset"] if scen.packet == "reverse" else 1.0 + lag
        return burst_extent(clock, onset, cleft)
    if scen.drive == "probe":
        return burst_extent(clock, cleft["pocket_onset"], cleft)
    if scen.drive == "static":
        share = cleft["sulcus_fraction"] if scen.narrow else cleft["static_fraction"]
        return np.full(frames, share * cleft["extent_max"], np.float32)
    return np.zeros(frames, np.float32)


def _dynamic_box(maps: TissueMaps, effusion: bool) -> tuple[int, int, int, int]:
    """Reference-grid box (r0, r1, c0, c1) around the joint and cleft (and the effusion)."""
    hr, wr = maps.echo.shape
    b0, b1, b2, b3 = maps.cleft_box
    box = [max(b0 - 12, 0), min(b1 + 12, hr), max(b2 - 12, 0), min(b3 + 16, wr)]
    if effusion:
        rows, cols = np.nonzero(maps.recess_fluid)
        if rows.size:
            box = [
                min(box[0], int(rows.min())),
                max(box[1], int(rows.max()) + 1),
                min(box[2], int(cols.min())),
                max(box[3], int(cols.max()) + 1),
            ]
    return box[0], box[1], box[2], box[3]


def _specks(
    rng: np.random.Generator, shape: tuple[int, int, int], moving: np.ndarray, renew: float
) -> np.ndarray:
    """bool (T, H, W) sparse bright specks in fluid: where fluid moves, a share ``renew`` of
    the positions is redrawn every frame; elsewhere they stay put."""
    specks = np.empty(shape, bool)
    specks[0] = rng.random(shape[1:], dtype=np.float32) < SPECK_FRACTION
    if not moving.any():
        specks[1:] = specks[0]
        return specks
    fresh = rng.random(shape, dtype=np.float32) < SPECK_FRACTION
    redraw = moving & (rng.random(shape, dtype=np.float32) < renew)
    for t in range(1, shape[0]):
        specks[t] = np.where(redraw[t], fresh[t], specks[t - 1])
    return specks


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
