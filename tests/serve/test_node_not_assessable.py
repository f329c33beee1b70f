"""Issue 22 at the DICOM node and DICOMweb: a wrong view sent by dcmtk's storescu is
acknowledged (it is valid DICOM), gets a ``not_assessable`` results row and an SR that says
"not assessable" and why, forwarded to the PACS (dcmtk's storescp) as a scored one's is;
a valid hip clip on the same node is scored. STOW-RS answers a wrong view as stored, with
the RetrieveURL of that SR.

The bundle's check is ``tests.helpers.input_check.fitted_check`` (fitted on generated clips,
once per session): only a fitted check can tell a view from another. The wrong view is the
generator's ``lateral_view``; which detector refuses it (view, out of distribution, no
manoeuvre) is the check's business, tested in tests/input_check; here it must be refused.
"""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from fastapi.testclient import TestClient

from labral.datasets.synth.dicom_writer import write_cine_dicom
from labral.datasets.synth.generate import draw_patient, generate_clip
from labral.datasets.synth.wrong_inputs import generate_wrong_input
from labral.serve.dicom.dicomweb import multipart_related
from labral.serve.dicom.sr import NOT_ASSESSABLE
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings
from tests.helpers.bundles import toy_bundle
from tests.helpers.input_check import fitted_check

AE = "LABRAL"
#: seeds of the generated clips: a valid hip at the easy level (the small fitted check
#: passes it with a wide margin on every detector) and lateral views
VALID_SEED, WRONG_SEEDS = 7002, (900, 901)


@pytest.fixture(scope="module")
def tools(require_tool: Callable[[str], str]) -> dict[str, str]:
    return {name: require_tool(name) for name in ("storescu", "storescp", "dciodvfy")}


def _write(clip, path: Path, index: int) -> Path:
    patient = {"patient": f"N{index:04d}", "clip": index, "dataset_seed": 2222}
    return write_cine_dicom(clip, path, syntax="explicit", burned_in_text=False, patient=patient)


@pytest.fixture(scope="module")
def sent(tmp_path_factory) -> dict[str, Path]:
    """A valid hip clip and two lateral views (wrong views), as DICOM cines."""
    folder = tmp_path_factory.mktemp("node-views")
    valid = generate_clip(
        draw_patient(VALID_SEED), "normal", VALID_SEED, fps=20.0, difficulty="easy"
    )
    files = {"valid": _write(valid, folder / "valid.dcm", 1)}
    for i, seed in enumerate(WRONG_SEEDS):
        wrong = generate_wrong_input("lateral_view", seed)
        files[f"lateral{i}"] = _write(wrong, folder / f"lateral{i}.dcm", 2 + i)
    return files


