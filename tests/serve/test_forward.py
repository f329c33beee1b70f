"""SRs back to the PACS: dcmtk's storescp receives them (dciodvfy finds no error), and a dead
destination ends in the dead-letter folder after the configured tries."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from fastapi.testclient import TestClient

from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"


@pytest.fixture(scope="module")
def tools(require_tool: Callable[[str], str]) -> dict[str, str]:
    return {name: require_tool(name) for name in ("storescu", "storescp", "dciodvfy")}


@pytest.fixture
def pacs(tools, tmp_path, port_finder) -> Iterator[dict]:
    """dcmtk's storescp as the PACS (AE title PACS) on a free loopback port."""
    port, folder = port_finder(), tmp_path / "pacs"
    folder.mkdir()
    proc = subprocess.Popen(
        [tools["storescp"], "-aet", "PACS", "-od", str(folder), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield {"port": port, "folder": folder}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def node_app(bundle_dir, state: Path, node_port: int, forward: dict) -> TestClient:
    settings = ServeSettings(
        bundle=bundle_dir,
        state_dir=state,
        dicom={"enabled": True, "port": node_port, "forward": forward},
    )
    return TestClient(create_app(settings))


def send(tools, port: int, path: Path, *flags: str) -> None:
    cmd = [tools["storescu"], "-aec", "LABRAL", *flags, "127.0.0.1", str(port), str(path)]
    assert subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0


def wait_forwarded(client: TestClient, state: str, timeout: float = 60.0) -> dict:
    """Poll the newest result until its forward state is ``state`` (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = client.get("/v1/results", params={"source": "cstore"}).json()["results"]
        if rows and rows[0]["forward"] == state:
            return rows[0]
        time.sleep(0.05)
    raise AssertionError(f"no result reached forward={state!r}: {rows}")


def test_the_sr_of_each_instance_reaches_the_pacs_and_is_valid(
    tools, pacs, bundle_dir, tmp_path, instance_writer, port_finder, ready_waiter
):
    node_port = port_finder()
    forward = {"ae_title": "PACS", "host": "127.0.0.1", "port": pacs["port"], "backoff_s": 0.2}
    source_path = instance_writer(300, "explicit")
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    with node_app(bundle_dir, tmp_path / "state", node_port, forward) as client:
        ready_waiter(client)
        send(tools, node_port, source_path)
        row = wait_forwarded(client, "sent")
        audit = client.app.state.stateful.store.audit_lines()
    assert row["status"] == "scored"
    assert [a["outcome"] for a in audit if a["action"] == "forward"] == ["sent"]
    received = list(pacs["folder"].iterdir())
    assert len(received) == 1, received
    sr = pydicom.dcmread(received[0])
    assert sr.SOPClassUID == COMPREHENSIVE_SR
    assert sr.StudyInstanceUID == source.StudyInstanceUID  # filed in the source's study
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    check = subprocess.run([tools["dciodvfy"], str(received[0])], capture_output=True, text=True)
    errors = [line for line in (check.stdout + check.stderr).splitlines() if "Error" in line]
    assert not errors, check.stdout + check.stderr
    assert not list((tmp_path / "state" / "outbox").glob("*.dcm"))


def test_a_dead_destination_ends_in_the_dead_letter_folder(
    tools, bundle_dir, tmp_path, instance_writer, port_finder, ready_waiter
):
    node_port, dead_port = port_finder(), port_finder()  # nothing listens on dead_port
    forward = {
        "ae_title": "PACS",
        "host": "127.0.0.1",
        "port": dead_port,
        "retries": 2,
        "backoff_s": 0.05,
        "timeout_s": 2,
    }
    state = tmp_path / "state"
    with node_app(bundle_dir, state, node_port, forward) as client:
        ready_waiter(client)
        send(tools, node_port, instance_writer(301, "jpeg"), "-xy")
        row = wait_forwarded(client, "dead_letter")
    assert row["status"] == "scored"
    letters = list((state / "dead_letter").glob("*.dcm"))
    assert len(letters) == 1 and pydicom.dcmread(letters[0]).SOPClassUID == COMPREHENSIVE_SR
    assert not list((state / "outbox").glob("*.dcm"))
