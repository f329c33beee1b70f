"""Anatomy of the anterior oblique hip view: per-patient draws and the tissue maps.

Coordinates: ``z`` is depth from the skin in mm (rows, increasing downward), ``x`` is lateral
position in mm across the probe face (columns, cranial on the left). The femoral head is a
circle under the labrum; the acetabular rim is bone on the left with the labrum triangle on
its tip pointing right over the head; the capsule, iliopsoas and fat lie above.

The maps are rendered once per clip on a *reference grid* (the image grid plus a margin so
that probe motion never samples outside it); motion is applied later by warping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

#: Share of hips with an effusion in the anterior recess (drawn per hip, for both labels).
EFFUSION_SHARE = 0.3
#: Relative backscatter power (linear) of each tissue, before anisotropy and attenuation.
ECHO = {
    "fat": 0.10,
    "septum": 0.55,
    "muscle": 0.20,
    "fascia": 1.6,
    "tendon": 0.9,
    "capsule": 1.0,
    "recess": 0.16,
    "labrum": 5.0,
    "cartilage": 0.025,
    "bone_surface": 12.0,
    "bone_shadow": 0.000002,
    "fluid": 0.0003,
}


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(round(rng.uniform(lo, hi), 4))


def draw_anatomy(seed: int) -> dict[str, Any]:
    """Draw one synthetic patient's anatomy and probe set-up from plausible ranges.

    Args:
        seed: patient seed; the same seed always gives the same anatomy.

    Returns:
        JSON-ready dict of millimetre sizes, angles in degrees, probe settings and texture
        seeds (see the keys below); hip-specific variants come from :func:`hip_anatomy`.
    """
    rng = np.random.default_rng([int(seed), 0xA11A])
    return {
        "patient_seed": int(seed),
        "fat_mm": _u(rng, 3.0, 9.0),
        "muscle_mm": _u(rng, 8.0, 14.0),
        "capsule_mm": _u(rng, 2.0, 4.0),
        "recess_mm": _u(rng, 4.5, 8.0),
        "head_radius_mm": _u(rng, 21.0, 26.0),
        "head_x_frac": _u(rng, 0.52, 0.60),
        "rim_angle_deg": _u(rng, 26.0, 34.0),
        "acetabulum_slope_deg": _u(rng, 15.0, 30.0),
        "labrum_len_mm": _u(rng, 7.0, 9.5),
        "labrum_thick_mm": _u(rng, 2.8, 4.2),
        "cartilage_mm": _u(rng, 1.5, 2.5),
        "cleft_angle_deg": _u(rng, -15.0, 15.0),
        "cleft_width_mm": _u(rng, 2.0, 2.6),
        "muscle_fiber_deg": _u(rng, -12.0, 12.0),
        "labrum_fiber_deg": _u(rng, -6.0, 6.0),
        "fov_mm": _u(rng, 36.0, 42.0),
        "depth_mm": _u(rng, 40.0, 52.0),
        "center_freq_mhz": _u(rng, 7.0, 12.0),
        "bandwidth_frac": _u(rng, 0.6, 0.8),
        "focus_frac": _u(rng, 0.45, 0.65),
        "f_number": _u(rng, 1.5, 2.5),
        "atten_db_cm_mhz": _u(rng, 0.6, 0.9),
        "texture_seed": int(rng.integers(0, 2**31 - 1)),
    }


def hip_anatomy(patient: dict[str, Any], side: str) -> dict[str, Any]:
    """The patient's anatomy for one hip: small, stable left/right differences.

    Args:
        patient: output of :func:`draw_anatomy`.
        side: ``"L"`` or ``"R"``.

    Returns:
        A copy of ``patient`` with millimetre sizes scaled by up to +/-4% (same for a
        given patient and side), ``side`` set, and ``effusion`` (1 in ``EFFUSION_SHARE`` of
        hips: fluid in the anterior recess that moves with the joint).
    """
    rng = np.random.default_rng([int(patient["patient_seed"]), 0x51DE, 0 if side == "L" else 1])
    hip = dict(patient)
    for key in (
        "fat_mm",
        "muscle_mm",
        "capsule_mm",
        "recess_mm",
        "labrum_len_mm",
        "labrum_thick_mm",
        "cartilage_mm",
    ):
        hip[key] = float(round(patient[key] * rng.uniform(0.96, 1.04), 4))
    hip["side"] = side
    hip["effusion"] = int(rng.random() < EFFUSION_SHARE)
    hip["texture_seed"] = int(patient["texture_seed"]) + (0 if side == "L" else 7919)
    return hip


@dataclass
class TissueMaps:
    """Reference-grid maps of one hip (all float32/bool arrays of shape (Hr, Wr)).

    Attributes:
        echo: backscatter power without anisotropy/tongue effects.
        moves: 0..1, how much each point follows the femur (1 femur, 0 pelvis/labrum).
        labrum: bool, the labrum triangle (anisotropic fibrocartilage).
        sheet: bool, capsule and tendon (anisotropic fibrillar sheets).
        cleft_s: position along the chondrolabral cleft path, 0 (joint side) .. 1 (capsular
            side); NaN outside the cleft channel.
        recess_fluid: bool, where a static effusion collects (along the neck, not the cleft).
        margin: reference-grid margin in pixels around the image.
        dz, dx: pixel size in mm (rows, columns).
        cleft_box: (r0, r1, c0, c1) reference-grid bounding box of the cleft channel.
        pivot_mm: (x, z) of the femoral head centre in image millimetres (rotation centre).
    """

    echo: np.ndarray
    moves: np.ndarray
    labrum: np.ndarray
    sheet: np.ndarray
    cleft_s: np.ndarray
    recess_fluid: np.ndarray
    margin: int
    dz: float
    dx: float
    cleft_box: tuple[int, int, int, int]
    pivot_mm: tuple[float, float]


def _inside_triangle(x: np.ndarray, z: np.ndarray, pts: list[tuple[float, float]]) -> np.ndarray:
    (ax, az), (bx, bz), (cx, cz) = pts

    def side(px: float, pz: float, qx: float, qz: float) -> np.ndarray:
        return (x - qx) * (pz - qz) - (px - qx) * (z - qz)

    d1, d2, d3 = side(ax, az, bx, bz), side(bx, bz, cx, cz), side(cx, cz, ax, az)
    neg = (d1 < 0) | (d2 < 0) | (d3 < 0)
    pos = (d1 > 0) | (d2 > 0) | (d3 > 0)
    return ~(neg & pos)


class _Grid(NamedTuple):
    """The reference grid: depth and lateral position (mm) of every pixel, (Hr, Wr) each."""

    z: np.ndarray
    x: np.ndarray
    dz: float
    dx: float


class _Femur(NamedTuple):
    """The femoral head and neck on the reference grid (bool masks (Hr, Wr))."""

    center_x: float  # head centre, mm
    center_z: float
    radius: float  # head radius, mm
    cartilage_mm: float
    neck_x: float  # lateral position of the head-neck junction, mm
    rim_angle: float  # acetabular rim angle, radians
    distance: np.ndarray  # float (Hr, Wr): distance from the head centre, mm
    bone: np.ndarray
    surface: np.ndarray
    cartilage: np.ndarray


class _Acetabulum(NamedTuple):
    """The acetabular rim and pelvis on the reference grid (bool masks (Hr, Wr))."""

    rim_x: float  # rim tip, mm
    rim_z: float
    rim_radius: float  # distance of the rim tip from the head centre, mm
    slope: float  # tan of the acetabular surface's slope
    bone: np.ndarray
    surface: np.ndarray


def render_tissue(hip: dict[str, Any], height: int, width: int, margin: int) -> TissueMaps:
    """Render the tissue maps of one hip on the reference grid.

    Args:
        hip: output of :func:`hip_anatomy` (with ``depth_mm``/``fov_mm`` possibly overridden).
        height, width: image size in pixels (rows = depth).
        margin: extra pixels on each side of the reference grid.

    Returns:
        :class:`TissueMaps` of shape (height + 2 margin, width + 2 margin).
    """
    grid = _reference_grid(hip, height, width, margin)
    rng = np.random.default_rng(hip["texture_seed"])
    labrum_mm, cartilage_mm = hip["labrum_thick_mm"], hip["cartilage_mm"]
    z_top = hip["fat_mm"] + hip["muscle_mm"] + hip["capsule_mm"] + labrum_mm + cartilage_mm + 0.8
    femur = _femur(hip, grid, z_top)
    acetabulum = _acetabulum(hip, grid, femur)
    labrum, labrum_base_z = _labrum(hip, grid, femur, acetabulum)

    # capsule over labrum and neck, recess between capsule and neck
    z, x = grid.z, grid.x
    cap_bottom = np.minimum(labrum_base_z - 0.3, z_top - labrum_mm - cartilage_mm - 0.6) + np.clip(
        (x - femur.center_x) * 0.15, -2.0, 2.0
    )
    cap_bottom = cap_bottom + np.clip((x - femur.neck_x) * 0.05, 0.0, None)
    cap_top = cap_bottom - hip["capsule_mm"]
    capsule = (z >= cap_top) & (z < cap_bottom)
    recess = (z >= cap_bottom) & ~femur.bone & ~acetabulum.bone
    echo, tendon = _echo_map(hip, grid, rng, femur, acetabulum, labrum, capsule, recess, cap_top)
    moves = _femur_following(grid, femur, acetabulum, labrum, cap_top)
    recess_fluid = recess & (x > femur.neck_x - 2.0) & (z > cap_bottom + 0.3)
    cleft_s, box = _cleft_channel(hip, grid, femur, acetabulum)
    return TissueMaps(
        echo=echo.astype(np.float32),
        moves=moves.astype(np.float32),
        labrum=labrum,
        sheet=capsule | tendon,
        cleft_s=cleft_s,
        recess_fluid=recess_fluid,
        margin=margin,
        dz=float(grid.dz),
        dx=float(grid.dx),
        cleft_box=box,
        pivot_mm=(float(femur.center_x), float(femur.center_z)),
    )


def _reference_grid(hip: dict[str, Any], height: int, width: int, margin: int) -> _Grid:
    """Pixel centres of the image plus ``margin`` pixels on every side, in mm."""
    dz, dx = hip["depth_mm"] / height, hip["fov_mm"] / width
    ref_height, ref_width = height + 2 * margin, width + 2 * margin
    z = ((np.arange(ref_height, dtype=np.float32) - margin + 0.5) * dz)[:, None]
    x = ((np.arange(ref_width, dtype=np.float32) - margin + 0.5) * dx)[None, :]
    z, x = np.broadcast_arrays(z, x)
    return _Grid(z, x, dz, dx)


def _femur(hip: dict[str, Any], grid: _Grid, z_top: float) -> _Femur:
    """Femoral head and neck: to the right of the head-neck junction the surface flattens."""
    z, x = grid.z, grid.x
    r_head, cart = hip["head_radius_mm"], hip["cartilage_mm"]
    xh = hip["head_x_frac"] * hip["fov_mm"]
    zh = z_top + r_head
    rad = np.hypot(x - xh, z - zh)
    ang = np.arctan2(x - xh, zh - z)  # 0 at the top of the head, positive to the right
    psi = np.deg2rad(hip["rim_angle_deg"])
    neck_ang = np.deg2rad(18.0)
    x_neck = xh + r_head * np.sin(neck_ang)
    z_neck = zh - r_head * np.cos(neck_ang) + (x - x_neck) * np.tan(np.deg2rad(14.0))
    bone = (rad <= r_head) | ((x > x_neck) & (z >= z_neck))
    surface = (rad <= r_head + 0.45) & (rad > r_head - 0.35) & (x <= x_neck)
    surface |= (x > x_neck) & (np.abs(z - z_neck) < 0.4)
    cartilage = (rad > r_head) & (rad <= r_head + cart) & (ang > -psi) & (ang < neck_ang)
    return _Femur(xh, zh, r_head, cart, x_neck, psi, rad, bone, surface, cartilage)


def _acetabulum(hip: dict[str, Any], grid: _Grid, femur: _Femur) -> _Acetabulum:
    """Acetabular rim: bone to the left of the rim tip, surface rising to the left."""
    z, x = grid.z, grid.x
    psi = femur.rim_angle
    rim_r = femur.radius + femur.cartilage_mm + 0.2
    rim_x, rim_z = femur.center_x - rim_r * np.sin(psi), femur.center_z - rim_r * np.cos(psi)
    slope = np.tan(np.deg2rad(hip["acetabulum_slope_deg"]))
    z_acet = rim_z - (rim_x - x) * slope - 0.6
    bone = (x < rim_x) & (z >= z_acet) & ((femur.distance > rim_r) | (z > rim_z))
    surface = (x < rim_x + 0.3) & (np.abs(z - z_acet) < 0.4) & (femur.distance > rim_r - 0.2)
    return _Acetabulum(rim_x, rim_z, rim_r, slope, bone, surface)


def _labrum(
    hip: dict[str, Any], grid: _Grid, femur: _Femur, acetabulum: _Acetabulum
) -> tuple[np.ndarray, float]:
    """bool (Hr, Wr) labrum triangle on the rim tip, apex along the head surface, and the
    depth (mm) of its base corner on the acetabulum."""
    lt, slope = hip["labrum_thick_mm"], acetabulum.slope
    rim_x, rim_z = acetabulum.rim_x, acetabulum.rim_z
    lab_a = (
        rim_x - lt * 0.9 * np.cos(np.arctan(slope)),
        z_acet_at(rim_x - lt * 0.9, rim_x, rim_z, slope),
    )
    lab_b = (rim_x + 0.2, rim_z + 0.3)
    apex_ang = -femur.rim_angle + hip["labrum_len_mm"] / femur.radius
    apex_r = femur.radius + femur.cartilage_mm + 0.3
    lab_c = (
        femur.center_x + apex_r * np.sin(apex_ang),
        femur.center_z - apex_r * np.cos(apex_ang),
    )
    labrum = _inside_triangle(grid.x, grid.z, [lab_a, lab_b, lab_c])
    return labrum & ~femur.bone & ~acetabulum.bone, lab_a[1]


def _echo_map(
    hip: dict[str, Any],
    grid: _Grid,
    rng: np.random.Generator,
    femur: _Femur,
    acetabulum: _Acetabulum,
    labrum: np.ndarray,
    capsule: np.ndarray,
    recess: np.ndarray,
    cap_top: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """float32 (Hr, Wr) backscatter power of every tissue, and the bool tendon mask."""
    z, x = grid.z, grid.x
    fat_bottom = hip["fat_mm"] + 0.4 * np.sin(x / 9.0 + rng.uniform(0, 6))
    echo = np.full(z.shape, ECHO["muscle"], np.float32)
    stripes = 0.55 + 0.45 * np.cos(
        2 * np.pi * (z + x * np.tan(np.deg2rad(hip["muscle_fiber_deg"]))) / rng.uniform(0.9, 1.4)
    )
    echo *= stripes.astype(np.float32)
    tendon = ((x - femur.center_x - 2.0) / 5.0) ** 2 + ((z - cap_top + 2.8) / 1.8) ** 2 < 1.0
    echo[tendon] = ECHO["tendon"]
    fat = z < fat_bottom
    echo[fat] = ECHO["fat"]
    for _ in range(3):
        z0, tilt = rng.uniform(1.0, hip["fat_mm"] - 0.5), rng.uniform(-0.15, 0.15)
        septum = fat & (np.abs(z - z0 - tilt * (x - 20.0)) < 0.25)
        echo[septum] = ECHO["septum"]
    echo[np.abs(z - fat_bottom) < 0.3] = ECHO["fascia"]
    echo[np.abs(z - cap_top) < 0.3] = ECHO["fascia"]
    echo[capsule] = ECHO["capsule"]
    echo[recess] = ECHO["recess"]
    echo[femur.cartilage] = ECHO["cartilage"]
    echo[labrum] = ECHO["labrum"]
    echo[femur.bone | acetabulum.bone] = ECHO["bone_shadow"]
    echo[(femur.surface & ~acetabulum.bone) | acetabulum.surface] = ECHO["bone_surface"]
    echo[z < 0.25] = ECHO["septum"]  # skin line
    return echo, tendon


def _femur_following(
    grid: _Grid, femur: _Femur, acetabulum: _Acetabulum, labrum: np.ndarray, cap_top: np.ndarray
) -> np.ndarray:
    """float (Hr, Wr) 0..1: how much each point follows the femur (1 femur, 0 pelvis)."""
    z, x = grid.z, grid.x
    moves = np.where(femur.bone | femur.cartilage, 1.0, 0.0)
    soft = ~femur.bone & ~femur.cartilage & ~acetabulum.bone & ~labrum
    # soft tissue is dragged partly, and only over the femur (not over the pelvis)
    over_femur = np.clip((x - acetabulum.rim_x) / 6.0, 0.0, 1.0)
    moves = np.where(soft & (z >= cap_top), 0.55 * over_femur, moves)
    return np.where(
        soft & (z < cap_top), (0.12 + 0.2 * np.clip(z / cap_top, 0, 1)) * over_femur, moves
    )


def _cleft_channel(
    hip: dict[str, Any], grid: _Grid, femur: _Femur, acetabulum: _Acetabulum
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The chondrolabral cleft channel, from the junction outward through the labrum.

    Returns:
        float32 (Hr, Wr) position along the channel (0 joint side .. 1 capsular side, NaN
        outside it) and the channel's bounding box (r0, r1, c0, c1).
    """
    z, x = grid.z, grid.x
    xh, zh, r_head, cart = femur.center_x, femur.center_z, femur.radius, femur.cartilage_mm
    j_ang = -femur.rim_angle + 0.09
    p0 = np.array(
        [xh + (r_head + cart * 0.4) * np.sin(j_ang), zh - (r_head + cart * 0.4) * np.cos(j_ang)]
    )
    dirv = np.array([np.sin(j_ang), -np.cos(j_ang)])
    rot = np.deg2rad(hip["cleft_angle_deg"])
    dirv = np.array(
        [
            dirv[0] * np.cos(rot) - dirv[1] * np.sin(rot),
            dirv[0] * np.sin(rot) + dirv[1] * np.cos(rot),
        ]
    )
    length = cart * 0.6 + hip["labrum_thick_mm"] + 2.0
    s_mm = (x - p0[0]) * dirv[0] + (z - p0[1]) * dirv[1]
    d_mm = np.abs(-(x - p0[0]) * dirv[1] + (z - p0[1]) * dirv[0])
    s = s_mm / length
    half = 0.5 * hip["cleft_width_mm"] * (0.7 + 0.6 * np.clip(s, 0, 1))
    channel = (s >= 0) & (s <= 1) & (d_mm <= half) & ~femur.bone & ~acetabulum.bone
    cleft_s = np.where(channel, s, np.nan).astype(np.float32)
    rows, cols = np.nonzero(channel)
    return cleft_s, (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)


def z_acet_at(x: float, rim_x: float, rim_z: float, slope: float) -> float:
    """Depth (mm) of the acetabular surface at lateral position ``x`` (mm)."""
    return float(rim_z - (rim_x - x) * slope - 0.6)
