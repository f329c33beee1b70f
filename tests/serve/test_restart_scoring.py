"""A spooled but unscored instance is scored after a restart, with nothing outside Python.

The DICOM node runs in-process (``TestClient``); pynetdicom is the sending modality. The
first app acknowledges the instances but holds them before scoring (``score_delay_s``),
then stops; the second, on the same ``state_dir``, scores each of them once, and the spool
empties. (``test_dicom_node.py`` does the same with dcmtk's storescu and a SIGKILL.)
"""

from __future__ import annotations

import pydicom
from fastapi.testclient import TestClient
from pynetdicom import AE

from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings
from tests.helpers.waiting import wait_until

NODE_AE = "LABRAL"
SUCCESS = 0x0000


def c_store(port: int, paths: list) -> list[int]:
    """Send each file over one association, as a scanner would; their DIMSE statuses."""
    datasets = [pydicom.dcmread(path) for path in paths]
    sender = AE(ae_title="SCANNER")
    for ds in datasets:
        sender.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    association = sender.associate("127.0.0.1", port, ae_title=NODE_AE)
    assert association.is_established, "the node refused the association"
    try:
        return [int(association.send_c_store(ds).Status) for ds in datasets]
    finally:
        association.release()


def test_acknowledged_unscored_instances_are_scored_after_a_restart(
    bundle_dir, tmp_path, instance_writer, port_finder, ready_waiter
):
    state = tmp_path / "state"
    node = {"enabled": True, "ae_title": NODE_AE, "port": port_finder()}
    holding = ServeSettings(
        bundle=bundle_dir, state_dir=state, dicom={**node, "score_delay_s": 600}
    )
    paths = [instance_writer(500, "explicit"), instance_writer(501, "jpeg", bright=False)]
    with TestClient(create_app(holding)) as client:
        ready_waiter(client)
        assert c_store(node["port"], paths) == [SUCCESS, SUCCESS]
        assert client.get("/v1/results").json()["total"] == 0  # acknowledged, not scored
    spooled = sorted(path.stem for path in (state / "spool").glob("*.dcm"))
    assert len(spooled) == 2

    restarted = ServeSettings(bundle=bundle_dir, state_dir=state, dicom={**node, "port": 0})
    with TestClient(create_app(restarted)) as client:
        ready_waiter(client)
        assert wait_until(lambda: client.get("/v1/results").json()["total"] == 2, timeout=120.0)
        assert wait_until(  # the SRs are made and the spool emptied
            lambda: not list((state / "spool").glob("*.dcm")), timeout=120.0
        )
        results = client.get("/v1/results").json()
        assert client.app.state.stateful.intake.backlog == 0
    assert results["total"] == 2  # each once
    assert {r["status"] for r in results["results"]} == {"scored"}
    assert {r["source"] for r in results["results"]} == {"cstore"}
    assert sorted(r["decision"] for r in results["results"]) == [False, True]
    assert all(r["sr_key"] for r in results["results"])