@pytest.fixture(scope="module")
def node(tools, tmp_path_factory, port_finder, ready_waiter) -> Iterator[dict]:
    """A node whose bundle has a fitted check, forwarding its SRs to storescp (AE PACS)."""
    root = tmp_path_factory.mktemp("checked-node")
    bundle = toy_bundle(root / "bundle", input_check=fitted_check())
    pacs_port, node_port = port_finder(), port_finder()
    pacs = root / "pacs"
    pacs.mkdir()
    storescp = subprocess.Popen(
        [tools["storescp"], "-aet", "PACS", "-od", str(pacs), str(pacs_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    forward = {"ae_title": "PACS", "host": "127.0.0.1", "port": pacs_port, "backoff_s": 0.2}
    settings = ServeSettings(
        bundle=bundle,
        state_dir=root / "state",
        dicom={"enabled": True, "port": node_port, "ae_title": AE, "forward": forward},
    )
    try:
        with TestClient(create_app(settings)) as client:
            ready_waiter(client)
            yield {"client": client, "port": node_port, "pacs": pacs, "state": root / "state"}
    finally:
        storescp.terminate()
        storescp.wait(timeout=10)


def storescu(tools, node, path: Path) -> subprocess.CompletedProcess:
    cmd = [tools["storescu"], "-v", "-aet", "SCANNER", "-aec", AE, "127.0.0.1"]
    return subprocess.run(
        [*cmd, str(node["port"]), str(path)], capture_output=True, text=True, timeout=60
    )


def row_of(client: TestClient, path: Path, forward: str = "sent", timeout=60.0) -> dict:
    """The results row of the instance in ``path`` once its SR reached ``forward``."""
    key = client.app.state.stateful.keys.key(pydicom.dcmread(path).SOPInstanceUID)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = client.get("/v1/results", params={"limit": 500}).json()["results"]
        mine = [r for r in rows if r["instance_key"] == key]
        if mine and mine[0]["forward"] == forward:
            return mine[0]
        time.sleep(0.05)
    raise AssertionError(f"no row of {path.name} reached forward={forward!r}: {rows}")


def sr_at_pacs(node, source: Path) -> tuple[Path, pydicom.Dataset]:
    """The SR storescp received for ``source`` (it references the source instance)."""
    uid = pydicom.dcmread(source).SOPInstanceUID
    for path in node["pacs"].iterdir():
        sr = pydicom.dcmread(path)
        evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        if evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == uid:
            return path, sr
    raise AssertionError(f"no SR of {source.name} at the PACS")


def coded(sr: pydicom.Dataset) -> set[tuple[str, str]]:
    """(concept name, concept value) code values of every CODE item of an SR."""
    found, todo = set(), list(sr.ContentSequence)
    while todo:
        item = todo.pop()
        todo.extend(getattr(item, "ContentSequence", []))
        if item.ValueType == "CODE":
            name, value = item.ConceptNameCodeSequence[0], item.ConceptCodeSequence[0]
            found.add((name.CodeValue, value.CodeValue))
    return found


def test_a_wrong_view_is_acknowledged_stored_not_assessable_and_its_sr_says_so(tools, node, sent):
    client = node["client"]
    for name in ("valid", "lateral0"):
        done = storescu(tools, node, sent[name])
        assert done.returncode == 0 and "store response (success)" in done.stderr.lower()
    wrong = row_of(client, sent["lateral0"])
    assert wrong["status"] == "not_assessable" and wrong["source"] == "cstore"
    assert wrong["reasons"] and wrong["advice"], wrong
    assert wrong["probability"] is None and wrong["decision"] is None and wrong["sr_key"]
    valid = row_of(client, sent["valid"])
    assert valid["status"] == "scored" and valid["decision"] is not None, valid
    listed = client.get("/v1/results", params={"status": "not_assessable"}).json()
    assert wrong["id"] in [r["id"] for r in listed["results"]]

    path, sr = sr_at_pacs(node, sent["lateral0"])
    codes = coded(sr)
    assert ("LABRAL-D", NOT_ASSESSABLE.value) in codes
    assert sum(name == "LABRAL-NAR" for name, _ in codes) == len(wrong["reasons"])
    assert not [v for _, v in codes if v in ("LABRAL-POS", "LABRAL-NEG")]
    texts = " ".join(str(getattr(i, "TextValue", "")) for i in _items(sr))
    assert "Not assessable (" in texts and wrong["advice"] in texts
    report = subprocess.run([tools["dciodvfy"], str(path)], capture_output=True, text=True)
    assert not [x for x in (report.stdout + report.stderr).splitlines() if x.startswith("Error")]
    _, scored_sr = sr_at_pacs(node, sent["valid"])
    assert {"LABRAL-POS", "LABRAL-NEG"} & {v for _, v in coded(scored_sr)}
    assert not list((node["state"] / "spool").glob("*.dcm"))  # both left the spool


def _items(sr: pydicom.Dataset):
    todo = list(sr.ContentSequence)
    while todo:
        item = todo.pop()
        todo.extend(getattr(item, "ContentSequence", []))
        yield item


def test_stow_rs_stores_a_wrong_view_and_serves_its_not_assessable_sr(node, sent):
    client = node["client"]
    body, content_type = multipart_related([sent["lateral1"].read_bytes()])
    answer = client.post("/dicomweb/studies", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 200, answer.text  # stored and answered: not a failure
    (item,) = answer.json()["00081199"]["Value"]  # ReferencedSOPSequence
    assert "00081197" not in item  # no FailureReason
    url = item["00081190"]["Value"][0]  # RetrieveURL of the SR made for it
    sr_part = client.get(url, headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert sr_part.status_code == 200
    start = sr_part.content.index(b"DICM") - 128
    sr = pydicom.dcmread(io.BytesIO(sr_part.content[start:]))
    assert ("LABRAL-D", NOT_ASSESSABLE.value) in coded(sr)
    row = client.get("/v1/results", params={"source": "stowrs"}).json()["results"][0]
    assert row["status"] == "not_assessable" and row["reasons"]
