"""Difficulty levels of the synthetic task: named sets of knobs that make the sign subtle.

:class:`Difficulty` is the one statement of the knobs: each field is an inclusive
``[low, high]`` range with its bounds (what the generator can draw; a setting outside them
is refused) and its meaning. A level is data: ``configs/difficulty/<level>.yaml`` (also the
Hydra group ``difficulty`` of ``labral synth``) sets every knob; :data:`DEFAULT_LEVEL` is the
level used when none is named. Each knob is drawn uniformly once per clip by
:func:`labral.datasets.synth.params.draw_clip_params`, *the same way for every clip type and
both labels*: a level changes how hard the sign is to see, never which class shows what.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

import labral.configs
from labral.datasets.synth.validation import Bounds
from labral.errors import BadConfigError
from labral.settings import NAMED, as_bad_config

#: The level files, one per level (read by :func:`load_difficulty`).
LEVELS_DIR = Path(labral.configs.__file__).resolve().parent / "difficulty"
#: The level of ``labral synth``, ``generate_clip`` and the suites when none is named.
DEFAULT_LEVEL = "medium"
#: The shipped levels, easiest first (others sort after them by name).
LEVEL_ORDER = ("easy", "medium", "hard", "expert")
#: Latest end of a positive's burst, strokes after the loading stroke starts (lag + burst).
MAX_BURST_END = 1.25

Knob = tuple[float, float]


class Difficulty(BaseModel):
    """A checked difficulty level: a name and a ``[low, high]`` range per knob."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: str = "custom"
    extent_max: Annotated[Knob, Bounds(0.1, 1.0)] = Field(
        description="how far fluid gets through the cleft, fraction of its length"
    )
    width_scale: Annotated[Knob, Bounds(0.2, 1.0)] = Field(
        description="tongue width relative to the cleft channel"
    )
    fluid_contrast: Annotated[Knob, Bounds(0.1, 1.0)] = Field(
        description="1 = anechoic fluid, 0 = as echogenic as the labrum"
    )
    flow_rho: Annotated[Knob, Bounds(0.0, 0.95)] = Field(
        description="frame-to-frame speckle correlation of moving fluid (0 = new each frame)"
    )
    burst_fraction: Annotated[Knob, Bounds(0.1, 1.0)] = Field(
        description="extrusion duration / loading-stroke duration"
    )
    lag: Annotated[Knob, Bounds(0.0, 0.5)] = Field(
        description="extrusion onset after the stroke starts, fraction of a stroke"
    )
    jitter: Annotated[Knob, Bounds(0.0, 0.3)] = Field(
        description="sd of the per-stroke onset jitter, fraction of a stroke"
    )
    femur_rot_deg: Annotated[Knob, Bounds(1.0, 30.0)] = Field(
        description="in-plane femur rotation amplitude of the movement, degrees"
    )
    femur_glide_mm: Annotated[Knob, Bounds(0.0, 4.0)] = Field(
        description="how far the femoral head glides toward the probe at full loading, mm "
        "(what makes the loading phase easy to see)"
    )
    noise_level: Annotated[Knob, Bounds(0.0, 0.1)] = Field(
        description="receiver noise amplitude (lower SNR as it grows)"
    )
    probe_motion: Annotated[Knob, Bounds(0.0, 5.0)] = Field(
        description="multiplier on probe rocking, drift, pressure and tremor"
    )
    pocket_onset: Annotated[Knob, Bounds(0.0, 2.0)] = Field(
        description="onset of a backward pocket after the loading stroke starts, strokes "
        "(1 = on the unloading stroke; a wide range makes its timing overlap the positive's, "
        "so only the direction of flow tells them apart)"
    )

    @model_validator(mode="after")
    def _burst_ends_on_the_loading_stroke(self) -> Difficulty:
        """A positive's burst must not lie mostly on the unloading stroke (the look-alikes')."""
        end = self.lag[1] + self.burst_fraction[1]
        if end > MAX_BURST_END:
            message = (
                f"difficulty.lag={list(self.lag)} with difficulty.burst_fraction="
                f"{list(self.burst_fraction)}: a positive's burst may end {end:.2f} strokes "
                f"after the loading starts (> {MAX_BURST_END}), mostly on the unloading "
                "stroke where the look-alikes are; lower one of them"
            )
            raise PydanticCustomError(NAMED, "{message}", {"message": message})
        return self

    @property
    def ranges(self) -> dict[str, Knob]:
        """knob -> (low, high), every knob of :data:`KNOB_BOUNDS`."""
        return {knob: getattr(self, knob) for knob in KNOB_BOUNDS}

    def to_json(self) -> dict[str, Any]:
        """JSON-ready ``{"level": ..., knob: [low, high], ...}``."""
        return self.model_dump(mode="json")


#: knob -> (lowest, highest) value the generator can draw (from :class:`Difficulty`).
KNOB_BOUNDS: dict[str, tuple[float, float]] = {
    name: (bounds.lowest, bounds.highest)
    for name, field in Difficulty.model_fields.items()
    for bounds in field.metadata
    if isinstance(bounds, Bounds)
}


def known_levels() -> list[str]:
    """Names of the shipped levels (``configs/difficulty/*.yaml``), easiest first."""
    names = [path.stem for path in LEVELS_DIR.glob("*.yaml")]
    rank = {name: index for index, name in enumerate(LEVEL_ORDER)}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


@functools.lru_cache(maxsize=16)
def _level_file(level: str) -> dict[str, Any]:
    """The knobs a shipped level's file sets (read once; callers copy it before changing it).

    Raises:
        BadConfigError: no such level (the message lists the known ones).
    """
    path = LEVELS_DIR / f"{level}.yaml"
    if not path.is_file():
        raise BadConfigError(f"difficulty={level!r}: unknown level; use one of {known_levels()}")
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    assert isinstance(data, dict)
    return data


def load_difficulty(
    level: str | Mapping[str, Any] | Difficulty | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Difficulty:
    """A level by name (``None``: :data:`DEFAULT_LEVEL`) or mapping, with knobs overridden.

    Args:
        level: a shipped level's name, a mapping of knobs (as composed by Hydra), an
            already-checked :class:`Difficulty`, or ``None`` for :data:`DEFAULT_LEVEL`.
        overrides: knob -> range replacing the level's.

    Returns:
        The checked :class:`Difficulty`.

    Raises:
        BadConfigError: unknown level or knob, a missing knob, a range outside its bounds or
            reversed, or ``lag`` + ``burst_fraction`` above :data:`MAX_BURST_END` strokes; the
            message names the keys.
    """
    if isinstance(level, Difficulty) and not overrides:
        return level
    if isinstance(level, Difficulty):
        raw: dict[str, Any] = level.to_json()
    elif level is None or isinstance(level, str):
        raw = dict(_level_file(level or DEFAULT_LEVEL))  # a copy: the cached dict stays
    elif isinstance(level, DictConfig):
        raw = dict(OmegaConf.to_container(level, resolve=True))  # type: ignore[arg-type]
    elif isinstance(level, Mapping):
        raw = dict(level.items())
    else:
        raise BadConfigError(f"difficulty={level!r}: must be a level name or a mapping")
    raw.update(dict(overrides or {}))
    try:
        return Difficulty.model_validate(raw)
    except ValidationError as error:
        raise as_bad_config(error, prefix="difficulty.") from None
