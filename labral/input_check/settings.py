"""How ``labral export`` fits the input check (``input_check.*`` keys): the one place of
every rule's default and allowed range.

    labral export run_dir=... input_check.max_repeated_fraction=0.4
    labral export run_dir=... input_check.enabled=false      # a bundle without a check

A fixed rule (``min_duration_s``, ...) is used as set; a fitted one (``null``) is set from
valid calibration clips so that at most ``false_refusal`` of them are refused (all
detectors together); a number given for a fitted one replaces the fit.
"""

from __future__ import annotations

from pydantic import Field

from labral.settings import Settings, Text

#: Patients of the check's own generated clips start here: below the suites' 2**32 offset
#: (:mod:`labral.bench.seeds`), so no benchmark suite ever holds one.
CHECK_SEED_BASE = 3_700_000_000


class InputCheckSettings(Settings):
    """Every key of ``input_check``, its type, its default and its range."""

    enabled: bool = Field(True, description="false: export a bundle without an input check")
    min_duration_s: float = Field(
        0.8, gt=0, le=10, description="shorter clips cannot hold one loading stroke"
    )
    min_intensity_std: float = Field(
        0.02, gt=0, lt=0.5, description="grey-level spread (0..1) below which a clip is blank"
    )
    max_saturated_fraction: float = Field(
        0.2, gt=0, le=1, description="share of pixels at 250+ above which a clip is saturated"
    )
    max_repeated_fraction: float = Field(
        0.3, gt=0, le=1, description="share of repeated frames above which frames are missing"
    )
    min_structure: float = Field(
        0.5, gt=0, lt=1, description="anatomy persisting over frames (valid 0.85+, noise ~0)"
    )
    min_motion: float | None = Field(None, gt=0, description="null: fitted; the hip must move")
    max_view_logit: float | None = Field(
        None, ge=-50, le=50, description="null: fitted; view network logit"
    )
    max_ood_distance: float | None = Field(
        None, gt=0, description="null: fitted; Mahalanobis distance"
    )
    false_refusal: float = Field(
        0.01, gt=0, le=0.2, description="share of valid calibration clips refused, at most"
    )
    group_false_refusal: float = Field(
        0.02,
        gt=0,
        le=0.2,
        description="share refused of any one difficulty level's calibration clips, at most "
        "(a level's tail is wider than the pool's; at one or two clips in a hundred the "
        "pooled budget would push every threshold beyond the last valid clip)",
    )
    margin: float = Field(
        0.25,
        ge=0,
        le=2,
        description="fitted thresholds moved this share of (quantile - median) "
        "further from the valid clips",
    )
    synthetic_valid_per_level: int = Field(
        160, ge=0, description="generated valid clips per difficulty level (0: the manifest only)"
    )
    manifest_clips: int = Field(
        240, ge=0, description="at most this many clips of the run's train and val splits each"
    )
    wrong_per_kind: int = Field(48, ge=2, description="generated wrong inputs per training kind")
    epochs: int = Field(60, ge=1, le=200, description="view network epochs")
    seed: int = Field(0, ge=0, description="seed of the generated clips and of training")
    cache_dir: Text | None = Field(
        "${paths.data_dir}/input_check_cache",
        description="fitted checks keyed by their inputs (null: always fit)",
    )
