"""``labral manifest``: check the settings, scan the folder, say what was kept and where.

    labral manifest dir=/data/hips labels=/data/hips/labels.csv key_file=~/.labral_pseudonym.key

The work is :func:`labral.datasets.manifests.from_folder.build_manifest`; this is the Hydra
entry. Every setting, its type and its default is :class:`ManifestSettings`
(``manifest_schema`` in Hydra's ConfigStore; ``configs/manifest.yaml`` holds only groups).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pydantic import Field

from labral.datasets.manifests.from_folder import build_manifest, format_summary
from labral.datasets.manifests.pseudonyms import Pseudonymizer, load_key
from labral.errors import BadConfigError
from labral.settings import Settings, Text, register_schema, settings_from_config


class ManifestSettings(Settings):
    """Every key of ``labral manifest``, its type and its default."""

    dir: Text | None = Field(
        None, description="the folder tree to scan; every file is sniffed by content"
    )
    labels: Text | None = Field(
        None,
        description="labels CSV: a key column (PatientID | AccessionNumber | StudyInstanceUID | "
        "file), label 0/1; optional hip_label 0/1, side L/R, PatientID, split, site",
    )
    label_key: Text | None = Field(
        None, description="the key column to join on; null = the most specific one the CSV has"
    )
    key_file: Text | None = Field(
        None, description="file holding the pseudonym key; null = $LABRAL_PSEUDONYM_KEY"
    )
    out: Text | None = Field(
        None, description="output folder (never scanned); null = this run's dir"
    )
    decode: bool = Field(False, description="also decode every clip in full (slow)")
    progress: bool = Field(True, description="a tqdm bar over the files")


register_schema("manifest_schema", ManifestSettings)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Entry point of ``labral manifest`` (called by ``labral.cli`` with the composed config).

    Args:
        cfg: the ``manifest`` config (:class:`ManifestSettings`' schema plus overrides).

    Returns:
        The summary written as ``summary.json`` (counts only).

    Raises:
        BadConfigError: no ``dir``, no ``labels`` or no pseudonym key (checked before any
            file is read); BadManifestError: a bad labels CSV, or nothing kept.
    """
    settings = settings_from_config(ManifestSettings, cfg, ignore=("paths",))
    if not settings.dir:
        raise BadConfigError("dir=<folder> is required: the folder of DICOM / video exports")
    if not settings.labels:
        raise BadConfigError(
            "labels=<labels.csv> is required: a CSV with a key column (PatientID, "
            "AccessionNumber, StudyInstanceUID or file) and a label column (0/1)"
        )
    names = Pseudonymizer(load_key(settings.key_file))
    out = Path(settings.out or str(cfg.paths.output_dir)).expanduser()
    summary = build_manifest(
        settings.dir,
        settings.labels,
        out,
        names,
        label_key=settings.label_key,
        decode=settings.decode,
        progress=settings.progress,
        exclude=(settings.key_file,) if settings.key_file else (),
    )
    print(format_summary(summary, out.resolve()), flush=True)
    return summary
