"""No success without its row, and transient failures retried (serve/README.md: every scoring
attempt is one row of the results store).

- The intake (C-STORE, STOW-RS): an untyped exception while scoring is retried with backoff
  (``SCORE_TRIES``) while the instance stays in the spool; the instance's own typed error is
  not retried; only the last failed try makes a ``failed`` row, and only then does the
  instance leave the spool.
- ``POST /v1/predictions``: when the store refuses the row, the answer is 503
  ``store_unavailable`` (the one error mapping), never the score.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from labral.errors import NotACineError
from labral.serve.dicom import intake as intake_module
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings
from tests.helpers.waiting import wait_until


@pytest.fixture
def app_client(bundle_dir: Path, tmp_path: Path, ready_waiter) -> Iterator[TestClient]:
    """A started app with a state_dir of its own (node off; the intake runs)."""
    settings = ServeSettings(bundle=bundle_dir, state_dir=tmp_path, dicom={"enabled": False})
    with TestClient(create_app(settings)) as client:
        ready_waiter(client)
        yield client


class FlakyScore:
    """``ScoringService.score`` that raises ``failures`` times first, noting whether the
    spool still held the instance at each try."""

    def __init__(self, real: Any, failures: int, error: Exception, spool: Path) -> None:
        self.real, self.failures, self.error, self.spool = real, failures, error, spool
        self.spooled_at_each_try: list[bool] = []

    async def __call__(self, data: bytes, *, spatial: bool = False) -> Any:
        self.spooled_at_each_try.append(any(self.spool.glob("*.dcm")))
        if len(self.spooled_at_each_try) <= self.failures:
            raise self.error
        return await self.real(data, spatial=spatial)


def receive(client: TestClient, path: Path, score: FlakyScore, monkeypatch) -> list[dict]:
    """Hand ``path`` to the intake as the node does; wait for its row and its spool entry to
    go; return the stored rows."""
    monkeypatch.setattr(intake_module, "SCORE_BACKOFF_S", 0.01)
    intake = client.app.state.stateful.intake
    monkeypatch.setattr(intake.service, "score", score)
    receipt = intake.receive(path.read_bytes(), "cstore", "TEST@local")
    assert receipt.entry is not None
    intake.enqueue_threadsafe(receipt.entry)
    assert wait_until(lambda: client.get("/v1/results").json()["total"] == 1)
    assert wait_until(lambda: not receipt.entry.path.exists())  # it left with its row
    return client.get("/v1/results").json()["results"]


def test_a_transient_scoring_failure_is_retried_not_a_failed_row(
    app_client, instance_writer, monkeypatch, tmp_path
):
    intake = app_client.app.state.stateful.intake
    flaky = FlakyScore(intake.service.score, 2, RuntimeError("CUDA hiccup"), tmp_path / "spool")
    (row,) = receive(app_client, instance_writer(430), flaky, monkeypatch)
    assert row["status"] == "scored" and row["reason"] is None
    assert flaky.spooled_at_each_try == [True, True, True]  # kept spooled between tries


class CodedError(Exception):
    """An untyped exception that happens to carry a ``code`` (as urllib's HTTPError does)."""

    code = 500


@pytest.mark.parametrize("error", [RuntimeError("broken"), CodedError("broken")])
def test_retries_are_bounded_then_the_row_says_internal_error(
    app_client, instance_writer, monkeypatch, tmp_path, error
):
    intake = app_client.app.state.stateful.intake
    broken = FlakyScore(intake.service.score, 99, error, tmp_path / "spool")
    (row,) = receive(app_client, instance_writer(431), broken, monkeypatch)
    assert row["status"] == "failed" and row["reason"] == "internal_error"
    assert broken.spooled_at_each_try == [True] * intake_module.SCORE_TRIES


def test_the_instances_own_error_is_not_retried(app_client, instance_writer, monkeypatch, tmp_path):
    intake = app_client.app.state.stateful.intake
    refused = FlakyScore(intake.service.score, 99, NotACineError("one frame"), tmp_path / "spool")
    (row,) = receive(app_client, instance_writer(432), refused, monkeypatch)
    assert row["status"] == "failed" and row["reason"] == "not_a_cine"
    assert refused.spooled_at_each_try == [True]


@pytest.mark.parametrize("upload", ["bright.dcm", "not a cine"])
def test_an_upload_is_not_answered_without_its_row(app_client, clips, monkeypatch, upload):
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("database is locked")

    monkeypatch.setattr(app_client.app.state.stateful.store, "add_result", refuse)
    data = clips[upload].read_bytes() if upload in clips else b"plain text, no clip"
    response = app_client.post(
        "/v1/predictions", content=data, headers={"Content-Type": "application/dicom"}
    )
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "store_unavailable"
    assert "retry" in response.json()["error"]["message"]
    assert response.headers["retry-after"]
    metrics = app_client.get("/metrics").text
    assert 'labral_errors_total{code="store_unavailable"} 1.0' in metrics
