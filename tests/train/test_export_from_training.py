"""The checkpoint contract end to end: a real (tiny) `labral train` run exported to a bundle.

Uses TRAIN's fixtures from tests/train/conftest.py (``train_cfg``, ``tiny_datasets``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from labral.bundle import load_bundle
from labral.train import export as export_mod
from labral.train.command import train


def test_a_trained_run_exports_to_a_bundle_that_scores_like_its_best_checkpoint(
    train_cfg, tiny_datasets, tmp_path
) -> None:
    cfg = train_cfg("trainer.max_epochs=1")
    train(cfg, datasets=tiny_datasets())
    run_dir = Path(cfg.paths.output_dir)
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        export_cfg = compose(
            "export",
            overrides=[f"run_dir={run_dir}", f"out={tmp_path / 'bundle'}", "formats=[torchscript]"],
        )
    bundle = load_bundle(export_mod.run(export_cfg))
    calibration = json.loads((run_dir / "calibration.json").read_text())
    assert bundle.temperature == calibration["temperature"]
    assert bundle.threshold == calibration["threshold"]
    assert bundle.spec["data_fingerprint"] == calibration["data_fingerprint"]
    assert bundle.spec["eval_transform"]["frames"] == 8
    assert bundle.spec["input_spec"]["size"] == [32, 32]
    assert bundle.spec["model_name"] == "labral-compact"

    training = export_mod.load_training_run(run_dir / "checkpoints" / "best.pt", None)
    model = export_mod.build_model(training)
    x = torch.stack([tiny_datasets()["test"][i]["image"] for i in range(4)])
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(bundle.predict(x)["logits"], want, rtol=0, atol=1e-5)
