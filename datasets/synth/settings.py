"""Validated settings of ``labral synth``: every check runs at once, before any work.

``SynthSettings.from_config(cfg)`` turns the Hydra config (``configs/synth.yaml``) into a
frozen, typed object, or raises :class:`labral.errors.BadConfigError` whose message names
the setting (``clip.frames=2: ...``) and says what would work.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from labral.datasets.synth.difficulty import Difficulty, load_difficulty
from labral.datasets.synth.scenarios import DEFAULT_NEGATIVE_MIX
from labral.datasets.synth.types import NEGATIVE_TYPES
from labral.errors import BadConfigError

SPLIT_NAMES = ("train", "val", "test")
DICOM_SYNTAXES = ("jpeg", "explicit", "mixed")
MIN_FRAMES, MIN_SIDE, MAX_SIDE = 4, 48, 1024  # what the generator can draw


def _bad(setting: str, value: Any, why: str) -> BadConfigError:
    return BadConfigError(f"{setting}={value!r}: {why}")


def _as_int(setting: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise _bad(setting, value, "must be a whole number")
    if value < low or (high is not None and value > high):
        limits = f"between {low} and {high}" if high is not None else f">= {low}"
        raise _bad(setting, value, f"must be {limits}")
    return int(value)


def _as_float(setting: str, value: Any, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(setting, value, "must be a finite number")
    if value < low or (high is not None and value > high):
        limits = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise _bad(setting, value, f"must be {limits}")
    return float(value)


def _as_pair(setting: str, value: Any, check: Any, low: Any, high: Any) -> tuple[Any, Any]:
    """An inclusive ``[lo, hi]`` pair (a single value means ``[v, v]``), each end checked by
    ``check(setting, value, low, high)`` (:func:`_as_int` or :func:`_as_float`)."""
    pair = list(value) if isinstance(value, list | tuple) else [value, value]
    if len(pair) != 2:
        raise _bad(setting, value, "must be a number or an inclusive [low, high] pair")
    lo = check(f"{setting}[0]", pair[0], low, high)
    hi = check(f"{setting}[1]", pair[1], low, high)
    if lo > hi:
        raise _bad(setting, value, "low must not exceed high")
    return lo, hi


def _as_float_range(setting: str, value: Any, low: float, high: float) -> tuple[float, float]:
    """An inclusive ``[lo, hi]`` pair of numbers within ``[low, high]``."""
    return _as_pair(setting, value, _as_float, low, high)


def _as_range(setting: str, value: Any, low: int, high: int) -> tuple[int, int]:
    """An inclusive ``[lo, hi]`` pair of whole numbers within ``[low, high]``."""
    return _as_pair(setting, value, _as_int, low, high)


def _as_bool(setting: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(setting, value, "must be true or false")
    return value


def check_writable(setting: str, folder: Path) -> Path:
    """Create ``folder`` if needed and prove a file can be written there.

    Raises:
        BadConfigError: the folder cannot be created or written (names ``setting``).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise _bad(
            setting,
            str(folder),
            f"output folder is not writable ({error.strerror or error}); "
            "choose a folder you can write to",
        ) from error
    return folder


#: Top-level keys of configs/synth.yaml that this command reads (``paths``/``hydra`` are not).
CONFIG_KEYS = (
    "out",
    "seed",
    "n_patients",
    "hips_per_patient",
    "clips_per_hip",
    "prevalence",
    "extrusion_threshold",
    "negative_mix",
    "difficulty",
    "splits",
    "clip",
    "overrides",
    "formats",
    "preview",
    "workers",
    "chunksize",
    "progress",
)


