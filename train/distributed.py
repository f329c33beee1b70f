"""DDP set-up through torchrun's environment, and a seeded per-epoch sampler for 1..N ranks."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1), else no-op.

    Uses nccl on CUDA and gloo on CPU; sets the CUDA device to ``LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown_distributed() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Rank 0's boolean, on every rank (e.g. the early-stopping decision)."""
    if not info.enabled:
        return flag
    tensor = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


class EpochSampler(Sampler[int]):
    """Deterministic index order per epoch, seeded by (seed, epoch), split over ranks.

    ``balanced=True`` draws with replacement so both classes are equally likely; otherwise a
    permutation. Each rank takes every ``world_size``-th index of the same padded order, so the
    ranks together see one epoch and a resumed run sees exactly the order it would have seen.

    Args:
        labels: the 0/1 label of every item of the dataset.
        seed: run seed.
        balanced: sample classes equally (with replacement).
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(
        self,
        labels: Sequence[int],
        seed: int,
        balanced: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.labels = torch.as_tensor(list(labels), dtype=torch.long)
        self.seed = int(seed)
        self.balanced = balanced
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        total = len(self.labels)
        self.per_rank = (total + world_size - 1) // world_size

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order :meth:`__iter__` yields."""
        self.epoch = int(epoch)

    def order(self) -> torch.Tensor:
        """int64 (per_rank * world_size,): the full padded order of this epoch."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        total = len(self.labels)
        if self.balanced:
            counts = torch.bincount(self.labels, minlength=2).clamp_min(1).double()
            weights = 1.0 / counts[self.labels]
            indices = torch.multinomial(weights, total, replacement=True, generator=generator)
        else:
            indices = torch.randperm(total, generator=generator)
        padding = self.per_rank * self.world_size - total
        if padding:
            indices = torch.cat([indices, indices[:padding]])
        return indices

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.per_rank
