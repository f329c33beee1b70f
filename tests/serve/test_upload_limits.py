"""A chunked upload (no Content-Length) over max_upload_bytes is refused with 413 while it
streams in: the service stops reading at the limit instead of buffering the whole body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

LIMIT = 256 << 10
CHUNK = 64 << 10
CHUNKS = 64  # 4 MiB offered, 16x the limit
BOUNDARY = "labral-test-boundary"


def asgi_scope(content_type: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/predictions",
        "raw_path": b"/v1/predictions",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", content_type.encode()),
            (b"transfer-encoding", b"chunked"),  # and no content-length
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "extensions": {},
    }


def post_streaming(client, content_type: str, first: bytes) -> tuple[int, dict, int]:
    """POST a 4 MiB body chunk by chunk straight to the ASGI app, on the app's own loop.

    Returns:
        (status, JSON body, how many chunks the app pulled before answering).
    """
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if sent:  # answered: the client would stop here, like a closed connection
            return {"type": "http.disconnect"}
        pulled += 1
        body = first if pulled == 1 else b"\0" * CHUNK
        return {"type": "http.request", "body": body, "more_body": pulled < CHUNKS}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def drive() -> None:
        await client.app(asgi_scope(content_type), receive, send)

    client.portal.call(drive)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), pulled


@pytest.mark.parametrize("kind", ["raw", "multipart"])
def test_chunked_upload_over_the_limit_is_refused_at_the_limit(make_client, kind):
    client = make_client(max_upload_bytes=LIMIT)
    if kind == "raw":
        content_type, first = "application/dicom", b"\0" * CHUNK
    else:
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            'filename="a.dcm"\r\nContent-Type: application/dicom\r\n\r\n'
        ).encode()
        first = head + b"\0" * (CHUNK - len(head))
    status, body, pulled = post_streaming(client, content_type, first)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    # it stopped at the first chunk past the limit: 5 of 64 chunks, never the whole body
    assert pulled == LIMIT // CHUNK + 1, pulled


def chunks(count: int, size: int) -> Iterator[bytes]:
    for _ in range(count):
        yield b"\0" * size


def test_live_chunked_upload_over_the_limit_gets_413(live_server, clips):
    """Real HTTP/1.1 chunked transfer encoding through uvicorn (the live server's limit is
    4,000,000 bytes; 8 MiB are offered)."""
    with httpx.Client(base_url=live_server["url"], timeout=60) as client:
        request = client.build_request(
            "POST",
            "/v1/predictions",
            content=chunks(128, CHUNK),
            headers={"Content-Type": "application/dicom"},
        )
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        response = client.send(request)
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "payload_too_large"
        ok = client.post(
            "/v1/predictions",
            content=iter([clips["bright.dcm"].read_bytes()]),
            headers={"Content-Type": "application/dicom"},
        )
        assert ok.status_code == 200  # a chunked upload under the limit is scored
