"""The intake's backpressure and its report stage after a crash (serve/dicom/intake.py,
reporting.py).

Both run in-process through the app (``TestClient``), with instances handed to the intake
as the DICOM node hands them (``receive`` then ``enqueue_threadsafe``).
"""

from __future__ import annotations

import asyncio
import time

import pydicom
from fastapi.testclient import TestClient

from labral.serve.dicom import reporting
from labral.serve.dicom.spool import Spool
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings
from labral.serve.store.database import AuditEntry, ResultRow, ResultsStore
from tests.helpers.waiting import wait_until


def _receive(intake, path):
    """C-STORE ``path`` as the node does: check and spool it, then queue it for scoring."""
    receipt = intake.receive(path.read_bytes(), "cstore", "TEST@local")
    assert receipt.entry is not None and receipt.entry.path.is_file()
    intake.enqueue_threadsafe(receipt.entry)
    return receipt.entry


def test_acknowledgements_wait_while_the_backlog_is_full(
    bundle_dir, tmp_path, instance_writer, ready_waiter
):
    """With ``max_backlog=1``, once one acknowledged instance waits for its result row, the
    next answer is held until that row exists; the held instance is already in the spool
    and queued, and a row frees one answer."""
    settings = ServeSettings(
        bundle=bundle_dir,
        state_dir=tmp_path,
        dicom={"workers": 1, "max_backlog": 1, "score_delay_s": 1.0},
    )
    with TestClient(create_app(settings)) as client:
        ready_waiter(client)
        intake = client.app.state.stateful.intake
        entries = [_receive(intake, instance_writer(index)) for index in (400, 401)]
        assert intake.backlog == 2
        assert intake.wait_for_room(entries[0].id, timeout=0.1) is True  # nothing acknowledged
        assert intake.wait_for_room(entries[1].id, timeout=0.1) is False  # the first waits
        assert client.get("/v1/results").json()["total"] == 0
        assert intake.wait_for_room(entries[1].id, timeout=30) is True  # its row frees room
        assert client.get("/v1/results").json()["total"] >= 1
        assert wait_until(lambda: client.get("/v1/results").json()["total"] == 2)
        assert intake.backlog == 0
        assert intake.wait_for_room("scored-long-ago", timeout=0.1) is True  # room again


def test_an_entry_scored_before_a_crash_gets_its_sr_without_a_second_score(
    bundle_dir, tmp_path, instance_writer, ready_waiter
):
    """A crash between the row's commit and the SR leaves the spool entry and a row without
    ``sr_key``; the restart makes the SR for that row and stores no second result."""
    data = instance_writer(410).read_bytes()
    source = pydicom.dcmread(instance_writer(410), stop_before_pixels=True)
    entry = Spool(tmp_path / "spool").put(data, {"source": "cstore", "caller": "TEST@local"})
    store = ResultsStore.open(f"sqlite:///{tmp_path / 'results.sqlite'}")
    row = ResultRow(
        source="cstore",
        status="scored",
        intake_id=entry.id,
        probability=0.9,
        decision=True,
        threshold=0.5,
        warnings=["kept from the first score"],
    )
    result_id = store.add_result(row, AuditEntry("C-STORE", "TEST@local", "score", "scored"))
    store.close()
    settings = ServeSettings(bundle=bundle_dir, state_dir=tmp_path, dicom={"enabled": False})
    with TestClient(create_app(settings)) as client:
        ready_waiter(client)
        assert wait_until(lambda: not entry.path.exists())  # reported, then freed
        page = client.get("/v1/results").json()
        archive = client.app.state.stateful.archive
        keys = client.app.state.stateful.keys
    assert page["total"] == 1  # not scored again
    stored = page["results"][0]
    assert stored["id"] == result_id and stored["probability"] == 0.9  # the first score
    assert stored["sr_key"] and stored["warnings"] == ["kept from the first score"]
    (sr_path,) = archive.find(source.StudyInstanceUID)
    sr = pydicom.dcmread(sr_path)
    assert keys.key(sr.SOPInstanceUID) == stored["sr_key"]
    assert sr.StudyInstanceUID == source.StudyInstanceUID


