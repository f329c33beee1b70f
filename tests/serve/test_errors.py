"""Every error code the service can answer, each as {"error": {"code", "message"}}."""

from __future__ import annotations

import asyncio
import threading
import time

import pydicom
import pytest
from fastapi.testclient import TestClient

from labral.demo_bundle import make_demo_bundle
from labral.errors import BadConfigError
from labral.serve.http import predictions
from labral.serve.http.app import create_app
from labral.serve.service import ScoringService
from labral.serve.settings import ServeSettings
from labral.settings import settings_from_config


def expect_error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and len(error["message"]) > 10
    return error["message"]


def post_raw(client, data: bytes, content_type: str = "application/dicom", **params):
    return client.post(
        "/v1/predictions", content=data, headers={"Content-Type": content_type}, params=params
    )


def test_bad_input_corpus_gets_typed_4xx(client, bad_inputs):
    for name, (data, content_type, status, codes) in bad_inputs.items():
        response = post_raw(client, data, content_type)
        assert 400 <= response.status_code < 500, (name, response.text)
        error = response.json()["error"]
        if status is not None:
            assert response.status_code == status, (name, response.text)
            assert error["code"] in codes, (name, error)
    random_bytes = bad_inputs["random_bytes.dcm"][0]
    response = client.post("/v1/predictions", files={"file": ("clip.dcm", random_bytes)})
    assert response.status_code == 415
    assert client.get("/healthz").status_code == 200


def test_payload_too_large(make_client, clips):
    client = make_client(max_upload_bytes=10_000)
    message = expect_error(
        post_raw(client, clips["bright.dcm"].read_bytes()), 413, "payload_too_large"
    )
    assert "max_upload_bytes" in message
    # also enforced on a multipart body
    expect_error(
        client.post("/v1/predictions", files={"file": ("a.dcm", b"\0" * 20_000)}),
        413,
        "payload_too_large",
    )


def test_unsupported_media_type_missing_file_invalid_request(client, clips):
    expect_error(post_raw(client, b"{}", "application/json"), 415, "unsupported_media_type")
    expect_error(post_raw(client, b""), 400, "missing_file")
    expect_error(
        client.post("/v1/predictions", data={"note": "x"}, files={"other": ("a", b"abc")}),
        400,
        "missing_file",
    )
    expect_error(
        post_raw(client, clips["bright.dcm"].read_bytes(), format="xml"), 422, "invalid_request"
    )
    expect_error(client.get("/nope"), 404, "not_found")
    expect_error(client.get("/v1/predictions"), 405, "method_not_allowed")


def test_sr_needs_dicom(client, clips):
    response = post_raw(client, clips["bright.mp4"].read_bytes(), "video/mp4", format="sr")
    assert "DICOM source" in expect_error(response, 422, "sr_needs_dicom")


def test_unauthorized_when_key_set(make_client, clips):
    client = make_client(api_key="s3cret")
    data = clips["bright.dcm"].read_bytes()
    expect_error(post_raw(client, data), 401, "unauthorized")
    response = client.post(
        "/v1/predictions",
        content=data,
        headers={"Content-Type": "application/dicom", "Authorization": "Bearer wrong"},
    )
    assert expect_error(response, 401, "unauthorized") == "wrong API key"
    assert response.headers["www-authenticate"] == "Bearer"
    ok = client.post(
        "/v1/predictions",
        content=data,
        headers={"Content-Type": "application/dicom", "Authorization": "Bearer s3cret"},
    )
    assert ok.status_code == 200
    assert client.get("/healthz").status_code == 200  # probes need no key


def test_exposed_host_without_key_refuses_to_start(bundle_dir):
    with pytest.raises(BadConfigError, match="api_key"):
        settings_from_config(ServeSettings, {"bundle": bundle_dir, "host": "0.0.0.0"})
    with pytest.raises(BadConfigError, match="max_batch=0: Input should be greater than"):
        settings_from_config(ServeSettings, {"bundle": bundle_dir, "max_batch": 0})
    assert ServeSettings(bundle=bundle_dir, host="0.0.0.0", api_key="k").auth_required
    assert not ServeSettings(bundle=bundle_dir, host="::1").auth_required


