"""Echo maps of the anatomy a clinic sends besides the anterior oblique hip view.

Each view is painted like :func:`labral.datasets.synth.anatomy.render_tissue` paints the hip:
backscatter power (the tissue levels of ``anatomy.ECHO``) on the reference grid (the image
plus ``warp.MARGIN`` pixels on every side) from millimetre geometry drawn per clip, with a
``moves`` map saying how much each point follows the moving bone (1 bone, less for soft
tissue dragged along, little for the subcutaneous fat). The clip is then moved and imaged by
the hip generator's own functions (:mod:`labral.datasets.synth.wrong_inputs`).

Views (rows = depth from the skin ``z`` in mm, columns = lateral position ``x`` in mm):

- ``transverse``: the femoral head in cross-section, a round bone arc with its shadow,
  centred, the iliopsoas tendon oval above it, often the femoral vessels beside it;
- ``lateral_view``: the greater trochanter, an angled bone facet across most of the width at
  mid depth under thick fibrillar gluteal tendons and the iliotibial band;
- ``posterior_view``: thick gluteal muscle over a deep bone line (ischium / posterior
  acetabulum);
- ``probe_off_target``: fat, septa, fascia and striated muscle, no bone in the field;
- ``knee``: anterior suprapatellar knee, a thick quadriceps tendon, fat pads and a flat
  femoral cortex across the width (sometimes the patella's upper pole at one side);
- ``shoulder``: deltoid over the supraspinatus tendon over a convex humeral head cortex.

None has an acetabular rim or a labrum.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from labral.datasets.synth.anatomy import ECHO, _reference_grid

#: Per view: image depth (mm), bone rotation amplitude (degrees) and glide toward the
#: probe (mm) of the limb movement, ranges drawn per clip.
VIEW_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "transverse": {"depth_mm": (40.0, 52.0), "rot_deg": (2.0, 5.0), "glide_mm": (0.5, 1.5)},
    "lateral_view": {"depth_mm": (40.0, 55.0), "rot_deg": (2.0, 5.0), "glide_mm": (0.3, 1.2)},
    "posterior_view": {"depth_mm": (50.0, 65.0), "rot_deg": (1.0, 3.0), "glide_mm": (0.3, 1.0)},
    "probe_off_target": {"depth_mm": (30.0, 45.0), "rot_deg": (2.0, 5.0), "glide_mm": (0.5, 1.5)},
    "knee": {"depth_mm": (28.0, 40.0), "rot_deg": (2.0, 5.0), "glide_mm": (0.2, 0.8)},
    "shoulder": {"depth_mm": (28.0, 40.0), "rot_deg": (4.0, 10.0), "glide_mm": (0.2, 0.8)},
}
VIEWS = tuple(VIEW_RANGES)

#: ``draw(name, low, high)``: a size drawn uniformly and recorded under ``name``.
Draw = Callable[[str, float, float], float]
#: What a painter returns: echo and moves (Hr, Wr), the (x, z) mm the probe keeps in view and
#: the (x, z) mm the bone rotates about.
Painted = tuple[np.ndarray, np.ndarray, tuple[float, float], tuple[float, float]]


class _Field(NamedTuple):
    """The reference grid a painter paints on and its draws."""

    z: np.ndarray  # float (Hr, Wr) depth of every point, mm
    x: np.ndarray  # float (Hr, Wr) lateral position, mm
    depth: float  # image depth, mm
    fov: float  # image width, mm
    draw: Draw
    rng: np.random.Generator  # texture draws


class ViewMaps(NamedTuple):
    """Reference-grid maps of one view (float32 arrays of shape (Hr, Wr)).

    Attributes:
        echo: backscatter power of every tissue.
        moves: 0..1, how much each point follows the moving bone.
        dz, dx: pixel size in mm (rows, columns).
        cleft_box: (r0, r1, c0, c1) reference-grid box the sonographer keeps in view: the
            probe rocks about its centre (the name :func:`warp.lookup_index` reads).
        pivot_mm: (x, z) image millimetres the bone rotates about.
        sizes: the drawn geometry (mm, degrees; JSON-ready).
    """

    echo: np.ndarray
    moves: np.ndarray
    dz: float
    dx: float
    cleft_box: tuple[int, int, int, int]
    pivot_mm: tuple[float, float]
    sizes: dict[str, float]


def render_view(
    view: str, probe: dict[str, Any], rng: np.random.Generator, height: int, width: int, margin: int
) -> ViewMaps:
    """Draw one view's geometry and paint its maps.

    Args:
        view: one of :data:`VIEWS`.
        probe: the probe set-up with ``depth_mm`` and ``fov_mm`` (mm).
        rng: the clip's generator (sizes, then texture).
        height, width: image size in pixels; margin: reference-grid margin in pixels.

    Returns:
        :class:`ViewMaps` of shape (height + 2 margin, width + 2 margin).
    """
    sizes: dict[str, float] = {}

    def draw(name: str, low: float, high: float) -> float:
        sizes[name] = float(round(rng.uniform(low, high), 4))
        return sizes[name]

    grid = _reference_grid(probe, height, width, margin)
    z, x = grid.z, grid.x
    field = _Field(z, x, float(probe["depth_mm"]), float(probe["fov_mm"]), draw, rng)
    echo, moves, focus, pivot = _PAINTERS[view](field)
    echo[z < 0.25] = ECHO["septum"]  # skin line
    row = int(np.clip(focus[1] / grid.dz + margin, 4, z.shape[0] - 5))
    col = int(np.clip(focus[0] / grid.dx + margin, 4, z.shape[1] - 5))
    return ViewMaps(
        echo=echo.astype(np.float32),
        moves=np.clip(moves, 0.0, 1.0).astype(np.float32),
        dz=float(grid.dz),
        dx=float(grid.dx),
        cleft_box=(row - 3, row + 4, col - 3, col + 4),
        pivot_mm=(float(pivot[0]), float(pivot[1])),
        sizes=sizes,
    )


def _striated(f: _Field, fibre_deg: float) -> np.ndarray:
    """float32 (Hr, Wr) muscle in long axis: fascicle stripes at ``fibre_deg`` (as the hip's)."""
    phase = f.z + f.x * np.tan(np.deg2rad(fibre_deg))
    stripes = 0.55 + 0.45 * np.cos(2 * np.pi * phase / f.rng.uniform(0.9, 1.4))
    return (ECHO["muscle"] * stripes).astype(np.float32)


def _septa(f: _Field, echo: np.ndarray, where: np.ndarray) -> None:
    """Paint perimysial septa (bright oblique lines every few mm) into the muscle ``where``."""
    slope, period = np.tan(np.deg2rad(f.rng.uniform(-25, 25))), f.rng.uniform(5.0, 10.0)
    phase = np.mod(f.z + f.x * slope + f.rng.uniform(0, period), period)
    echo[where & (phase < 0.3)] = 0.7 * ECHO["septum"]


def _fibrillar(f: _Field, across: np.ndarray, level: float) -> np.ndarray:
    """float32 (Hr, Wr) tendon: bright parallel fibrils; ``across`` (mm) runs across them."""
    across = np.where(np.isfinite(across), across, 0.0)
    stripes = 0.65 + 0.35 * np.cos(2 * np.pi * across / f.rng.uniform(0.5, 0.8))
    return (level * stripes).astype(np.float32)


def _mottled(f: _Field, level: float) -> np.ndarray:
    """float32 (Hr, Wr) fat pad or muscle in short axis: mottled, with bright dots."""
    mottle = level * f.rng.uniform(0.4, 1.6, f.z.shape)
    return np.where(f.rng.random(f.z.shape) < 0.03, ECHO["septum"], mottle).astype(np.float32)


def _subcutis(f: _Field, echo: np.ndarray, fat_mm: float) -> np.ndarray:
    """Paint fat with septa down to a wavy fascia; returns the fat's bool mask (Hr, Wr)."""
    z, x, rng = f.z, f.x, f.rng
    bottom = fat_mm + 0.4 * np.sin(x / rng.uniform(6.0, 12.0) + rng.uniform(0, 6))
    fat = z < bottom
    echo[fat] = ECHO["fat"]
    for _ in range(int(rng.integers(2, 5))):
        z0, tilt = rng.uniform(1.0, max(fat_mm - 0.5, 1.2)), rng.uniform(-0.15, 0.15)
        echo[fat & (np.abs(z - z0 - tilt * (x - 20.0)) < 0.25)] = ECHO["septum"]
    echo[np.abs(z - bottom) < 0.3] = ECHO["fascia"]
    return fat


def _bone(echo: np.ndarray, z: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """Paint a bone whose surface lies at depth ``surface`` (Hr, Wr) mm (inf: no bone there):
    the bright cortex line and the shadow under it. Returns the bool bone mask."""
    bone = z > surface - 0.4
    echo[bone] = ECHO["bone_shadow"]
    echo[np.abs(z - surface) < 0.4] = ECHO["bone_surface"]
    return bone


def _arc(x: np.ndarray, xc: float, zc: float, radius: float) -> np.ndarray:
    """float (Hr, Wr) depth of the top of a circle above every ``x`` (inf beside it)."""
    half = np.sqrt(np.clip(radius**2 - (x - xc) ** 2, 0.0, None))
    return np.where(np.abs(x - xc) < radius, zc - half, np.inf)


def _band(z: np.ndarray, top: np.ndarray, thickness: float | np.ndarray) -> np.ndarray:
    """bool (Hr, Wr): ``top <= z < top + thickness``."""
    return (z >= top) & (z < top + thickness)


def _transverse(f: _Field) -> Painted:
    """The femoral head in cross-section under the iliopsoas; no rim, no labrum."""
    z, x, fov, draw = f.z, f.x, f.fov, f.draw
    echo = _mottled(f, ECHO["muscle"])
    fat_mm = draw("fat_mm", 3.0, 9.0)
    fat = _subcutis(f, echo, fat_mm)
    z_capsule = fat_mm + draw("muscle_mm", 9.0, 15.0)
    radius, xc = draw("head_radius_mm", 20.0, 26.0), fov * draw("head_x_frac", 0.45, 0.55)
    cap, cart = draw("capsule_mm", 1.5, 3.0), draw("cartilage_mm", 1.5, 2.5)
    zc = z_capsule + cap + cart + radius
    surface = _arc(x, xc, zc, radius)
    echo[_band(z, surface - cart - cap, cap)] = ECHO["capsule"]
    echo[_band(z, surface - cart, cart)] = ECHO["cartilage"]
    oval = ((x - xc - draw("tendon_dx_mm", -4.0, 4.0)) / draw("tendon_w_mm", 3.5, 6.0)) ** 2
    oval = oval + ((z - z_capsule + 2.6) / draw("tendon_h_mm", 1.8, 2.6)) ** 2 < 1.0
    echo[oval] = _mottled(f, ECHO["tendon"])[oval]
    if f.rng.random() < 0.6:  # the femoral vessels beside the head: anechoic, bright walls
        vx = xc + f.rng.choice([-1.0, 1.0]) * draw("vessel_dx_mm", 11.0, 15.0)
        vz, vr = z_capsule - draw("vessel_up_mm", 3.0, 6.0), draw("vessel_r_mm", 2.5, 4.0)
        ring = np.hypot(x - vx, z - vz)
        echo[np.abs(ring - vr) < 0.35] = ECHO["fascia"]
        echo[ring < vr - 0.35] = ECHO["fluid"]
    bone = _bone(echo, z, surface)
    moves = np.where(fat, 0.1, np.where(z > surface - cart - cap - 4.0, 0.5, 0.25))
    moves = np.where(bone | (z > surface - cart), 1.0, moves)
    return echo, moves, (xc, z_capsule), (xc, zc + 20.0)


def _lateral(f: _Field) -> Painted:
    """The greater trochanter: an angled facet under the gluteal tendons and the ITB."""
    z, x, depth, fov, draw = f.z, f.x, f.depth, f.fov, f.draw
    echo = _striated(f, draw("fibre_deg", -25.0, 25.0))  # gluteus medius belly
    fat_mm = draw("fat_mm", 4.0, 12.0)
    fat = _subcutis(f, echo, fat_mm)
    itb_top = fat_mm + 0.3 + np.tan(np.deg2rad(draw("itb_tilt_deg", -4.0, 4.0))) * (x - fov / 2)
    itb = _band(z, itb_top, draw("itb_mm", 1.5, 2.5))
    echo[itb] = _fibrillar(f, z - itb_top, 1.2 * ECHO["tendon"])[itb]
    # the facet rises toward the apex, then falls away beyond it (smoothly, over ~2 mm)
    side = float(f.rng.choice([-1.0, 1.0]))
    u = side * (x - fov / 2)
    u_apex, width = fov * draw("apex_frac", 0.25, 0.4), 2.0
    rise, fall = np.tan(np.deg2rad(draw("facet_deg", 10.0, 25.0))), np.tan(np.deg2rad(30.0))
    z_mid = max(depth * draw("facet_depth_frac", 0.45, 0.6), fat_mm + 12.0)
    knee = width * np.logaddexp(0.0, (u - u_apex) / width)
    surface = z_mid - rise * u + (rise + fall) * knee
    minimus, medius = draw("minimus_mm", 2.0, 4.0), draw("medius_mm", 3.0, 5.0)
    tendons = _band(z, surface - 0.4 - minimus - medius, minimus + medius)
    echo[tendons] = _fibrillar(f, z - surface, ECHO["tendon"])[tendons]
    echo[np.abs(z - (surface - 0.4 - minimus)) < 0.25] = ECHO["fascia"]
    bone = _bone(echo, z, surface)
    moves = np.where(fat, 0.1, np.where(itb, 0.2, 0.4))
    moves = np.where(tendons, 0.8, np.where(bone, 1.0, moves))
    focus_x = fov / 2 + side * u_apex * 0.5
    return echo, moves, (focus_x, z_mid - medius), (fov / 2, z_mid + 30.0)


def _posterior(f: _Field) -> Painted:
    """Thick gluteus maximus over deep rotators and the ischium's bone line."""
    z, x, depth, fov, draw = f.z, f.x, f.depth, f.fov, f.draw
    echo = _striated(f, draw("fibre_deg", -20.0, 20.0))
    fat_mm = draw("fat_mm", 5.0, 14.0)
    muscle = ~_subcutis(f, echo, fat_mm)
    _septa(f, echo, muscle & (z > fat_mm + 1.0))
    z_bone = depth * draw("bone_depth_frac", 0.72, 0.85)
    curve = draw("bone_radius_mm", 40.0, 90.0)
    surface = z_bone + (x - fov * draw("bone_x_frac", 0.3, 0.7)) ** 2 / (2 * curve)
    surface = surface + np.tan(np.deg2rad(draw("bone_tilt_deg", -8.0, 8.0))) * (x - fov / 2)
    z_fascia = min(fat_mm + draw("gluteus_mm", 18.0, 28.0), z_bone - draw("deep_mm", 4.0, 9.0))
    deep = z > z_fascia
    echo[deep] = _striated(f, draw("deep_fibre_deg", -10.0, 10.0))[deep]
    echo[np.abs(z - z_fascia) < 0.35] = ECHO["fascia"]
    bone = _bone(echo, z, surface)
    moves = np.where(muscle, np.where(deep, 0.7, 0.4), 0.1)
    moves = np.where(bone, 1.0, moves)
    return echo, moves, (fov / 2, z_fascia), (fov / 2, z_bone + 25.0)


def _off_target(f: _Field) -> Painted:
    """Soft tissue only: fat, septa, two muscles and the fascia between them; no bone."""
    z, x, depth, fov, draw = f.z, f.x, f.depth, f.fov, f.draw
    echo = _striated(f, draw("fibre_deg", -15.0, 15.0))
    fat_mm = draw("fat_mm", 4.0, 15.0)
    muscle = ~_subcutis(f, echo, fat_mm)
    tilt = np.tan(np.deg2rad(draw("fascia_tilt_deg", -8.0, 8.0)))
    z_fascia = min(fat_mm + draw("muscle_mm", 8.0, 15.0), depth - 6.0) + tilt * (x - fov / 2)
    deep = z > z_fascia
    echo[deep] = _striated(f, draw("deep_fibre_deg", -25.0, 25.0))[deep]
    _septa(f, echo, deep)
    echo[np.abs(z - z_fascia) < draw("fascia_half_mm", 0.3, 0.6)] = ECHO["fascia"]
    moves = np.where(muscle, np.where(deep, 0.8, 0.4), 0.1)
    return echo, moves, (fov / 2, float(np.mean(z_fascia))), (fov / 2, depth + 30.0)


def _knee(f: _Field) -> Painted:
    """Anterior suprapatellar knee: quadriceps tendon, fat pads, flat femoral cortex."""
    z, x, depth, fov, draw = f.z, f.x, f.depth, f.fov, f.draw
    echo = _mottled(f, 1.5 * ECHO["fat"])  # fat pads
    fat_mm = draw("fat_mm", 2.0, 6.0)
    fat = _subcutis(f, echo, fat_mm)
    tendon_top = (
        fat_mm + 0.5 + np.tan(np.deg2rad(draw("tendon_tilt_deg", -6.0, 6.0))) * (x - fov / 2)
    )
    tendon_mm = draw("tendon_mm", 5.0, 8.0)
    tendon = _band(z, tendon_top, tendon_mm)
    echo[tendon] = _fibrillar(f, z - tendon_top, 1.2 * ECHO["tendon"])[tendon]
    z_recess = tendon_top + tendon_mm + draw("fat_pad_mm", 2.0, 5.0)
    recess = _band(z, z_recess, draw("recess_mm", 0.3, 1.5))
    echo[recess] = ECHO["fluid"]
    echo[np.abs(z - z_recess) < 0.25] = ECHO["fascia"]
    z_cortex = z_recess + draw("prefemoral_mm", 2.0, 5.0) + 1.5
    cortex = np.minimum(z_cortex, depth * 0.8) + draw("cortex_tilt", -0.05, 0.05) * (x - fov / 2)
    surface = cortex.copy()
    if f.rng.random() < 0.5:  # the patella's upper pole at one side, where the tendon inserts
        radius, side = draw("pole_radius_mm", 5.0, 9.0), float(f.rng.choice([-1.0, 1.0]))
        centre_x = fov / 2 + side * (fov * draw("pole_frac", 0.2, 0.35) + radius)
        top = np.mean(tendon_top) + 1.5
        beyond = side * (x - centre_x) >= 0
        patella = np.where(beyond, top, _arc(x, centre_x, top + radius, radius))
        surface = np.minimum(patella, cortex)
    bone = _bone(echo, z, surface)
    moves = np.where(fat, 0.1, np.where(tendon, 1.0, np.where(z < z_cortex, 0.6, 0.3)))
    moves = np.where(bone & (surface < cortex - 0.5), 1.0, moves)  # the patella
    return echo, moves, (fov / 2, float(np.mean(z_recess))), (fov / 2, depth + 35.0)


def _shoulder(f: _Field) -> Painted:
    """Deltoid over the bursa and the supraspinatus tendon over the humeral head."""
    z, x, fov, draw = f.z, f.x, f.fov, f.draw
    echo = _striated(f, draw("fibre_deg", -15.0, 15.0))  # deltoid
    fat_mm = draw("fat_mm", 1.5, 4.0)
    fat = _subcutis(f, echo, fat_mm)
    side = float(f.rng.choice([-1.0, 1.0]))  # the greater tuberosity's side
    radius = draw("head_radius_mm", 22.0, 28.0)
    xc = fov / 2 - side * fov * draw("head_shift_frac", 0.0, 0.2)
    cart, tendon_mm = draw("cartilage_mm", 0.8, 1.5), draw("tendon_mm", 4.0, 7.0)
    z_head = fat_mm + draw("deltoid_mm", 6.0, 12.0) + 1.5 + tendon_mm + cart
    zc = z_head + radius
    x_gt = xc + side * radius * np.sin(np.deg2rad(draw("tuberosity_deg", 25.0, 40.0)))
    u = side * (x - x_gt)
    arc_at_gt = zc - np.sqrt(radius**2 - (x_gt - xc) ** 2)
    flat = arc_at_gt + np.tan(np.deg2rad(draw("tuberosity_slope_deg", 8.0, 20.0))) * u
    surface = np.where(u > 0, flat, _arc(x, xc, zc, radius))
    taper = np.clip(1.0 - u / draw("insertion_mm", 4.0, 8.0), 0.0, 1.0)
    echo[_band(z, surface - cart, cart) & (u <= 0)] = ECHO["cartilage"]
    thickness = tendon_mm * np.where(u > 0, taper, 1.0)
    tendon_top = surface - np.where(u > 0, 0.0, cart) - thickness
    tendon = _band(z, tendon_top, thickness)
    echo[tendon] = _fibrillar(f, z - surface, ECHO["tendon"])[tendon]
    bursa = _band(z, tendon_top - 0.6, 0.6)
    echo[bursa] = ECHO["fluid"]
    echo[_band(z, tendon_top - 1.1, 0.5)] = ECHO["fascia"]
    bone = _bone(echo, z, surface)
    moves = np.where(fat, 0.05, np.where(z > tendon_top - 1.1, 0.5, 0.2))
    moves = np.where(tendon, 0.8, np.where(bone | (z > surface - cart), 1.0, moves))
    return echo, moves, (float(x_gt), float(arc_at_gt)), (float(xc), float(zc))


_PAINTERS: dict[str, Callable[[_Field], Painted]] = {
    "transverse": _transverse,
    "lateral_view": _lateral,
    "posterior_view": _posterior,
    "probe_off_target": _off_target,
    "knee": _knee,
    "shoulder": _shoulder,
}
