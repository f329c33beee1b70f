"""Issue 22 on the HTTP routes: a clip the input check refuses is answered, stored, reported
and counted as not assessable; a valid clip on the same bundle is scored; a bundle without
a check scores with its warning.

The bundle with a check is ``checked_bundle`` (``tests.helpers.input_check.rule_check``: its
image and manoeuvre rules are real), the refused clip ``blank.dcm`` (all but black).
"""

from __future__ import annotations

import io
import subprocess

import pydicom
import pytest
from prometheus_client.parser import text_string_to_metric_families

from labral.input_check.verdict import REASON_TITLES, REASONS
from labral.serve.dicom.sr import NOT_ASSESSABLE, REASON_CODES
from labral.serve.http.results import ResultsPage
from labral.serve.http.schemas import Prediction

DICOM = {"Content-Type": "application/dicom"}


def post(client, data: bytes, **params):
    return client.post("/v1/predictions", content=data, headers=DICOM, params=params)


@pytest.fixture
def checked(make_client, checked_bundle, tmp_path):
    return make_client(bundle=checked_bundle, state_dir=tmp_path / "state")


def _walk(items):
    for item in items:
        yield item
        yield from _walk(getattr(item, "ContentSequence", []))


def metric(client, name: str) -> dict[tuple, float]:
    """{label values: value} of one metric family at /metrics."""
    text = client.get("/metrics").text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == name]
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


def test_a_blank_clip_is_not_assessable_and_a_valid_one_is_scored(checked, clips):
    response = post(checked, clips["blank.dcm"].read_bytes(), preview="true", spatial="true")
    assert response.status_code == 200  # the request was fine; the clip is not assessable
    body = response.json()
    Prediction.model_validate(body)  # the documented answer (OpenAPI) allows it
    assert body["status"] == "not_assessable"
    assert body["decision"] is None and body["label"] is None and body["probability"] is None
    check = body["input_check"]
    assert check["status"] == "not_assessable" and check["checked"] is True
    # image quality first (the most basic reason; a blank clip shows no motion either)
    assert check["reasons"][0] == "image_quality" and check["details"]["image_quality"] == "blank"
    assert check["reason_titles"] == [REASON_TITLES[r] for r in check["reasons"]]
    assert "blank" in check["advice"] and len(check["advice"]) > 40
    assert set(check["scores"]) == set(check["thresholds"]) >= {"image_quality", "no_manoeuvre"}
    # none of the model's evidence is shown for a refused clip; the clip itself is
    assert body["relevance"] == [] and body["peak_frames"] == []
    assert body["spatial_maps"] == [] and body["preview"]["key_frames"] == []
    assert body["preview"]["frames"] and body["clip"]["frames"] == 24
    assert not any("no input check" in w for w in body["warnings"])

    valid = post(checked, clips["bright.dcm"].read_bytes()).json()
    assert valid["status"] == "scored" and valid["decision"] is True
    assert valid["label"] == "detachment" and valid["probability"] > 0.9
    assert valid["input_check"]["reasons"] == [] and valid["input_check"]["advice"] == ""
    assert valid["input_check"]["checked"] is True and len(valid["relevance"]) == 24


def test_a_bundle_without_a_check_scores_with_its_warning(client, clips):
    body = post(client, clips["bright.dcm"].read_bytes()).json()
    assert body["status"] == "scored" and body["decision"] is True
    assert body["input_check"]["checked"] is False and body["input_check"]["reasons"] == []
    assert body["input_check"]["scores"] == {}
    assert any("no input check" in w for w in body["warnings"]), body["warnings"]
    # the same clip with nothing to refuse it scores the same on a checked bundle
    blank = post(client, clips["blank.dcm"].read_bytes()).json()
    assert blank["status"] == "scored" and blank["decision"] is not None


def test_results_rows_record_the_status_and_reasons(checked, clips):
    assert post(checked, clips["blank.dcm"].read_bytes()).status_code == 200
    assert post(checked, clips["bright.dcm"].read_bytes()).status_code == 200
    refused = checked.get("/v1/results", params={"status": "not_assessable"}).json()
    ResultsPage.model_validate(refused)
    assert refused["total"] == 1
    (row,) = refused["results"]
    assert row["status"] == "not_assessable" and row["reasons"][0] == "image_quality"
    assert "blank" in row["advice"] and row["reason"] is None
    assert row["probability"] is None and row["decision"] is None
    scored = checked.get("/v1/results", params={"status": "scored"}).json()["results"]
    assert [(r["reasons"], r["advice"], r["decision"]) for r in scored] == [([], None, True)]
    audit = checked.app.state.stateful.store.audit_lines()
    assert [a["outcome"] for a in audit if a["action"] == "score"] == ["not_assessable", "scored"]


def test_metrics_count_refusals_by_reason(checked, clips):
    post(checked, clips["blank.dcm"].read_bytes())
    post(checked, clips["blank.dcm"].read_bytes())
    post(checked, clips["bright.dcm"].read_bytes())
    refusals = metric(checked, "labral_not_assessable")
    assert refusals[(("reason", "image_quality"),)] == 2.0
    assert {r for ((_, r),) in refusals} == set(REASONS)  # every reason, 0 until it fires
    assert refusals[(("reason", "not_hip_view"),)] == 0.0
    clips_total = metric(checked, "labral_clips")
    assert clips_total[(("status", "not_assessable"),)] == 2.0
    assert clips_total[(("status", "scored"),)] == 1.0
    requests = metric(checked, "labral_requests")
    assert requests[(("route", "/v1/predictions"), ("status", "200"))] == 3.0


@pytest.fixture
def refused_sr(checked, clips, tmp_path):
    data = clips["blank.dcm"].read_bytes()
    response = post(checked, data, format="sr")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom"
    path = tmp_path / "not-assessable-sr.dcm"
    path.write_bytes(response.content)
    return pydicom.dcmread(io.BytesIO(data)), pydicom.dcmread(path), path


def test_the_sr_of_a_refused_clip_says_not_assessable_and_why(refused_sr):
    source, sr, _ = refused_sr
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    items = list(_walk(sr.ContentSequence))
    assert not [i for i in items if i.ValueType == "NUM"]  # no probability: no finding
    coded = {
        (i.ConceptNameCodeSequence[0].CodeValue, i.ConceptCodeSequence[0].CodeValue)
        for i in items
        if i.ValueType == "CODE"
    }
    assert ("LABRAL-D", NOT_ASSESSABLE.value) in coded
    assert ("LABRAL-NAR", REASON_CODES["image_quality"].value) in coded
    assert not {"LABRAL-POS", "LABRAL-NEG"} & {value for _, value in coded}
    texts = " ".join(str(getattr(i, "TextValue", "")) for i in items)
    assert "Not assessable (Image quality too poor to assess" in texts
    assert "the frames are blank" in texts  # the advice sentence
    images = [i for i in items if i.ValueType == "IMAGE"]
    assert images[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID


def test_the_sr_of_a_refused_clip_passes_dciodvfy(refused_sr, require_tool):
    dciodvfy = require_tool("dciodvfy")
    result = subprocess.run(
        [dciodvfy, str(refused_sr[2])], capture_output=True, text=True, timeout=60
    )
    report = result.stdout + result.stderr
    assert not [line for line in report.splitlines() if line.startswith("Error")], report
    assert "ComprehensiveSR" in report
