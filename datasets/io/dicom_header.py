"""The header of an ultrasound cine DICOM: the facts the reader checks and records, each
element converted once, and the checks made on them before any pixel is read.

pydicom converts an element on first access (``ds.Rows``, ``ds.get(...)``) through its
hooks: VR lookup, value conversion, validation, storing the element back, each access
through ``Dataset.__getattr__``. For the ~30 elements a cine header is read for (timing,
regions, limits, source facts) that came to about 0.3 ms per clip, more than half the
decode of an uncompressed clip. :func:`header_value` takes the element as parsed
(``Dataset.get_item(keep_deferred=True)``) and converts it with pydicom's own
``convert_value``: the same values in about a third of the time. An element pydicom has to
repair first (VR ``UN``, a VR not in the dictionary, a value that does not convert) goes
the usual way, with pydicom's warnings and errors.

:func:`read_header` is the one sequence of header checks: the reader, the DICOM node's
receipt and the folder scan all call it, so none of them can accept what another refuses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import get_decoder
from pydicom.uid import UID
from pydicom.values import convert_value, converters

from labral.datasets.io.limits import ReadLimits
from labral.datasets.io.regions import UltrasoundRegion
from labral.errors import (
    CorruptPixelDataError,
    NotACineError,
    NotDicomError,
    NotUltrasoundError,
    UnsupportedTransferSyntaxError,
)

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
US_MULTIFRAME_RETIRED = "1.2.840.10008.5.1.4.1.1.3"
US_SINGLE_FRAME = ("1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.6")

#: What to ``pip install`` for each compressed transfer syntax family.
_PLUGIN_HINTS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg pylibjpeg-libjpeg (or pillow)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg pylibjpeg-libjpeg (or pillow)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pyjpegls (or pylibjpeg pylibjpeg-libjpeg)",
    "1.2.840.10008.1.2.4.81": "pyjpegls (or pylibjpeg pylibjpeg-libjpeg)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg pylibjpeg-openjpeg (or pillow)",
    "1.2.840.10008.1.2.4.91": "pylibjpeg pylibjpeg-openjpeg (or pillow)",
    "1.2.840.10008.1.2.4.201": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg pylibjpeg-openjpeg",
}
#: MPEG-2, MPEG-4 AVC/H.264 and HEVC/H.265 transfer syntaxes: the fragments together hold
#: one video bit stream, which PyAV (FFmpeg) decodes; pydicom has no decoder for them.
VIDEO_SYNTAXES = frozenset(
    f"1.2.840.10008.1.2.4.{suffix}"
    for suffix in (
        "100", "100.1", "101", "101.1", "102", "102.1", "103", "103.1",
        "104", "104.1", "105", "105.1", "106", "106.1", "107", "108",
    )
)  # fmt: skip


@cache
def _tag_and_vr(keyword: str) -> tuple[int, str | None]:
    """The tag of a dictionary keyword, and its VR where that is one pydicom converts."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"{keyword!r} is not a DICOM keyword")
    vr = dictionary_VR(tag)
    return tag, vr if vr in converters else None  # "US or SS" and the like: pydicom decides


def header_value(
    ds: Dataset, keyword: str, default: Any = None, encodings: list[str] | None = None
) -> Any:
    """The value of element ``keyword`` as pydicom would give it, converted without storing.

    Args:
        ds: a parsed data set or sequence item.
        keyword: a DICOM dictionary keyword (``"Rows"``).
        default: returned when the element is absent.
        encodings: the character sets of text values (:func:`read_header` finds them).

    Returns:
        The value (``int``, ``str``, ``DSfloat``, ``MultiValue``, ``Sequence`` ...), or
        ``default``.
    """
    tag, dictionary_vr = _tag_and_vr(keyword)
    element = ds.get_item(tag, keep_deferred=True)
    if element is None:
        return default
    if not isinstance(element, RawDataElement):
        return element.value
    vr = element.VR or dictionary_vr  # an implicit VR file names no VR
    if vr is not None and vr != "UN" and element.value is not None:
        try:
            return _converted(keyword, vr, element, encodings)
        except Exception:  # noqa: BLE001 - pydicom's own access below repairs or raises
            pass
    return ds.get(tag, default).value if tag in ds else default


def _converted(keyword: str, vr: str, element: RawDataElement, encodings: Any) -> Any:
    """pydicom's ``convert_value``, once per distinct raw value of a shared element."""
    if keyword not in SHARED_ACROSS_FILES:
        return convert_value(vr, element, encodings)
    key = (keyword, vr, element.value, tuple(encodings or ()))
    value = _SHARED_VALUES.get(key)
    if value is None:
        value = convert_value(vr, element, encodings)
        if not isinstance(value, MultiValue) and len(_SHARED_VALUES) < 4096:
            _SHARED_VALUES[key] = value  # a multi-value is a list: never shared
    return value


