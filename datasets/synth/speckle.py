"""Complex scatterers of one clip: static speckle, and speckle that decorrelates in time.

Every reference-grid point holds a complex scatterer whose amplitude is ``sqrt(echo) * s``.
Outside the *dynamic box* (around the joint, the cleft and, when the hip holds an effusion,
the recess) the scatterers never change. Inside it they follow an AR(1) process
``s_t = rho s_{t-1} + sqrt(1 - rho^2) n_t``: rho falls where tissue strains (with the loading
speed) and where fluid flows (the tongue, a pushed effusion), so speckle decorrelates there.
Fluid is anechoic apart from sparse bright specks that are redrawn where the fluid moves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labral.datasets.synth.anatomy import ECHO, TissueMaps
from labral.datasets.synth.motion import MotionTraces
from labral.datasets.synth.scenarios import Scenario

#: Sparse scatterers in fluid: fraction of pixels and their echo power.
SPECK_FRACTION = 0.15
SPECK_ECHO = 0.05
#: Reference-grid pixels the dynamic box reaches beyond the cleft box (above, below, left,
#: right: the joint side of the cleft lies to its right).
BOX_PAD = (12, 12, 12, 16)


def scatterer_amplitude(
    rng: np.random.Generator,
    maps: TissueMaps,
    hip: dict[str, Any],
    traces: MotionTraces,
    scenario: Scenario,
    cleft: dict[str, Any],
    tongue: np.ndarray,
) -> np.ndarray:
    """complex64 (T, Hr, Wr) scatterer amplitude of every reference-grid point and frame.

    Args:
        rng: the clip's generator (static speckle, innovations, specks, in that order).
        maps: the hip's tissue maps (Hr, Wr).
        hip: the hip's anatomy (``effusion``).
        traces: the clip's motion (``loading_velocity`` (T,)).
        scenario: how the cleft channel fills (``filling``).
        cleft: the drawn cleft event (``flow_rho``, ``fluid_contrast``).
        tongue: bool (T, h, w) fluid tongue inside ``maps.cleft_box``.
    """
    frames = tongue.shape[0]
    static = rng.standard_normal((2, *maps.echo.shape), dtype=np.float32)  # real, imaginary
    amp_ref = (np.sqrt(maps.echo) * (static[0] + 1j * static[1])).astype(np.complex64)
    amplitude = np.broadcast_to(amp_ref, (frames, *maps.echo.shape)).copy()
    effusion = bool(hip.get("effusion", 0))
    top, bottom, left, right = _dynamic_box(maps, effusion)
    rows, cols = slice(top, bottom), slice(left, right)
    box_shape = (frames, bottom - top, right - left)
    tongue_in_box = np.zeros(box_shape, bool)
    c_top, c_bottom, c_left, c_right = maps.cleft_box
    tongue_in_box[:, c_top - top : c_bottom - top, c_left - left : c_right - left] = tongue
    recess = np.broadcast_to(maps.recess_fluid[rows, cols][None], box_shape) if effusion else None
    rho = _correlation(maps, rows, cols, traces, scenario, cleft, recess, tongue_in_box)
    scatterers = _evolving_speckle(rng, static[:, rows, cols], rho)
    echo = _box_echo(rng, maps, rows, cols, scenario, cleft, recess, tongue_in_box)
    amplitude[:, rows, cols] = np.sqrt(echo) * scatterers
    return amplitude


def _correlation(
    maps: TissueMaps,
    rows: slice,
    cols: slice,
    traces: MotionTraces,
    scenario: Scenario,
    cleft: dict[str, Any],
    recess: np.ndarray | None,
    tongue_in_box: np.ndarray,
) -> np.ndarray:
    """float32 (T, h, w) frame-to-frame speckle correlation rho inside the dynamic box."""
    box_shape = tongue_in_box.shape
    moves = maps.moves[rows, cols]
    speed = np.abs(traces.loading_velocity)[:, None, None]
    strain = ((moves > 0) & (moves < 1)) | (maps.echo[rows, cols] == ECHO["cartilage"])
    rho = np.where(strain[None], 1.0 - 0.35 * speed, 1.0)
    flow_rho = np.float32(cleft["flow_rho"])
    if recess is not None:  # effusion fluid is pushed along the neck as the joint moves
        rho = np.where(recess, 1.0 - (1.0 - flow_rho) * speed, rho)
    if scenario.filling in ("flow", "aniso"):
        rho = np.where(tongue_in_box, flow_rho, rho)
    return np.broadcast_to(rho, box_shape).astype(np.float32)


def _evolving_speckle(rng: np.random.Generator, static: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """complex64 (T, h, w) AR(1) speckle from the first frame's ``static`` (2, h, w) parts."""
    noise = rng.standard_normal((2, *rho.shape), dtype=np.float32)
    scatterers = np.empty(rho.shape, np.complex64)
    scatterers[0] = static[0] + 1j * static[1]
    innovation = np.sqrt(1.0 - rho**2) * (noise[0] + 1j * noise[1])
    for t in range(1, rho.shape[0]):
        scatterers[t] = rho[t] * scatterers[t - 1] + innovation[t]
    return scatterers


def _box_echo(
    rng: np.random.Generator,
    maps: TissueMaps,
    rows: slice,
    cols: slice,
    scenario: Scenario,
    cleft: dict[str, Any],
    recess: np.ndarray | None,
    tongue_in_box: np.ndarray,
) -> np.ndarray:
    """float32 (T, h, w) echo power inside the dynamic box: tissue, anechoic fluid with
    specks (tongue and effusion), and the tongue mixed toward fluid by its contrast."""
    box_shape = tongue_in_box.shape
    fluid = np.zeros(box_shape, bool)  # anechoic fluid (with specks): tongue and effusion
    moving = np.zeros(box_shape, bool)  # where specks move and speckle decorrelates
    if recess is not None:
        fluid |= recess
        moving |= recess
    if scenario.filling == "flow":
        moving |= tongue_in_box
    flow_rho = np.float32(cleft["flow_rho"])
    tissue = np.broadcast_to(maps.echo[rows, cols], box_shape)
    echo = np.where(fluid, np.float32(ECHO["fluid"]), tissue)
    specks = _specks(rng, box_shape, moving, 1.0 - flow_rho)
    fluid_echo = np.where(specks, np.float32(SPECK_ECHO), np.float32(ECHO["fluid"]))
    echo = np.where(fluid, fluid_echo, echo)
    # the tongue: tissue mixed toward fluid (or, for anisotropy, toward no echo) in the log
    # domain by the drawn contrast; 1 = anechoic
    target = np.float32(ECHO["fluid"]) if scenario.filling == "aniso" else fluid_echo
    contrast = np.float32(cleft["fluid_contrast"])
    mixed = tissue ** (np.float32(1.0) - contrast) * np.broadcast_to(target, box_shape) ** contrast
    return np.where(tongue_in_box, mixed, echo)


def _dynamic_box(maps: TissueMaps, effusion: bool) -> tuple[int, int, int, int]:
    """Reference-grid box (r0, r1, c0, c1) around the joint and cleft (and the effusion)."""
    ref_height, ref_width = maps.echo.shape
    top, bottom, left, right = maps.cleft_box
    pad_top, pad_bottom, pad_left, pad_right = BOX_PAD
    box = [
        max(top - pad_top, 0),
        min(bottom + pad_bottom, ref_height),
        max(left - pad_left, 0),
        min(right + pad_right, ref_width),
    ]
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
