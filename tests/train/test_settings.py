"""One settings style for ``labral train``, ``labral export`` and ``labral curve``: each
command's typed model is the one statement of its keys and defaults, the YAML lists the
model's schema and holds only what differs, and a bad value is a named error."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import labral.train.curve  # noqa: F401 - registers curve_schema
import labral.train.export  # noqa: F401 - registers export_schema
from labral.errors import BadConfigError
from labral.settings import settings_from_config
from labral.train.settings import (
    CurveSettings,
    ExportSettings,
    TrainerSettings,
    TrainSettings,
    train_settings,
)


def _compose(name: str, *overrides: str, hydra_node: bool = False) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=hydra_node)


def test_the_composed_defaults_are_the_models_defaults() -> None:
    assert train_settings(_compose("train")) == TrainSettings()
    export = settings_from_config(ExportSettings, _compose("export"), ignore=("paths",))
    # the check's cache sits under ${paths.data_dir}, which composing resolves
    assert export.input_check.cache_dir.endswith("/input_check_cache")
    default = ExportSettings().model_copy()
    default.input_check = default.input_check.model_copy(
        update={"cache_dir": export.input_check.cache_dir}
    )
    assert export == default
    curve = _compose("curve", "out=/tmp/curve")
    assert settings_from_config(CurveSettings, curve, ignore=("paths",)) == CurveSettings(
        out="/tmp/curve"
    )


def test_trainer_groups_hold_only_what_differs() -> None:
    gpu = train_settings(_compose("train", "trainer=gpu")).trainer
    assert (gpu.accelerator, gpu.precision, gpu.channels_last_3d) == ("gpu", "bf16", True)
    assert gpu.model_dump(exclude={"accelerator", "precision", "channels_last_3d"}) == (
        TrainerSettings().model_dump(exclude={"accelerator", "precision", "channels_last_3d"})
    )
    demo = train_settings(_compose("train", "experiment=demo"))
    assert (demo.task_name, demo.trainer.max_epochs) == ("demo", 6)


def test_command_line_values_are_typed() -> None:
    settings = train_settings(_compose("train", "trainer.precision=32", "cv.folds=5"))
    assert settings.trainer.precision == "32" and settings.cv.folds == 5
    export = settings_from_config(
        ExportSettings, _compose("export", "model_version=2", "verify.clips=2"), ignore=("paths",)
    )
    assert export.model_version == "2" and export.verify.clips == 2


def test_a_bad_value_is_a_named_config_error() -> None:
    with pytest.raises(BadConfigError, match=r"trainer\.max_epochs"):
        train_settings(_compose("train", "trainer.max_epochs=many"))
    with pytest.raises(BadConfigError, match=r"verify\.atol"):
        settings_from_config(
            ExportSettings, _compose("export", "verify.atol=tiny"), ignore=("paths",)
        )


def test_a_hydra_node_that_cannot_resolve_outside_a_run_is_not_read() -> None:
    # composed with return_hydra_config but never set as the running HydraConfig: the hydra
    # node's ${hydra:...} interpolations cannot resolve, and the settings do not need them
    cfg = _compose("export", "out=/tmp/bundle", hydra_node=True)
    HydraConfig.instance().cfg = None  # type: ignore[assignment]
    assert settings_from_config(ExportSettings, cfg, ignore=("paths",)).out == "/tmp/bundle"
