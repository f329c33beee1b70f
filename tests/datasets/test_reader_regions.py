"""Geometry from the Sequence of Ultrasound Regions, its fallbacks, and frame timing."""

from __future__ import annotations

import numpy as np
import pytest

from labral.datasets.io.reader import read_cine
from labral.datasets.io.regions import detect_image_area
from tests.helpers.dicom import region_item

INNER = (8, 56, 12, 68)  # REGION as (y0, y1, x0, x1) with exclusive ends


def test_crop_removes_burned_in_text(base_dicom, frames, expected_crop):
    clip = read_cine(base_dicom)
    assert clip.frames.shape == (8, 48, 56)
    assert np.array_equal(clip.frames, expected_crop)
    assert (frames >= 250).sum() > 8 * 80  # text and calipers are in the file ...
    assert (clip.frames >= 250).sum() == 1  # ... only the one bright tissue pixel is left
    assert clip.source["region"]["origin"] == "dicom"
    assert clip.warnings == []


def test_spacing_in_mm_from_cm_deltas(base_dicom):
    assert read_cine(base_dicom).spacing_mm == pytest.approx((0.15, 0.10))


def test_several_regions_pick_the_2d_tissue_one(rd, write_dicom, expected_crop):
    doppler = region_item(0, 0, 79, 63, fmt=3, dtype=3)  # spectral Doppler, larger
    colour = region_item(20, 20, 40, 40, fmt=1, dtype=2)  # colour flow, 2-D
    tissue = region_item(**rd.REGION)
    clip = read_cine(write_dicom("multi.dcm", regions=[doppler, colour, tissue]))
    assert np.array_equal(clip.frames, expected_crop)
    assert clip.source["region"]["regions_in_header"] == 3
    assert clip.warnings == []


def test_two_tissue_regions_use_the_largest_with_a_warning(rd, write_dicom, expected_crop):
    small = region_item(12, 8, 30, 20)
    clip = read_cine(write_dicom("two.dcm", regions=[small, region_item(**rd.REGION)]))
    assert np.array_equal(clip.frames, expected_crop)
    assert any("used the largest" in w for w in clip.warnings)


def test_region_outside_a_downscaled_image_falls_back_to_detection(rd, write_dicom):
    big = region_item(24, 16, 135, 111)  # described on a 2x larger acquisition matrix
    clip = read_cine(write_dicom("oob.dcm", regions=[big]))
    assert clip.source["region"]["origin"] == "detected"
    assert clip.spacing_mm is None
    assert any("does not fit" in w for w in clip.warnings)
    y0, y1, x0, x1 = clip.source["region"]["bounds_yx"]
    assert abs(y0 - INNER[0]) <= 1 and abs(y1 - INNER[1]) <= 1
    assert abs(x0 - INNER[2]) <= 1 and abs(x1 - INNER[3]) <= 1


def test_off_by_one_overshoot_is_clipped_not_rejected(rd, write_dicom):
    clip = read_cine(write_dicom("edge.dcm", regions=[region_item(12, 8, 80, 64)]))
    assert clip.source["region"]["origin"] == "dicom"
    assert clip.frames.shape == (8, 56, 68)


def test_no_regions_detects_the_image_area(write_dicom, expected_crop):
    clip = read_cine(write_dicom("none.dcm", regions=[]))
    assert clip.source["region"]["origin"] == "detected"
    assert any("no Sequence of Ultrasound Regions" in w for w in clip.warnings)
    assert clip.frames.shape[0] == 8
    assert abs(clip.frames.shape[1] - 48) <= 2 and abs(clip.frames.shape[2] - 56) <= 2
    assert (clip.frames >= 250).sum() <= 1  # text bar and calipers cropped away


def test_inverted_region_never_gives_an_empty_crop(rd, write_dicom):
    clip = read_cine(write_dicom("inv.dcm", regions=[region_item(60, 50, 10, 5)]))
    assert min(clip.frames.shape) > 0
    assert clip.source["region"]["origin"] == "detected"


def test_detection_on_a_blank_clip_returns_the_whole_frame():
    assert detect_image_area(np.zeros((4, 30, 40), np.uint8)) == (0, 30, 0, 40)


def test_detection_ignores_static_thin_text():
    clip = np.zeros((6, 100, 120), np.uint8)
    rng = np.random.default_rng(1)
    clip[:, 20:90, 30:110] = rng.integers(40, 200, (6, 70, 80))
    clip[:, 2:5, 0:100] = 255  # a text line wider than the image
    clip[:, 95:98, 5:20] = 255
    assert detect_image_area(clip) == (20, 90, 30, 110)


@pytest.mark.parametrize(
    ("timing", "fps", "source"),
    [
        ({"FrameTime": 50.0, "CineRate": 10, "RecommendedDisplayFrameRate": 5}, 20.0, "FrameTime"),
        (
            {"FrameTimeVector": [0, 40, 40, 40, 40, 40, 40, 40], "CineRate": 10},
            25.0,
            "FrameTimeVector",
        ),
        ({"CineRate": 30, "RecommendedDisplayFrameRate": 5}, 30.0, "CineRate"),
        ({"RecommendedDisplayFrameRate": 15}, 15.0, "RecommendedDisplayFrameRate"),
        ({"FrameTime": 0.0, "CineRate": 12}, 12.0, "CineRate"),
    ],
)
def test_timing_order_of_trust(write_dicom, timing, fps, source):
    clip = read_cine(write_dicom("t.dcm", timing=timing))
    assert clip.fps == pytest.approx(fps)
    assert clip.source["fps_source"] == source
    assert not any("assumed" in w for w in clip.warnings)


def test_frame_time_vector_mean_of_uneven_increments(write_dicom):
    vector = [0, 30, 50, 40, 40, 30, 50, 40]  # mean 40 ms after the leading 0
    clip = read_cine(write_dicom("ftv.dcm", timing={"FrameTimeVector": vector}))
    assert clip.fps == pytest.approx(25.0)


def test_no_timing_uses_the_default_with_a_warning(write_dicom):
    clip = read_cine(write_dicom("nt.dcm", timing={}), default_fps=12.5)
    assert clip.fps == 12.5
    assert clip.source["fps_source"] == "default"
    assert any("assumed 12.5 frames/s" in w for w in clip.warnings)
