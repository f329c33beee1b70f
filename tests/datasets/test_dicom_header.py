"""The reader's shortcuts through pydicom must give exactly what pydicom gives.

header_value converts raw elements itself: in every native encoding, in sequence items, in
the file's character set, and for elements pydicom has to repair (VR UN).
_parse_plain_part10 calls pydicom's readers without dcmread around them: the same data set
for plain Part 10 files, and dcmread for the rest."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement

from labral.datasets.io import dicom_header, dicom_reader
from labral.datasets.io.limits import ReadLimits


def _parsed(path) -> pydicom.Dataset:
    return dicom_reader._read_dataset(io.BytesIO(path.read_bytes()))


def _keywords(ds: pydicom.Dataset) -> list[str]:
    return [keyword_for_tag(e.tag) for e in ds if keyword_for_tag(e.tag) not in ("", "PixelData")]


@pytest.mark.parametrize("option", ["+ti", "+te", "+tb"])
def test_every_element_converts_as_pydicom_converts_it(rd, base_dicom, option):
    """Implicit VR (no VR in the file), Explicit Little and Big Endian."""
    path = base_dicom.with_name(f"conv{option}.dcm")
    rd.dcmtk("dcmconv", option, base_dicom, path)
    fast, reference = _parsed(path), pydicom.dcmread(path)
    keywords = _keywords(reference)
    assert len(keywords) > 30 and "SequenceOfUltrasoundRegions" in keywords
    for keyword in keywords:
        if keyword == "SequenceOfUltrasoundRegions":
            continue
        assert dicom_header.header_value(fast, keyword) == reference[keyword].value, keyword
    items = dicom_header.header_value(fast, "SequenceOfUltrasoundRegions")
    assert len(items) == len(reference.SequenceOfUltrasoundRegions) == 1
    for keyword in _keywords(reference.SequenceOfUltrasoundRegions[0]):
        expected = reference.SequenceOfUltrasoundRegions[0][keyword].value
        assert dicom_header.header_value(items[0], keyword) == expected, keyword
    assert dicom_header.header_value(fast, "PatientWeight", "absent") == "absent"


@pytest.mark.parametrize(
    ("charset", "name"), [("ISO_IR 100", "Müller Médical"), ("ISO_IR 192", "東芝 Aplio")]
)
def test_text_is_decoded_in_the_files_character_set(rd, tmp_path, charset, name):
    ds = rd.build_dataset(rd.make_frames())
    ds.SpecificCharacterSet = charset
    ds.Manufacturer = name
    path = tmp_path / "charset.dcm"
    ds.save_as(path, enforce_file_format=True)
    header = dicom_header.read_header(_parsed(path), ReadLimits())
    assert header.text("Manufacturer") == name == pydicom.dcmread(path).Manufacturer


def test_an_element_written_as_un_is_repaired_by_pydicom(rd, tmp_path, monkeypatch):
    """Explicit VR UN on a standard tag: pydicom looks the VR up; so does header_value."""
    ds = rd.build_dataset(rd.make_frames())
    path = tmp_path / "un.dcm"
    with monkeypatch.context() as patch:  # let pydicom write UN as it is
        patch.setattr(pydicom.config, "replace_un_with_known_vr", False)
        ds["FrameTime"] = DataElement(0x00181063, "UN", b"40.0")
        ds["Rows"] = DataElement(0x00280010, "UN", (64).to_bytes(2, "little"))
        ds.save_as(path, enforce_file_format=True)
    fast = _parsed(path)
    assert fast.get_item(0x00280010, keep_deferred=True).VR == "UN"
    assert dicom_header.header_value(fast, "Rows") == 64
    assert float(dicom_header.header_value(fast, "FrameTime")) == 40.0
    header = dicom_header.read_header(_parsed(path), ReadLimits())
    assert (header.rows, header.frames) == (64, 8)
    assert dicom_header.frame_rate(header, 20.0)[:2] == (25.0, "FrameTime")


def test_read_header_reads_the_image_attributes_once_and_typed(base_dicom):
    header = dicom_header.read_header(_parsed(base_dicom), ReadLimits())
    assert (header.frames, header.rows, header.columns, header.samples) == (8, 64, 80, 1)
    assert (header.bits_allocated, header.bits_stored, header.signed) == (8, 8, False)
    assert header.photometric == "MONOCHROME2" and header.modality == "US"
    assert header.native_grey_8bit and not header.is_video
    (region,) = dicom_header.regions_from_header(header)
    assert (region.x0, region.y0, region.x1, region.y1) == (12, 8, 67, 55)


@pytest.mark.parametrize(
    ("tool", "option", "plain"),
    [
        ("dcmconv", "+ti", True),
        ("dcmconv", "+te", True),
        ("dcmconv", "+tb", True),
        ("dcmcjpeg", "+eb", True),  # encapsulated JPEG Baseline
        ("dcmconv", "+td", False),  # deflated: dcmread inflates it
    ],
)
def test_the_plain_part10_parse_is_dcmreads_parse(rd, base_dicom, tool, option, plain):
    """Every element, the meta group and the encoding as dcmread gives them; files that are
    not plain Part 10 are left to dcmread."""
    path = base_dicom.with_name(f"{tool}{option}.dcm")
    rd.dcmtk(tool, option, base_dicom, path)
    data = path.read_bytes()
    fast = dicom_reader._parse_plain_part10(io.BytesIO(data))
    assert (fast is not None) == plain
    parsed = dicom_reader._read_dataset(io.BytesIO(data))
    reference = pydicom.dcmread(io.BytesIO(data), defer_size=dicom_reader.DEFER_BYTES)
    assert parsed.original_encoding == reference.original_encoding
    assert parsed.file_meta == reference.file_meta
    assert [e.tag for e in parsed] == [e.tag for e in reference]
    for keyword in _keywords(reference):
        assert parsed[keyword].value == reference[keyword].value, keyword
    assert parsed.PixelData == reference.PixelData  # the deferred read works from the buffer


def test_a_file_without_preamble_is_parsed_by_dcmread(rd, base_dicom):
    data = base_dicom.read_bytes()[132:]  # the meta group first, no preamble and no DICM
    assert dicom_reader._parse_plain_part10(io.BytesIO(data)) is None
    parsed = dicom_reader._read_dataset(io.BytesIO(data))
    assert parsed.Rows == 64 and parsed.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


def test_reader_receipt_and_folder_scan_refuse_a_data_set_without_image_attributes(tmp_path):
    """The one check in read_header: all three say not_dicom for the same file."""
    from pydicom.dataset import Dataset, FileMetaDataset

    from labral.datasets.io.reader import read_cine
    from labral.datasets.manifests.folder_scan import scan_file
    from labral.errors import NotDicomError
    from labral.serve.dicom.receipt import check_header

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.PatientSex = "F"
    path = tmp_path / "no_image.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(NotDicomError, match="no SOP Class, Modality or image attributes"):
        read_cine(path)
    with pytest.raises(NotDicomError, match="no SOP Class, Modality or image attributes"):
        check_header(path.read_bytes(), ReadLimits())
    assert scan_file(path, path.name, limits=ReadLimits(), decode=False).code == "not_dicom"
