"""The GPU throughput benchmark's on-device batches, at tiny sizes on CPU (the benchmark
itself, benchmarks/gpu_train_speed.py, is smoke-tested in tests/benchmarks/)."""

from __future__ import annotations

import torch

from labral.train.gpu_batches import DeviceClipBatches


def test_device_batches_are_seeded_windows_of_the_cached_clips():
    generator = torch.Generator().manual_seed(0)
    clips = torch.randint(0, 256, (6, 10, 8, 8), dtype=torch.uint8, generator=generator)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    batches = DeviceClipBatches(
        clips,
        labels,
        frames=4,
        batch_size=4,
        device=torch.device("cpu"),
        seed=3,
        max_shift=0,
        gain_db=0.0,
    )
    first = list(batches)
    assert [b["image"].shape for b in first] == [(4, 1, 4, 8, 8), (2, 1, 4, 8, 8)]
    assert sorted(torch.cat([b["label"] for b in first]).tolist()) == [0, 0, 0, 1, 1, 1]
    image = first[0]["image"][0, 0]  # no shift/gain: an exact window of some clip
    matches = [
        (n, s)
        for n in range(6)
        for s in range(7)
        if torch.equal((clips[n, s : s + 4].float() / 255), image)
    ]
    assert len(matches) == 1
    again = list(batches)
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(first, again, strict=True))
    batches.set_epoch(1)
    assert not torch.equal(next(iter(batches))["image"], first[0]["image"])
