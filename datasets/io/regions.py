"""Tissue-region geometry: the DICOM Sequence of Ultrasound Regions, or detection from pixels.

Real files are inconsistent: regions can describe the original acquisition matrix and fall
outside a downscaled image, there can be several, or none. :func:`locate_tissue_region`
never fails and never returns an empty box: when the header cannot be trusted it detects
the image area from the pixels and says so in a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

#: Region Spatial Format (0018,6012) 1 = 2-D; Region Data Type (0018,6014) 1 = tissue.
SPATIAL_FORMAT_2D = 1
DATA_TYPE_TISSUE = 1
#: Physical Units X/Y Direction (0018,6024/6026) 3 = cm.
UNITS_CM = 3
#: A region may overshoot the image by this many pixels (off-by-one exports) and be clipped.
OVERSHOOT_TOLERANCE_PX = 2


@dataclass(frozen=True)
class UltrasoundRegion:
    """One item of the Sequence of Ultrasound Regions (0018,6011).

    Attributes:
        x0, y0, x1, y1: inclusive pixel bounds (Region Location Min/Max X/Y).
        spatial_format: Region Spatial Format (1 = 2-D).
        data_type: Region Data Type (1 = tissue).
        units_x, units_y: Physical Units X/Y Direction (3 = cm).
        delta_x, delta_y: Physical Delta X/Y (units per pixel).
    """

    x0: int
    y0: int
    x1: int
    y1: int
    spatial_format: int = 0
    data_type: int = 0
    units_x: int = 0
    units_y: int = 0
    delta_x: float = 0.0
    delta_y: float = 0.0

    @property
    def area(self) -> int:
        """Pixels inside the bounds (0 if the bounds are inverted)."""
        return max(0, self.x1 - self.x0 + 1) * max(0, self.y1 - self.y0 + 1)

    def spacing_mm(self) -> tuple[float, float] | None:
        """(row, column) pixel size in mm when both axes are in cm with positive deltas."""
        if self.units_x == UNITS_CM and self.units_y == UNITS_CM:
            if self.delta_x > 0 and self.delta_y > 0:
                return (abs(self.delta_y) * 10.0, abs(self.delta_x) * 10.0)
        return None


def _choose_region(regions: list[UltrasoundRegion]) -> tuple[UltrasoundRegion | None, list[str]]:
    """The 2-D tissue region (largest if several), else the largest 2-D region."""
    warnings: list[str] = []
    planar = [r for r in regions if r.spatial_format == SPATIAL_FORMAT_2D]
    tissue = [r for r in planar if r.data_type == DATA_TYPE_TISSUE]
    candidates = tissue or planar
    if not candidates:
        return None, warnings
    if not tissue:
        warnings.append("no 2-D tissue region in the header; used the largest 2-D region")
    elif len(tissue) > 1:
        warnings.append(f"{len(tissue)} 2-D tissue regions in the header; used the largest")
    return max(candidates, key=lambda r: r.area), warnings


def _fit_to_image(region: UltrasoundRegion, rows: int, cols: int) -> tuple[int, int, int, int]:
    """Clip bounds overshooting by a few pixels; return (y0, y1, x0, x1) exclusive ends, or raise.

    Raises:
        ValueError: if the region is inverted, empty or clearly outside the image.
    """
    tol = OVERSHOOT_TOLERANCE_PX
    if region.x0 < 0 or region.y0 < 0 or region.x1 < region.x0 or region.y1 < region.y0:
        raise ValueError("inverted or negative bounds")
    if region.x1 >= cols + tol or region.y1 >= rows + tol:
        raise ValueError("bounds outside the image")
    y0, y1 = region.y0, min(region.y1, rows - 1) + 1
    x0, x1 = region.x0, min(region.x1, cols - 1) + 1
    if y1 - y0 < 2 or x1 - x0 < 2:
        raise ValueError("region smaller than 2 x 2 pixels")
    return y0, y1, x0, x1


def detect_image_area(
    frames: np.ndarray, *, max_samples: int = 32, background: float = 10.0
) -> tuple[int, int, int, int]:
    """Bounding box of the live image area: pixels that change over time or are not background.

    Burned-in text and calipers are thin, so a morphological opening (a square about 1/20 of
    the image side) removes them; the largest remaining connected component gives the box.

    Args:
        frames: uint8 (T, H, W).
        max_samples: at most this many evenly spaced frames are examined.
        background: grey level at or below which a static pixel counts as black margin.

    Returns:
        (y0, y1, x0, x1) with exclusive ends; the whole frame when nothing is found.
    """
    t, h, w = frames.shape
    sample = frames[np.linspace(0, t - 1, min(t, max_samples)).astype(int)]
    live = (sample.max(axis=0) > background) | (sample.astype(np.float32).std(axis=0) > 1.0)
    size = max(3, min(h, w) // 20)
    opened = ndimage.binary_opening(live, structure=np.ones((size, size), dtype=bool))
    if opened.sum() < 0.01 * h * w:
        return 0, h, 0, w
    labels, count = ndimage.label(opened)
    largest = 1 + int(np.argmax(ndimage.sum_labels(opened, labels, range(1, count + 1))))
    ys, xs = np.nonzero(labels == largest)
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def locate_tissue_region(
    frames: np.ndarray, regions: list[UltrasoundRegion]
) -> tuple[tuple[int, int, int, int], tuple[float, float] | None, dict[str, Any], list[str]]:
    """Pick the tissue box from header regions, falling back to detection from pixels.

    Args:
        frames: uint8 (T, H, W), the full decoded frames.
        regions: the header's regions
            (:func:`labral.datasets.io.dicom_header.regions_from_header`; may be empty).

    Returns:
        ``(box, spacing_mm, region_facts, warnings)``: ``box`` = (y0, y1, x0, x1) exclusive
        ends, never empty; ``spacing_mm`` (row, col) from the chosen region or None;
        ``region_facts`` a JSON-ready dict naming how the box was found.
    """
    _, rows, cols = frames.shape
    region, warnings = _choose_region(regions)
    if region is not None:
        try:
            box = _fit_to_image(region, rows, cols)
            facts = {
                "origin": "dicom",
                "bounds_yx": list(box),
                "spatial_format": region.spatial_format,
                "data_type": region.data_type,
                "regions_in_header": len(regions),
            }
            return box, region.spacing_mm(), facts, warnings
        except ValueError as why:
            warnings.append(
                f"the ultrasound region ({region.x0},{region.y0})-({region.x1},{region.y1}) "
                f"does not fit the {cols}x{rows} image ({why}); detected the image area "
                "from the pixels instead and dropped the region's spacing"
            )
    elif regions:
        warnings.append("no 2-D region in the header; detected the image area from the pixels")
    else:
        warnings.append(
            "no Sequence of Ultrasound Regions in the header; detected the image area from "
            "the pixels (spacing unknown)"
        )
    box = detect_image_area(frames)
    facts = {"origin": "detected", "bounds_yx": list(box), "regions_in_header": len(regions)}
    return box, None, facts, warnings
