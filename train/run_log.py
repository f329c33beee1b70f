"""Run logging: metrics.jsonl always (one JSON object per epoch/event), TensorBoard optional."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class RunLogger:
    """Appends metric records to ``<run_dir>/metrics.jsonl`` and mirrors scalars to TensorBoard.

    A no-op on non-zero ranks (``enabled=False``).

    Args:
        run_dir: the run's output folder.
        tensorboard: also write TensorBoard event files under ``<run_dir>/tensorboard``.
        enabled: False on ranks other than 0.
    """

    def __init__(self, run_dir: str | Path, tensorboard: bool = True, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

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
