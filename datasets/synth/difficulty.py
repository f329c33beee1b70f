"""Difficulty levels of the synthetic task: named sets of knobs that make the sign subtle.

A level lives in ``configs/difficulty/<level>.yaml`` (the Hydra group ``difficulty`` of
``configs/synth.yaml``; the default level is the one that file's defaults list names). Each
knob is an inclusive ``[low, high]`` range, drawn uniformly once per clip by
:func:`labral.datasets.synth.params.draw_clip_params`, *the same way for every clip type and
both labels*: a level changes how hard the sign is to see, never which class shows what.

Knobs (bounds are what the generator can draw; a setting outside them is refused):

==================  ============  ==========================================================
knob                bounds        meaning
==================  ============  ==========================================================
extent_max          [0.1, 1]      how far fluid gets through the cleft, fraction of its length
width_scale         [0.2, 1]      tongue width relative to the cleft channel
fluid_contrast      [0.1, 1]      1 = anechoic fluid, 0 = as echogenic as the labrum
flow_rho            [0, 0.95]     frame-to-frame speckle correlation of moving fluid
burst_fraction      [0.1, 1]      extrusion duration / loading-stroke duration
lag                 [0, 0.5]      extrusion onset after the stroke starts, fraction of a stroke
jitter              [0, 0.3]      sd of the per-stroke onset jitter, fraction of a stroke
femur_rot_deg       [1, 30]       in-plane femur rotation amplitude of the movement, degrees
femur_glide_mm      [0, 4]        how far the femoral head glides toward the probe at full
                                  loading, mm (what makes the loading phase easy to see)
noise_level         [0, 0.1]      receiver noise amplitude (lower SNR as it grows)
probe_motion        [0, 5]        multiplier on probe rocking, drift, pressure and tremor
pocket_onset        [0, 2]        onset of a backward pocket after the loading stroke starts,
                                  strokes (1 = on the unloading stroke; a wide range makes
                                  its timing overlap the positive's, so only the direction
                                  of flow tells them apart)
==================  ============  ==========================================================
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from labral.errors import BadConfigError

#: knob -> (lowest, highest) value the generator can draw.
KNOB_BOUNDS: dict[str, tuple[float, float]] = {
    "extent_max": (0.1, 1.0),
    "width_scale": (0.2, 1.0),
    "fluid_contrast": (0.1, 1.0),
    "flow_rho": (0.0, 0.95),
    "burst_fraction": (0.1, 1.0),
    "lag": (0.0, 0.5),
    "jitter": (0.0, 0.3),
    "femur_rot_deg": (1.0, 30.0),
    "femur_glide_mm": (0.0, 4.0),
    "noise_level": (0.0, 0.1),
    "probe_motion": (0.0, 5.0),
    "pocket_onset": (0.0, 2.0),
}
#: Latest end of a positive's burst, strokes after the loading stroke starts (lag + burst).
MAX_BURST_END = 1.25


def _configs_dir() -> Path:
    import labral.configs

    return Path(labral.configs.__file__).resolve().parent


def known_levels() -> list[str]:
    """Names of the shipped levels (``configs/difficulty/*.yaml``), easiest first."""
    order = {"easy": 0, "medium": 1, "hard": 2, "expert": 3}
    names = [p.stem for p in (_configs_dir() / "difficulty").glob("*.yaml")]
    return sorted(names, key=lambda n: (order.get(n, 99), n))


@functools.lru_cache(maxsize=1)
def default_level() -> str:
    """The level named in ``configs/synth.yaml``'s defaults list (the one source)."""
    synth = OmegaConf.load(_configs_dir() / "synth.yaml")
    for entry in synth.get("defaults", []):
        if OmegaConf.is_dict(entry) and "difficulty" in entry:
            return str(entry["difficulty"])
    raise BadConfigError("configs/synth.yaml names no `difficulty` in its defaults list")


@dataclass(frozen=True)
class Difficulty:
    """A checked difficulty level: a name and a ``[low, high]`` range per knob.

    Attributes:
        level: the level's name (``"medium"``), or ``"custom"``-like names of the user's.
        ranges: knob -> (low, high), every knob of :data:`KNOB_BOUNDS`.
    """

    level: str
    ranges: dict[str, tuple[float, float]]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready ``{"level": ..., knob: [low, high], ...}``."""
        return {"level": self.level, **{k: list(v) for k, v in self.ranges.items()}}


def _range(knob: str, value: Any) -> tuple[float, float]:
    pair = list(value) if isinstance(value, list | tuple | ListConfig) else [value, value]
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int | float) for v in pair):
        raise BadConfigError(
            f"difficulty.{knob}={value!r}: must be a number or an inclusive [low, high] pair"
        )
    low, high = (float(v) for v in pair)
    lo_bound, hi_bound = KNOB_BOUNDS[knob]
    if low > high:
        raise BadConfigError(f"difficulty.{knob}={value!r}: low must not exceed high")
    if low < lo_bound or high > hi_bound:
        raise BadConfigError(
            f"difficulty.{knob}={value!r}: outside what the generator can draw "
            f"[{lo_bound}, {hi_bound}]"
        )
    return low, high


def check_difficulty(raw: Mapping[str, Any] | DictConfig) -> Difficulty:
    """Validate a level's mapping (from YAML, the composed config or a caller).

    Args:
        raw: ``{"level": name, knob: [low, high], ...}`` with every knob present.

    Returns:
        The checked :class:`Difficulty`.

    Raises:
        BadConfigError: unknown or missing knob, a range outside its bounds or reversed, or
            a contradiction (``lag`` + ``burst_fraction`` above :data:`MAX_BURST_END`
            strokes: a positive's burst would lie mostly on the unloading stroke, where the
            look-alikes are); the message names the keys.
    """
    if isinstance(raw, DictConfig):
        raw = OmegaConf.to_container(raw, resolve=True)  # type: ignore[assignment]
    if not isinstance(raw, Mapping):
        raise BadConfigError(f"difficulty={raw!r}: must be a level name or a mapping of knobs")
    unknown = sorted(set(raw) - set(KNOB_BOUNDS) - {"level"})
    if unknown:
        raise BadConfigError(
            f"difficulty.{unknown[0]}: unknown knob; use one of {sorted(KNOB_BOUNDS)}"
        )
    missing = [k for k in KNOB_BOUNDS if k not in raw]
    if missing:
        raise BadConfigError(f"difficulty.{missing[0]}: missing (every level sets every knob)")
    ranges = {knob: _range(knob, raw[knob]) for knob in KNOB_BOUNDS}
    end = ranges["lag"][1] + ranges["burst_fraction"][1]
    if end > MAX_BURST_END:
        raise BadConfigError(
            f"difficulty.lag={list(ranges['lag'])} with difficulty.burst_fraction="
            f"{list(ranges['burst_fraction'])}: a positive's burst may end {end:.2f} strokes "
            f"after the loading starts (> {MAX_BURST_END}), mostly on the unloading stroke "
            "where the look-alikes are; lower one of them"
        )
    return Difficulty(level=str(raw.get("level", "custom")), ranges=ranges)


@functools.lru_cache(maxsize=16)
def _level_file(level: str) -> dict[str, Any]:
    path = _configs_dir() / "difficulty" / f"{level}.yaml"
    if not path.is_file():
        raise BadConfigError(f"difficulty={level!r}: unknown level; use one of {known_levels()}")
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    assert isinstance(data, dict)
    return data


def load_difficulty(
    level: str | Mapping[str, Any] | Difficulty | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Difficulty:
    """A level by name (``None``: the default level) or mapping, with knobs overridden.

    Args:
        level: a shipped level's name, a mapping of knobs (as composed by Hydra), an
            already-checked :class:`Difficulty`, or ``None`` for :func:`default_level`.
        overrides: knob -> range replacing the level's.

    Returns:
        The checked :class:`Difficulty`.

    Raises:
        BadConfigError: unknown level or knob, or a bad range (named).
    """
    if isinstance(level, Difficulty) and not overrides:
        return level
    if isinstance(level, Difficulty):
        raw: dict[str, Any] = level.to_json()
    elif level is None or isinstance(level, str):
        raw = dict(_level_file(level or default_level()))
    elif isinstance(level, Mapping | DictConfig):
        raw = dict(level.items())
    else:
        raise BadConfigError(f"difficulty={level!r}: must be a level name or a mapping")
    raw.update(dict(overrides or {}))
    return check_difficulty(raw)
