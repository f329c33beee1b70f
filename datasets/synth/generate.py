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
from typing import Any, NamedTuple

import numpy as np

from labral.datasets.synth import imaging
from labral.datasets.synth.anatomy import TissueMaps, draw_anatomy, hip_anatomy, render_tissue
from labral.datasets.synth.difficulty import Difficulty, load_difficulty
from labral.datasets.synth.motion import MotionTraces, burst_extent, make_traces, packet_bounds
from labral.datasets.synth.params import CLIP_KEYS, clip_rng, draw_clip_params
from labral.datasets.synth.scenarios import CLIP_TYPES, Scenario, pick_scenario
from labral.datasets.synth.speckle import scatterer_amplitude
from labral.datasets.synth.types import POSITIVE_TYPE, SynthClip
from labral.datasets.synth.warp import MARGIN, lookup_index, receiver_noise
from labral.errors import BadConfigError

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
    _check_seed(seed)
    return draw_anatomy(int(seed))


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BadConfigError(f"seed must be a non-negative integer, got {seed!r}")


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
    _check_seed(seed)
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
        for key in ("noise_level", "probe_motion", "manoeuvre"):
            if overrides.get(key, 0.0) < 0:
                raise BadConfigError(f"overrides[{key!r}] must be >= 0, got {overrides[key]}")


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
            ``tgc_error``, ``probe_motion`` (a multiplier on all probe-motion amplitudes),
            ``manoeuvre`` (a multiplier on the femur's rotation and glide and the rocking
            they give the probe, applied after every draw: 0 = the hip stays still, the
            hand's drift and tremor remain; below 1 the tissue strain it drives shrinks too).
        difficulty: a level name (``"easy"`` .. ``"expert"``), a mapping of knobs, or a
            checked :class:`Difficulty`; ``None`` = the default level
            (:data:`labral.datasets.synth.difficulty.DEFAULT_LEVEL`).

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
    scenario, variant = pick_scenario(clip_type, drawn["cleft"]["variant_draw"])
    traces = _movement(drawn["motion"], frames, fps, rng)
    maps = _cached_tissue(json.dumps(hip, sort_keys=True), height, width)
    extent = _cleft_extent(scenario, traces, drawn["cleft"], frames)
    if clip_type == POSITIVE_TYPE and not (extent[traces.shown_frame] > MIN_EXTENT).any():
        # the clip ends before the burst comes: it shows a detached hip without extrusion
        clip_type, variant = "normal", "burst_outside_clip"
    tongue = _tongue(maps, scenario, drawn["cleft"], extent)
    amplitude = scatterer_amplitude(rng, maps, hip, traces, scenario, drawn["cleft"], tongue)
    _apply_anisotropy(amplitude, maps, hip, traces, drawn["labrum_anisotropy"])
    warp_index = lookup_index(maps, traces, height, width, hip)  # (T, H, W) grid index
    spacing = (maps.dz, maps.dx)
    image = form_image(rng, amplitude, warp_index, spacing, hip, traces.gain_db, drawn["imaging"])
    label = int(clip_type == POSITIVE_TYPE)
    bmode, mask, extrusion_frames = _shown_frames(image, tongue, maps, warp_index, traces, label)
    identity = {"clip_type": clip_type, "variant": variant, "seed": int(seed), "side": side}
    shape = {"frames": int(frames), "fps": float(fps), "size": [int(height), int(width)]}
    drawn_params = _drawn_params(level, hip, drawn, overrides, maps, image, traces, extent)
    params = {**identity, **shape, **drawn_params}
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


def _movement(
    motion: dict[str, Any], frames: int, fps: float, rng: np.random.Generator
) -> MotionTraces:
    """The clip's traces; a smaller manoeuvre (``motion["manoeuvre"]`` < 1) also strains the
    tissue less, so the loading velocity that decorrelates speckle shrinks with it."""
    traces = make_traces(motion, frames, fps, rng)
    if motion["manoeuvre"] < 1.0:
        traces.loading_velocity = traces.loading_velocity * np.float32(motion["manoeuvre"])
    return traces


def _shown_frames(
    image: FormedImage,
    tongue: np.ndarray,
    maps: TissueMaps,
    warp_index: np.ndarray,
    traces: MotionTraces,
    label: int,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The frames shown (dropped ones repeat the previous): uint8 B-mode (T, H, W), the bool
    extrusion mask (T, H, W) (all False for a negative) and the frames that hold extrusion."""
    mask = _extrusion_mask(tongue, maps, warp_index) if label else np.zeros_like(image.bmode, bool)
    bmode, mask = image.bmode[traces.shown_frame], mask[traces.shown_frame]
    return bmode, mask, [int(t) for t in np.nonzero(mask.any(axis=(1, 2)))[0]]


def _tongue(
    maps: TissueMaps, scenario: Scenario, cleft: dict[str, Any], extent: np.ndarray
) -> np.ndarray:
    """bool (T, h, w) fluid tongue inside the cleft box (``maps.cleft_box``) on every frame:
    the part of the cleft channel (narrowed by the drawn width) between the packet bounds
    that the frame's ``extent`` (float32 (T,)) reaches."""
    top, bottom, left, right = maps.cleft_box
    channel_s = maps.cleft_s[top:bottom, left:right]
    inside = np.isfinite(channel_s)
    inside &= _narrow(inside, 0.55 if scenario.narrow else cleft["width_scale"])
    s_safe = np.where(inside, channel_s, np.inf)
    lo, hi = packet_bounds(extent, scenario.packet)
    return (
        (s_safe[None] <= hi[:, None, None])
        & (s_safe[None] >= lo[:, None, None])
        & (extent[:, None, None] > MIN_EXTENT)
    )


def _apply_anisotropy(
    amplitude: np.ndarray,
    maps: TissueMaps,
    hip: dict[str, Any],
    traces: MotionTraces,
    labrum_anisotropy: dict[str, float],
) -> None:
    """Scale, in place, the complex amplitude (T, Hr, Wr) of the labrum and of the
    capsule/tendon sheet by ``|cos|^k`` of their fibre angle to the beam on every frame."""
    fibre_offset = labrum_anisotropy["offset_deg"] + hip["labrum_fiber_deg"]
    labrum_gain = (
        np.abs(np.cos(np.deg2rad(fibre_offset + traces.probe_tilt_deg))) ** labrum_anisotropy["k"]
    )
    sheet_gain = np.abs(np.cos(np.deg2rad(traces.probe_tilt_deg))) ** 4.0
    for mask, gains in ((maps.labrum, labrum_gain), (maps.sheet, sheet_gain)):
        rows, cols = np.nonzero(mask)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        sub = amplitude[:, r0:r1, c0:c1]
        sub[:, mask[r0:r1, c0:c1]] *= np.sqrt(gains).astype(np.float32)[:, None]


class FormedImage(NamedTuple):
    """A formed B-mode clip before dropped frames are repeated."""

    bmode: np.ndarray  # uint8 (T, H, W)
    frame_gain_db: np.ndarray  # float (T,) overall gain of every frame
    psf_info: dict[str, float]  # what the point spread function was made of
    focus_mm: float


def form_image(
    rng: np.random.Generator,
    amplitude: np.ndarray,
    warp_index: np.ndarray,
    spacing: tuple[float, float],
    probe: dict[str, Any],
    gain_changes_db: np.ndarray,
    imaging_params: dict[str, Any],
) -> FormedImage:
    """The imaging chain: warp the complex amplitude (T, Hr, Wr) to the image by
    ``warp_index`` (flat reference indices, (T, H, W)), then PSF, depth gain, receiver
    noise, log compression.

    Args:
        rng: the clip's generator (receiver noise).
        spacing: (dz, dx) pixel size in mm.
        probe: the probe set-up (``center_freq_mhz``, ``bandwidth_frac``, ``focus_frac``,
            ``depth_mm``, ``f_number``, ``atten_db_cm_mhz``), e.g. the hip's anatomy.
        gain_changes_db: float32 (T,) per-frame gain changes (``MotionTraces.gain_db``).
        imaging_params: the ``"imaging"`` part of ``draw_clip_params``.
    """
    frames, height, width = warp_index.shape
    dz, dx = spacing
    iq = np.take(amplitude.ravel(), warp_index)
    focus_mm = probe["focus_frac"] * probe["depth_mm"]
    axial, lateral, psf_info = imaging.psf_kernels(
        height,
        dz,
        dx,
        width,
        probe["center_freq_mhz"],
        probe["bandwidth_frac"],
        focus_mm,
        probe["f_number"],
    )
    row_gain = imaging.depth_gain(
        height,
        dz,
        probe["center_freq_mhz"],
        probe["atten_db_cm_mhz"],
        imaging_params["tgc_error"],
        imaging_params["tgc_wobble_db"],
        imaging_params["tgc_wobble_phase"],
    )
    iq = imaging.convolve_psf(iq, axial, lateral * row_gain)
    noise_iq = receiver_noise(rng, frames, height, width, imaging_params["noise_level"])
    frame_gain_db = imaging_params["gain_db"] + gain_changes_db
    for t in range(frames):
        iq[t] += noise_iq[t]
    bmode = imaging.log_compress(iq, frame_gain_db, imaging_params["dynamic_range_db"])
    return FormedImage(bmode, frame_gain_db, psf_info, focus_mm)


def _extrusion_mask(tongue: np.ndarray, maps: TissueMaps, warp_index: np.ndarray) -> np.ndarray:
    """bool (T, H, W): the tongue (T, h, w, inside the cleft box) seen through the warp."""
    top, bottom, left, right = maps.cleft_box
    tongue_on_grid = np.zeros((tongue.shape[0], *maps.echo.shape), bool)
    tongue_on_grid[:, top:bottom, left:right] = tongue
    return np.take(tongue_on_grid.ravel(), warp_index)


def _drawn_params(
    level: Difficulty,
    hip: dict[str, Any],
    drawn: dict[str, Any],
    overrides: dict[str, Any],
    maps: TissueMaps,
    image: FormedImage,
    traces: MotionTraces,
    extent: np.ndarray,
) -> dict[str, Any]:
    """What a clip was drawn and rendered from, in its params (JSON-ready)."""
    height, width = image.bmode.shape[1:]
    return {
        "difficulty": level.to_json(),
        "anatomy": hip,
        "imaging": {**drawn["imaging"], **image.psf_info, "focus_mm": float(image.focus_mm)},
        "motion": drawn["motion"],
        "labrum_anisotropy": drawn["labrum_anisotropy"],
        "cleft": drawn["cleft"],
        "cleft_roi_px": _roi_px(maps.cleft_box, height, width),
        "overrides": {k: float(v) for k, v in overrides.items()},
        "traces": _trace_params(traces, extent, image.frame_gain_db),
    }


def _trace_params(
    traces: MotionTraces, extent: np.ndarray, frame_gain_db: np.ndarray
) -> dict[str, list]:
    """The per-frame traces recorded in a clip's params (rounded, JSON-ready)."""
    return {
        "loading": _r(traces.loading),
        "loading_velocity": _r(traces.loading_velocity),
        "femur_rot_deg": _r(traces.femur_rot_deg),
        "femur_glide_mm": _r(traces.femur_glide_mm),
        "probe_tilt_deg": _r(traces.probe_tilt_deg),
        "cleft_extent": _r(extent),
        "gain_db": _r(frame_gain_db),
        "shown_frame": [int(v) for v in traces.shown_frame],
    }


def _cleft_extent(
    scenario: Scenario, traces: MotionTraces, cleft: dict[str, Any], frames: int
) -> np.ndarray:
    """float32 (T,) extent of the cleft channel's tongue under the scenario's drive.

    Onsets, in strokes after the loading stroke starts: the positive ``lag``; a look-alike
    on the unloading stroke ``1 + lag``; a backward pocket, and fluid or a flicker that the
    probe squeezes in and out, their own ``pocket_onset`` (on the unloading stroke at easy,
    anywhere in the cycle at the harder levels: then only the way the fluid moves tells them
    from a positive).
    """
    clock, lag = traces.loading_clock, cleft["lag"]
    if scenario.drive == "loading":
        return burst_extent(clock, lag, cleft)
    if scenario.drive == "unloading":
        onset = cleft["pocket_onset"] if scenario.packet == "reverse" else 1.0 + lag
        return burst_extent(clock, onset, cleft)
    if scenario.drive == "probe":
        return burst_extent(clock, cleft["pocket_onset"], cleft)
    if scenario.drive == "static":
        share = cleft["sulcus_fraction"] if scenario.narrow else cleft["static_fraction"]
        return np.full(frames, share * cleft["extent_max"], np.float32)
    return np.zeros(frames, np.float32)


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
