"""ClipDataset: items, bad files skipped with a summary, per-epoch seeded augmentation."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch

from labral.datasets.clip_dataset import ClipDataset
from labral.datasets.io.clip import Clip
from labral.errors import BadManifestError, CorruptPixelDataError, NotDicomError

SPEC = {"frames": 4, "fps": 10.0, "size": [16, 16], "windows": 2}
AUGMENT = {"gain": {"prob": 1.0, "db": [-6, 6]}, "temporal": {"prob": 0.5, "max_shift": 1}}


def reader(source) -> Clip:
    name = os.path.basename(str(source))
    if name.startswith("corrupt"):
        raise CorruptPixelDataError("pixel data ends after 3 of 12 frames")
    if name.startswith("text"):
        raise NotDicomError("not a DICOM file or video")
    return Clip(np.load(source), 20.0)


@pytest.fixture
def records(tmp_path) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(6):
        path = tmp_path / f"clip{i}.npy"
        np.save(path, rng.integers(0, 255, (16, 24, 24), dtype=np.uint8))
        out.append({"path": str(path), "label": i % 2, "patient": f"p{i}"})
    for name in ("corrupt.npy", "text.npy"):
        (tmp_path / name).write_bytes(b"junk")
        out.append({"path": str(tmp_path / name), "label": 1, "patient": "px"})
    out.append({"path": str(tmp_path / "gone.npy"), "label": 0, "patient": "py"})
    return out


def test_bad_files_skipped_with_summary(records, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        data = ClipDataset(records, SPEC, cache_dir=tmp_path / "cache", reader=reader)
    assert len(data) == 6 and [s["code"] for s in data.skipped] == [
        "corrupt_pixel_data",
        "not_dicom",
        "missing_file",
    ]
    summary = data.summary()
    assert summary.startswith("skipped 3 of 9 clips: corrupt.npy (corrupt_pixel_data: pixel data")
    assert "text.npy (not_dicom: not a DICOM" in summary and "gone.npy (missing_file" in summary
    assert summary in caplog.text
    assert data.labels.tolist() == [0, 1, 0, 1, 0, 1]


def test_eval_items_and_determinism(records, tmp_path):
    data = ClipDataset(records[:3], SPEC, cache_dir=tmp_path / "cache", reader=reader)
    item = data[1]
    assert item["image"].shape == (2, 1, 4, 16, 16) and item["image"].dtype == torch.float32
    assert item["frame_index"].shape == (2, 4) and item["label"].item() == 1
    assert torch.equal(data[1]["image"], item["image"]) and data.skipped == []
    assert data.summary() == ""
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=3)))
    assert batch["image"].shape == (3, 2, 1, 4, 16, 16)


def test_second_dataset_reads_only_the_cache(records, tmp_path):
    calls = []

    def counting(source):
        calls.append(source)
        return reader(source)

    ClipDataset(records[:4], SPEC, cache_dir=tmp_path / "cache", reader=counting)
    assert len(calls) == 4
    again = ClipDataset(records[:4], SPEC, cache_dir=tmp_path / "cache", reader=counting)
    _ = [again[i] for i in range(len(again))]
    assert len(calls) == 4 and again.cache.hits >= 4 and again.cache.misses == 0


def test_train_items_reproducible_per_epoch(records, tmp_path):
    def make():
        return ClipDataset(records[:4], SPEC, train=True, augment=AUGMENT, reader=reader, seed=9)

    a, b = make(), make()
    assert a[2]["image"].shape == (1, 4, 16, 16)
    assert torch.equal(a[2]["image"], b[2]["image"])  # same seed, epoch, index
    assert torch.equal(a[2]["image"], a[2]["image"])  # independent of call order
    first = a[2]["image"]
    a.set_epoch(1)
    assert not torch.equal(a[2]["image"], first)


def test_all_skipped_is_an_error(records):
    with pytest.raises(BadManifestError, match="all 3 clips were skipped"):
        ClipDataset(records[6:], SPEC, reader=reader)


def test_cached_eval_items_equal_the_eval_transform(records, tmp_path):
    from labral.datasets.transforms.clip_transforms import build_eval_transform

    spec = {"frames": 4, "fps": 7.0, "size": [12, 20], "windows": 3, "crop": [0.1, 0, 0, 0.2]}
    data = ClipDataset(records[:2], spec, cache_dir=tmp_path / "c", reader=reader)
    direct = build_eval_transform(spec, reader=reader)({"clip": records[1]["path"]})
    assert torch.equal(data[1]["image"], direct["image"])
    assert torch.equal(data[1]["frame_index"], direct["frame_index"])
