"""Run logging: metrics.jsonl always (one JSON object per epoch/event), TensorBoard optional.

The ``logger`` group (``configs/logger/*.yaml``) names :class:`RunLogger` as its ``_target_``;
:func:`build_logger` instantiates it with the run dir and rank, known only at run time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from labral.errors import BadConfigError
from labral.train.instantiation import instantiate_group


class RunLogger:
    """Appends metric records to ``<run_dir>/metrics.jsonl`` and mirrors scalars to TensorBoard.

    A no-op on non-zero ranks (``enabled=False``).

    Args:
        run_dir: the run's output folder.
        tensorboard: also write TensorBoard event files under ``<run_dir>/tensorboard``.
        log_every_n_steps: the training loop sends step scalars every this many optimizer
            steps (:meth:`step_due`).
        enabled: False on ranks other than 0.
    """

    def __init__(
        self, run_dir: str | Path, *, tensorboard: bool, log_every_n_steps: int, enabled: bool
    ) -> None:
        self.enabled = enabled
        self.log_every_n_steps = max(1, int(log_every_n_steps))
        self.path = Path(run_dir) / "metrics.jsonl"
        self.writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def step_due(self, step: int) -> bool:
        """Whether optimizer step ``step`` is one to log (every ``log_every_n_steps``)."""
        return step % self.log_every_n_steps == 0

    def scalars(self, step: int, values: dict[str, float | None]) -> None:
        """TensorBoard scalars only (per optimizer step)."""
        if self.writer is None:
            return
        for key, value in values.items():
            if value is not None:
                self.writer.add_scalar(key, value, step)

    def record(self, record: dict[str, Any], step: int | None = None) -> None:
        """One line of metrics.jsonl, and its numeric fields as TensorBoard scalars."""
        if not self.enabled:
            return
        line = {"time": round(time.time(), 3), **record}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(line, default=float) + "\n")
        if step is not None:
            numeric = {
                k: float(v)
                for k, v in record.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            self.scalars(step, numeric)

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self.writer is not None:
            self.writer.close()


def build_logger(cfg: DictConfig, run_dir: str | Path, enabled: bool) -> RunLogger:
    """``cfg.logger`` instantiated (``hydra.utils.instantiate``) for ``run_dir``; ``enabled``
    is False on ranks other than 0.

    Raises:
        BadConfigError: a bad logger setting (named).
    """
    logger = instantiate_group(cfg.logger, "logger", run_dir=str(run_dir), enabled=enabled)
    if not isinstance(logger, RunLogger):
        raise BadConfigError(f"logger._target_={cfg.logger.get('_target_')} is not a RunLogger")
    return logger
