"""``labral bench``'s settings: one typed model, the one statement of every key and default.

``configs/bench.yaml`` lists this model's schema first (``bench_schema``, registered by
:mod:`labral.bench.command`) and then holds only its config groups; the command validates
the composed config into :class:`BenchSettings` and hands it to the passes, the evaluation
and :mod:`labral.bench.saved_predictions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from labral.bench.bootstrap import metric_functions
from labral.bench.subgroups import MIN_N
from labral.metrics import DEFAULT_ECE_BINS, ClusterBootstrap
from labral.settings import Settings, Text

SCHEMA_NAME = "bench_schema"

#: switches a user adds on the command line (``+spatial_maps=true``), kept out of the schema
ADDED_ON_COMMAND_LINE = ("spatial_maps",)


def _path_list(value: Any) -> Any:
    """A path or a list of paths as a list (empty when not given)."""
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


#: ``bundle=path`` or ``bundle=[a,b]``: always a list of paths (empty when not given)
PathList = Annotated[list[Text], BeforeValidator(_path_list)]

PDF_TEXT = {"auto": "auto", "true": True, "yes": True, "false": False, "no": False}


def _pdf_mode(value: Any) -> Any:
    """``pdf=auto|true|false`` (a bool as Hydra parses it, or that text) as "auto" or a bool."""
    if isinstance(value, bool):
        return value
    mode = PDF_TEXT.get(str(value).strip().lower())
    if mode is None:
        raise ValueError("give auto (a PDF where Chromium is found), true (required) or false")
    return mode


#: ``pdf=auto`` (write report.pdf where headless Chromium is found), ``true`` or ``false``
PdfMode = Annotated[Literal["auto"] | bool, BeforeValidator(_pdf_mode)]


class BootstrapSettings(Settings):
    """The patient-level cluster bootstrap behind every confidence interval."""

    n: int = Field(1000, ge=1, description="replicates")
    seed: int = 20240601
    level: float = Field(0.95, gt=0, lt=1, description="confidence level of the intervals")

    def plan(self, records: Sequence[Mapping[str, Any]]) -> ClusterBootstrap:
        """The resampling plan over ``records``' patients (the same for every pass of a run)."""
        return ClusterBootstrap([r["patient"] for r in records], self.n, self.seed)


class BenchSettings(Settings):
    """Every key of ``labral bench``, its type and its default."""

    bundle: PathList = Field(
        default_factory=list, description="bundle folder(s); the first is the candidate"
    )
    predictions: PathList = Field(
        default_factory=list,
        description="instead of bundle: saved predictions CSV(s), no model run (paired by path)",
    )
    suite: Text = Field("synthetic-id", description="a name in configs/suites/ or a manifest path")
    suite_overrides: dict[str, Any] = Field(
        default_factory=lambda: dict.fromkeys(("n_patients", "clips_per_patient", "difficulty")),
        description="replace suite definition keys (null = keep; others with +key=...), e.g. "
        "n_patients=20 for a quick run, difficulty=easy|medium|hard|expert",
    )
    cache_dir: Text = Field(
        "${paths.data_dir}/bench_suites", description="generated suites, keyed by content hash"
    )
    generate_workers: int = Field(2, ge=1, description="processes generating an uncached suite")
    out: Text | None = Field(None, description="output folder; null = Hydra's run dir")

    runtime: str | None = Field(None, description="null = labral.runtimes.DEFAULT_RUNTIME")
    batch_size: int = Field(16, ge=1, description="clips per model call")
    workers: int = Field(1, ge=0, description="decoding threads ahead of the model (0 = inline)")
    threads: int | None = Field(None, ge=1, description="torch threads; null = cores - workers")
    latency_clips: int = Field(8, ge=0, description="clips timed one by one (0 = skip)")
    progress: bool = True

    bootstrap: BootstrapSettings = Field(default_factory=BootstrapSettings)
    ece_bins: int = Field(
        DEFAULT_ECE_BINS, ge=1, description="equal-width ECE bins; null = the training default"
    )
    localisation_tolerance: int = Field(
        1, ge=0, description="a relevance peak within +-this many source frames is a hit"
    )
    controls: bool = Field(
        True, description="score every positive reversed, shuffled and motionless"
    )
    pointing_game: bool = Field(True, description="spatial maps on positives with masks")
    overlap: str = Field(
        "refuse",
        description="manifest patients in a bundle's training splits: refuse|exclude|ignore",
    )
    spatial_maps: bool = Field(False, description="+spatial_maps=true: write spatial_maps.npz")
    subgroup_min_n: int = Field(
        MIN_N, ge=1, description="clips a subgroup needs (and both classes) to be estimable"
    )
    failure_cases: int = Field(
        5, ge=0, description="top false positives and negatives in report.html (0 = none)"
    )
    pdf: PdfMode = Field(
        "auto",
        description="report.pdf by headless Chromium: auto (where found), true (required), false",
    )
    prevalence: list[float] = Field(
        default_factory=list,
        description="decision curves also at these prevalences, e.g. prevalence=[0.1,0.3]",
    )
    fail_under: dict[str, float | None] = Field(
        default_factory=lambda: dict.fromkeys(metric_functions()),
        description="gate on the first model: metric -> threshold (brier, ece: ceilings)",
    )

    @field_validator("prevalence")
    @classmethod
    def _prevalences_in_range(cls, value: list[float]) -> list[float]:
        """Every prevalence strictly between 0 and 1."""
        if any(not 0 < p < 1 for p in value):
            raise ValueError(f"prevalence: every value must lie in (0, 1), got {value}")
        return value

    @field_validator("ece_bins", mode="before")
    @classmethod
    def _default_bins(cls, value: Any) -> Any:
        """``ece_bins=null`` is the bin count shared with training."""
        return DEFAULT_ECE_BINS if value is None else value
