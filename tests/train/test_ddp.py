"""DDP through torchrun on CPU (gloo, 2 processes, 2 tiny epochs); ~30-45 s on 2 shared cores.

Every rank must hold the same parameters after every epoch (hashed by ddp_hashing_run.py),
and the result must match a single process trained with the same global batch (2 ranks x 2
clips = 4 clips). The model has group norm and no dropout for this: batch statistics over
2 clips per rank, or dropout masks drawn per rank, would legitimately differ from one
process's batch of 4. Tolerance: 1e-5 absolute on every weight (measured: at most 1.2e-7,
float summation order, while training moves weights by ~5e-3) and 1e-4 on the validation NLL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labral.train.command import train
from labral.train.parts import build_model, seed_everything

from ._manifest_run import manifest_run_overrides  # noqa: TID252
from .test_train_data import BALANCED, write_manifest  # noqa: TID252

EPOCHS = 2


def shared_overrides(manifest: Path, run_dir: Path) -> list[str]:
    return manifest_run_overrides(
        manifest, run_dir, EPOCHS, "model.widths=[8,8,8,8]", "model.norm=group", "model.dropout=0.0"
    )


def epoch_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if "epoch" in row]


def test_torchrun_two_gloo_ranks_agree_and_match_one_process(tmp_path, train_cfg):
    manifest = write_manifest(tmp_path / "data", BALANCED)
    ddp_dir, single_dir, hashes = tmp_path / "ddp", tmp_path / "single", tmp_path / "hashes"
    hashes.mkdir()
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        str(Path(__file__).with_name("ddp_hashing_run.py")),
        "trainer=ddp",
        "trainer.accelerator=cpu",  # gloo, even where a GPU is visible
        "data.batch_size=2",
        *shared_overrides(manifest, ddp_dir),
    ]
    env = {
        **os.environ,
        "PYTHONSAFEPATH": "1",
        "OMP_NUM_THREADS": "1",
        "LABRAL_HASH_DIR": str(hashes),
    }
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("epoch 0:") == 1  # rank 0 only prints and logs
    assert [r["epoch"] for r in epoch_rows(ddp_dir)] == list(range(EPOCHS))
    ckpt = torch.load(ddp_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["config"]["trainer"]["strategy"] == "ddp"
    assert not any(k.startswith("module.") for k in ckpt["model"])  # unwrapped weights
    assert (ddp_dir / "test_metrics.json").is_file()

    for epoch in range(EPOCHS):
        rank0, rank1 = ((hashes / f"rank{rank}_epoch{epoch}.sha256").read_text() for rank in (0, 1))
        assert rank0 == rank1, f"the ranks' parameters differ after epoch {epoch}"

    single_cfg = train_cfg(
        "data.batch_size=4", *shared_overrides(manifest, single_dir), run_name="single"
    )
    train(single_cfg)
    single = torch.load(single_dir / "checkpoints" / "last.pt", weights_only=True)
    seed_everything(int(single_cfg.seed))  # the initial weights, as train() draws them
    start = build_model(single_cfg).state_dict()
    moved = 0.0
    for name, weight in single["model"].items():
        torch.testing.assert_close(ckpt["model"][name], weight, rtol=0, atol=1e-5, msg=name)
        moved = max(moved, float((weight - start[name]).abs().max()))
    assert moved > 1e-3  # trained weights are compared, not two copies of the initial ones
    assert ckpt["train_state"]["global_step"] == single["train_state"]["global_step"] == 4
    for ddp_row, single_row in zip(epoch_rows(ddp_dir), epoch_rows(single_dir), strict=True):
        assert ddp_row["val_nll"] == pytest.approx(single_row["val_nll"], abs=1e-4)
