"""read_cine across transfer syntaxes (dcmtk and pydicom encoders) and photometric variants.

Every variant of the base clip must decode to the same grey frames: exactly for lossless
syntaxes, within JPEG tolerance for lossy ones.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.pixels import convert_color_space
from pydicom.uid import JPEG2000, JPEG2000Lossless, JPEGLSLossless, RLELossless

from labral.datasets.io.reader import read_cine


def _max_err(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def _mean_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


@pytest.mark.parametrize(
    ("option", "syntax"),
    [
        ("+ti", "1.2.840.10008.1.2"),
        ("+te", "1.2.840.10008.1.2.1"),
        ("+tb", "1.2.840.10008.1.2.2"),
        ("+td", "1.2.840.10008.1.2.1.99"),
    ],
)
def test_dcmconv_native_syntaxes_decode_exactly(rd, base_dicom, expected_crop, option, syntax):
    out = base_dicom.with_name(f"conv{option}.dcm")
    rd.dcmtk("dcmconv", option, base_dicom, out)
    clip = read_cine(out)
    assert clip.source["transfer_syntax_uid"] == syntax
    assert clip.frames.shape == expected_crop.shape
    assert _max_err(clip.frames, expected_crop) == 0
    assert clip.fps == pytest.approx(25.0)
    assert clip.spacing_mm == pytest.approx((0.15, 0.1))


@pytest.mark.parametrize("option", ["+ti", "+te", "+tb", "+td"])
def test_native_pixels_over_the_defer_size_are_a_view_of_the_file_bytes(rd, tmp_path, option):
    """Native pixels too big to parse eagerly are sliced from the file's bytes (no second
    copy) and decode exactly as pydicom does; deflated ones are read through pydicom."""
    from pydicom.uid import UID

    from labral.datasets.io import dicom_header, dicom_pixels, dicom_reader
    from labral.datasets.synth.dicom_writer import write_cine_dicom
    from labral.datasets.synth.generate import draw_patient, generate_clip

    clip = generate_clip(draw_patient(3), "positive", seed=3, frames=12, fps=20.0)
    source = write_cine_dicom(clip, tmp_path / "explicit.dcm", syntax="explicit")
    out = tmp_path / f"conv{option}.dcm"
    rd.dcmtk("dcmconv", option, source, out)
    data = io.BytesIO(out.read_bytes())
    ds = dicom_reader._read_dataset(data)
    syntax = dicom_header.transfer_syntax(ds)
    pixels = dicom_pixels.pixel_bytes(ds, data, UID(syntax))
    assert len(pixels) > dicom_reader.DEFER_BYTES
    assert isinstance(pixels, memoryview) == (option != "+td")
    assert bytes(pixels) == pydicom.dcmread(out).PixelData
    np.testing.assert_array_equal(read_cine(out).frames, read_cine(source).frames)


def test_big_endian_16_bit_is_scaled_to_uint8(rd, write_dicom, frames, expected_crop):
    path = write_dicom("sixteen.dcm", frames.astype(np.uint16) * 257)
    out = path.with_name("sixteen_be.dcm")
    rd.dcmtk("dcmconv", "+tb", path, out)
    clip = read_cine(out)
    assert clip.source["bits_allocated"] == 16
    assert clip.frames.dtype == np.uint8
    assert _max_err(clip.frames, expected_crop) == 0


def test_dcmcrle_rle_decodes_exactly(rd, base_dicom, expected_crop):
    out = base_dicom.with_name("rle.dcm")
    rd.dcmtk("dcmcrle", base_dicom, out)
    clip = read_cine(out)
    assert clip.source["transfer_syntax_uid"] == "1.2.840.10008.1.2.5"
    assert _max_err(clip.frames, expected_crop) == 0


@pytest.mark.parametrize(
    ("option", "syntax", "lossless"),
    [
        ("+eb", "1.2.840.10008.1.2.4.50", False),
        ("+ee", "1.2.840.10008.1.2.4.51", False),
        ("+el", "1.2.840.10008.1.2.4.57", True),
        ("+e1", "1.2.840.10008.1.2.4.70", True),
    ],
)
def test_dcmcjpeg_variants(rd, base_dicom, expected_crop, option, syntax, lossless):
    out = base_dicom.with_name(f"jpeg{option}.dcm")
    rd.dcmtk("dcmcjpeg", option, base_dicom, out)
    clip = read_cine(out)
    assert clip.source["transfer_syntax_uid"] == syntax
    assert clip.frames.shape == expected_crop.shape
    if lossless:
        assert _max_err(clip.frames, expected_crop) == 0
    else:
        assert _mean_err(clip.frames, expected_crop) < 2.0
        assert _max_err(clip.frames, expected_crop) < 40


def test_dcmcjpls_jpeg_ls(rd, base_dicom, expected_crop):
    out = base_dicom.with_name("jls.dcm")
    rd.dcmtk("dcmcjpls", base_dicom, out)
    clip = read_cine(out)
    assert clip.source["transfer_syntax_uid"].startswith("1.2.840.10008.1.2.4.8")
    assert _max_err(clip.frames, expected_crop) == 0


@pytest.mark.parametrize("syntax", [JPEGLSLossless, JPEG2000Lossless, RLELossless])
def test_pydicom_encoders_decode_exactly(base_dicom, expected_crop, syntax):
    ds = pydicom.dcmread(base_dicom)
    ds.compress(syntax)
    out = base_dicom.with_name(f"pyd-{syntax}.dcm")
    ds.save_as(out)
    clip = read_cine(out)
    assert clip.source["transfer_syntax_uid"] == str(syntax)
    assert _max_err(clip.frames, expected_crop) == 0


def _rgb_of(frames: np.ndarray) -> np.ndarray:
    """Grey (T, H, W) -> RGB (T, H, W, 3) whose BT.601 luma is the grey exactly."""
    return np.repeat(frames[..., None], 3, axis=-1)


def test_rgb_planar_0_and_1_give_the_same_grey(write_dicom, frames, expected_crop):
    rgb = _rgb_of(frames)
    interleaved = read_cine(write_dicom("rgb0.dcm", rgb, photometric="RGB"))
    path = write_dicom("rgb1.dcm", rgb, photometric="RGB")
    ds = pydicom.dcmread(path)
    ds.PlanarConfiguration = 1
    ds.PixelData = np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)).tobytes()
    ds.save_as(path)
    planar = read_cine(path)
    assert _max_err(interleaved.frames, expected_crop) == 0
    assert _max_err(planar.frames, expected_crop) == 0


def test_rgb_uses_bt601_luma(write_dicom):
    rgb = np.zeros((4, 64, 80, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    clip = read_cine(write_dicom("luma.dcm", rgb, photometric="RGB", regions=[]))
    expected = round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)  # 124, not the mean 117
    assert int(np.median(clip.frames)) == expected


def test_ybr_full_takes_the_luma_plane(write_dicom, frames, expected_crop):
    ybr = convert_color_space(_rgb_of(frames), "RGB", "YBR_FULL")
    clip = read_cine(write_dicom("ybr.dcm", ybr, photometric="YBR_FULL"))
    assert clip.source["photometric"] == "YBR_FULL"
    assert _max_err(clip.frames, expected_crop) <= 1


def test_rgb_jpeg_baseline_ybr_full_422_via_dcmcjpeg(rd, write_dicom, frames, expected_crop):
    path = write_dicom("rgb.dcm", _rgb_of(frames), photometric="RGB")
    out = path.with_name("rgb_jpeg.dcm")
    rd.dcmtk("dcmcjpeg", "+eb", "+cy", "+s2", path, out)  # YCbCr, 4:2:2 subsampling
    assert rd.dataset_of(out).PhotometricInterpretation == "YBR_FULL_422"
    clip = read_cine(out)
    assert clip.source["decoded_photometric"].startswith("YBR_FULL")
    assert _mean_err(clip.frames, expected_crop) < 2.0


@pytest.mark.parametrize("lut_bits", [8, 16])
def test_palette_color_applies_the_lut_then_luma(write_dicom, frames, expected_crop, lut_bits):
    path = write_dicom("pal.dcm", frames, photometric="PALETTE COLOR")
    ds = pydicom.dcmread(path)
    ramp = np.arange(256, dtype=np.uint16) * (257 if lut_bits == 16 else 1)
    for offset, colour in enumerate(("Red", "Green", "Blue")):
        ds.add_new((0x0028, 0x1101 + offset), "US", [256, 0, lut_bits])
        dtype = "<u2" if lut_bits == 16 else "u1"
        setattr(ds, f"{colour}PaletteColorLookupTableData", ramp.astype(dtype).tobytes())
    ds.save_as(path)
    clip = read_cine(path)
    assert _max_err(clip.frames, expected_crop) <= 1


def test_monochrome1_is_inverted(write_dicom, frames, expected_crop):
    clip = read_cine(write_dicom("m1.dcm", 255 - frames, photometric="MONOCHROME1"))
    assert _max_err(clip.frames, expected_crop) == 0


def test_retired_us_multiframe_class_reads(write_dicom, expected_crop):
    clip = read_cine(write_dicom("retired.dcm", sop_class="1.2.840.10008.5.1.4.1.1.3"))
    assert clip.source["sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.3"
    assert _max_err(clip.frames, expected_crop) == 0


def test_preambleless_implicit_dataset_reads(base_dicom: Path, expected_crop):
    ds = pydicom.dcmread(base_dicom)
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ds)  # a bare data set: no preamble, no 'DICM', no file meta
    data = buffer.getvalue()
    assert data[128:132] != b"DICM" and data[:2] == b"\x08\x00"
    clip = read_cine(data)
    assert clip.source["transfer_syntax_uid"] == "1.2.840.10008.1.2"
    assert _max_err(clip.frames, expected_crop) == 0


def test_bytes_and_path_give_the_same_clip(base_dicom):
    from_path = read_cine(base_dicom)
    from_bytes = read_cine(base_dicom.read_bytes())
    assert np.array_equal(from_path.frames, from_bytes.frames)
    assert from_path.source == from_bytes.source


def _h264_stream(frames: np.ndarray, fps: int) -> bytes:
    """uint8 (T, H, W) -> a raw H.264 Annex B elementary stream (what DICOM encapsulates)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="h264") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def test_h264_in_dicom_decodes_through_pyav(base_dicom, frames, expected_crop):
    ds = pydicom.dcmread(base_dicom)
    data = _h264_stream(frames, 25)
    half = len(data) // 2 + (len(data) // 2) % 2
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"  # MPEG-4 AVC/H.264 HP@L4.1
    ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.PhotometricInterpretation = "YBR_PARTIAL_420"
    ds.PixelData = pydicom.encaps.encapsulate([data[:half], data[half:]], has_bot=False)
    ds["PixelData"].VR = "OB"
    ds.save_as(base_dicom)
    clip = read_cine(base_dicom)
    assert clip.source["transfer_syntax_uid"] == "1.2.840.10008.1.2.4.102"
    assert clip.frames.shape == expected_crop.shape  # the DICOM region still applies
    assert clip.fps == pytest.approx(25.0)  # timing from Frame Time, not the stream
    assert _mean_err(clip.frames, expected_crop) < 2.0