def test_a_not_assessable_entry_from_before_a_crash_gets_its_not_assessable_sr(
    bundle_dir, tmp_path, instance_writer, ready_waiter
):
    """The same after a crash for a clip the input check refused: the SR made at the restart
    says "not assessable" with the stored reasons and advice (the row is not scored again;
    the bundle here has no check at all, so a new score could not be not_assessable)."""
    path = instance_writer(412)
    entry = Spool(tmp_path / "spool").put(path.read_bytes(), {"source": "cstore"})
    store = ResultsStore.open(f"sqlite:///{tmp_path / 'results.sqlite'}")
    row = ResultRow(
        source="cstore",
        status="not_assessable",
        intake_id=entry.id,
        reasons=["no_manoeuvre"],
        advice="The hip did not move: record the manoeuvre.",
        threshold=0.5,
    )
    store.add_result(row, AuditEntry("C-STORE", "TEST@local", "score", "not_assessable"))
    store.close()
    settings = ServeSettings(bundle=bundle_dir, state_dir=tmp_path, dicom={"enabled": False})
    with TestClient(create_app(settings)) as client:
        ready_waiter(client)
        assert wait_until(lambda: not entry.path.exists())
        (stored,) = client.get("/v1/results").json()["results"]
        archive = client.app.state.stateful.archive
    assert stored["status"] == "not_assessable" and stored["sr_key"]
    (sr_path,) = archive.find(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
    sr = pydicom.dcmread(sr_path)
    items, texts = list(sr.ContentSequence), []
    while items:
        item = items.pop()
        items.extend(getattr(item, "ContentSequence", []))
        texts.append(str(getattr(item, "TextValue", "")))
        if item.ValueType == "CODE":
            texts.append(item.ConceptCodeSequence[0].CodeValue)
    assert "LABRAL-NA" in texts and "LABRAL-NA-MAN" in texts and "LABRAL-POS" not in texts
    assert any("The hip did not move: record the manoeuvre." in t for t in texts)


def test_an_sr_waits_while_instances_wait_to_be_scored_but_not_past_its_deadline(monkeypatch):
    """Scoring first: a report job starts once nothing waits for a result row, or at the
    latest ``REPORT_DEFER_S`` after it was queued (a flood that never ends still gets SRs)."""
    monkeypatch.setattr(reporting, "REPORT_DEFER_S", 0.4)
    monkeypatch.setattr(reporting, "REPORT_IDLE_POLL_S", 0.01)
    reporter = reporting.Reporter.__new__(reporting.Reporter)  # only ``busy`` is used
    state = {"busy": True}
    reporter.busy = lambda: state["busy"]

    async def waits() -> tuple[float, float]:
        start = time.monotonic()
        asyncio.get_running_loop().call_later(0.1, state.update, {"busy": False})
        await reporter._when_idle(start)
        until_idle = time.monotonic() - start
        state["busy"] = True  # busy for good now
        start = time.monotonic()
        await reporter._when_idle(start)
        return until_idle, time.monotonic() - start

    until_idle, until_deadline = asyncio.run(waits())
    assert 0.09 <= until_idle < 0.35
    assert 0.39 <= until_deadline < 0.9


def test_a_killed_sr_process_is_replaced_and_the_next_sr_still_made(
    bundle_dir, tmp_path, instance_writer, ready_waiter
):
    """SIGKILL the SR child between two instances: the second still gets its SR (a new
    child), and neither instance is left in the spool."""
    import os
    import signal

    settings = ServeSettings(bundle=bundle_dir, state_dir=tmp_path, dicom={"enabled": False})
    with TestClient(create_app(settings)) as client:
        ready_waiter(client)
        intake = client.app.state.stateful.intake
        for index in (420, 421):
            entry = _receive(intake, instance_writer(index))
            assert wait_until(lambda e=entry: not e.path.exists())  # its SR is kept
            if index == 420:  # kill the child that made the first SR
                pids = list(intake.reporter._builder._processes)
                assert len(pids) == 1
                os.kill(pids[0], signal.SIGKILL)
                assert wait_until(lambda p=pids[0]: _gone(p))
        results = client.get("/v1/results").json()["results"]
        after = list(intake.reporter._builder._processes)
    assert len(results) == 2 and all(r["sr_key"] for r in results)
    assert after and pids[0] not in after  # a new child made the second SR


def _gone(pid: int) -> bool:
    """True once ``pid`` is no longer a running process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] == "Z"
    except FileNotFoundError:
        return True
