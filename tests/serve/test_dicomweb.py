"""DICOMweb with the ``dicomweb-client`` library against a live ``labral serve``, and the
check that no identity reaches a log line, a table or a file name (serve/README.md).

One ``labral serve`` process (uvicorn, an API key, the DICOM node on) serves the module;
its stdout, stderr and Hydra log file are what the identity test reads.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from requests.exceptions import HTTPError

KEY = "dicomweb-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
NOT_US = 0xA900  # FailureReason: Data Set does not match SOP Class


@pytest.fixture(scope="module")
def tools(require_tool: Callable[[str], str]) -> dict[str, str]:
    return {name: require_tool(name) for name in ("storescu",)}


@pytest.fixture(scope="module")
def server(bundle_dir, tmp_path_factory, port_finder, serve_runner) -> Iterator[dict]:
    """``labral serve`` with an API key and the DICOM node, on free loopback ports."""
    root = tmp_path_factory.mktemp("dicomweb")
    http, node = port_finder(), port_finder()
    cmd = [
        sys.executable, "-m", "labral.cli", "serve", f"bundle={bundle_dir}", f"port={http}",
        f"state_dir={root / 'state'}", f"paths.output_root={root / 'out'}", "log_level=debug",
        "dicom.enabled=true", f"dicom.port={node}", "dicom.ae_title=LABRAL",
    ]  # fmt: skip
    log = root / "serve.log"
    env = {"LABRAL_API_KEY": KEY}
    with serve_runner(cmd, log, http, env, name="labral serve", stop_timeout=15) as (proc, base):
        yield {"url": base, "node": node, "root": root, "log": log, "proc": proc}


def client_for(server: dict, headers: dict | None = AUTH) -> DICOMwebClient:
    return DICOMwebClient(url=server["url"] + "/dicomweb", headers=dict(headers or {}))


def results(server: dict, **params) -> dict:
    page = httpx.get(server["url"] + "/v1/results", params=params, headers=AUTH, timeout=30)
    assert page.status_code == 200, page.text
    return page.json()


def uids_of(answer: pydicom.Dataset) -> list[tuple[str, str, str]]:
    """(study, series, instance) of each SR named by a STOW-RS answer's RetrieveURLs."""
    found = []
    for item in answer.ReferencedSOPSequence:
        path = item.RetrieveURL.split("/dicomweb/studies/", 1)[1]
        study, _, rest = path.partition("/series/")
        series, _, instance = rest.partition("/instances/")
        found.append((study, series, instance))
    return found


def test_stow_rs_stores_and_scores_every_part(server, instance_writer):
    bright = pydicom.dcmread(instance_writer(400, "jpeg"))
    dark = pydicom.dcmread(instance_writer(401, "explicit", bright=False))
    before = results(server, source="stowrs")["total"]
    answer = client_for(server).store_instances([bright, dark])
    stored = {item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence}
    assert stored == {bright.SOPInstanceUID, dark.SOPInstanceUID}
    assert "FailedSOPSequence" not in answer
    page = results(server, source="stowrs")
    assert page["total"] == before + 2
    decisions = sorted(r["decision"] for r in page["results"][:2])
    assert decisions == [False, True]


def test_stow_rs_reports_the_parts_it_could_not_score(server, instance_writer, dicom_maker):
    good = pydicom.dcmread(instance_writer(402, "explicit"))
    ct = pydicom.dcmread(pydicom.filebase.DicomBytesIO(dicom_maker(CT_IMAGE, "CT", 1)))
    answer = client_for(server).store_instances([good, ct])  # 202: one stored, one failed
    assert [i.ReferencedSOPInstanceUID for i in answer.ReferencedSOPSequence] == [
        good.SOPInstanceUID
    ]
    failed = answer.FailedSOPSequence[0]
    assert failed.ReferencedSOPInstanceUID == ct.SOPInstanceUID
    assert failed.FailureReason == NOT_US
    with pytest.raises(HTTPError) as refused:  # 409: nothing could be stored
        client_for(server).store_instances([ct])
    assert refused.value.response.status_code == 409
    latest = results(server, source="stowrs", status="failed")["results"][0]
    assert latest["reason"] == "not_ultrasound"


