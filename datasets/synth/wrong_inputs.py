"""Wrong inputs from the generator: clips the product must refuse as "not assessable".

A scanner sends every cine of an exam (``docs/domain.md``, "Wrong inputs a clinic will
send"): other views of the hip, the probe lifted or without gel, rotated or flipped exports,
the hip held still, broken acquisitions and, at a musculoskeletal clinic, other joints. Only
the anterior oblique hip view during the manoeuvre can show the sign. These clips train and
test the input check; :data:`HELD_OUT_FAMILY` is never trained on (the honest
out-of-distribution figure).

Three ways a wrong input is made, all deterministic in ``seed``:

- from a valid clip (a patient ``draw_patient(seed)``, a clip type drawn from the seed,
  :func:`generate_clip`), then changed: ``rotated_90``, ``upside_down``, ``gel_gap``,
  ``saturated``, ``dropped_frames``, ``too_short``, ``no_manoeuvre``;
- other anatomy (:mod:`other_views`) moved and imaged by the hip generator's own chain:
  the same speckle, limb movement and probe nuisances (:func:`make_traces`,
  :func:`lookup_index`), PSF, depth gain, receiver noise and log compression
  (:func:`form_image`), with imaging drawn by :func:`draw_clip_params` at the level;
- no tissue at all: ``noise_only``, ``probe_lifted`` (through the same chain) and ``blank``.

A horizontally mirrored valid clip is no wrong input (a left hip is a mirrored right one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from PIL import Image
from PIL.Image import BILINEAR
from scipy import ndimage

from labral.datasets.synth.difficulty import Difficulty, load_difficulty
from labral.datasets.synth.generate import _validate, draw_patient, form_image, generate_clip
from labral.datasets.synth.motion import make_traces
from labral.datasets.synth.other_views import VIEW_RANGES, VIEWS, render_view
from labral.datasets.synth.params import draw_clip_params
from labral.datasets.synth.scenarios import CLIP_TYPES
from labral.datasets.synth.speckle import _evolving_speckle
from labral.datasets.synth.types import SynthClip
from labral.datasets.synth.warp import MARGIN, lookup_index
from labral.errors import BadConfigError

WRONG_INPUT_FAMILIES: dict[str, tuple[str, ...]] = {
    "other_view": ("transverse", "lateral_view", "posterior_view", "probe_off_target"),
    "probe_contact": ("probe_lifted", "gel_gap"),
    "orientation": ("rotated_90", "upside_down"),
    "no_manoeuvre": ("no_manoeuvre",),
    "image_fault": ("noise_only", "saturated", "blank", "dropped_frames", "too_short"),
    "other_joint": ("knee", "shoulder"),
}
#: The input check never trains on this family: its refusals are the honest OOD figure.
HELD_OUT_FAMILY = "other_joint"
#: Every kind, in family order.
WRONG_INPUT_KINDS: tuple[str, ...] = tuple(k for ks in WRONG_INPUT_FAMILIES.values() for k in ks)
#: Every kind outside :data:`HELD_OUT_FAMILY`.
TRAINING_KINDS: tuple[str, ...] = tuple(
    k for f, ks in WRONG_INPUT_FAMILIES.items() if f != HELD_OUT_FAMILY for k in ks
)
WRONG_INPUT_CLIP_TYPE = "wrong_input"
#: Clip types whose cleft never follows the loading clock: a hip held still shows no burst.
STILL_TYPES = ("normal", "sulcus", "frozen_twin")
_FAMILY = {kind: family for family, kinds in WRONG_INPUT_FAMILIES.items() for kind in kinds}


def family_of(kind: str) -> str:
    """The family of a wrong-input kind.

    Raises:
        BadConfigError: an unknown kind (the message lists the known ones).
    """
    if not isinstance(kind, str) or kind not in _FAMILY:
        raise BadConfigError(
            f"wrong_input={kind!r} is not a wrong-input kind; known kinds: "
            f"{', '.join(WRONG_INPUT_KINDS)}"
        )
    return _FAMILY[kind]


def generate_wrong_input(
    kind: str,
    seed: int,
    *,
    frames: int = 32,
    height: int = 128,
    width: int = 128,
    fps: float = 20.0,
    difficulty: str | dict[str, Any] | Difficulty | None = None,
) -> SynthClip:
    """Generate one wrong input.

    Args:
        kind: one of :data:`WRONG_INPUT_KINDS`.
        seed: the clip's seed (patient, clip type and every draw); same seed, same bytes.
        frames: T (``too_short`` gives 4-9 frames, under 0.6 s at 8 fps or more).
        height, width: frame size (rows = depth), 48..1024.
        fps: frame rate, 2..240.
        difficulty: the generator level for the clip's noise and nuisances (``None``: the
            default level).

    Returns:
        :class:`SynthClip`: frames uint8 (T, H, W), label 0, clip_type ``"wrong_input"``,
        extrusion_mask all False, no extrusion frames; params with ``wrong_input``,
        ``wrong_family``, ``seed``, ``frames``, ``fps``, ``size``, ``difficulty``, the probe
        set-up under ``anatomy``, and ``traces`` (per-frame movement, with ``shown_frame``)
        where the clip holds a movement.

    Raises:
        BadConfigError: unknown kind, bad seed, sizes, frames or fps, unknown level.
    """
    family = family_of(kind)
    _validate(draw_patient(seed), "normal", seed, frames, height, width, fps, "R", None)
    level = load_difficulty(difficulty)
    rng = np.random.default_rng([int(seed), WRONG_INPUT_KINDS.index(kind), 0x0B0D])
    job = _Job(kind, rng, int(seed), (int(frames), int(height), int(width)), float(fps), level)
    video, spacing, params = _MAKERS[kind](job)
    identity = {"wrong_input": kind, "wrong_family": family, "seed": int(seed)}
    size = {"frames": int(video.shape[0]), "fps": float(fps), "size": [height, width]}
    return SynthClip(
        frames=np.ascontiguousarray(video, dtype=np.uint8),
        label=0,
        clip_type=WRONG_INPUT_CLIP_TYPE,
        fps=float(fps),
        spacing_mm=(float(spacing[0]), float(spacing[1])),
        extrusion_mask=np.zeros(video.shape, bool),
        extrusion_frames=[],
        params={**identity, **size, "difficulty": level.to_json(), **params},
    )


Made = tuple[np.ndarray, tuple[float, float], dict[str, Any]]  # frames, spacing, params
Shape = tuple[int, int, int]  # (T, H, W)
#: The probe set-up the seed's patient gives a clip made without a hip (depth redrawn).
PROBE_KEYS = ("fov_mm", "depth_mm", "center_freq_mhz", "bandwidth_frac", "focus_frac")
PROBE_KEYS += ("f_number", "atten_db_cm_mhz")


class _Job(NamedTuple):
    """One wrong input to make: its kind, generator, seed, (T, H, W), fps and level."""

    kind: str
    rng: np.random.Generator
    seed: int
    shape: Shape
    fps: float
    level: Difficulty


def _valid(
    job: _Job, types: tuple[str, ...] = CLIP_TYPES, frames: int | None = None, **overrides: float
) -> tuple[SynthClip, Callable[[dict[str, float]], SynthClip]]:
    """A valid clip of the seed's patient (clip type and side drawn), and a function that
    renders it again with more overrides (every draw the same)."""
    clip_type, side = str(job.rng.choice(types)), str(job.rng.choice(["L", "R"]))
    size = {"frames": frames or job.shape[0], "height": job.shape[1], "width": job.shape[2]}
    fixed = {**size, "fps": job.fps, "side": side, "difficulty": job.level}

    def render(extra: dict[str, float]) -> SynthClip:
        both = {**overrides, **extra} or None
        return generate_clip(draw_patient(job.seed), clip_type, job.seed, overrides=both, **fixed)

    return render({}), render


def _passed_on(clip: SynthClip, **extra: Any) -> dict[str, Any]:
    """What a clip made from a valid clip records of it (its set-up and movement)."""
    source = {k: clip.params[k] for k in ("clip_type", "variant", "side", "overrides")}
    kept = {k: clip.params[k] for k in ("anatomy", "imaging", "motion", "traces")}
    return {"source": source, **kept, **extra}


def _orientation(job: _Job) -> Made:
    """``upside_down``: rows flipped; ``rotated_90``: a quarter turn, resized to (H, W)."""
    clip, _ = _valid(job)
    dz, dx = clip.spacing_mm
    if job.kind == "upside_down":
        return clip.frames[:, ::-1], (dz, dx), _passed_on(clip)
    turns = int(job.rng.choice([1, 3]))
    turned = np.rot90(clip.frames, turns, axes=(1, 2))
    height, width = job.shape[1:]
    if height != width:  # back to the scanner's frame size
        size = (width, height)
        turned = np.stack([np.asarray(Image.fromarray(f).resize(size, BILINEAR)) for f in turned])
    spacing = (dx * width / height, dz * height / width)
    return turned, spacing, _passed_on(clip, quarter_turns=turns)


def _saturated(job: _Job) -> Made:
    """The gain raised until a drawn share (40-70%) of the pixels clips at 255.

    Only the gain changes between renders (every draw and noise stay), so the gain that
    clips the share is read off the previous render's grey levels.
    """
    target = float(job.rng.uniform(0.4, 0.7))
    clip, render = _valid(job, gain_db=float(job.rng.uniform(10.0, 20.0)))
    gain, span = clip.params["imaging"]["gain_db"], clip.params["imaging"]["dynamic_range_db"]
    for _ in range(6):
        counts = np.bincount(clip.frames.ravel(), minlength=256)
        if counts[255] >= target * clip.frames.size:
            break
        # the grey level above which the target share lies; below the floor (grey 0) the
        # levels are unknown: lift by the whole range first
        grey = int(np.searchsorted(np.cumsum(counts), (1.0 - target) * clip.frames.size))
        gain += (256.0 - grey) * span / 255.0 if grey > 0 else span
        clip = render({"gain_db": gain})
    return clip.frames, clip.spacing_mm, _passed_on(clip, saturated_share=target)


def _dropped_frames(job: _Job) -> Made:
    """40-60% of the frames repeat the previous one, in runs of 2-6 (a freezing stream)."""
    clip, _ = _valid(job)
    frames = job.shape[0]
    wanted = int(round(job.rng.uniform(0.4, 0.6) * (frames - 1)))
    dropped = np.zeros(frames, bool)
    for _ in range(10 * frames):
        missing = wanted - int(dropped.sum())
        if missing <= 0:
            break
        start = int(job.rng.integers(1, frames))
        dropped[start : start + min(int(job.rng.integers(2, 7)), missing)] = True
    shown = np.arange(frames)
    for t in np.nonzero(dropped)[0]:
        shown[t] = shown[t - 1]
    params = _passed_on(clip, dropped_share=float(dropped.mean()))
    traces = dict(params["traces"])
    traces["shown_frame"] = [int(v) for v in np.asarray(traces["shown_frame"])[shown]]
    return clip.frames[shown], clip.spacing_mm, {**params, "traces": traces}


def _too_short(job: _Job) -> Made:
    """A valid clip of 4-9 frames: 0.2-0.6 s at 8 fps or more (4 frames below that)."""
    count = int(np.clip(round(job.rng.uniform(0.2, 0.6) * job.fps), 4, 9))
    clip, _ = _valid(job, frames=count)
    return clip.frames, clip.spacing_mm, _passed_on(clip)


def _no_manoeuvre(job: _Job) -> Made:
    """The hip held still (``manoeuvre=0``): the hand's drift and tremor only."""
    clip, _ = _valid(job, STILL_TYPES, manoeuvre=0.0)
    return clip.frames, clip.spacing_mm, _passed_on(clip)


