"""The GPU trainer (bf16 autocast, channels_last_3d, on-device batches); needs CUDA."""

from __future__ import annotations

import pytest
import torch

from labral.train.command import train

from .test_train_data import BALANCED, write_manifest  # noqa: TID252


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("on_device", ["false", "true"])
def test_gpu_trainer_bf16_channels_last(train_cfg, tmp_path, on_device):
    manifest = write_manifest(tmp_path / "data", BALANCED)
    cfg = train_cfg(
        "trainer=gpu",
        f"data.manifest={manifest}",
        "trainer.max_epochs=2",
        "data.cache_dir=null",
        f"data.on_device={on_device}",
        "trainer.progress=false",
        "trainer.num_threads=1",
    )
    assert cfg.trainer.precision == "bf16" and cfg.trainer.channels_last_3d
    result = train(cfg)
    assert result["epochs_run"] == 2
    assert 0.0 <= result["test"]["auroc"] <= 1.0
