"""One source per default: ReadLimits for the read limits, ServeSettings for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from pydantic import BaseModel

import labral.configs
from labral.datasets.io.limits import ReadLimits
from labral.errors import BadConfigError
from labral.runtimes import DEFAULT_RUNTIME
from labral.serve import settings as settings_module
from labral.serve.asgi import settings_from_env
from labral.serve.settings import DicomSettings, ServeSettings

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


def test_serve_yaml_restates_no_default():
    """Each key is null (the model's default) or a value the model cannot know (???, ${...})."""
    raw = OmegaConf.to_container(OmegaConf.load(SERVE_YAML), resolve=False)
    restated = [
        (name, value)
        for name, value in _leaves({k: v for k, v in raw.items() if k not in ("defaults", "hydra")})
        if value is not None and value != "???" and not str(value).startswith("${")
    ]
    assert restated == []


def _model_keys(model: type[BaseModel], prefix=""):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _model_keys(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_serve_yaml_lists_every_setting():
    """Every setting has a key in the YAML, so `labral serve <key>=...` overrides it."""
    raw = OmegaConf.to_container(OmegaConf.load(SERVE_YAML), resolve=False)
    yaml_keys = {name for name, _ in _leaves(raw) if not name.startswith(("defaults", "hydra"))}
    assert set(_model_keys(ServeSettings)) == yaml_keys


def test_null_means_the_default(tmp_path):
    nulls = {name: None for name in ServeSettings.model_fields if name != "bundle"}
    nulls["dicom"] = {name: None for name in DicomSettings.model_fields}
    settings = ServeSettings.from_mapping({"bundle": tmp_path, **nulls})
    assert settings == ServeSettings(bundle=tmp_path)


def test_asgi_and_hydra_defaults_agree(tmp_path):
    """The env factory adds no defaults of its own: unset variables are the model's defaults."""
    from_env = settings_from_env({"LABRAL_BUNDLE": str(tmp_path)})
    assert from_env == ServeSettings(bundle=tmp_path)


def test_the_runtime_default_is_labral_runtimes_and_a_wrong_one_is_named(tmp_path):
    assert ServeSettings.model_fields["runtime"].default == DEFAULT_RUNTIME
    assert ServeSettings(bundle=tmp_path, runtime="export").runtime == "export"
    with pytest.raises(BadConfigError, match="serve.runtime: .*'tflite' is not known"):
        ServeSettings.from_mapping({"bundle": tmp_path, "runtime": "tflite"})
