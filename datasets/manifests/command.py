"""``labral manifest``: check the settings, scan the folder, say what was kept and where.

    labral manifest dir=/data/hips labels=/data/hips/labels.csv key_file=~/.labral_pseudonym.key

The work is :func:`labral.datasets.manifests.from_folder.build_manifest`; this is the Hydra entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from labral.datasets.manifests.from_folder import build_manifest, format_summary
from labral.datasets.manifests.pseudonyms import Pseudonymizer, load_key
from labral.errors import BadConfigError


def run(cfg: DictConfig) -> dict[str, Any]:
    """Entry point of ``labral manifest`` (called by ``labral.cli`` with the composed config).

    Args:
        cfg: the ``manifest`` config (``configs/manifest.yaml`` plus overrides).

    Returns:
        The summary written as ``summary.json`` (counts only).

    Raises:
        BadConfigError: no ``dir``, no ``labels`` or no pseudonym key (checked before any
            file is read); BadManifestError: a bad labels CSV, or nothing kept.
    """
    if not cfg.get("dir"):
        raise BadConfigError("dir=<folder> is required: the folder of DICOM / video exports")
    if not cfg.get("labels"):
        raise BadConfigError(
            "labels=<labels.csv> is required: a CSV with a key column (PatientID, "
            "AccessionNumber, StudyInstanceUID or file) and a label column (0/1)"
        )
    names = Pseudonymizer(load_key(cfg.get("key_file")))
    out = Path(str(cfg.out if cfg.get("out") else cfg.paths.output_dir)).expanduser()
    summary = build_manifest(
        str(cfg.dir),
        str(cfg.labels),
        out,
        names,
        label_key=cfg.get("label_key"),
        decode=bool(cfg.get("decode", False)),
        progress=bool(cfg.get("progress", True)),
        exclude=(str(cfg.key_file),) if cfg.get("key_file") else (),
    )
    print(format_summary(summary, out.resolve()), flush=True)
    return summary