#: Elements whose values repeat across a cohort's files: each distinct raw value of these is
#: converted once per process (UI and IS values are regex-validated on every conversion:
#: about 30 us per clip of the header read). Single values only, which are immutable.
SHARED_ACROSS_FILES = frozenset(
    {
        "TransferSyntaxUID", "SpecificCharacterSet", "SOPClassUID", "Modality",
        "NumberOfFrames", "PhotometricInterpretation", "FrameTime", "CineRate",
        "RecommendedDisplayFrameRate", "Manufacturer", "ManufacturerModelName",
    }
)  # fmt: skip
_SHARED_VALUES: dict[tuple[str, str, bytes, tuple[str, ...]], Any] = {}


def character_sets(ds: Dataset) -> list[str]:
    """The Python codecs of Specific Character Set (0008,0005); ISO 646 when it is absent."""
    charset = header_value(ds, "SpecificCharacterSet")
    return convert_encodings(charset) if charset else [default_encoding]


def _int(value: Any, default: int) -> int:
    """An integer header value; ``default`` when it is absent or empty."""
    return default if value is None or value == "" else int(value)


@dataclass
class CineHeader:
    """What the header of a cine says, each fact read once (:func:`read_header`).

    Attributes:
        ds: the parsed data set (pixel data deferred).
        syntax: the transfer syntax (from the file meta, else the parsed encoding).
        frames, rows, columns, samples: Number of Frames, Rows, Columns, Samples per Pixel.
        bits_allocated, bits_stored: Bits Allocated, Bits Stored.
        signed: Pixel Representation is 1 (two's complement).
        photometric: Photometric Interpretation as stored ("" when absent).
        sop_class_uid, modality: as stored ("" when absent).
        encodings: the Python codecs of Specific Character Set, for text values.
    """

    ds: Dataset
    syntax: UID
    frames: int
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    sop_class_uid: str
    modality: str
    encodings: list[str] = field(default_factory=list)

    def value(self, keyword: str, default: Any = None) -> Any:
        """Any other element's value (:func:`header_value`), text in the file's charset."""
        return header_value(self.ds, keyword, default, self.encodings)

    def text(self, keyword: str) -> str:
        """An element's value as text; ``""`` when it is absent or empty."""
        return str(self.value(keyword) or "")

    @property
    def native_grey_8bit(self) -> bool:
        """Uncompressed unsigned 8-bit grey: the pixel data are the frames, byte for byte."""
        grey = self.samples == 1 and self.photometric != "PALETTE COLOR"
        eight_bit = self.bits_allocated == self.bits_stored == 8 and not self.signed
        return grey and eight_bit and not self.syntax.is_encapsulated

    @property
    def is_video(self) -> bool:
        """An MPEG-2/H.264/HEVC transfer syntax (decoded by PyAV)."""
        return str(self.syntax) in VIDEO_SYNTAXES


def transfer_syntax(ds: Dataset) -> UID:
    """The transfer syntax: the file meta's, else the encoding the data set was parsed with."""
    meta = getattr(ds, "file_meta", None)
    uid = header_value(meta, "TransferSyntaxUID") if meta is not None else None
    if uid:
        return uid if isinstance(uid, UID) else UID(str(uid))
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit:
        return UID("1.2.840.10008.1.2")
    return UID("1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")


def check_decoder(syntax: UID) -> None:
    """Raise UnsupportedTransferSyntaxError unless an installed decoder handles ``syntax``."""
    hint = _PLUGIN_HINTS.get(str(syntax), "")
    try:
        decoder = get_decoder(syntax)
    except (NotImplementedError, ValueError) as error:  # ValueError: unknown to this pydicom
        raise UnsupportedTransferSyntaxError(
            f"no decoder exists in pydicom for transfer syntax {syntax} ({syntax.name}); "
            "re-export the cine uncompressed or as JPEG (e.g. with dcmtk's dcmconv/dcmcjpeg), "
            "or as an MP4 file"
        ) from error
    if not decoder.is_available:
        package = hint or ", ".join(getattr(decoder, "missing_dependencies", [])) or "a plugin"
        raise UnsupportedTransferSyntaxError(
            f"no installed decoder handles transfer syntax {syntax} ({syntax.name}); "
            f"install one with: pip install {package}"
        )


def _check_is_us_cine(sop_class: str, modality: str, frames_value: Any) -> int:
    """Return the declared frame count after checking modality and multi-frame-ness."""
    is_us_class = sop_class in (US_MULTIFRAME, US_MULTIFRAME_RETIRED, *US_SINGLE_FRAME)
    if modality != "US" and not (modality == "" and is_us_class):
        name = modality or "missing"
        raise NotUltrasoundError(
            f"the DICOM object's Modality is {name!r}, not 'US'; labral reads ultrasound "
            "cine clips only (export the hip ultrasound cine from the scanner or PACS)"
        )
    try:
        frames = int(frames_value or 1)
    except (TypeError, ValueError) as error:
        raise CorruptPixelDataError("Number of Frames (0028,0008) is not a number") from error
    if sop_class in US_SINGLE_FRAME or frames <= 1:
        raise NotACineError(
            f"the ultrasound object holds a single frame ({frames} declared); the dynamic "
            "sign needs a cine clip: export the Ultrasound Multi-frame (cine) object instead"
        )
    return frames