def test_wado_rs_returns_the_sr_made_for_an_instance(server, instance_writer):
    source = pydicom.dcmread(instance_writer(403, "rle"))
    client = client_for(server)
    (study, series, instance), = uids_of(client.store_instances([source]))  # fmt: skip
    assert study == source.StudyInstanceUID
    sr = client.retrieve_instance(study, series, instance)
    assert sr.SOPInstanceUID == instance and sr.Modality == "SR"
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    in_study = client.retrieve_study(study)
    assert instance in {ds.SOPInstanceUID for ds in in_study}
    with pytest.raises(HTTPError) as missing:
        client.retrieve_instance(study, series, "1.2.3.4")
    assert missing.value.response.status_code == 404


def test_dicomweb_needs_the_api_key(server, instance_writer):
    source = pydicom.dcmread(instance_writer(404, "explicit"))
    for headers in (None, {"Authorization": "Bearer wrong"}):
        with pytest.raises(HTTPError) as refused:
            client_for(server, headers).store_instances([source])
        assert refused.value.response.status_code == 401
    with pytest.raises(HTTPError):
        client_for(server, None).retrieve_study(source.StudyInstanceUID)


# ---- no identity in logs, tables or file names ---------------------------------------
def identifying_strings(paths: list[Path]) -> set[str]:
    """Every name, id and UID of the instances sent (values of 8 or more characters)."""
    found = set()
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in (
            "PatientName", "PatientID", "OtherPatientIDs", "AccessionNumber",
            "ReferringPhysicianName", "StudyInstanceUID", "SeriesInstanceUID",
            "SOPInstanceUID",
        ):  # fmt: skip
            value = str(ds.get(keyword, "") or "")
            found |= {value, *value.split("^")} if keyword.endswith("Name") else {value}
    return {value for value in found if len(value) >= 8}


def test_no_identity_in_logs_tables_or_file_names(server, tools, instance_writer):
    sent = [instance_writer(410 + i, syntax) for i, syntax in enumerate(("jpeg", "explicit"))]
    sent += [instance_writer(412, "implicit")]
    flags = {0: ["-xy"], 1: [], 2: ["-xi"]}
    for index, path in enumerate(sent[:2]):  # the DICOM node
        cmd = [tools["storescu"], "-aec", "LABRAL", *flags[index], "127.0.0.1"]
        done = subprocess.run([*cmd, str(server["node"]), str(path)], capture_output=True)
        assert done.returncode == 0, done.stderr
    client_for(server).store_instances([pydicom.dcmread(sent[2])])  # DICOMweb
    upload = httpx.post(  # the HTTP upload, also as an SR
        server["url"] + "/v1/predictions",
        params={"format": "sr"},
        content=sent[0].read_bytes(),
        headers={**AUTH, "Content-Type": "application/dicom"},
        timeout=60,
    )
    assert upload.status_code == 200
    deadline = time.monotonic() + 60
    while results(server, source="cstore")["total"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    secrets = identifying_strings(sent)
    assert len(secrets) >= 3 * 7 and any("Identifiable" in s for s in secrets)

    root = server["root"]
    logs = [server["log"], *sorted((root / "out").rglob("*.log"))]
    lines = [line for log in logs for line in log.read_text(errors="replace").splitlines()]
    assert any("cstore instance=" in line for line in lines)  # the logs are the right ones
    leaked = [(s, line) for line in lines for s in secrets if s in line]
    assert not leaked, leaked[:5]

    database = sqlite3.connect(f"file:{root / 'state' / 'results.sqlite'}?mode=ro", uri=True)
    tables = [r[0] for r in database.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert {"results", "audit", "alembic_version"} <= set(tables)
    cells = [
        str(value)
        for table in tables
        for row in database.execute(f"SELECT * FROM {table}")  # noqa: S608 (names from sqlite)
        for value in row
    ]
    database.close()
    assert len([c for c in cells if c == "cstore"]) >= 2
    assert not [(s, c) for c in cells for s in secrets if s in c]

    names = [str(p.relative_to(root)) for p in (root / "state").rglob("*")]
    assert not [(s, n) for n in names for s in secrets if s in n]
