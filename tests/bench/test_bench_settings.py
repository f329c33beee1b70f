"""``labral bench``'s settings: one typed model, composed through Hydra, YAML holds no keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labral.bench import (
    command,  # noqa: F401 - registers bench_schema in the ConfigStore
    failure_cases,
    subgroups,
)
from labral.bench.settings import BenchSettings
from labral.errors import BadConfigError
from labral.metrics import DEFAULT_ECE_BINS
from labral.settings import settings_from_config

BENCH_YAML = Path(command.__file__).resolve().parent.parent / "configs" / "bench.yaml"


def test_bench_yaml_holds_only_groups_every_default_is_the_models() -> None:
    loaded = yaml.safe_load(BENCH_YAML.read_text())
    assert set(loaded) == {"defaults", "hydra"}
    assert loaded["defaults"][0] == "bench_schema"


def test_composed_defaults_are_the_models(compose_bench, tmp_path: Path) -> None:
    cfg = compose_bench(tmp_path, ["+spatial_maps=true", "ece_bins=null"])
    settings = settings_from_config(BenchSettings, cfg, ignore=("paths",))
    assert settings.spatial_maps and settings.ece_bins == DEFAULT_ECE_BINS
    assert settings.cache_dir == f"{tmp_path}/data/bench_suites"
    defaults = BenchSettings()
    for key in ("suite", "workers", "overlap", "fail_under", "suite_overrides", "controls"):
        assert getattr(settings, key) == getattr(defaults, key), key
    assert settings.bootstrap.n == 60 and settings.bootstrap.seed == defaults.bootstrap.seed


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("bootstrap.n=0", "bootstrap.n"),
        ("workers=-1", "workers"),
        ("batch_size=x", "batch_size"),
        ("pdf=maybe", "pdf='maybe': give auto"),
        ("failure_cases=-1", "failure_cases"),
        ("subgroup_min_n=0", "subgroup_min_n"),
    ],
)
def test_bad_values_name_their_key(compose_bench, tmp_path: Path, override: str, key: str) -> None:
    cfg = compose_bench(tmp_path, [override])
    with pytest.raises(BadConfigError, match=key):
        settings_from_config(BenchSettings, cfg, ignore=("paths",))


def test_report_settings_default_once_and_read_as_typed() -> None:
    defaults = BenchSettings()
    assert defaults.pdf == "auto" and defaults.subgroup_min_n == subgroups.MIN_N
    assert failure_cases.TOP == defaults.failure_cases  # the page tool's default is the setting's
    assert [BenchSettings(pdf=v).pdf for v in ("auto", True, "false", "no")] == [
        "auto",
        True,
        False,
        False,
    ]


def test_a_bundle_path_hydra_reads_as_a_number_stays_a_path() -> None:
    assert BenchSettings(bundle=2024).bundle == ["2024"]  # type: ignore[arg-type]
    assert BenchSettings(bundle=["a", "b"]).bundle == ["a", "b"]
    assert BenchSettings(bundle=None).bundle == []  # type: ignore[arg-type]
