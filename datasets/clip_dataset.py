"""A torch Dataset over manifest records: the pipeline's cached head, then its tail per item.

The pipeline is :func:`~labral.datasets.transforms.clip_transforms.build_eval_transform` (or
:func:`~labral.datasets.transforms.clip_transforms.build_train_transform` when training);
its head is what :class:`~labral.datasets.cache.ClipCache` stores, its tail runs on every
``__getitem__``.

At construction every clip is read once (or found in the cache); a file the reader rejects
(any :class:`~labral.errors.LabralError`, or a missing file) is dropped, recorded in
``skipped`` with its path and reason, and summarised in one logged line such as
``skipped 2 of 500 clips: a.dcm (corrupt_pixel_data: ...), ...``. Training therefore never
meets a bad file hours in, and nothing is dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from labral.datasets.cache import ClipCache
from labral.datasets.transforms.clip_transforms import (
    Reader,
    build_eval_transform,
    build_train_transform,
)
from labral.errors import BadManifestError, LabralError

log = logging.getLogger(__name__)


class ClipDataset(Dataset):
    """Clips from manifest records, ready for a model.

    Args:
        records: manifest records (``path``, ``label``, ``patient``; see ``load_manifest``).
        spec: the eval spec ``{"frames", "fps", "size", "windows"}``.
        train: True -> random window + ``augment`` per item; False -> deterministic eval tail.
        augment: the augmentation config (used when ``train``).
        cache_dir: disk cache folder (survives runs); None caches in memory only.
        reader: ``source -> Clip`` (default :func:`labral.datasets.io.reader.read_cine`).
        seed: base seed; item ``i`` in epoch ``e`` is augmented with a seed derived from
            (seed, e, i), so results do not depend on worker count or order.
        progress: show a tqdm bar while preparing.
        targets: auxiliary training targets per item (:class:`labral.train.auxiliary.
            AuxiliaryTargets`: ``targets(record, frame_index) -> dict of tensors`` and
            ``targets.available(record)``); used only when every kept record has them (a
            manifest without generator parameters trains without them).

    Items: ``{"image": float32 (1, T, H, W) if train else (N, 1, T, H, W) in [0, 1],
    "frame_index": int64 (T,) / (N, T), "label": int64 scalar, "index": int, "path": str}``,
    and ``"targets"`` (a dict of tensors) when ``targets`` is in use.

    Raises:
        BadManifestError: every record was skipped (nothing left to train on).
    """

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        spec: Mapping[str, Any],
        *,
        train: bool = False,
        augment: Mapping[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        reader: Reader | None = None,
        seed: int = 0,
        progress: bool = False,
        targets: Any = None,
    ) -> None:
        self.train, self.seed, self.epoch = train, int(seed), 0
        pipeline = (
            build_train_transform(spec, augment, seed, reader)
            if train
            else build_eval_transform(spec, reader)
        )
        self.cache = ClipCache(spec, cache_dir=cache_dir, reader=reader, head=pipeline.head)
        self.tail = pipeline.tail  # the cache holds the output of pipeline.head
        self.records: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []
        self.keys: list[str] = []  # cache key of each kept record, fixed at construction
        for record in tqdm(records, desc="preparing clips", disable=not progress):
            try:
                key = self.cache.key(record["path"])
                self.cache.get(record["path"], key)
            except LabralError as exc:
                self.skipped.append({"path": record["path"], "code": exc.code, "reason": str(exc)})
                continue
            except FileNotFoundError:
                self.skipped.append(
                    {"path": record["path"], "code": "missing_file", "reason": "file not found"}
                )
                continue
            self.records.append(dict(record))
            self.keys.append(key)
        if self.skipped:
            log.warning(self.summary(len(records)))
        if not self.records:
            raise BadManifestError(
                f"all {len(records)} clips were skipped; first: {self.summary(len(records))}"
            )
        self.targets = targets if targets is not None and self._all_have_targets(targets) else None

    def _all_have_targets(self, targets: Any) -> bool:
        """Whether ``targets`` has targets for every kept record (logs how many lack them)."""
        missing = sum(not targets.available(record) for record in self.records)
        if missing:
            log.warning(
                "auxiliary targets off: %d of %d clips have no generator parameters",
                missing,
                len(self.records),
            )
        return not missing

    def summary(self, total: int | None = None) -> str:
        """One line: ``skipped K of N clips: name (code: reason), ...`` (empty if none)."""
        if not self.skipped:
            return ""
        total = total if total is not None else len(self.records) + len(self.skipped)
        shown = ", ".join(
            f"{Path(s['path']).name} ({s['code']}: {s['reason'][:120]})" for s in self.skipped[:10]
        )
        more = f", ... and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
        return f"skipped {len(self.skipped)} of {total} clips: {shown}{more}"

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw for the next pass (call once per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.item(index, self.epoch)

    def item(self, index: int, draw: int) -> dict[str, Any]:
        """Item ``index`` with the augmentation of draw ``draw`` (``__getitem__`` uses the
        epoch; ``labral pretrain`` takes two draws of one clip per epoch as its two views)."""
        record = self.records[index]
        data: dict[str, Any] = dict(self.cache.get(record["path"], self.keys[index]))
        if self.train:
            seq = np.random.SeedSequence([self.seed, int(draw), int(index)])
            self.tail.set_random_state(seed=int(seq.generate_state(1)[0]))
        out = self.tail(data)
        item = {
            "image": out["image"],
            "frame_index": out["frame_index"],
            "label": torch.tensor(int(record["label"]), dtype=torch.int64),
            "index": int(index),
            "path": record["path"],
        }
        if self.targets is not None:
            item["targets"] = self.targets(record, np.asarray(out["frame_index"]))
        return item

    @property
    def labels(self) -> np.ndarray:
        """int64 (len,) labels of the kept records (for samplers and class weights)."""
        return np.array([int(r["label"]) for r in self.records], dtype=np.int64)