def _gel_gap(job: _Job) -> Made:
    """25-60% of the columns on one side lose contact: near black, faint reverberations."""
    clip, _ = _valid(job)
    probe, imaging = clip.params["anatomy"], clip.params["imaging"]
    air = _air(job, probe, imaging, float(10 ** job.rng.uniform(-4.3, -3.3)))
    width = job.shape[2]
    band, ramp = float(job.rng.uniform(0.25, 0.6)) * width, float(job.rng.uniform(3.0, 10.0))
    cols = np.arange(width, dtype=np.float32)
    if job.rng.random() < 0.5:
        cols = cols[::-1]
    weight = np.clip((band - cols) / ramp + 0.5, 0.0, 1.0)[None, None, :]
    video = np.rint((1.0 - weight) * clip.frames + weight * air).astype(np.uint8)
    return video, clip.spacing_mm, _passed_on(clip, gap_share=round(band / width, 4))


def _still_index(shape: Shape) -> np.ndarray:
    """int (T, H, W) flat indices of every image pixel in a still (T, Hr, Wr) grid."""
    frames, height, width = shape
    ref_h, ref_w = height + 2 * MARGIN, width + 2 * MARGIN
    rows = np.arange(frames)[:, None, None] * ref_h + np.arange(height)[None, :, None] + MARGIN
    return (rows * ref_w + np.arange(width)[None, None, :] + MARGIN).astype(np.int64)