def test_timeout(client, clips, monkeypatch):
    async def slow_score(data: bytes, *, spatial: bool = False):
        await asyncio.sleep(5)

    monkeypatch.setattr(client.app.state.service, "score", slow_score)
    client.app.state.settings.request_timeout_s = 0.05
    response = post_raw(client, clips["bright.dcm"].read_bytes())
    expect_error(response, 503, "timeout")
    assert response.headers["retry-after"] == "5"


def test_not_ready_until_loaded_then_ready(bundle_dir, clips, monkeypatch, ready_waiter):
    release = threading.Event()
    real_load = ScoringService.load

    def gated_load(self):
        release.wait(10)
        real_load(self)

    monkeypatch.setattr(ScoringService, "load", gated_load)
    with TestClient(create_app(ServeSettings(bundle=bundle_dir))) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        expect_error(post_raw(client, clips["bright.dcm"].read_bytes()), 503, "not_ready")
        expect_error(client.get("/v1/model"), 503, "not_ready")
        release.set()
        ready_waiter(client)
        assert post_raw(client, clips["bright.dcm"].read_bytes()).status_code == 200


def test_broken_bundle_reports_failure(tmp_path):
    (tmp_path / "model.ts").write_bytes(b"not torchscript")
    with TestClient(create_app(ServeSettings(bundle=tmp_path))) as client:
        deadline = time.monotonic() + 10
        while client.get("/healthz").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        health = client.get("/healthz")
        assert health.status_code == 503 and "model.ts" in health.json()["error"]
        assert client.get("/readyz").json()["status"] == "failed"


def test_model_error_is_500_json_and_service_survives(client, clips, monkeypatch):
    def broken(x):
        raise RuntimeError("boom")

    batcher = client.app.state.service.batcher
    monkeypatch.setattr(batcher, "_predict", broken)
    response = post_raw(client, clips["bright.dcm"].read_bytes())
    expect_error(response, 500, "internal_error")
    monkeypatch.undo()
    assert post_raw(client, clips["bright.dcm"].read_bytes()).status_code == 200


def test_busy_when_too_many_requests_pending(client, clips):
    service = client.app.state.service
    service.pending = service.settings.max_pending
    try:
        response = post_raw(client, clips["bright.dcm"].read_bytes())
        expect_error(response, 503, "busy")
        assert response.headers["retry-after"] == "5"
    finally:
        service.pending = 0
    assert post_raw(client, clips["bright.dcm"].read_bytes()).status_code == 200
    assert service.pending == 0


def test_large_multipart_upload_leaves_no_file(client, clips, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = clips["bright.dcm"].read_bytes()
    padded = data + b"\0" * (2 << 20)  # > 1 MiB: Starlette spools the part to a temp file
    response = client.post("/v1/predictions", files={"file": ("a.dcm", padded)})
    assert response.status_code in (200, 422)
    assert list(tmp_path.iterdir()) == []


def test_sr_for_incomplete_source_is_422(client, clips, monkeypatch):
    def header_without_study(data):
        ds = pydicom.dcmread(clips["bright.dcm"], stop_before_pixels=True)
        del ds.StudyInstanceUID
        return ds

    monkeypatch.setattr(predictions, "read_source_header", header_without_study)
    response = post_raw(client, clips["bright.dcm"].read_bytes(), format="sr")
    expect_error(response, 422, "sr_source_incomplete")


def test_a_runtime_whose_file_the_bundle_lacks_is_refused_naming_it(tmp_path):
    bundle = make_demo_bundle(tmp_path / "b")  # model.ts and model.onnx, no model.pt2
    with TestClient(create_app(ServeSettings(bundle=bundle, runtime="export"))) as client:
        deadline = time.monotonic() + 10
        while client.get("/healthz").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        health = client.get("/healthz")
        assert health.status_code == 503 and "no model.pt2" in health.json()["error"]
