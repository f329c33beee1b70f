"""Training data: manifest -> checked splits -> datasets of transformed clips -> loaders.

Everything a user can get wrong (no data set, bad labels, an empty split, a validation split
with one class) fails here, before any model is built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from labral.datasets.clip_dataset import ClipDataset
from labral.datasets.manifests.manifest import SPLIT_NAMES, load_manifest
from labral.datasets.manifests.splits import assign_splits, check_no_leakage
from labral.errors import BadConfigError, BadManifestError
from labral.train.auxiliary import AuxiliaryTargets, run_weights
from labral.train.gpu_batches import DeviceClipBatches
from labral.train.instantiation import instantiate_group

#: ``data.sampling`` values: class-balanced sampler, BCE ``pos_weight``, or neither.
SAMPLINGS = ("balanced", "class_weight", "none")


def manifest_path(cfg: DictConfig | str | Path) -> Path:
    """The manifest named by ``data.manifest`` (or given as a path), checked to exist.

    Raises:
        BadConfigError: the file is missing (says to run ``labral synth`` first).
    """
    named = cfg.data.manifest if isinstance(cfg, DictConfig) else cfg
    if named is None:  # data=manifest without a path (configs/data/manifest.yaml)
        raise BadConfigError(
            "data=manifest needs the file: add data.manifest=/path/to/your/manifest.jsonl "
            "(`labral manifest DIR` writes one from a folder of clips)"
        )
    path = Path(str(named)).expanduser()
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
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLIT_NAMES}
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
    """Manifest rows through ``labral.datasets.manifests.manifest.load_manifest`` (it
    validates), checked for patients shared between splits.

    Rows without a ``split`` are assigned one by patient, stratified by label
    (:func:`labral.datasets.manifests.splits.assign_splits`, 70/15/15, seed 0: the same manifest
    always gives the same split, whatever the training seed); rows that have one keep it.

    Raises:
        BadManifestError: invalid rows, a patient in two splits, or a split left empty.
    """
    rows = list(load_manifest(path))
    if any(row.get("split") is None for row in rows):
        return assign_splits(rows)  # checks leakage among the rows that have a split
    check_no_leakage(rows)
    return rows


def data_fingerprint(rows: Sequence[dict[str, Any]]) -> str:
    """SHA-256 over the identifying columns of the rows used (order-independent; the file
    name, not the folder, so the same data set moved elsewhere keeps its fingerprint)."""
    keys = ("label", "patient", "split", "side", "clip")
    lines = sorted(
        json.dumps(
            {"file": Path(str(row.get("path", ""))).name, **{k: row.get(k) for k in keys}},
            sort_keys=True,
            default=str,
        )
        for row in rows
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class ClipDataModule:
    """The ``data`` group (``configs/data/*.yaml``), built by :func:`build_data_module`: where
    the clips come from, how they are cached and batched, and how training samples them.

    After ashleve/lightning-hydra-template's data module; the config's keys are the
    constructor's arguments (the YAML holds their defaults), and the transform spec and seed,
    which live in their own groups, are passed in at build time.

    Args:
        manifest: the JSONL/CSV manifest (``split`` column train/val/test, or assigned).
        batch_size: clips per batch.
        num_workers: DataLoader worker processes.
        pin_memory: DataLoader ``pin_memory``.
        cache_dir: disk cache of decoded, resized uint8 clips (None: memory only).
        sampling: ``balanced`` (class-balanced sampler), ``class_weight`` (BCE
            ``pos_weight``) or ``none``.
        on_device: serve training batches from the accelerator (:func:`device_train_batches`).
        spec: the eval transform spec (``transforms.eval``).
        augment: the training augmentation (``transforms.augment``).
        seed: the run's seed (augmentation draws).

    Raises:
        BadConfigError: an unknown ``sampling``.
    """

    def __init__(
        self,
        manifest: str,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        cache_dir: str | None,
        sampling: str,
        on_device: bool,
        spec: dict[str, Any],
        augment: dict[str, Any],
        seed: int,
    ) -> None:
        if sampling not in SAMPLINGS:
            raise BadConfigError(f"data.sampling={sampling!r}: use balanced, class_weight or none")
        self.manifest = manifest
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.cache_dir = cache_dir
        self.sampling = sampling
        self.on_device = bool(on_device)
        self.spec = spec
        self.augment = augment
        self.seed = int(seed)
        #: auxiliary targets of the training split (:mod:`labral.train.auxiliary`), set by
        #: :func:`build_data_module` when the run trains with them
        self.targets: AuxiliaryTargets | None = None

    def setup(self) -> dict[str, Dataset]:
        """The train/val/test datasets of the manifest.

        Returns:
            ``{"train", "val", "test"}`` :class:`labral.datasets.clip_dataset.ClipDataset`
            objects (``labels`` and ``records`` attributes); train draws a random window plus
            ``augment`` seeded by (seed, epoch, index), val/test use the eval spec.

        Raises:
            BadConfigError: missing manifest. BadManifestError: bad labels or splits.
        """
        path = manifest_path(self.manifest)
        return self.from_rows(load_rows(path), str(path))

    def from_rows(self, rows: Sequence[dict[str, Any]], where: str) -> dict[str, Dataset]:
        """:meth:`setup` on manifest rows that already carry their ``split`` (cross-validation
        builds each fold's datasets this way).

        Raises:
            BadManifestError: bad labels or splits, also after dropping unreadable clips.
        """
        splits = split_rows(rows, where)
        common = {"spec": self.spec, "cache_dir": self.cache_dir, "seed": self.seed}
        datasets = {
            "train": ClipDataset(
                splits["train"], train=True, augment=self.augment, targets=self.targets, **common
            ),
            "val": ClipDataset(splits["val"], **common),
            "test": ClipDataset(splits["test"], **common),
        }
        kept = [
            {"label": label, "split": name}
            for name, dataset in datasets.items()
            for label in dataset.labels
        ]
        split_rows(kept, f"{where} (after dropping unreadable clips)")
        return datasets

    def loader(self, dataset: Dataset, sampler: Any = None) -> DataLoader:
        """A DataLoader of ``batch_size`` / ``num_workers``; fixed order if no sampler."""
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
            drop_last=False,
        )


def build_data_module(cfg: DictConfig) -> ClipDataModule:
    """``cfg.data`` instantiated (``hydra.utils.instantiate``) with the eval spec and
    augmentation of ``cfg.transforms`` and the run's ``cfg.seed``.

    Raises:
        BadConfigError: a bad data setting (named).
    """
    spec = OmegaConf.to_container(cfg.transforms.eval, resolve=True)
    augment = OmegaConf.to_container(cfg.transforms.get("augment", {}) or {}, resolve=True)
    module = instantiate_group(cfg.data, "data", spec=spec, augment=augment, seed=int(cfg.seed))
    if not isinstance(module, ClipDataModule):
        raise BadConfigError(f"data._target_={cfg.data.get('_target_')} is not a ClipDataModule")
    weights = run_weights(cfg) if "model" in cfg else {}
    if weights:
        module.targets = AuxiliaryTargets(spec["size"], weights)
    return module


def build_datasets(cfg: DictConfig) -> dict[str, Dataset]:
    """The train/val/test datasets named by ``cfg.data`` and ``cfg.transforms``
    (:meth:`ClipDataModule.setup`)."""
    return build_data_module(cfg).setup()


def datasets_from_rows(
    cfg: DictConfig, rows: Sequence[dict[str, Any]], where: str
) -> dict[str, Dataset]:
    """:meth:`ClipDataModule.from_rows` of ``cfg``'s data module (``where``: the manifest and
    fold, for messages)."""
    return build_data_module(cfg).from_rows(rows, where)


def dataset_rows(dataset: Dataset) -> list[dict[str, Any]]:
    """The manifest rows behind a dataset (``records`` or ``rows`` attribute), else []."""
    return list(getattr(dataset, "records", None) or getattr(dataset, "rows", None) or [])


def check_datasets(datasets: dict[str, Dataset]) -> None:
    """Check prebuilt datasets (tests, notebooks) the same way manifests are checked."""
    rows = [
        {"label": label, "split": name}
        for name in SPLIT_NAMES
        for label in getattr(datasets.get(name), "labels", [])
    ]
    missing = [name for name in SPLIT_NAMES if name not in datasets]
    if missing:
        raise BadConfigError(f"datasets lacks the {missing} split(s)")
    split_rows(rows, "datasets")


def positive_weight(labels: Sequence[int]) -> float:
    """n_negative / n_positive, the BCE ``pos_weight`` that balances the classes."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=2)
    return float(counts[0] / max(counts[1], 1))


def device_train_batches(
    dataset: Dataset,
    data: ClipDataModule,
    device: Any,
    rank: int = 0,
    world_size: int = 1,
) -> Any:
    """Training batches served from the accelerator (``data.on_device=true``).

    The decoded, resampled, resized uint8 clips of the ClipDataset's cache are stacked once on
    ``device`` (padded to a common length by repeating the last frame, windows drawn only
    inside each clip's real frames); each batch is a random window, shift and gain drawn
    on the device (``labral.train.gpu_batches``) instead of ``transforms.augment``.

    Args:
        dataset: the training ClipDataset (needs ``records`` and ``cache``).
        data: the run's data module (``spec["frames"]``, ``batch_size``, ``seed``).
        device: torch device for the clips.
        rank: this process's rank.
        world_size: number of processes.

    Returns:
        A :class:`labral.train.gpu_batches.DeviceClipBatches`.

    Raises:
        BadConfigError: the dataset has no clip cache (prebuilt datasets).
    """
    if not hasattr(dataset, "cache") or not hasattr(dataset, "records"):
        raise BadConfigError(
            "data.on_device=true needs the manifest's ClipDataset; set data.on_device=false"
        )
    frames = int(data.spec["frames"])
    arrays = [
        dataset.cache.get(record["path"], key)["frames"]
        for record, key in zip(dataset.records, dataset.keys, strict=True)
    ]
    lengths = torch.tensor([len(a) for a in arrays])
    total = max(frames, int(lengths.max()))
    clips = torch.stack(
        [
            torch.from_numpy(np.concatenate([a, np.repeat(a[-1:], total - len(a), axis=0)]))
            for a in arrays
        ]
    )
    return DeviceClipBatches(
        clips,
        torch.as_tensor(np.asarray(dataset.labels)),
        frames,
        data.batch_size,
        device,
        seed=data.seed,
        lengths=lengths,
        rank=rank,
        world_size=world_size,
    )