def _air(job: _Job, probe: dict[str, Any], imaging: dict[str, Any], strength: float) -> np.ndarray:
    """uint8 (T, H, W) the probe in air: lens reverberation lines at a fixed depth interval,
    fading with depth, receiver noise; nothing else. ``strength`` scales the lines."""
    rng, (frames, height, width) = job.rng, job.shape
    dz, dx = probe["depth_mm"] / height, probe["fov_mm"] / width
    z = (np.arange(height + 2 * MARGIN) - MARGIN + 0.5) * dz
    interval, fade_db_mm = float(rng.uniform(1.2, 3.0)), float(rng.uniform(1.5, 3.5))
    order = np.rint(z / interval)
    lines = (np.abs(z - order * interval) < 0.3) & (order >= 1)
    fade = 10.0 ** (-fade_db_mm * interval * (order - 1) / 10.0)
    echo = np.where(lines, 12.0 * strength * fade, 0.0)
    echo = np.where((z > 0) & (z < 0.5), 12.0 * strength, echo)  # the ring-down at the face
    x = (np.arange(width + 2 * MARGIN) - MARGIN + 0.5) * dx
    across = 1.0 + 0.15 * np.sin(x / rng.uniform(4.0, 10.0) + rng.uniform(0, 6))
    texture = 1.0 + 0.2 * rng.standard_normal((2, z.size, x.size), dtype=np.float32)
    flicker = 1.0 + 0.05 * rng.standard_normal(frames)
    amplitude = np.sqrt(echo[:, None] * across[None, :]) * (texture[0] + 0.2j * texture[1])
    amplitude = (flicker[:, None, None] * amplitude[None]).astype(np.complex64)
    gains, index = np.zeros(frames, np.float32), _still_index(job.shape)
    return form_image(rng, amplitude, index, (dz, dx), probe, gains, imaging).bmode


