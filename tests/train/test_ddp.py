"""DDP through torchrun on CPU (gloo, 2 processes, 1 tiny epoch); 26-40 s on 2 shared cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from .test_train_data import BALANCED, write_manifest  # noqa: TID252


def test_torchrun_two_processes_gloo(tmp_path):
    manifest = write_manifest(tmp_path / "data", BALANCED)
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "-m",
        "labral.train.command",
        "trainer=ddp",
        "trainer.max_epochs=1",
        "trainer.num_threads=1",
        "trainer.progress=false",
        f"data.manifest={manifest}",
        "data.batch_size=2",
        "data.cache_dir=null",
        "transforms.eval.frames=8",
        "transforms.eval.size=[32,32]",
        "model.widths=[4,8,8,8]",
        f"paths.root_dir={tmp_path}",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "PYTHONSAFEPATH": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("epoch 0:") == 1  # rank 0 only prints and logs
    epochs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs if "epoch" in r] == [0]
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["config"]["trainer"]["strategy"] == "ddp"
    assert not any(k.startswith("module.") for k in ckpt["model"])  # unwrapped weights
    assert Path(run_dir / "test_metrics.json").is_file()
