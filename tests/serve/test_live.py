"""A real `labral serve` (uvicorn) process on a free loopback port, driven with httpx."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pydicom


def test_live_prediction_and_probes(live_server, clips):
    url = live_server["url"]
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post(
            "/v1/predictions", files={"file": ("a.dcm", clips["bright.dcm"].read_bytes())}
        )
        assert response.status_code == 200 and response.json()["decision"] is True
        assert client.get("/v1/model").json()["name"] == "mean-intensity-test"
        assert "labral_requests_total" in client.get("/metrics").text


def test_live_concurrent_requests(live_server, clips):
    data = {name: clips[name].read_bytes() for name in ("bright.dcm", "dark.dcm")}

    def one(i: int) -> tuple[str, bool]:
        name = "bright.dcm" if i % 2 else "dark.dcm"
        with httpx.Client(base_url=live_server["url"], timeout=30) as client:
            r = client.post("/v1/predictions", files={"file": (name, data[name])})
        assert r.status_code == 200, r.text
        return name, r.json()["decision"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(16)))
    assert all(decision == (name == "bright.dcm") for name, decision in results)


def test_live_bad_input_corpus_all_4xx_then_healthy(live_server, bad_inputs, clips):
    with httpx.Client(base_url=live_server["url"], timeout=60) as client:
        for name, (data, content_type, status, codes) in bad_inputs.items():
            r = client.post("/v1/predictions", content=data, headers={"Content-Type": content_type})
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            assert r.json()["error"]["code"], name
            if status is not None:
                assert r.status_code == status and r.json()["error"]["code"] in codes, name
        too_big = client.post(
            "/v1/predictions",
            content=b"\0" * 4_100_000,
            headers={"Content-Type": "application/dicom"},
        )
        assert too_big.status_code == 413
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").status_code == 200
        ok = client.post(
            "/v1/predictions",
            content=clips["bright.dcm"].read_bytes(),
            headers={"Content-Type": "application/dicom"},
        )
        assert ok.status_code == 200
    assert live_server["proc"].poll() is None


def test_live_logs_carry_no_patient_identity(live_server, clips):
    source = pydicom.dcmread(clips["bright.dcm"], stop_before_pixels=True)
    with httpx.Client(base_url=live_server["url"], timeout=30) as client:
        r = client.post(
            "/v1/predictions", files={"file": ("a.dcm", clips["bright.dcm"].read_bytes())}
        )
        assert r.status_code == 200
    log = live_server["log"].read_text()
    assert "scored instance=" in log
    assert source.SOPInstanceUID not in log
    assert str(source.PatientName) not in log and str(source.PatientID) not in log
