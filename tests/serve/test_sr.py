"""?format=sr: a highdicom Comprehensive SR that references the source and passes dciodvfy."""

from __future__ import annotations

import io
import subprocess
import time

import pydicom
import pytest
from fastapi.testclient import TestClient

from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def source_and_sr(tmp_path_factory, clips, bundle_dir):
    data = clips["bright.dcm"].read_bytes()
    with TestClient(create_app(ServeSettings(bundle=bundle_dir))) as client:
        while client.get("/readyz").status_code != 200:
            time.sleep(0.02)
        response = client.post(
            "/v1/predictions",
            params={"format": "sr"},
            content=data,
            headers={"Content-Type": "application/dicom"},
        )
        scored = client.post(
            "/v1/predictions", content=data, headers={"Content-Type": "application/dicom"}
        ).json()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom"
    path = tmp_path_factory.mktemp("sr") / "sr.dcm"
    path.write_bytes(response.content)
    return pydicom.dcmread(io.BytesIO(data)), pydicom.dcmread(path), path, scored


def _walk(items):
    for item in items:
        yield item
        yield from _walk(getattr(item, "ContentSequence", []))


def test_sr_references_source_and_carries_score(source_and_sr):
    source, sr, _, scored = source_and_sr
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.PatientID == source.PatientID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == source.StudyInstanceUID
    series = evidence.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == source.SeriesInstanceUID
    assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    items = list(_walk(sr.ContentSequence))
    numbers = [i for i in items if i.ValueType == "NUM"]
    value = float(numbers[0].MeasuredValueSequence[0].NumericValue)
    assert value == pytest.approx(scored["probability"], abs=1e-5)
    codes = [i for i in items if i.ValueType == "CODE"]
    meanings = {i.ConceptCodeSequence[0].CodeMeaning for i in codes}
    assert ("Suggested by the model" if scored["decision"] else "Not suggested by the model") in (
        meanings
    )
    texts = " ".join(str(getattr(i, "TextValue", "")) for i in items)
    assert "mean-intensity-test" in texts and "0.0.1" in texts
    assert f"sha256={scored['model']['sha256']}"[:64] in texts
    images = [i for i in items if i.ValueType == "IMAGE"]
    assert images[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID


def test_sr_passes_dciodvfy(source_and_sr, require_tool):
    dciodvfy = require_tool("dciodvfy")
    _, _, path, _ = source_and_sr
    result = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, timeout=60)
    report = result.stdout + result.stderr
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert not errors, report
    assert "ComprehensiveSR" in report
