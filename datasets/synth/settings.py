"""Settings of ``labral synth``: one typed model, every check at once, before any work.

:class:`SynthSettings` states each key, its type, its default and what it means once; its
schema is registered in Hydra's ConfigStore as ``synth_schema`` (with the default
difficulty level as a group default), so ``configs/synth.yaml`` holds only config groups
and the values that differ. A bad setting raises :class:`labral.errors.BadConfigError`
whose message names it the way the command line writes it (``clip.frames=2: ...``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from omegaconf import DictConfig
from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from labral.datasets.manifests.manifest import SPLIT_NAMES
from labral.datasets.synth.difficulty import (
    DEFAULT_LEVEL,
    Difficulty,
    known_levels,
    load_difficulty,
)
from labral.datasets.synth.scenarios import DEFAULT_NEGATIVE_MIX
from labral.datasets.synth.types import NEGATIVE_TYPES
from labral.datasets.synth.validation import Bounds, check_writable
from labral.settings import Settings, named_error, register_schema, settings_from_config

#: Frames and frame sizes the generator can draw.
MIN_FRAMES, MIN_SIDE, MAX_SIDE = 4, 48, 1024
#: Settings that change how a run goes, not what it makes (left out of ``dataset.json``).
RUN_SETTINGS = frozenset({"preview", "workers", "chunksize", "progress"})
#: Name of the schema in Hydra's ConfigStore (``configs/synth.yaml`` lists it first).
SCHEMA_NAME = "synth_schema"

Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Weight = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class ClipShape(Settings):
    """Size and rate of every clip (``clip.*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frames: int = Field(32, ge=MIN_FRAMES, le=4096, description="frames per clip")
    height: int = Field(128, ge=MIN_SIDE, le=MAX_SIDE, description="rows of the tissue region")
    width: int = Field(128, ge=MIN_SIDE, le=MAX_SIDE, description="columns")
    fps: Annotated[tuple[int, int], Bounds(2, 240, whole=True)] = Field(
        (15, 30), description="whole frames/s drawn per clip from this inclusive range"
    )


class FileFormats(Settings):
    """How the clips are written (``formats.*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dicom_syntax: Literal["jpeg", "explicit", "mixed"] = Field(
        "jpeg", description="jpeg | explicit | mixed (alternate per clip)"
    )
    jpeg_quality: int = Field(90, ge=1, le=95)
    burned_in_text: StrictBool = Field(
        True, description="header text band outside the tissue region (Burned In Annotation)"
    )
    mp4: StrictBool = Field(False, description="also write an MP4 beside each DICOM")


class SynthSettings(Settings):
    """Everything ``labral synth`` needs, checked (``configs/synth.yaml`` sets ``out``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    out: Path = Field(description="where the data set goes (created; must be writable)")
    seed: int = Field(1234, ge=0, description="same seed + same settings -> same data set")
    n_patients: int = Field(220, ge=1, description="synthetic patients")
    hips_per_patient: Annotated[tuple[int, int], Bounds(1, 2, whole=True)] = Field(
        (1, 2), description="drawn uniformly from this inclusive range"
    )
    clips_per_hip: Annotated[tuple[int, int], Bounds(1, 1000, whole=True)] = Field(
        (2, 4), description="drawn uniformly from this inclusive range"
    )
    prevalence: Fraction = Field(
        0.5,
        description="fraction of detached hips (shared out exactly); a detached hip extrudes "
        "only in clips that load it enough",
    )
    extrusion_threshold: Annotated[tuple[float, float], Bounds(0.0, 1.0)] = Field(
        (0.05, 0.55),
        description="per detached hip, drawn uniformly: the provocation (drawn per clip in "
        "[0, 1]) a clip needs to show the extrusion",
    )
    negative_mix: dict[str, Weight] = Field(
        None,  # type: ignore[arg-type]  # validated: null -> the generator's default mix
        validate_default=True,
        description="relative weights of hard-negative types for clips without extrusion "
        "(others get 0); null = the generator's scenarios.DEFAULT_NEGATIVE_MIX",
    )
    difficulty: Difficulty = Field(
        default_factory=lambda: load_difficulty(DEFAULT_LEVEL),
        description="a level of configs/difficulty/ (difficulty=hard), knobs overridable "
        "one by one (difficulty.lag=[0.1,0.3])",
    )
    levels: list[str] = Field(
        [],
        description="spread the patients over these levels in turn, so every split spans "
        "them (levels=[easy,medium,hard,expert]); empty = every patient at `difficulty`",
    )
    splits: dict[str, Fraction] = Field(
        {"train": 0.7, "val": 0.15, "test": 0.15},
        description="fractions of patients per split (by patient); they add up to 1",
    )
    clip: ClipShape = ClipShape()
    overrides: dict[str, Any] = Field(
        {}, description="generator parameters fixed for every clip, e.g. {depth_mm: 50}"
    )
    formats: FileFormats = FileFormats()
    preview: StrictBool = Field(True, description="contact sheet + one GIF per type")
    workers: int = Field(0, ge=0, le=512, description="processes; 0 = all cores")
    chunksize: int = Field(8, ge=1, le=10_000, description="clips handed to a worker at once")
    progress: StrictBool = Field(True, description="tqdm bar with clips/s and ETA")

    @field_validator("out", mode="before")
    @classmethod
    def _named_folder(cls, value: Any) -> Any:
        if value is None or not str(value).strip():
            raise named_error("out", value, "name the folder the data set goes to")
        return Path(str(value)).expanduser()

    @field_validator("negative_mix", mode="before")
    @classmethod
    def _known_negative_types(cls, value: Any) -> Any:
        if value is None:  # the generator's default mix
            return dict(DEFAULT_NEGATIVE_MIX)
        if not isinstance(value, Mapping):
            raise named_error("negative_mix", value, "must map negative types to weights")
        for name, weight in value.items():
            if name not in NEGATIVE_TYPES:
                raise named_error(
                    f"negative_mix.{name}", weight, f"unknown type; use {NEGATIVE_TYPES}"
                )
        return dict(value)

    @field_validator("difficulty", mode="before")
    @classmethod
    def _level_by_name(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return load_difficulty(value)
        return value

    @field_validator("levels", mode="before")
    @classmethod
    def _shipped_levels(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise named_error("levels", value, "must be a list of level names, e.g. [hard,expert]")
        unknown = [level for level in value if level not in known_levels()]
        if unknown:
            raise named_error("levels", value, f"unknown {unknown}; use some of {known_levels()}")
        return list(value)

    @field_validator("splits", mode="before")
    @classmethod
    def _every_split(cls, value: Any) -> Any:
        if not isinstance(value, Mapping) or set(value) - set(SPLIT_NAMES):
            raise named_error("splits", value, f"keys must be among {SPLIT_NAMES}")
        return {split: value.get(split, 0.0) for split in SPLIT_NAMES}

    @model_validator(mode="after")
    def _consistent(self) -> SynthSettings:
        if abs(sum(self.splits.values()) - 1.0) > 1e-6:
            raise named_error("splits", self.splits, "fractions must add up to 1")
        if self.splits["train"] <= 0:
            raise named_error("splits.train", self.splits["train"], "must be > 0")
        if self.levels and self.difficulty != load_difficulty(self.difficulty.level):
            raise named_error(
                "levels",
                self.levels,
                "cannot be combined with difficulty.* knob overrides (they change one level); "
                "drop the overrides or the levels",
            )
        mix = self.negative_mix
        if self.prevalence < 1.0 and sum(mix.values()) <= 0:
            raise named_error("negative_mix", mix, "needs a positive weight when prevalence < 1")
        return self

    def level_of(self, name: str) -> Difficulty:
        """The checked knobs of a level this data set draws (``difficulty`` itself, with its
        overrides, when ``levels`` is empty)."""
        return load_difficulty(name) if self.levels else self.difficulty

    @property
    def resolved_workers(self) -> int:
        """Worker processes to use (``workers=0`` means every available core)."""
        if self.workers > 0:
            return self.workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready copy of what the data set is made from (recorded in ``dataset.json``)."""
        return self.model_dump(mode="json", exclude=set(RUN_SETTINGS))

    @classmethod
    def from_config(
        cls, cfg: DictConfig | Mapping[str, Any], *, check_out: bool = True
    ) -> SynthSettings:
        """Validate a composed ``synth`` config (or a plain mapping of some of its keys).

        Keys the model does not hold (``paths``, ``hydra``) are left alone and unresolved.

        Args:
            cfg: the composed Hydra config, or a mapping; missing keys take the defaults.
            check_out: also create ``out`` and prove it is writable.

        Raises:
            BadConfigError: every bad setting, named in the message.
        """
        others = tuple(str(key) for key in cfg if key not in cls.model_fields)
        settings = settings_from_config(cls, cfg, ignore=others)
        if check_out:
            check_writable("out", settings.out)
        return settings


def default_settings(out: str | Path = ".") -> SynthSettings:
    """``labral synth``'s settings when only ``out`` is given: the training distribution
    (the bench suites draw from it unless they say otherwise)."""
    return SynthSettings.from_config({"out": str(out)}, check_out=False)


# the schema's defaults list selects DEFAULT_LEVEL in the difficulty group (difficulty=hard
# replaces it), so the default level is stated once
register_schema(SCHEMA_NAME, SynthSettings, defaults=["_self_", {"difficulty": DEFAULT_LEVEL}])
