"""Training data: manifest -> checked splits -> datasets of transformed clips -> loaders.

Everything a user can get wrong (no data set, bad labels, an empty split, a validation split
with one class) fails here, before any model is built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Dataset

from labral.errors import BadConfigError, BadManifestError

SPLITS = ("train", "val", "test")


class ManifestClipDataset(Dataset):
    """Clips of one split, read with ``read_cine`` and transformed per item.

    Random transforms are reseeded per item from (seed, epoch, index), so an item's
    augmentation does not depend on worker count or on where a resumed run restarted.
    Decoded uint8 clips are kept in memory after first use when ``cache_in_memory``.

    Args:
        rows: manifest rows (``path`` absolute or relative to ``root``, ``label`` 0/1).
        root: the manifest's folder.
        transform: callable on ``{"clip": Clip, "label": int}`` adding ``"image"``
            float32 (1, T, H, W) or (N, 1, T, H, W).
        seed: run seed.
        cache_in_memory: keep decoded clips.

    Items are ``{"image": float32 (1, T, H, W) or (N, 1, T, H, W), "label": int, "index": int}``.
    """

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        root: Path,
        transform: Callable[[dict[str, Any]], dict[str, Any]],
        seed: int = 0,
        cache_in_memory: bool = True,
    ) -> None:
        self.rows = list(rows)
        self.root = Path(root)
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        self.cache_in_memory = cache_in_memory
        self._cache: dict[int, Any] = {}

    @property
    def labels(self) -> list[int]:
        """The 0/1 label of every item."""
        return [int(row["label"]) for row in self.rows]

    def set_epoch(self, epoch: int) -> None:
        """Epoch used to seed random transforms."""
        self.epoch = int(epoch)

    def _clip(self, index: int) -> Any:
        if index in self._cache:
            return self._cache[index]
        from labral.datasets.reader import read_cine

        path = Path(self.rows[index]["path"])
        clip = read_cine(path if path.is_absolute() else self.root / path)
        if self.cache_in_memory:
            self._cache[index] = clip
        return clip

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if hasattr(self.transform, "set_random_state"):
            item_seed = (self.seed * 1_000_003 + self.epoch * 10_007 + index) % (2**32)
            self.transform.set_random_state(seed=item_seed)
        label = int(self.rows[index]["label"])
        out = self.transform({"clip": self._clip(index), "label": label})
        image = torch.as_tensor(out["image"])
        if image.ndim == 5 and image.shape[0] == 1:
            image = image[0]
        return {"image": image, "label": label, "index": index}


def manifest_path(cfg: DictConfig) -> Path:
    """The manifest named by ``data.manifest``, checked to exist.

    Raises:
        BadConfigError: the file is missing (says to run ``labral synth`` first).
    """
    path = Path(str(cfg.data.manifest)).expanduser()
    if not path.is_file():
        raise BadConfigError(
            f"data.manifest={path} does not exist: run `labral synth` first to generate the "
            "synthetic data set, or set data=manifest data.manifest=/path/to/your/manifest.jsonl"
        )
    return path


def split_rows(rows: Sequence[dict[str, Any]], where: str) -> dict[str, list[dict[str, Any]]]:
    """Group manifest rows by their ``split`` column and check what training needs.

    Args:
        rows: manifest rows.
        where: manifest path, for messages.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``.

    Raises:
        BadManifestError: a label other than 0/1, a row without a split, an empty split, or a
            train/val split holding one class only.
    """
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    for number, row in enumerate(rows, start=1):
        label = row.get("label")
        if label not in (0, 1) or isinstance(label, bool):
            raise BadManifestError(
                f"{where}: row {number} has label {label!r}; labels must be 0 (intact) or 1 "
                "(detachment)"
            )
        split = row.get("split")
        if split not in out:
            raise BadManifestError(
                f"{where}: row {number} has split {split!r}; every row needs split train, val "
                "or test (re-run `labral synth`, or add the column to your manifest)"
            )
        out[split].append(row)
    for name, members in out.items():
        if not members:
            raise BadManifestError(
                f"{where}: the {name} split is empty; every split needs clips of both classes"
            )
        if name != "test" and len({int(r["label"]) for r in members}) < 2:
            raise BadManifestError(
                f"{where}: the {name} split holds only label {members[0]['label']}; it needs "
                "both classes (AUROC is undefined otherwise)"
            )
    return out


def load_rows(path: Path) -> list[dict[str, Any]]:
    """Manifest rows through ``labral.datasets.manifest.load_manifest`` (it validates)."""
    from labral.datasets.manifest import load_manifest

    return list(load_manifest(path))


def data_fingerprint(rows: Sequence[dict[str, Any]]) -> str:
    """SHA-256 over the identifying columns of the rows used (order-independent)."""
    keys = ("path", "label", "patient", "split", "side", "clip")
    lines = sorted(
        json.dumps({k: row.get(k) for k in keys}, sort_keys=True, default=str) for row in rows
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def build_datasets(cfg: DictConfig) -> dict[str, Dataset]:
    """The train/val/test datasets named by ``cfg.data`` and ``cfg.transforms``.

    Returns:
        ``{"train", "val", "test"}`` datasets with ``labels`` and ``rows`` attributes; train
        uses ``build_train_transform(transforms.eval, transforms.augment)``, val/test use
        ``build_eval_transform(transforms.eval)``.

    Raises:
        BadConfigError: missing manifest. BadManifestError: bad labels or splits.
    """
    path = manifest_path(cfg)
    rows = load_rows(path)
    splits = split_rows(rows, str(path))
    from labral.datasets.transforms import build_eval_transform, build_train_transform

    spec = OmegaConf.to_container(cfg.transforms.eval, resolve=True)
    augment = OmegaConf.to_container(cfg.transforms.get("augment", {}) or {}, resolve=True)
    cache = bool(cfg.data.get("cache_in_memory", True))
    seed = int(cfg.seed)
    return {
        "train": ManifestClipDataset(
            splits["train"], path.parent, build_train_transform(spec, augment), seed, cache
        ),
        "val": ManifestClipDataset(
            splits["val"], path.parent, build_eval_transform(spec), seed, cache
        ),
        "test": ManifestClipDataset(
            splits["test"], path.parent, build_eval_transform(spec), seed, cache
        ),
    }


def check_datasets(datasets: dict[str, Dataset]) -> None:
    """Check prebuilt datasets (tests, notebooks) the same way manifests are checked."""
    rows = [
        {"label": label, "split": name}
        for name in SPLITS
        for label in getattr(datasets.get(name), "labels", [])
    ]
    missing = [name for name in SPLITS if name not in datasets]
    if missing:
        raise BadConfigError(f"datasets lacks the {missing} split(s)")
    split_rows(rows, "datasets")


def positive_weight(labels: Sequence[int]) -> float:
    """n_negative / n_positive, the BCE ``pos_weight`` that balances the classes."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=2)
    return float(counts[0] / max(counts[1], 1))
