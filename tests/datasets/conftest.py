"""Fixtures for reader tests: a small ultrasound cine written by the tests' DICOM writer.

The writer (:mod:`tests.helpers.dicom`) is deliberately independent of
``labral.datasets.synth.dicom_writer`` so the reader is tested against files that labral's
own writer did not shape; dcmtk then makes the transfer-syntax variants.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.helpers.dicom import PATIENT, cine_dataset, region_item, write_dicom

#: Tissue region (inclusive bounds, DICOM convention) inside the 64 x 80 frames.
REGION = {"x0": 12, "y0": 8, "x1": 67, "y1": 55}
T, H, W = 8, 64, 80


def make_frames(t: int = T, h: int = H, w: int = W) -> np.ndarray:
    """uint8 (T, H, W): smooth tissue with a moving bright disc inside REGION, black outside,
    a burned-in bright text bar at the top left and a caliper mark at the bottom right."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.zeros((t, h, w), dtype=np.uint8)
    for i in range(t):
        tissue = 60 + 100 * (yy / h) + 20 * np.sin(xx / 7.0 + i / 2.0)
        disc = 80 * np.exp(-((yy - 30) ** 2 + (xx - 25 - 3 * i) ** 2) / 40.0)
        image = np.clip(tissue + disc, 0, 255)
        frame = np.zeros((h, w), np.float32)
        r = REGION
        frame[r["y0"] : r["y1"] + 1, r["x0"] : r["x1"] + 1] = image[
            r["y0"] : r["y1"] + 1, r["x0"] : r["x1"] + 1
        ]
        frame[1:4, 2:30] = 255  # burned-in text line
        frame[h - 4 : h - 2, w - 8 : w - 2] = 250  # caliper mark
        frames[i] = np.rint(frame).astype(np.uint8)
    frames[0, 10, 14] = 255  # make the full 0..255 range present (16-bit scaling test)
    return frames


def tissue_regions(regions: list[Dataset] | None = None) -> list[Dataset]:
    """``regions``, or (None) the reference clip's one tissue region, REGION."""
    return [region_item(**REGION)] if regions is None else regions


def build_dataset(
    frames: np.ndarray, *, regions: list[Dataset] | None = None, **header: Any
) -> Dataset:
    """:func:`tests.helpers.dicom.cine_dataset` whose default tissue region is REGION.

    Args:
        frames: stored pixel values, uint8/uint16 (T, H, W) or uint8 (T, H, W, 3) colour.
        regions: Sequence of Ultrasound Regions items; default one tissue region = REGION.
        header: the writer's other keywords (``photometric``, ``timing``, ``modality``,
            ``sop_class``, ``number_of_frames``).
    """
    return cine_dataset(frames, regions=tissue_regions(regions), **header)


@pytest.fixture
def frames() -> np.ndarray:
    """The reference grey clip, uint8 (8, 64, 80)."""
    return make_frames()


@pytest.fixture
def expected_crop(frames: np.ndarray) -> np.ndarray:
    """What read_cine should return for the base file: frames cropped to REGION."""
    r = REGION
    return frames[:, r["y0"] : r["y1"] + 1, r["x0"] : r["x1"] + 1]


@pytest.fixture(name="write_dicom")
def write_dicom_fixture(tmp_path: Path) -> Callable[..., Path]:
    """``write_dicom(name, frames=None, **build_dataset kwargs) -> Path`` in ``tmp_path``."""

    def _write(
        name: str = "base.dcm",
        stored: np.ndarray | None = None,
        regions: list[Dataset] | None = None,
        **header: Any,
    ) -> Path:
        frames = make_frames() if stored is None else stored
        return write_dicom(tmp_path / name, frames, regions=tissue_regions(regions), **header)

    return _write


@pytest.fixture
def base_dicom(write_dicom: Callable[..., Path]) -> Path:
    """The base MONOCHROME2 Explicit VR Little Endian cine with one tissue region."""
    return write_dicom()


def dcmtk(tool: str, *args: str | Path) -> None:
    """Run a dcmtk tool, skipping the calling test when it is not installed."""
    if shutil.which(tool) is None:
        pytest.skip(f"dcmtk's {tool} is not installed (apt-get install dcmtk)")
    subprocess.run([tool, *map(str, args)], check=True, capture_output=True, timeout=60)


def identity_strings() -> list[str]:
    """Every identifying value written into test files, for leak checks."""
    return [v.split("^")[0] for v in PATIENT.values()] + list(PATIENT.values())


def dataset_of(path: Path) -> Dataset:
    """Full read with pydicom (for assertions on what a tool wrote)."""
    return pydicom.dcmread(path)


@pytest.fixture
def rd() -> SimpleNamespace:
    """The helpers above as one namespace (test modules cannot import conftest directly; the
    DICOM writer's own helpers they import from :mod:`tests.helpers.dicom`)."""
    return SimpleNamespace(
        make_frames=make_frames,
        build_dataset=build_dataset,
        dcmtk=dcmtk,
        identity_strings=identity_strings,
        dataset_of=dataset_of,
        REGION=REGION,
    )
