"""Training batches cut and augmented on the accelerator from cached uint8 clips.

For GPU training the CPU-side MONAI pipeline would starve a fast card; here the decoded,
resized uint8 clips live on the device once, and each batch is a random temporal window,
a random spatial shift and a random gain drawn with torch ops on the device.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class DeviceClipBatches:
    """Iterate (1, T, H, W) training windows of cached uint8 clips, augmented on ``device``.

    Args:
        clips: uint8 (N, T0, H, W) clips with T0 >= frames (already at the model's size).
        labels: (N,) 0/1.
        frames: T, frames per training window.
        batch_size: clips per batch.
        device: where the clips live and augmentation runs.
        seed: seeds the per-epoch order and augmentation draws (with the epoch).
        max_shift: largest spatial shift in pixels (circular roll per clip).
        gain_db: random gain range in dB, applied as a multiplicative factor.
        lengths: (N,) valid frames of each clip when clips are padded to a common T0
            (windows start only where they fit); None means all T0 frames are valid.
        rank: this process's rank; each rank takes every ``world_size``-th clip of the order.
        world_size: number of processes.

    Batches are ``{"image": float32 (B, 1, T, H, W) in [0, 1], "label": float32 (B,)}``.
    """

    def __init__(
        self,
        clips: torch.Tensor,
        labels: torch.Tensor,
        frames: int,
        batch_size: int,
        device: torch.device,
        seed: int = 0,
        max_shift: int = 4,
        gain_db: float = 3.0,
        lengths: torch.Tensor | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.clips = clips.to(device=device, dtype=torch.uint8)
        self.labels = labels.to(device=device, dtype=torch.float32)
        self.frames, self.batch_size, self.device = frames, batch_size, device
        self.seed, self.epoch = seed, 0
        self.max_shift, self.gain_db = max_shift, gain_db
        self.rank, self.world_size = rank, world_size
        if self.clips.shape[1] < frames:
            raise ValueError(f"clips have {self.clips.shape[1]} frames; need >= {frames}")
        full = torch.full((len(self.clips),), self.clips.shape[1], dtype=torch.long)
        self.lengths = (full if lengths is None else lengths.long()).clamp(min=frames)
        self.lengths = self.lengths.to(device)
        self._offsets = torch.arange(frames, device=device)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order and draws the next iteration uses."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        per_rank = (len(self.clips) + self.world_size - 1) // self.world_size
        return (per_rank + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        generator = torch.Generator(device=self.device)
        generator.manual_seed(self.seed * 100_003 + self.epoch)
        host = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)  # no device sync
        n, t0, h, w = self.clips.shape
        order = torch.randperm(n, generator=generator, device=self.device)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            b = index.numel()
            first = torch.randint(
                0, t0 - self.frames + 1, (b,), generator=generator, device=self.device
            )
            time_index = first[:, None] + self._offsets[None, :]  # (B, T)
            window = self.clips[index[:, None], time_index]  # (B, T, H, W) uint8
            image = window.float().div_(255.0)
            shift = torch.randint(-self.max_shift, self.max_shift + 1, (2,), generator=host)
            image = torch.roll(image, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3))
            gain = torch.empty(b, 1, 1, 1, device=self.device).uniform_(
                -self.gain_db, self.gain_db, generator=generator
            )
            image = (image * torch.pow(10.0, gain / 20.0)).clamp_(0.0, 1.0)
            yield {"image": image.unsqueeze(1), "label": self.labels[index]}
