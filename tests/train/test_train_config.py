"""The train config tree: every group option composes, sweeps/launchers resolve, and the
`labral train` Hydra app writes into its run dir."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

from labral.cli import main as cli_main
from labral.errors import BadConfigError
from labral.train import command
from labral.train.command import run
from labral.train.data import manifest_path

from .test_train_data import BALANCED, write_manifest  # noqa: TID252


def compose_train(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(
    "override",
    [
        "trainer=cpu",
        "trainer=gpu",
        "trainer=ddp",
        "data=synth",
        "experiment=demo",
        "model=still_frame",
        "model=r2plus1d_18",
    ],
)
def test_group_options_compose(override):
    cfg = compose_train(override)
    assert cfg.optim._partial_ and cfg.scheduler._partial_
    assert cfg.data.manifest.endswith("synth/manifest.jsonl")


def test_user_manifest_requires_a_path():
    cfg = compose_train("data=manifest", "data.manifest=/x/m.jsonl")
    assert cfg.data.manifest == "/x/m.jsonl" and cfg.data.sampling == "balanced"
    # without the path it stops, rather than silently training on the synthetic manifest
    bare = compose_train("data=manifest")
    assert bare.data.manifest is None
    with pytest.raises(BadConfigError, match="data=manifest needs the file"):
        manifest_path(bare)


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_optuna_sweeper_and_slurm_launcher_compose():
    # plain imports above: the dev extra installs both plugins, so a missing one fails
    cfg = compose_train("hparams_search=optuna")
    assert cfg.hydra.sweeper._target_ == qualified_name(OptunaSweeper)
    assert cfg.hydra.sweeper.direction == "maximize"
    assert cfg.optimized_metric == "best_val_auroc"
    cfg = compose_train("experiment=slurm")
    assert cfg.hydra.launcher._target_ == qualified_name(SlurmLauncher)


def test_run_returns_the_optimized_metric_as_float(train_cfg, tiny_datasets, monkeypatch):
    datasets = tiny_datasets()
    monkeypatch.setattr(command, "build_datasets", lambda cfg: datasets)
    value = run(train_cfg("optimized_metric=best_val_auroc", "trainer.max_epochs=1"))
    assert isinstance(value, float) and 0.0 <= value <= 1.0


def test_labral_train_cli_writes_hydra_run_dir(tmp_path):
    manifest = write_manifest(tmp_path / "data", BALANCED)
    run_dir = tmp_path / "run"
    GlobalHydra.instance().clear()
    status = cli_main(
        [
            "train",
            f"data.manifest={manifest}",
            "data.batch_size=4",
            "data.cache_dir=null",
            "trainer.max_epochs=1",
            "trainer.num_threads=1",
            "trainer.progress=false",
            "transforms.eval.frames=8",
            "transforms.eval.size=[32,32]",
            "model.widths=[4,8,8,8]",
            f"paths.root_dir={tmp_path}",
            f"hydra.run.dir={run_dir}",
        ]
    )
    assert status == 0
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    assert json.loads((run_dir / "test_metrics.json").read_text())["n"] == 4
