"""Clip cache: hits, misses, and key invalidation on file and spec changes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from labral.datasets.cache import ClipCache, cache_key
from labral.datasets.io.clip import Clip
from labral.errors import CorruptPixelDataError

SPEC = {"frames": 4, "fps": 10.0, "size": [16, 16], "windows": 1}


class CountingReader:
    """A .npy reader (20 fps) that counts decodes and rejects files named bad*."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, source) -> Clip:
        self.calls += 1
        if os.path.basename(str(source)).startswith("bad"):
            raise CorruptPixelDataError(f"{source}: pixel data truncated")
        return Clip(np.load(source), 20.0)


def save_clip(path, value: int, frames: int = 12) -> str:
    np.save(path, np.full((frames, 24, 24), value, np.uint8))
    return str(path)


def test_disk_cache_hit_after_miss_and_across_instances(tmp_path):
    path = save_clip(tmp_path / "a.npy", 100)
    reader = CountingReader()
    cache = ClipCache(SPEC, tmp_path / "cache", reader=reader)
    first = cache.get(path)
    second = cache.get(path)
    assert (cache.misses, cache.hits, reader.calls) == (1, 1, 1)
    assert first["frames"].shape == (6, 16, 16) and first["frames"].dtype == np.uint8
    assert first["frame_index"].tolist() == [0, 2, 4, 6, 8, 10]
    assert first["num_source_frames"] == 12 and first["fps"] == 10.0
    assert second is first  # memory tier
    fresh = ClipCache(SPEC, tmp_path / "cache", reader=reader)
    again = fresh.get(path)
    assert (fresh.misses, fresh.hits, reader.calls) == (0, 1, 1)  # read from disk, no decode
    assert np.array_equal(again["frames"], first["frames"])
    assert len(list((tmp_path / "cache").glob("*.clip"))) == 1


def test_rewritten_file_misses_the_cache(tmp_path):
    path = save_clip(tmp_path / "a.npy", 100)
    reader = CountingReader()
    key = cache_key(path, SPEC)
    assert ClipCache(SPEC, tmp_path / "c", reader=reader).get(path)["frames"].max() == 100
    save_clip(tmp_path / "a.npy", 200)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    assert cache_key(path, SPEC) != key
    cache = ClipCache(SPEC, tmp_path / "c", reader=reader)
    assert cache.get(path)["frames"].max() == 200 and cache.misses == 1 and reader.calls == 2


def test_key_follows_preprocessing_spec_only(tmp_path):
    path = save_clip(tmp_path / "a.npy", 10)
    base = cache_key(path, SPEC)
    assert cache_key(path, {**SPEC, "fps": 5.0}) != base
    assert cache_key(path, {**SPEC, "size": [32, 16]}) != base
    assert cache_key(path, {**SPEC, "crop": [0.1, 0, 0, 0]}) != base
    # frames and windows are applied after the cache: same key
    assert cache_key(path, {**SPEC, "frames": 8, "windows": 3}) == base
    reader = CountingReader()
    ClipCache(SPEC, tmp_path / "c", reader=reader).get(path)
    slower = ClipCache({**SPEC, "fps": 5.0}, tmp_path / "c", reader=reader)
    assert slower.get(path)["frame_index"].tolist() == [0, 4, 8] and slower.misses == 1


def test_bad_file_not_cached_and_error_kept(tmp_path):
    path = save_clip(tmp_path / "bad.npy", 1)
    cache = ClipCache(SPEC, tmp_path / "c", reader=CountingReader())
    with pytest.raises(CorruptPixelDataError, match="truncated"):
        cache.get(path)
    assert list((tmp_path / "c").glob("*.clip")) == []
    with pytest.raises(FileNotFoundError):
        cache.get(tmp_path / "absent.npy")


def test_torn_cache_file_is_recomputed(tmp_path):
    path = save_clip(tmp_path / "a.npy", 50)
    reader = CountingReader()
    ClipCache(SPEC, tmp_path / "c", reader=reader).get(path)
    (tmp_path / "c" / f"{cache_key(path, SPEC)}.clip").write_bytes(b"garbage")
    cache = ClipCache(SPEC, tmp_path / "c", reader=reader)
    assert cache.get(path)["frames"].max() == 50 and cache.misses == 1