def _own_settings(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Plain, resolved values of :data:`CONFIG_KEYS` (other keys are left unresolved)."""
    raw: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        if key not in cfg:
            continue
        value = cfg[key]
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        raw[key] = value
    return raw


@lru_cache(maxsize=1)
def _yaml_file() -> dict[str, Any]:
    import labral.configs

    path = Path(labral.configs.__file__).resolve().parent / "synth.yaml"
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    assert isinstance(data, dict)
    return data


def yaml_defaults() -> dict[str, Any]:
    """The defaults of :data:`CONFIG_KEYS` as ``configs/synth.yaml`` writes them (the one
    source; ``out`` and the ``difficulty`` group are left to the caller and the default
    level)."""
    return {k: v for k, v in _yaml_file().items() if k in CONFIG_KEYS and k != "out"}


@dataclass(frozen=True)
class SynthSettings:
    """Everything ``synthesize`` needs, checked. Field names follow ``configs/synth.yaml``,
    which holds every default: build this with :meth:`from_config` on the composed config
    (the fallbacks there apply only to keys a hand-written mapping leaves out)."""

    out: Path
    seed: int
    n_patients: int
    hips_per_patient: tuple[int, int]
    clips_per_hip: tuple[int, int]
    prevalence: float
    extrusion_threshold: tuple[float, float]
    negative_mix: dict[str, float]
    difficulty: Difficulty
    splits: dict[str, float]
    frames: int
    height: int
    width: int
    fps_range: tuple[int, int]
    overrides: dict[str, Any]
    dicom_syntax: str
    jpeg_quality: int
    burned_in_text: bool
    mp4: bool
    preview: bool
    workers: int
    chunksize: int
    progress: bool

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
        """JSON-ready copy (recorded in ``dataset.json``)."""
        return {
            "out": str(self.out),
            "seed": self.seed,
            "n_patients": self.n_patients,
            "hips_per_patient": list(self.hips_per_patient),
            "clips_per_hip": list(self.clips_per_hip),
            "prevalence": self.prevalence,
            "extrusion_threshold": list(self.extrusion_threshold),
            "negative_mix": dict(self.negative_mix),
            "difficulty": self.difficulty.to_json(),
            "splits": dict(self.splits),
            "clip": {
                "frames": self.frames,
                "height": self.height,
                "width": self.width,
                "fps": list(self.fps_range),
            },
            "overrides": dict(self.overrides),
            "formats": {
                "dicom_syntax": self.dicom_syntax,
                "jpeg_quality": self.jpeg_quality,
                "burned_in_text": self.burned_in_text,
                "mp4": self.mp4,
            },
        }

    @classmethod
    def from_config(
        cls, cfg: DictConfig | Mapping[str, Any], *, check_out: bool = True
    ) -> SynthSettings:
        """Validate a ``synth`` config and build the settings.

        Args:
            cfg: the composed Hydra config (or a plain mapping with the same keys).
            check_out: also create ``out`` and prove it is writable.

        Returns:
            The checked settings.

        Raises:
            BadConfigError: the first bad setting, named in the message.
        """
        raw = _own_settings(cfg)
        out_value = raw.get("out")
        defaults = yaml_defaults()
        for key, value in defaults.items():
            given = raw.get(key)
            if key in ("clip", "formats") and given is not None:  # merged key by key
                if not isinstance(given, Mapping):
                    raise _bad(key, given, "must be a mapping of settings")
                raw[key] = {**value, **given}
            else:
                raw.setdefault(key, value)
        clip, formats = raw["clip"], raw["formats"]

        prevalence = _as_float("prevalence", raw["prevalence"], 0.0, 1.0)
        mix_raw = raw.get("negative_mix")
        if mix_raw is None:  # null: the generator's default mix
            mix_raw = dict(DEFAULT_NEGATIVE_MIX)
        if not isinstance(mix_raw, Mapping):
            raise _bad("negative_mix", mix_raw, "must map negative types to weights")
        mix: dict[str, float] = {}
        for name, weight in mix_raw.items():
            if name not in NEGATIVE_TYPES:
                raise _bad(f"negative_mix.{name}", weight, f"unknown type; use {NEGATIVE_TYPES}")
            mix[name] = _as_float(f"negative_mix.{name}", weight, 0.0)
        if prevalence < 1.0 and sum(mix.values()) <= 0:
            raise _bad("negative_mix", mix_raw, "needs a positive weight when prevalence < 1")

        splits_raw = raw["splits"]
        if not isinstance(splits_raw, Mapping) or set(splits_raw) - set(SPLIT_NAMES):
            raise _bad("splits", splits_raw, f"keys must be among {SPLIT_NAMES}")
        splits = {
            s: _as_float(f"splits.{s}", splits_raw.get(s, 0.0), 0.0, 1.0) for s in SPLIT_NAMES
        }
        if abs(sum(splits.values()) - 1.0) > 1e-6:
            raise _bad("splits", splits_raw, "fractions must add up to 1")
        if splits["train"] <= 0:
            raise _bad("splits.train", splits["train"], "must be > 0")

        fps_raw = clip["fps"]
        fps_range = _as_range("clip.fps", fps_raw, 2, 240)

        syntax = formats["dicom_syntax"]
        if syntax not in DICOM_SYNTAXES:
            raise _bad("formats.dicom_syntax", syntax, f"use one of {DICOM_SYNTAXES}")
        overrides = raw.get("overrides") or {}
        if not isinstance(overrides, Mapping):
            raise _bad("overrides", overrides, "must map generator parameter names to values")

        if out_value is None or str(out_value).strip() == "":
            raise _bad("out", out_value, "name the folder the data set goes to")
        out = Path(str(out_value)).expanduser()
        settings = cls(
            out=out,
            seed=_as_int("seed", raw["seed"], 0),
            n_patients=_as_int("n_patients", raw["n_patients"], 1),
            hips_per_patient=_as_range("hips_per_patient", raw["hips_per_patient"], 1, 2),
            clips_per_hip=_as_range("clips_per_hip", raw["clips_per_hip"], 1, 1000),
            prevalence=prevalence,
            extrusion_threshold=_as_float_range(
                "extrusion_threshold", raw["extrusion_threshold"], 0.0, 1.0
            ),
            negative_mix=mix,
            difficulty=load_difficulty(raw.get("difficulty")),
            splits=splits,
            frames=_as_int("clip.frames", clip["frames"], MIN_FRAMES, 4096),
            height=_as_int("clip.height", clip["height"], MIN_SIDE, MAX_SIDE),
            width=_as_int("clip.width", clip["width"], MIN_SIDE, MAX_SIDE),
            fps_range=fps_range,
            overrides=dict(overrides),
            dicom_syntax=syntax,
            jpeg_quality=_as_int("formats.jpeg_quality", formats["jpeg_quality"], 1, 95),
            burned_in_text=_as_bool("formats.burned_in_text", formats["burned_in_text"]),
            mp4=_as_bool("formats.mp4", formats["mp4"]),
            preview=_as_bool("preview", raw["preview"]),
            workers=_as_int("workers", raw["workers"], 0, 512),
            chunksize=_as_int("chunksize", raw["chunksize"], 1, 10_000),
            progress=_as_bool("progress", raw["progress"]),
        )
        if check_out:
            check_writable("out", settings.out)
        return settings
