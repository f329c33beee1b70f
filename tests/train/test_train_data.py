"""Training through the real data path (manifest -> reader -> cached clips), and bad input
that must fail before training starts with a message naming what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labral.errors import BadConfigError, BadManifestError
from labral.train.command import train
from labral.train.data import data_fingerprint, load_rows, split_rows

from .conftest import tiny_clip  # noqa: TID252 - importlib mode: conftest is a sibling module


def write_manifest(folder: Path, splits: dict[str, list[int]], label_override=None) -> Path:
    """Write MP4 clips and a manifest.jsonl; one patient per clip."""
    from labral.datasets.synth.video_writer import write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for split, labels in splits.items():
        for i, label in enumerate(labels):
            name = f"{split}_{i}.mp4"
            write_mp4(tiny_clip(label, seed=len(lines), frames=10), 10.0, folder / name)
            row = {
                "path": name,
                "label": label,
                "patient": f"{split}-{i}",
                "split": split,
                "fps": 10.0,
            }
            if label_override is not None and i == 0:
                row["label"] = label_override
            lines.append(json.dumps(row))
    path = folder / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


BALANCED = {"train": [0, 1] * 4, "val": [0, 1] * 2, "test": [0, 1] * 2}


def test_train_through_manifest_and_clip_cache(train_cfg, tmp_path):
    manifest = write_manifest(tmp_path / "data", BALANCED)
    cfg = train_cfg(
        f"data.manifest={manifest}", "trainer.max_epochs=1", f"data.cache_dir={tmp_path / 'cache'}"
    )
    result = train(cfg)
    assert result["epochs_run"] == 1
    assert result["test"]["n"] == 4
    calibration = json.loads((Path(cfg.paths.output_dir) / "calibration.json").read_text())
    assert calibration["data_fingerprint"] == data_fingerprint(
        [json.loads(x) for x in manifest.read_text().splitlines()]
    )
    assert any((tmp_path / "cache").iterdir())


def test_missing_data_set_says_run_synth(train_cfg, tmp_path):
    cfg = train_cfg(f"data.manifest={tmp_path / 'nowhere' / 'manifest.jsonl'}")
    with pytest.raises(BadConfigError, match=r"data\.manifest=.*labral synth"):
        train(cfg)


def test_unknown_model_names_the_setting(train_cfg, tiny_datasets):
    cfg = train_cfg("model._target_=labral.models.nope.NoSuchNet")
    with pytest.raises(BadConfigError, match=r"model\._target_=labral\.models\.nope\.NoSuchNet"):
        train(cfg, datasets=tiny_datasets())
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_labels_other_than_0_1_are_rejected(train_cfg, tmp_path):
    manifest = write_manifest(tmp_path / "data", BALANCED, label_override=2)
    with pytest.raises(BadManifestError, match="label"):
        train(train_cfg(f"data.manifest={manifest}"))


def test_empty_split_is_named(train_cfg, tmp_path):
    manifest = write_manifest(tmp_path / "data", {"train": [0, 1] * 4, "val": [0, 1]})
    with pytest.raises(BadManifestError, match="test split is empty"):
        train(train_cfg(f"data.manifest={manifest}"))


def test_one_class_validation_split_is_rejected(train_cfg, tiny_datasets):
    datasets = tiny_datasets()
    datasets["val"].labels = [0] * len(datasets["val"].labels)
    with pytest.raises(BadManifestError, match="val split holds only label 0"):
        train(train_cfg(), datasets=datasets)


def test_split_rows_groups_and_checks():
    rows = [{"label": y, "split": s} for s in ("train", "val") for y in (0, 1)]
    rows.append({"label": 1, "split": "test"})
    grouped = split_rows(rows, "m")
    assert [len(grouped[s]) for s in ("train", "val", "test")] == [2, 2, 1]
    with pytest.raises(BadManifestError, match="split None"):
        split_rows([*rows, {"label": 0}], "m")
    with pytest.raises(BadManifestError, match="label True"):
        split_rows([*rows, {"label": True, "split": "train"}], "m")


def test_on_device_batches_train_from_the_clip_cache(train_cfg, tmp_path):
    manifest = write_manifest(tmp_path / "data", BALANCED)
    cfg = train_cfg(
        f"data.manifest={manifest}",
        "trainer.max_epochs=1",
        "data.cache_dir=null",
        "data.on_device=true",
    )
    result = train(cfg)
    assert result["epochs_run"] == 1 and result["test"]["n"] == 4
    epochs = [json.loads(x) for x in (Path(cfg.paths.output_dir) / "metrics.jsonl").open()]
    assert [r["epoch"] for r in epochs if "epoch" in r] == [0]


def test_on_device_needs_a_manifest_dataset(train_cfg, tiny_datasets):
    with pytest.raises(BadConfigError, match="data.on_device"):
        train(train_cfg("data.on_device=true"), datasets=tiny_datasets())


def test_rows_without_a_split_are_assigned_one_by_patient(tmp_path):
    rows = [
        {"path": f"p{i}_{c}.mp4", "label": i % 2, "patient": f"p{i}"}
        for i in range(20)
        for c in range(2)
    ]
    rows[0]["split"] = rows[1]["split"] = "test"  # a patient with a split keeps it
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    loaded = load_rows(path)
    assert loaded[0]["split"] == loaded[1]["split"] == "test"
    split_of: dict[str, set[str]] = {}
    for row in loaded:
        split_of.setdefault(row["patient"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in split_of.values())
    grouped = split_rows(loaded, str(path))  # every split non-empty, train/val both classes
    assert len(grouped["train"]) > len(grouped["val"])
    assert load_rows(path) == loaded  # the same manifest gives the same split