def read_header(ds: Dataset, limits: ReadLimits) -> CineHeader:
    """Check a parsed header the way every DICOM reader in labral does, before any pixel.

    In order: an image data set at all, ultrasound, multi-frame, the image attributes are
    numbers, :class:`ReadLimits` on the declared shape, an installed decoder for the transfer
    syntax (video syntaxes are decoded by PyAV and not checked here).

    Returns:
        The :class:`CineHeader`.

    Raises:
        NotDicomError, NotUltrasoundError, NotACineError, CorruptPixelDataError,
        OverLimitError, UnsupportedTransferSyntaxError.
    """
    if not any(tag in ds for tag in (0x00080016, 0x00080060, 0x00280010)):  # SOP Class ...
        raise NotDicomError(
            "the data parsed as DICOM holds no SOP Class, Modality or image attributes; "
            "send an ultrasound cine DICOM file"
        )
    encodings = character_sets(ds)

    def value(keyword: str, default: Any = None) -> Any:
        return header_value(ds, keyword, default, encodings)

    sop_class = str(value("SOPClassUID", "") or "")
    modality = str(value("Modality", "") or "").upper()
    frames = _check_is_us_cine(sop_class, modality, value("NumberOfFrames", 1))
    try:
        rows, columns = int(value("Rows")), int(value("Columns"))
        samples = _int(value("SamplesPerPixel"), 1)
        bits_allocated = _int(value("BitsAllocated"), 8)
        bits_stored = _int(value("BitsStored"), bits_allocated)
        signed = bool(_int(value("PixelRepresentation"), 0))
    except (TypeError, ValueError) as error:
        raise CorruptPixelDataError(
            "Rows, Columns or Bits Allocated is missing or not a number in the header"
        ) from error
    limits.check_shape(frames, rows, columns, samples, max(1, bits_allocated // 8))
    header = CineHeader(
        ds=ds,
        syntax=transfer_syntax(ds),
        frames=frames,
        rows=rows,
        columns=columns,
        samples=samples,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        signed=signed,
        photometric=str(value("PhotometricInterpretation", "") or ""),
        sop_class_uid=sop_class,
        modality=modality,
        encodings=encodings,
    )
    if not header.is_video:
        check_decoder(header.syntax)
    return header


def regions_from_header(header: CineHeader) -> list[UltrasoundRegion]:
    """Every readable item of the Sequence of Ultrasound Regions (0018,6011), in file order.

    Malformed items are skipped; the result may be empty.
    """
    regions = []
    for item in header.value("SequenceOfUltrasoundRegions") or []:

        def field_(keyword: str, item: Dataset = item) -> Any:
            return header_value(item, keyword, None, header.encodings)

        try:
            regions.append(
                UltrasoundRegion(
                    x0=int(field_("RegionLocationMinX0")),
                    y0=int(field_("RegionLocationMinY0")),
                    x1=int(field_("RegionLocationMaxX1")),
                    y1=int(field_("RegionLocationMaxY1")),
                    spatial_format=int(field_("RegionSpatialFormat") or 0),
                    data_type=int(field_("RegionDataType") or 0),
                    units_x=int(field_("PhysicalUnitsXDirection") or 0),
                    units_y=int(field_("PhysicalUnitsYDirection") or 0),
                    delta_x=float(field_("PhysicalDeltaX") or 0.0),
                    delta_y=float(field_("PhysicalDeltaY") or 0.0),
                )
            )
        except (AttributeError, TypeError, ValueError):
            continue
    return regions


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def frame_rate(header: CineHeader, default_fps: float) -> tuple[float, str, list[str]]:
    """Frames per second from the header, in order of trust.

    Frame Time (0018,1063) ms; Frame Time Vector (0018,1065), mean of the increments after a
    leading 0; Cine Rate (0018,0040); Recommended Display Frame Rate (0008,2144).

    Returns:
        ``(fps, tag_name_used, warnings)``; ``default_fps`` with a warning when none is valid.
    """
    warnings: list[str] = []
    frame_time = _positive(header.value("FrameTime"))
    if frame_time:
        return 1000.0 / frame_time, "FrameTime", warnings
    vector = header.value("FrameTimeVector")
    if vector is not None:
        items = list(vector) if isinstance(vector, MultiValue | list | tuple) else [vector]
        values = [v for v in (_number(item) for item in items) if v is not None]
        if values and values[0] == 0:
            values = values[1:]
        mean = _positive(np.mean(values)) if values else None
        if mean:
            return 1000.0 / mean, "FrameTimeVector", warnings
        warnings.append("Frame Time Vector has no positive increments; ignored")
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        fps = _positive(header.value(keyword))
        if fps:
            return fps, keyword, warnings
    warnings.append(
        f"no frame timing in the header (Frame Time, Frame Time Vector, Cine Rate, Recommended "
        f"Display Frame Rate); assumed {default_fps} frames/s"
    )
    return float(default_fps), "default", warnings
