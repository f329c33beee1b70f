"""TestClient tests of every endpoint on the happy path."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from labral.runtimes import DEFAULT_RUNTIME
from labral.scoring import peak_frames


def post_file(client, path, **params):
    return client.post(
        "/v1/predictions", params=params, files={"file": (path.name, path.read_bytes())}
    )


def test_multipart_dicom_scores_bright_clip_positive(client, clips):
    body = post_file(client, clips["bright.dcm"]).json()
    assert body["decision"] is True and body["probability"] > 0.9
    assert body["label"] == "detachment" and body["threshold"] == 0.5
    assert body["clip"] == {
        "frames": 24,
        "fps": 20.0,
        "duration_s": 1.2,
        "region_size": [48, 64],
        "spacing_mm": [0.3, 0.3],
    }
    assert len(body["relevance"]) == 24 and max(body["relevance"]) == 1.0
    # the blob peaks at frame 12; the strongest evidence must be there (+-1 resampling)
    assert abs(body["peak_frames"][0] - 12) <= 1
    assert set(body["timing_ms"]) == {"decode", "preprocess", "model", "total"}
    assert body["timing_ms"]["total"] >= body["timing_ms"]["model"] > 0
    assert body["model"]["name"] == "mean-intensity-test" and len(body["model"]["sha256"]) == 64


def test_raw_dicom_body_and_dark_clip_negative(client, clips):
    response = client.post(
        "/v1/predictions",
        content=clips["dark.dcm"].read_bytes(),
        headers={"Content-Type": "application/dicom"},
    )
    body = response.json()
    assert response.status_code == 200
    assert body["decision"] is False and body["probability"] < 0.2
    assert body["label"] == "intact"


def test_jpeg_dicom_and_mp4_agree_with_explicit(client, clips):
    explicit = post_file(client, clips["bright.dcm"]).json()
    jpeg = post_file(client, clips["jpeg.dcm"]).json()
    assert abs(jpeg["probability"] - explicit["probability"]) < 0.05
    video = client.post(
        "/v1/predictions",
        content=clips["bright.mp4"].read_bytes(),
        headers={"Content-Type": "video/mp4"},
    ).json()
    assert video["decision"] is True and video["clip"]["frames"] == 20
    assert video["clip"]["spacing_mm"] is None and len(video["relevance"]) == 20


def test_content_is_sniffed_not_taken_from_the_name(client, clips):
    response = client.post(
        "/v1/predictions", files={"file": ("clip.mp4", clips["bright.dcm"].read_bytes())}
    )
    assert response.status_code == 200 and response.json()["clip"]["spacing_mm"] == [0.3, 0.3]


def test_short_low_fps_clip_warns(client, clips):
    body = post_file(client, clips["short.dcm"]).json()
    text = " ".join(body["warnings"])
    assert "short clip" in text and "low frame rate" in text


def test_preview_frames_and_key_frames(client, clips):
    body = post_file(client, clips["bright.dcm"], preview="true").json()
    preview = body["preview"]
    assert preview["frame_index"] == list(range(24)) and len(preview["frames"]) == 24
    first = Image.open(io.BytesIO(base64.b64decode(preview["frames"][0])))
    assert first.size == (64, 48)  # never upscaled
    assert [k["frame"] for k in preview["key_frames"]] == body["peak_frames"]


def test_spatial_maps_only_when_asked(client, clips):
    plain = post_file(client, clips["bright.dcm"]).json()
    assert plain.get("spatial_maps") is None
    body = post_file(client, clips["bright.dcm"], spatial="true").json()
    assert body["probability"] == plain["probability"] and body["relevance"] == plain["relevance"]
    maps = body["spatial_maps"]
    assert [m["frame"] for m in maps] == body["peak_frames"]
    # the demo model's logit is 30 * (the brightest model frame's mean - 0.25): on the peak
    # frame every pixel counts the same, so the map is uniformly 1
    first = maps[0]
    assert first["size"] == [32, 32] and len(first["values"]) == 32
    assert all(v == 1.0 for row in first["values"] for v in row)
    assert abs(first["model_frame"] - body["peak_frames"][0]) <= 1


def test_model_card(client):
    card = client.get("/v1/model").json()
    assert card["eval_transform"] == {"frames": 8, "fps": 10.0, "size": [32, 32], "windows": 1}
    assert card["input_spec"]["size"] == [32, 32] and card["threshold"] == 0.5
    assert card["card"].startswith("# test bundle") and "not a diagnosis" in card["intended_use"]
    assert card["runtime"] == DEFAULT_RUNTIME  # the file that scores, by its runtime's name


def test_health_ready_metrics(client, clips):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model"]["name"] == "mean-intensity-test"
    post_file(client, clips["bright.dcm"])
    client.post(
        "/v1/predictions", content=b"x" * 200, headers={"Content-Type": "application/dicom"}
    )
    text = client.get("/metrics").text
    assert 'labral_requests_total{route="/v1/predictions",status="200"} 1.0' in text
    assert "labral_batch_size_count" in text and "labral_model_load_seconds" in text
    assert 'labral_stage_latency_seconds_count{stage="decode"} 1.0' in text
    assert "labral_errors_total{code=" in text
    assert "labral_model_ready 1.0" in text


def test_openapi_docs_and_page(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/predictions", "/v1/model", "/healthz", "/readyz", "/metrics"} <= set(
        schema["paths"]
    )
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "not a diagnosis" in page.text
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert (
        "access-control-allow-origin"
        not in client.get("/healthz", headers={"Origin": "http://evil.example"}).headers
    )


def test_cors_only_when_configured(make_client):
    client = make_client(cors_origins=["http://pacs.example"])
    response = client.get("/healthz", headers={"Origin": "http://pacs.example"})
    assert response.headers["access-control-allow-origin"] == "http://pacs.example"


def test_peak_frames_plateaus_and_order():
    rel = np.array([0.0, 0.2, 0.2, 0.9, 0.9, 0.9, 0.1, 0.5, 0.4, 1.0])
    assert peak_frames(rel) == [9, 4, 7]
    assert peak_frames(np.full(5, 0.3)) == [2]
    assert peak_frames(np.array([])) == []