def _probe(job: _Job, depth: tuple[float, float] | None) -> dict[str, Any]:
    """The probe set-up of the seed's patient; ``depth`` redraws the image depth (mm)."""
    patient = draw_patient(job.seed)
    probe = {k: patient[k] for k in PROBE_KEYS}
    if depth is not None:
        probe["depth_mm"] = float(round(job.rng.uniform(*depth), 4))
    return probe


def _no_tissue(job: _Job) -> Made:
    """``probe_lifted`` (air), ``noise_only`` (fresh speckle every frame) or ``blank``."""
    rng, shape, probe = job.rng, job.shape, _probe(job, None)
    spacing = (probe["depth_mm"] / shape[1], probe["fov_mm"] / shape[2])
    imaging = draw_clip_params(rng, job.level, shape[0], job.fps, {})["imaging"]
    params = {"anatomy": probe, "imaging": imaging}
    if job.kind == "blank":
        mean = float(rng.uniform(0.3, 2.0))
        video = np.clip(np.rint(mean + rng.normal(0.0, 0.6, shape)), 0, 4).astype(np.uint8)
        return video, spacing, params
    if job.kind == "probe_lifted":
        return _air(job, probe, imaging, float(rng.uniform(0.3, 1.0))), spacing, params
    grid = (shape[0], shape[1] + 2 * MARGIN, shape[2] + 2 * MARGIN)
    parts = rng.standard_normal((2, *grid), dtype=np.float32)
    level = np.float32(np.sqrt(rng.uniform(0.02, 0.3)))
    amplitude = (level * (parts[0] + 1j * parts[1])).astype(np.complex64)
    gains = np.zeros(shape[0], np.float32)
    image = form_image(rng, amplitude, _still_index(shape), spacing, probe, gains, imaging)
    return image.bmode, spacing, params


