"""A training process SIGKILLed right after a checkpoint resumes to the bit-identical result.

Real conditions: ``python -m labral.train.command`` in a subprocess, the manifest data path
with the default augmentation (``transforms.augment``), dropout 0.2 (its masks come from the
global torch RNG, so the run only repeats itself if resume restores that RNG), and a kill
that gives the process no chance to clean up. The uninterrupted reference runs in this
process through the same command-line overrides (the numbers must not depend on the process
either); the killed and the resumed run are subprocesses of ~5 s CPU each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from labral.train.command import train

from ._manifest_run import manifest_run_overrides  # noqa: TID252
from .test_train_data import BALANCED, write_manifest  # noqa: TID252

EPOCHS = 3


def tiny_overrides(manifest: Path, run_dir: Path) -> list[str]:
    """A tiny manifest run: 8x32x32 input, 4-8 channels, dropout 0.2, 3 epochs."""
    return manifest_run_overrides(
        manifest,
        run_dir,
        EPOCHS,
        "data.batch_size=2",
        "model.widths=[4,8,8,8]",
        "model.dropout=0.2",
    )


def train_command(manifest: Path, run_dir: Path, *overrides: str) -> list[str]:
    """``python -m labral.train.command`` with :func:`tiny_overrides` and ``overrides``."""
    command = [sys.executable, "-m", "labral.train.command"]
    return [*command, *tiny_overrides(manifest, run_dir), *overrides]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONSAFEPATH": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def run_to_end(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=child_env())
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def kill_after_first_checkpoint(command: list[str], run_dir: Path) -> None:
    """Start ``command``, SIGKILL it as soon as epoch 0 is reported (checkpoints/last.pt of
    epoch 0 is written just before that line), and wait for it to die."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env(),
    )
    try:
        deadline = time.monotonic() + 300
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("epoch 0:"):
                process.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "no epoch finished in 300 s"
        else:
            raise AssertionError(f"the run ended (rc {process.wait()}) before epoch 0 reported")
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    killed = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert killed["epoch"] < EPOCHS - 1, "the kill came too late to test a resume"
    assert not (run_dir / "test_metrics.json").exists()


def epoch_metrics(run_dir: Path) -> dict[int, dict[str, Any]]:
    """Per-epoch metrics.jsonl rows by epoch (a resumed run appends to the killed run's file),
    without wall-clock time and throughput."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        row["epoch"]: {k: v for k, v in row.items() if k not in ("clips_per_s", "time")}
        for row in rows
        if "epoch" in row
    }


def assert_same_tensors(a: Any, b: Any, where: str) -> None:
    """Nested dicts/lists of tensors and numbers are equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), f"{where} differs (max {float((a - b).abs().max()):.3g})"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_tensors(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_sigkilled_run_resumes_bit_for_bit(tmp_path, train_cfg):
    manifest = write_manifest(tmp_path / "data", BALANCED)
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    train(train_cfg(*tiny_overrides(manifest, straight_dir), run_name="straight"))
    kill_after_first_checkpoint(train_command(manifest, killed_dir), killed_dir)
    resumed = run_to_end(train_command(manifest, killed_dir, "resume=true"))
    assert "resumed from" in resumed

    assert epoch_metrics(killed_dir) == epoch_metrics(straight_dir)
    assert sorted(epoch_metrics(straight_dir)) == list(range(EPOCHS))
    for name in ("test_metrics.json", "calibration.json"):
        want = json.loads((straight_dir / name).read_text())
        assert json.loads((killed_dir / name).read_text()) == want, name
    for name in ("last.pt", "best.pt"):
        want = torch.load(straight_dir / "checkpoints" / name, weights_only=True)
        got = torch.load(killed_dir / "checkpoints" / name, weights_only=True)
        for key in ("model", "optimizer", "scheduler", "train_state", "epoch"):
            assert_same_tensors(got[key], want[key], f"{name}:{key}")
