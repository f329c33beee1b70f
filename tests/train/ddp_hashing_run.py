"""``labral train`` that also writes every rank's parameter hash after every epoch.

Run by tests/train/test_ddp.py as ``torchrun --nproc_per_node=2 <this file> trainer=ddp ...``
with ``LABRAL_HASH_DIR`` set; each rank writes ``rank<r>_epoch<e>.sha256`` there. Only
parameters are hashed: DDP re-broadcasts buffers (batch-norm running statistics) from rank 0
at every forward, so each rank's copy after its last forward is rank-local by design.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import torch

from labral.cli import main
from labral.train import command


def parameter_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over the names and float bytes of the (unwrapped) model's parameters."""
    net = getattr(model, "module", model)
    digest = hashlib.sha256()
    for name, parameter in net.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def hashing_train_one_epoch(model: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
    stats = train_one_epoch(model, *args, **kwargs)
    out = Path(os.environ["LABRAL_HASH_DIR"])
    name = f"rank{os.environ.get('RANK', '0')}_epoch{kwargs['epoch']}.sha256"
    (out / name).write_text(parameter_sha256(model))
    return stats


if __name__ == "__main__":
    train_one_epoch = command.train_one_epoch
    command.train_one_epoch = hashing_train_one_epoch
    sys.exit(main(["train", *sys.argv[1:]]))
