"""The results store: migrated schema, append-only audit, idempotent rows, paging, GET /v1/results.

Store tests run on SQLite, and on PostgreSQL too when ``LABRAL_TEST_POSTGRES_URL`` names a
server (``.ci/run`` starts one); without it the PostgreSQL cases skip.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

from labral.serve.asgi import settings_from_env
from labral.serve.dicom.pseudonym import KEY_FILE, store_pseudonymizer
from labral.serve.http.app import create_app
from labral.serve.settings import ServeSettings
from labral.serve.store.database import (
    AuditEntry,
    ResultFilter,
    ResultRow,
    ResultsStore,
    metadata,
    migrate,
)

POSTGRES_ENV = "LABRAL_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    """The PostgreSQL server to test against (``.ci/run`` sets it), or None."""
    return os.environ.get(POSTGRES_ENV) or None


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[ResultsStore]:
    """A freshly migrated store on each backend (PostgreSQL: a schema of its own)."""
    if request.param == "sqlite":
        opened = ResultsStore.open(f"sqlite:///{tmp_path / 'results.sqlite'}")
        yield opened
        opened.close()
        return
    url = postgres_url()
    if url is None:
        pytest.skip(f"no PostgreSQL server ({POSTGRES_ENV} is not set; .ci/run sets it)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    opened = ResultsStore.open(
        url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    )
    try:
        yield opened
    finally:
        opened.close()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def row(**values) -> ResultRow:
    return ResultRow(**{"source": "cstore", "status": "scored", **values})


def entry(outcome: str = "scored") -> AuditEntry:
    return AuditEntry("C-STORE", "SCANNER@127.0.0.1", "score", outcome)


def test_migrated_schema_is_the_table_definitions(store):
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert version == "0002"
    ResultsStore.open(str(store.engine.url.render_as_string(hide_password=False))).close()


def test_audit_trail_refuses_update_and_delete(store):
    store.add_result(row(probability=0.9, decision=True), entry())
    for statement in ("UPDATE audit SET outcome = 'x'", "DELETE FROM audit"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with store.engine.begin() as conn:
                conn.exec_driver_sql(statement)
    assert [line["outcome"] for line in store.audit_lines()] == ["scored"]


def test_one_row_per_spool_entry(store):
    first = store.add_result(row(intake_id="a" * 32, probability=0.2, decision=False), entry())
    again = store.add_result(row(intake_id="a" * 32, probability=0.2, decision=False), entry())
    assert first == again and store.count() == 1 and len(store.audit_lines()) == 1
    assert store.result_id_for_intake("a" * 32) == first
    assert store.result_id_for_intake("b" * 32) is None


def test_pages_newest_first_filtered_by_time_decision_status(store):
    for i in range(5):
        store.add_result(row(probability=i / 4, decision=i >= 2), entry())
    store.add_result(row(status="failed", reason="corrupt_pixel_data"), entry("corrupt"))
    total, page = store.page(limit=2)
    assert total == 6 and [r["id"] for r in page] == [6, 5]
    assert [r["id"] for r in store.page(limit=2, offset=4)[1]] == [2, 1]
    assert store.count(ResultFilter(decision=True)) == 3
    assert store.count(ResultFilter(decision=False)) == 2
    assert store.count(ResultFilter(status="failed")) == 1
    stamps = [r["created_at"] for r in store.page()[1]]
    assert all(s.tzinfo is not None for s in stamps)
    middle = sorted(stamps)[3]
    assert store.count(ResultFilter(since=middle)) == 3
    assert store.count(ResultFilter(until=middle)) == 3
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert store.count(ResultFilter(since=future)) == 0
    assert store.purge_before(future) == 6 and store.count() == 0
    assert len(store.audit_lines()) == 6  # retention never touches the audit trail


def test_a_not_assessable_row_keeps_its_reasons_and_advice(store):
    store.add_result(row(probability=0.7, decision=True), entry())
    refused = row(status="not_assessable", reasons=["no_manoeuvre", "not_hip_view"])
    refused.advice = "The hip did not move: record the manoeuvre."
    result_id = store.add_result(refused, entry("not_assessable"))
    stored = store.get(result_id)
    assert stored["status"] == "not_assessable"
    assert stored["reasons"] == ["no_manoeuvre", "not_hip_view"]
    assert stored["advice"].startswith("The hip did not move")
    assert stored["probability"] is None and stored["decision"] is None
    assert store.count(ResultFilter(status="not_assessable")) == 1
    assert store.count(ResultFilter(status="scored")) == 1
    with pytest.raises(ValueError, match="bad source/status"):
        row(status="refused")


def test_the_migration_upgrades_a_database_of_the_first_schema(tmp_path):
    """A store written by 0001 (before the input check) opens at head: its rows keep their
    status (scored or failed), get an empty reasons list, and filter by status."""
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = sa.create_engine(url)
    migrate(engine, "0001")
    with engine.begin() as conn:
        for status, reason, decision in (("scored", None, 1), ("failed", "not_dicom", None)):
            conn.exec_driver_sql(
                "INSERT INTO results (created_at, source, status, reason, probability, decision)"
                " VALUES ('2025-01-01 08:00:00', 'upload', ?, ?, 0.9, ?)",
                (status, reason, decision),
            )
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
    engine.dispose()
    store = ResultsStore.open(url)
    try:
        total, rows = store.page()
        assert total == 2
        assert [(r["status"], r["reason"], r["reasons"]) for r in rows] == [
            ("failed", "not_dicom", []),
            ("scored", None, []),
        ]
        assert rows[1]["decision"] is True and rows[1]["advice"] is None
        store.add_result(row(status="not_assessable", reasons=["image_quality"]), entry())
        assert store.count(ResultFilter(status="scored")) == 1
        assert store.count(ResultFilter(status="not_assessable")) == 1
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        store.close()


def test_forward_state_is_recorded(store):
    result_id = store.add_result(row(forward="pending"), entry())
    store.set_forward(result_id, "sent")
    assert store.get(result_id)["forward"] == "sent"
    with pytest.raises(ValueError):
        store.set_forward(result_id, "lost")


def test_pseudonym_key_file_is_private_and_reused(tmp_path):
    first = store_pseudonymizer(None, tmp_path, environ={})
    mode = stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode)
    assert mode == 0o600
    again = store_pseudonymizer(None, tmp_path, environ={})
    uid = "1.2.826.0.1.3680043.8.498.1"
    assert first.key(uid) == again.key(uid) and len(first.key(uid)) == 64
    assert uid not in first.key(uid)
    configured = store_pseudonymizer("a configured secret", tmp_path, environ={})
    assert configured.key(uid) != first.key(uid)
    assert first.key(None) is None and first.key("") is None


# ---- GET /v1/results -----------------------------------------------------------------
def post(client, data: bytes, **headers):
    return client.post(
        "/v1/predictions", content=data, headers={"Content-Type": "application/dicom", **headers}
    )


def test_uploads_are_stored_and_listed(make_client, clips, tmp_path):
    client = make_client(state_dir=tmp_path / "state")
    bright, dark = clips["bright.dcm"].read_bytes(), clips["dark.dcm"].read_bytes()
    assert post(client, bright).status_code == 200
    assert post(client, dark).status_code == 200
    assert post(client, bright[:300]).status_code == 415
    page = client.get("/v1/results").json()
    assert page["total"] == 3 and page["next_offset"] is None
    failed, negative, positive = page["results"]
    assert (failed["status"], failed["reason"], failed["instance_key"]) == (
        "failed",
        "not_dicom",
        None,
    )
    assert positive["decision"] is True and negative["decision"] is False
    assert positive["source"] == "upload" and positive["model"]["name"] == "mean-intensity-test"
    assert len(positive["instance_key"]) == 64 and positive["timing_ms"]["total"] > 0
    assert client.get("/v1/results", params={"decision": "true"}).json()["total"] == 1
    assert client.get("/v1/results", params={"status": "failed"}).json()["total"] == 1
    first = client.get("/v1/results", params={"limit": 2}).json()
    assert first["next_offset"] == 2
    rest = client.get("/v1/results", params={"limit": 2, "offset": 2}).json()
    assert [r["id"] for r in rest["results"]] == [positive["id"]]
    since = positive["created_at"]
    newer = client.get("/v1/results", params={"since": since}).json()
    assert newer["total"] == 3
    assert client.get("/v1/results", params={"until": since}).json()["total"] == 0
    bad = client.get("/v1/results", params={"since": since, "until": since})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    audit = client.app.state.stateful.store.audit_lines()
    assert [a["action"] for a in audit].count("score") == 3
    assert {a["route"] for a in audit} == {"POST /v1/predictions", "GET /v1/results"}


def test_results_survive_a_restart_and_need_the_key(bundle_dir, clips, tmp_path, ready_waiter):
    settings = ServeSettings(bundle=bundle_dir, state_dir=tmp_path / "state", api_key="k")
    auth = {"Authorization": "Bearer k"}
    with TestClient(create_app(settings)) as first:
        ready_waiter(first)
        assert post(first, clips["bright.dcm"].read_bytes(), **auth).status_code == 200
        assert first.get("/v1/results").status_code == 401
    with TestClient(create_app(settings)) as again:
        assert again.get("/v1/results", headers=auth).json()["total"] == 1


def test_asgi_workers_read_the_state_folder_and_store_from_the_environment(bundle_dir):
    settings = settings_from_env(
        {
            "LABRAL_BUNDLE": str(bundle_dir),
            "LABRAL_STATE_DIR": "/var/lib/labral",
            "LABRAL_STORE_URL": "postgresql+psycopg://labral@db/labral",
            "LABRAL_STORE_RETENTION_DAYS": "30",
        }
    )
    assert str(settings.state_dir) == "/var/lib/labral"
    assert settings.store.url == "postgresql+psycopg://labral@db/labral"
    assert settings.store.retention_days == 30 and not settings.dicom.enabled
