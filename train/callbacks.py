"""Training callbacks built from ``configs/callbacks/`` with ``hydra.utils.instantiate``.

Small objects with one job each, after ashleve/lightning-hydra-template's ``callbacks`` group:
:class:`EarlyStopping` decides after each validation whether the best epoch improved and
whether to stop; :class:`ModelCheckpoint` writes ``best.pt`` and ``last.pt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labral.train.checkpoint_files import save_checkpoint


class EarlyStopping:
    """Stop after ``patience`` validations without an improvement of the monitored metric.

    Args:
        patience: validations without improvement before stopping; 0 disables stopping
            (the best epoch is still tracked).
        min_delta: an improvement must exceed the best value by more than this.
    """

    def __init__(self, patience: int = 0, min_delta: float = 0.0) -> None:
        self.patience = int(patience or 0)
        self.min_delta = float(min_delta)

    def update(self, state: dict[str, Any], value: float | None, epoch: int) -> tuple[bool, bool]:
        """Record ``value`` (the epoch's metric; None if undefined) in ``state``.

        Updates ``best_metric``, ``best_epoch`` and ``bad_epochs`` of the train state.

        Returns:
            ``(improved, stop)``.
        """
        improved = value is not None and value > state["best_metric"] + self.min_delta
        if improved:
            state.update(best_metric=value, best_epoch=epoch, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
        stop = bool(self.patience) and state["bad_epochs"] >= self.patience
        return improved, stop


class ModelCheckpoint:
    """Write each epoch's checkpoint to ``last.pt``, and to ``best.pt`` when it improved.

    Args:
        dirpath: the folder, ``<run_dir>/checkpoints`` (set by the trainer when null).
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)

    @property
    def last_path(self) -> Path:
        """``<dirpath>/last.pt``, the file ``resume=true`` continues from."""
        return self.dirpath / "last.pt"

    @property
    def best_path(self) -> Path:
        """``<dirpath>/best.pt``, the epoch with the best validation metric."""
        return self.dirpath / "best.pt"

    def save(self, ckpt: dict[str, Any], improved: bool) -> None:
        """Save atomically: ``best.pt`` first (when improved), then ``last.pt``."""
        if improved:
            save_checkpoint(ckpt, self.best_path)
        save_checkpoint(ckpt, self.last_path)
