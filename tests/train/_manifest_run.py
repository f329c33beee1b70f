"""The command-line overrides of a tiny manifest training run, shared by the subprocess tests
(test_ddp.py, test_resume_kill.py); not collected (no ``test_`` prefix)."""

from __future__ import annotations

from pathlib import Path


def manifest_run_overrides(manifest: Path, run_dir: Path, epochs: int, *model: str) -> list[str]:
    """``epochs`` epochs on ``manifest``, 8x32x32 input, no cache, logs or early stopping,
    writing to ``run_dir``; ``model`` adds the run's own overrides (widths, norm, dropout...)."""
    return [
        f"trainer.max_epochs={epochs}",
        "trainer.early_stopping_patience=0",
        "trainer.num_threads=1",
        "trainer.progress=false",
        "logger.tensorboard=false",
        f"data.manifest={manifest}",
        "data.cache_dir=null",
        "transforms.eval.frames=8",
        "transforms.eval.size=[32,32]",
        *model,
        f"paths.root_dir={run_dir.parent}",
        f"hydra.run.dir={run_dir}",
    ]
