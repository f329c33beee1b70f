"""Cache of the eval transform's head (load, fps resample, resize) as small uint8 files.

What is cached is ``build_eval_transform(spec).head``: the first transforms of the very
pipeline the bundle carries (training's pipeline shares that head), so a cached item run
through ``pipeline.tail`` equals the whole pipeline run on the file.

Why not MONAI's ``PersistentDataset``: it hashes the input dict only, so it cannot see a file
being rewritten in place; it pickles whole dicts (our ``Clip`` objects) with ``torch.save``,
which newer torch refuses to ``torch.load`` with ``weights_only``; and it surfaces a bad file
as an exception mid-epoch, where we want to skip it at construction with a reason.

An item is one ``<key>.clip`` file: a 32-byte header (:data:`MAGIC`, then T, h, w as
little-endian int64), the float64 ``meta`` vector (fps, source frame count, the T frame
indices), then the uint8 frames (T, h, w). Reading it back is one ``readinto`` and two
``np.frombuffer`` views, about 15 us for 16 x 96 x 96 frames, where an ``.npz`` (a zip
archive) took about 300 us and two ``np.load`` calls about 60 us (header parsing): a cached
epoch is mostly these reads.

Cache key = SHA-256 of (absolute path, file size, mtime_ns, preprocessing spec
{fps, size, crop}, cache version): a rewritten file or a new fps/size/crop misses the cache.
The path is the absolute path as given, links not resolved: a file reached through two
different links is cached twice, and a key costs one ``stat``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from labral.datasets.transforms.clip_transforms import Reader, build_eval_transform, check_spec

CACHE_VERSION = 4  # 4: JPEG decoded by Pillow first; 3: one raw .clip file per item (2: .npz)
#: First 8 bytes of a cache file; the rest of the 32-byte header is T, h, w (int64).
MAGIC = b"LBRLCLP3"
_HEADER = np.dtype([("magic", "S8"), ("shape", "<i8", (3,))])


def preprocess_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an eval spec that changes the cached frames: ``fps``, ``size``, ``crop``."""
    checked = check_spec(spec)
    return {"fps": checked["fps"], "size": checked["size"], "crop": checked["crop"]}


def cache_key(path: str | Path, spec: Mapping[str, Any]) -> str:
    """Hex SHA-256 naming the cached preprocessing of ``path`` under ``spec``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    return _key(path, preprocess_spec(spec))


def _key(path: str | Path, preprocess: dict[str, Any]) -> str:
    absolute = os.path.abspath(path)  # not realpath: its lstat per folder was most of a key
    stat = os.stat(absolute)
    identity = {
        "path": absolute,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "preprocess": preprocess,
        "version": CACHE_VERSION,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class ClipCache:
    """Preprocessed clips keyed by file identity and spec, on disk (``cache_dir``) or in memory.

    Args:
        spec: the eval spec (only fps, size and crop matter here).
        cache_dir: folder for ``<key>.clip`` files; None keeps items in memory only.
        reader: ``source -> Clip`` (default :func:`labral.datasets.io.reader.read_cine`).
        in_memory: also keep loaded items in RAM (saves the disk read in later epochs).
        head: ``pipeline.head`` of an eval or train pipeline already built from ``spec`` and
            ``reader`` (both pipelines share it); default: built here.

    Items are dicts: ``"frames"`` uint8 (T', h, w), ``"frame_index"`` int64 (T',),
    ``"fps"`` float, ``"num_source_frames"`` int. ``hits``/``misses`` count lookups.
    """

    def __init__(
        self,
        spec: Mapping[str, Any],
        cache_dir: str | Path | None = None,
        reader: Reader | None = None,
        in_memory: bool = True,
        head: Callable[[dict], dict] | None = None,
    ) -> None:
        self.spec = dict(spec)
        self._preprocess = preprocess_spec(spec)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.in_memory = in_memory or self.cache_dir is None
        self.head = head or build_eval_transform(spec, reader).head
        self.memory: dict[str, dict[str, Any]] = {}
        self.hits = 0
        self.misses = 0

    def _file(self, key: str) -> str:
        assert self.cache_dir is not None
        return os.path.join(self.cache_dir, f"{key}.clip")  # a str join: no Path per item

    def key(self, path: str | Path) -> str:
        """:func:`cache_key` of ``path`` under this cache's spec (stats the file)."""
        return _key(path, self._preprocess)

    def get(self, path: str | Path, key: str | None = None) -> dict[str, Any]:
        """The preprocessed clip at ``path``, computing and storing it on a miss.

        Args:
            path: the clip file.
            key: ``self.key(path)`` if already known (saves a stat and a hash per item).

        Raises:
            LabralError: the reader's error for a bad file (nothing is cached then).
            FileNotFoundError: the file does not exist.
        """
        key = key or self.key(path)
        if key in self.memory:
            self.hits += 1
            return self.memory[key]
        item = self._load(key)
        if item is None:
            self.misses += 1
            out = self.head({"clip": str(path)})
            item = {
                "frames": np.ascontiguousarray(out["frames"], dtype=np.uint8),
                "frame_index": np.asarray(out["frame_index"], dtype=np.int64),
                "fps": float(out["fps"]),
                "num_source_frames": int(out["num_source_frames"]),
            }
            self._store(key, item)
        else:
            self.hits += 1
        if self.in_memory:
            self.memory[key] = item
        return item

    def _load(self, key: str) -> dict[str, Any] | None:
        if self.cache_dir is None:
            return None
        try:  # a missing file is a miss
            with open(self._file(key), "rb") as handle:
                buffer = np.empty(os.fstat(handle.fileno()).st_size, np.uint8)  # not zeroed
                size = handle.readinto(buffer)
        except OSError:
            return None
        header = np.frombuffer(buffer, _HEADER, 1) if size >= _HEADER.itemsize else None
        if header is None or header["magic"][0] != MAGIC:
            return None  # a torn or foreign cache file: recompute and overwrite
        frames_shape = tuple(int(v) for v in header["shape"][0])
        meta_count = 2 + frames_shape[0]
        offset = _HEADER.itemsize + 8 * meta_count
        if min(frames_shape) < 0 or size != offset + math.prod(frames_shape):
            return None
        meta = np.frombuffer(buffer, "<f8", meta_count, _HEADER.itemsize)
        frames = np.frombuffer(buffer, np.uint8, offset=offset).reshape(frames_shape)
        return {
            "frames": frames,
            "frame_index": meta[2:].astype(np.int64),
            "fps": float(meta[0]),
            "num_source_frames": int(meta[1]),
        }

    def _store(self, key: str, item: dict[str, Any]) -> None:
        if self.cache_dir is None:
            return
        handle, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
        meta = np.concatenate(
            [[item["fps"], item["num_source_frames"]], item["frame_index"]]
        ).astype(np.float64)  # exact for any frame index below 2**53
        frames = np.ascontiguousarray(item["frames"], dtype=np.uint8)
        header = np.array([(MAGIC, frames.shape)], dtype=_HEADER)
        with os.fdopen(handle, "wb") as stream:
            stream.write(header.tobytes() + meta.astype("<f8").tobytes() + frames.tobytes())
        os.replace(tmp, self._file(key))  # atomic: readers never see half a file
