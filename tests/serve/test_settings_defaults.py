"""One source per default: ReadLimits for the read limits, ServeSettings for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

import labral.configs
from labral.datasets.io.limits import ReadLimits
from labral.errors import BadConfigError
from labral.runtimes import DEFAULT_RUNTIME
from labral.serve import settings as settings_module
from labral.serve.asgi import env_names, settings_from_env
from labral.serve.command import SCHEMA_NAME
from labral.serve.settings import DicomSettings, ServeSettings, StreamSettings
from labral.settings import settings_from_config

SERVE_YAML = Path(labral.configs.__file__).parent / "serve.yaml"


def test_read_limits_are_the_readers_defaults(tmp_path):
    limits, settings = ReadLimits(), ServeSettings(bundle=tmp_path)
    assert (settings.max_frames, settings.max_rows, settings.max_cols) == (
        limits.max_frames,
        limits.max_rows,
        limits.max_cols,
    )
    got = settings.read_limits()
    assert (got.max_frames, got.max_rows, got.max_cols) == (
        limits.max_frames,
        limits.max_rows,
        limits.max_cols,
    )


def test_service_limit_defaults_point_at_the_reader():
    """ServeSettings' fields take ReadLimits' dataclass defaults instead of restating them."""
    assert settings_module._READER == ReadLimits()
    for name in ("max_frames", "max_rows", "max_cols"):
        assert ServeSettings.model_fields[name].default == getattr(ReadLimits, name)


def _leaves(node, prefix=""):
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaves(value, name + ".")
        else:
            yield name, value


def test_serve_yaml_states_no_setting_the_model_states():
    """The YAML lists serve_schema first, then only groups and interpolations: every key,
    type and default is ServeSettings' (one statement; item 3 of issue 21)."""
    raw = OmegaConf.to_container(OmegaConf.load(SERVE_YAML), resolve=False)
    assert raw["defaults"][0] == SCHEMA_NAME
    settings = {k: v for k, v in raw.items() if k not in ("defaults", "hydra")}
    assert all(str(value).startswith("${") for _, value in _leaves(settings)), settings
    assert set(settings) == {"api_key", "state_dir"}


def test_the_schema_is_every_field_with_its_default(tmp_path):
    schema = ConfigStore.instance().load(f"{SCHEMA_NAME}.yaml").node
    composed = OmegaConf.to_container(schema, resolve=False)
    assert composed["bundle"] == "???"
    composed["bundle"] = str(tmp_path)
    assert settings_from_config(ServeSettings, composed) == ServeSettings(bundle=tmp_path)


def test_null_means_the_default(tmp_path):
    nulls = {name: None for name in ServeSettings.model_fields if name != "bundle"}
    nulls["dicom"] = {name: None for name in DicomSettings.model_fields}
    settings = settings_from_config(ServeSettings, {"bundle": tmp_path, **nulls})
    assert settings == ServeSettings(bundle=tmp_path)


def test_asgi_and_hydra_defaults_agree(tmp_path):
    """The env factory adds no defaults of its own: unset variables are the model's defaults."""
    from_env = settings_from_env({"LABRAL_BUNDLE": str(tmp_path)})
    assert from_env == ServeSettings(bundle=tmp_path)


def test_asgi_variables_are_derived_from_the_fields(tmp_path):
    names = {variable: path for variable, path, _ in env_names()}
    flat = {f"LABRAL_{name.upper()}" for name in ServeSettings.model_fields} - {
        "LABRAL_STORE",
        "LABRAL_DICOM",
        "LABRAL_STREAM",
    }
    stream = {f"LABRAL_STREAM_{name.upper()}" for name in StreamSettings.model_fields}
    assert flat | stream | {"LABRAL_STORE_URL", "LABRAL_STORE_RETENTION_DAYS"} == set(names)
    assert not any(path[0] == "dicom" for path in names.values())
    settings = settings_from_env(
        {"LABRAL_BUNDLE": str(tmp_path), "LABRAL_PREVIEW_WIDTH": "64", "LABRAL_MIN_FPS": "5"}
    )
    assert (settings.preview_width, settings.min_fps) == (64, 5.0)


def test_the_runtime_default_is_labral_runtimes_and_a_wrong_one_is_named(tmp_path):
    assert ServeSettings.model_fields["runtime"].default == DEFAULT_RUNTIME
    assert ServeSettings(bundle=tmp_path, runtime="export").runtime == "export"
    with pytest.raises(BadConfigError, match="^runtime='tflite' is not known"):
        settings_from_config(ServeSettings, {"bundle": tmp_path, "runtime": "tflite"})
