"""The checkpoint contract end to end: a real (tiny) `labral train` run exported to a bundle.

Uses TRAIN's fixtures from tests/train/conftest.py (``train_cfg``, ``motion_datasets``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from labral.bundle import load_bundle
from labral.datasets.io.clip import Clip
from labral.scoring import ClipScorer
from labral.train import export as export_mod
from labral.train.command import train
from tests.helpers.configs import SMALL_CHECK
from tests.helpers.input_check import blank_frames


def test_a_trained_run_exports_to_a_bundle_that_scores_like_its_best_checkpoint(
    train_cfg, motion_datasets, tmp_path
) -> None:
    # half-trained (2 epochs): temperature (~4.9) and threshold (~0.44) both matter below
    cfg = train_cfg("trainer.max_epochs=2", "optim.lr=0.01", "logger.tensorboard=false")
    train(cfg, datasets=motion_datasets)
    run_dir = Path(cfg.paths.output_dir)
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        export_cfg = compose(
            "export",
            overrides=[f"run_dir={run_dir}", f"out={tmp_path / 'bundle'}", *SMALL_CHECK],
        )
    bundle = load_bundle(export_mod.run(export_cfg))  # the default formats and runtime
    assert {"model.ts", "model.pt2", "model.onnx"} <= {p.name for p in bundle.path.iterdir()}
    calibration = json.loads((run_dir / "calibration.json").read_text())
    assert bundle.temperature == calibration["temperature"]
    assert bundle.threshold == calibration["threshold"]
    assert bundle.spec["data_fingerprint"] == calibration["data_fingerprint"]
    assert bundle.spec["eval_transform"]["frames"] == 8
    assert bundle.spec["input_spec"]["size"] == [32, 32]
    assert bundle.spec["model_name"] == "labral-compact"

    training = export_mod.load_training_run(run_dir / "checkpoints" / "best.pt", None)
    model = export_mod.build_model(training)
    test = motion_datasets["test"]
    x = torch.stack([test[i]["image"] for i in range(len(test))])
    with torch.no_grad():
        want = model(x)
    out = bundle.predict(x)
    torch.testing.assert_close(out["logits"], want, rtol=0, atol=1e-5)
    # calibrated as calibration.json says, and decided at its threshold
    probability = torch.sigmoid(want / calibration["temperature"])
    torch.testing.assert_close(out["probability"], probability, rtol=0, atol=1e-6)
    decision = probability >= calibration["threshold"]
    assert abs(math.log(calibration["temperature"])) > 0.1, "T ~ 1 cannot show it is applied"
    assert (decision != (probability >= 0.5)).any(), "no clip tells the threshold from 0.5"
    assert torch.equal(out["decision"], decision)
    # the default export fits an input check into the bundle: thresholds in its metadata,
    # a blank clip refused by the bundle's own scorer
    check = bundle.input_check
    assert check is not None
    assert bundle.spec["input_check"]["thresholds"]["max_view_logit"] == (
        check.thresholds.max_view_logit
    )
    assert set(bundle.spec["input_check"]["info"]["thresholds_fitted"]) == {
        "min_motion",
        "max_view_logit",
        "max_ood_distance",
    }
    blank = ClipScorer(bundle).score(Clip(frames=blank_frames(), fps=20.0))
    assert blank.verdict.reasons[0] == "image_quality"