def _view(job: _Job) -> Made:
    """Other anatomy (:mod:`other_views`) under a limb movement, imaged like a hip clip."""
    rng, (frames, height, width), ranges = job.rng, job.shape, VIEW_RANGES[job.kind]
    probe = _probe(job, ranges["depth_mm"])
    drawn = draw_clip_params(rng, job.level, frames, job.fps, {})
    motion = dict(drawn["motion"])
    motion["femur_rot_deg"] = float(rng.uniform(*ranges["rot_deg"]))
    motion["femur_glide_mm"] = float(rng.uniform(*ranges["glide_mm"]))
    maps = render_view(job.kind, probe, rng, height, width, MARGIN)
    traces = make_traces(motion, frames, job.fps, rng)
    # static speckle, decorrelating where tissue is strained: along the planes where layers
    # that follow the bone by different amounts slide on each other (~1 mm either side)
    static = rng.standard_normal((2, *maps.echo.shape), dtype=np.float32)
    sliding = np.hypot(*np.gradient(maps.moves)) > 0.02
    strained = ndimage.binary_dilation(sliding, iterations=2) & (maps.moves < 1.0)
    speed = np.abs(traces.loading_velocity)[:, None, None]
    rho = np.where(strained[None], 1.0 - 0.35 * speed, 1.0).astype(np.float32)
    amplitude = np.sqrt(maps.echo)[None] * _evolving_speckle(rng, static, rho)
    index = lookup_index(maps, traces, height, width, probe)
    spacing = (maps.dz, maps.dx)
    image = form_image(rng, amplitude, index, spacing, probe, traces.gain_db, drawn["imaging"])
    names = ("loading", "loading_velocity", "femur_rot_deg", "femur_glide_mm", "probe_tilt_deg")
    recorded = {n: [round(float(v), 4) for v in getattr(traces, n)] for n in (*names, "gain_db")}
    params = {
        "anatomy": {**probe, **maps.sizes},
        "imaging": {**drawn["imaging"], **image.psf_info, "focus_mm": float(image.focus_mm)},
        "motion": motion,
        "traces": {**recorded, "shown_frame": [int(v) for v in traces.shown_frame]},
    }
    return image.bmode[traces.shown_frame], spacing, params


_MAKERS: dict[str, Callable[[_Job], Made]] = {
    **{view: _view for view in VIEWS},
    **{kind: _no_tissue for kind in ("probe_lifted", "noise_only", "blank")},
    **{kind: _orientation for kind in ("rotated_90", "upside_down")},
    "gel_gap": _gel_gap,
    "no_manoeuvre": _no_manoeuvre,
    "saturated": _saturated,
    "dropped_frames": _dropped_frames,
    "too_short": _too_short,
}
assert set(_MAKERS) == set(WRONG_INPUT_KINDS), "every kind needs a maker"
