"""Reading an upload safely: size-limited, content type checked, nothing left on disk.

Accepted request bodies: ``multipart/form-data`` with a ``file`` part, or the raw file with
``application/dicom``, ``application/octet-stream`` or a ``video/*`` type. What the file IS
is sniffed from its bytes by the reader, never taken from the name or the header.
Multipart file parts are spooled by Starlette (memory, then an anonymous temporary file
that has no name on disk); they are closed, hence removed, before the handler returns.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from labral.serve.http.errors import (
    InvalidRequestError,
    MissingFileError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

RAW_TYPES = {
    "application/dicom",
    "application/octet-stream",
    "video/mp4",
    "video/quicktime",
    "video/x-msvideo",
    "video/avi",
    "video/msvideo",
}
# What read_upload raises, whatever the file holds (the reader adds its own errors).
UPLOAD_ERRORS = (
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    MissingFileError,
    InvalidRequestError,
)
# minLength: an empty file is refused (400 missing_file) before anything reads it
_FILE = {"type": "string", "format": "binary", "minLength": 1}
_BINARY = {"schema": _FILE}
# The OpenAPI request body of an upload endpoint: every Content-Type read_upload accepts.
UPLOAD_REQUEST_BODY: dict[str, Any] = {
    "description": "A DICOM cine (multipart field 'file', or the raw file as "
    "application/dicom) or an MP4/AVI/MOV export; the format is sniffed from the bytes, "
    "never taken from the Content-Type or the file name. Without Content-Length (chunked) "
    "the size limit is enforced while the body streams in.",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": _FILE},
                "required": ["file"],
            }
        },
        **{media: _BINARY for media in sorted(RAW_TYPES)},
    },
    "required": True,
}


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the upload exceeds {limit} bytes (serve max_upload_bytes); send a shorter clip"
    )


async def _limited_stream(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        yield chunk


async def read_upload(request: Request, limit: int) -> bytes:
    """Return the uploaded file's bytes.

    Args:
        request: the incoming request.
        limit: most bytes accepted (checked on Content-Length, then while streaming).

    Raises:
        PayloadTooLargeError, UnsupportedMediaTypeError, MissingFileError.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media == "multipart/form-data":
        data = await _read_multipart(request, limit)
    elif media in RAW_TYPES:
        data = b"".join([chunk async for chunk in _limited_stream(request, limit)])
    else:
        raise UnsupportedMediaTypeError(
            f"Content-Type {media or '(none)'!r} is not accepted; send multipart/form-data with "
            f"a 'file' part, or the raw file as one of {sorted(RAW_TYPES)}"
        )
    if not data:
        raise MissingFileError("the upload is empty; attach a DICOM cine or a video export")
    return data


async def _read_multipart(request: Request, limit: int) -> bytes:
    parser = MultiPartParser(
        request.headers, _limited_stream(request, limit), max_files=1, max_fields=4
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequestError(f"malformed multipart body: {exc.message}") from exc
    try:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise MissingFileError(
                "multipart body has no 'file' part; send the clip as form field 'file'"
            )
        return await part.read()
    finally:
        await form.close()