@pytest.mark.parametrize(
    ("syntax", "kwargs", "tolerance"),
    [
        (RLELossless, {}, 0.0),
        (JPEGLSLossless, {}, 0.0),
        (JPEG2000Lossless, {}, 0.0),
        (JPEG2000, {"j2k_cr": [8]}, 2.0),
    ],
)
def test_rgb_through_pydicom_encoders(
    write_dicom, frames, expected_crop, syntax, kwargs, tolerance
):
    path = write_dicom("rgbc.dcm", _rgb_of(frames), photometric="RGB")
    ds = pydicom.dcmread(path)
    ds.compress(syntax, **kwargs)
    ds.save_as(path)
    clip = read_cine(path)
    assert clip.source["transfer_syntax_uid"] == str(syntax)
    assert _mean_err(clip.frames, expected_crop) <= tolerance
    assert _max_err(clip.frames, expected_crop) <= (1 if tolerance == 0 else 40)


def test_native_ybr_full_422_takes_the_luma(write_dicom, frames, expected_crop):
    path = write_dicom("ybr422.dcm", _rgb_of(frames), photometric="RGB")
    ds = pydicom.dcmread(path)
    ybr = convert_color_space(_rgb_of(frames), "RGB", "YBR_FULL")
    # 4:2:2 layout: Y0 Y1 Cb Cr for every horizontal pixel pair
    packed = np.empty((*frames.shape[:2], frames.shape[2] * 2), np.uint8)
    packed[..., 0::4] = ybr[..., 0::2, 0]
    packed[..., 1::4] = ybr[..., 1::2, 0]
    packed[..., 2::4] = ybr[..., 0::2, 1]
    packed[..., 3::4] = ybr[..., 0::2, 2]
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = packed.tobytes()
    ds.save_as(path)
    clip = read_cine(path)
    assert _max_err(clip.frames, expected_crop) <= 1


def test_signed_16_bit_is_stretched_to_uint8(write_dicom, frames, expected_crop):
    path = write_dicom("s16.dcm", frames.astype(np.uint16))
    ds = pydicom.dcmread(path)
    ds.PixelRepresentation = 1
    ds.BitsStored, ds.HighBit = 12, 11
    ds.PixelData = ((frames.astype(np.int16) - 128) * 8).astype("<i2").tobytes()
    ds.save_as(path)
    clip = read_cine(path)
    assert clip.frames.dtype == np.uint8
    assert _max_err(clip.frames, expected_crop) <= 1
