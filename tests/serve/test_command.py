"""`labral serve` config composition and start-up checks (no server is started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException

from labral.datasets.io.limits import ReadLimits
from labral.errors import BadConfigError, IncompatibleBundleError
from labral.serve import command
from labral.serve.asgi import settings_from_env
from labral.serve.settings import ServeSettings


def compose_serve(tmp_path, *overrides: str):
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        cfg = compose(
            "serve",
            overrides=[f"paths.output_root={tmp_path}", *overrides],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_defaults_are_safe(tmp_path, bundle_dir, monkeypatch):
    monkeypatch.delenv("LABRAL_API_KEY", raising=False)
    cfg = compose_serve(tmp_path, f"bundle={bundle_dir}")
    assert cfg.hydra.job.name == "serve"
    settings = command.settings_from_config(cfg)
    assert settings.host == "127.0.0.1" and settings.api_key is None
    assert settings.cors_origins == [] and settings.samples_dir is None
    assert settings == ServeSettings(bundle=bundle_dir, state_dir=settings.state_dir)
    assert settings.max_frames == ReadLimits().max_frames


def test_null_keys_take_overrides(tmp_path, bundle_dir):
    cfg = compose_serve(
        tmp_path, f"bundle={bundle_dir}", "port=9001", "dicom.allowed_callers=[US_ROOM_3]"
    )
    settings = command.settings_from_config(cfg)
    assert settings.port == 9001 and settings.dicom.allowed_callers == ["US_ROOM_3"]


def test_api_key_from_environment(tmp_path, bundle_dir, monkeypatch):
    monkeypatch.setenv("LABRAL_API_KEY", "from-env")
    cfg = compose_serve(tmp_path, f"bundle={bundle_dir}", "host=0.0.0.0")
    settings = command.settings_from_config(cfg)
    assert settings.api_key == "from-env" and settings.auth_required


def test_refuses_exposed_host_without_key(tmp_path, bundle_dir, monkeypatch):
    monkeypatch.delenv("LABRAL_API_KEY", raising=False)
    cfg = compose_serve(tmp_path, f"bundle={bundle_dir}", "host=0.0.0.0")
    with pytest.raises(BadConfigError, match="api_key"):
        command.run(cfg)


def test_unknown_setting_is_named(tmp_path, bundle_dir):
    cfg = compose_serve(tmp_path, f"bundle={bundle_dir}", "+max_batchh=3")
    with pytest.raises(BadConfigError, match="^max_batchh: unknown setting$"):
        command.settings_from_config(cfg)
    with pytest.raises(ConfigCompositionException, match="max_batchh"):  # no '+': Hydra says
        compose_serve(tmp_path, f"bundle={bundle_dir}", "max_batchh=3")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["port=9000"], {"port": 9000}),
        (["host=0.0.0.0", "api_key=k"], {"host": "0.0.0.0", "api_key": "k"}),
        (["runtime=torchscript", "max_batch=4"], {"runtime": "torchscript", "max_batch": 4}),
        (["cors_origins=[http://a.example]"], {"cors_origins": ["http://a.example"]}),
        (["max_frames=100", "port=null"], {"max_frames": 100, "port": 8000}),
        (["state_dir=/var/lib/labral"], {"state_dir": Path("/var/lib/labral")}),
    ],
)
def test_documented_overrides_compose(tmp_path, bundle_dir, overrides, expected):
    settings = command.settings_from_config(
        compose_serve(tmp_path, f"bundle={bundle_dir}", *overrides)
    )
    assert {key: getattr(settings, key) for key in expected} == expected


def test_overrides_of_the_parts_compose(tmp_path, bundle_dir):
    settings = command.settings_from_config(
        compose_serve(
            tmp_path,
            f"bundle={bundle_dir}",
            "dicom.enabled=true",
            "dicom.port=11113",
            "dicom.forward.ae_title=PACS",
            "dicom.forward.host=pacs.example",
            "dicom.forward.port=104",
            "store.retention_days=30",
            "store.url=postgresql+psycopg://labral@db/labral",
        )
    )
    assert settings.dicom.enabled and settings.dicom.port == 11113
    assert settings.dicom.forward.enabled and settings.dicom.forward.retries == 3  # default
    assert settings.store.retention_days == 30 and settings.store.url.startswith("postgresql")
    assert settings.state_dir == tmp_path / "serve"  # configs/serve.yaml's interpolation


def test_bad_bundle_fails_before_binding(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: started.append(1))
    cfg = compose_serve(tmp_path, f"bundle={tmp_path}")
    with pytest.raises(IncompatibleBundleError, match="metadata.json"):
        command.run(cfg)
    assert not started


def test_asgi_factory_settings_from_env(bundle_dir):
    settings = settings_from_env(
        {
            "LABRAL_BUNDLE": str(bundle_dir),
            "LABRAL_HOST": "0.0.0.0",
            "LABRAL_API_KEY": "k",
            "LABRAL_MAX_BATCH": "4",
            "LABRAL_CORS_ORIGINS": "http://a.example,http://b.example",
        }
    )
    assert settings.max_batch == 4 and settings.auth_required
    assert settings.cors_origins == ["http://a.example", "http://b.example"]
    with pytest.raises(BadConfigError, match="LABRAL_BUNDLE"):
        settings_from_env({})
    with pytest.raises(BadConfigError, match="api_key"):
        settings_from_env({"LABRAL_BUNDLE": str(bundle_dir), "LABRAL_HOST": "0.0.0.0"})
