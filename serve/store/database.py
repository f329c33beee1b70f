"""The results store: one row per scored instance and an append-only audit trail.

SQLAlchemy Core over embedded SQLite (the default, ``<state_dir>/results.sqlite``) or
PostgreSQL (``store.url=postgresql+psycopg://...``). The schema is versioned: the Alembic
migrations in ``serve/store/migrations/`` run at every start (:meth:`ResultsStore.open`), and
``tests/serve/test_store.py`` checks that the migrated schema is exactly :data:`metadata`.

No patient identity is stored. An instance is known by ``instance_key`` and ``study_key``,
keyed hashes of its SOP Instance and Study Instance UIDs (:mod:`labral.serve.dicom.pseudonym`);
names, ids and UIDs never reach a table. Tables:

``results``
    ``id``, ``created_at`` (UTC), ``source`` (upload | cstore | stowrs | stream: a live session,
    whose ``reason`` is set when it ended early, e.g. ``client_disconnected``), ``intake_id`` (the
    spool entry it came from, unique: scoring a spooled instance twice stores one row),
    ``instance_key``, ``study_key``, ``model_name``, ``model_version``, ``model_sha256``,
    ``status`` (scored | not_assessable | failed), ``reason`` (the stable error code of a
    failure), ``reasons`` (JSON list: the input check's reason codes of a not-assessable
    clip, else empty) and ``advice`` (its sentence for the clinician), ``probability`` and
    ``decision`` (null unless scored), ``threshold``, ``timing_ms`` (JSON), ``warnings`` (JSON),
    ``sr_key`` (keyed hash of the SOP Instance UID of the SR made for it) and ``forward``
    (null when not forwarded, else pending | sent | dead_letter).
``audit``
    ``id``, ``at``, ``route`` (e.g. ``POST /v1/predictions``, ``C-STORE``), ``caller``
    (client address or calling AE title and address), ``action`` (score | read | retrieve),
    ``instance_key``, ``result_id``, ``outcome`` (scored, an error code, ok). Triggers
    created by the migration refuse every UPDATE and DELETE.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

log = logging.getLogger("labral.serve")
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SOURCES = ("upload", "cstore", "stowrs", "stream")
STATUSES = ("scored", "not_assessable", "failed")
FORWARD_STATES = ("pending", "sent", "dead_letter")


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone itself)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("store times must be timezone-aware")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


metadata = MetaData()
results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), nullable=False, index=True),
    Column("source", String(16), nullable=False),
    Column("intake_id", String(64), nullable=True),
    Column("instance_key", String(64), nullable=True, index=True),
    Column("study_key", String(64), nullable=True, index=True),
    Column("model_name", String(128), nullable=True),
    Column("model_version", String(64), nullable=True),
    Column("model_sha256", String(64), nullable=True),
    Column("status", String(16), nullable=False, index=True),
    Column("reason", String(64), nullable=True),
    Column("reasons", JSON, nullable=True),
    Column("advice", Text, nullable=True),
    Column("probability", Float, nullable=True),
    Column("decision", Boolean, nullable=True, index=True),
    Column("threshold", Float, nullable=True),
    Column("timing_ms", JSON, nullable=True),
    Column("warnings", JSON, nullable=True),
    Column("sr_key", String(64), nullable=True, index=True),
    Column("forward", String(16), nullable=True),
    UniqueConstraint("intake_id", name="uq_results_intake_id"),
)
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("route", String(64), nullable=False),
    Column("caller", String(128), nullable=False),
    Column("action", String(16), nullable=False),
    Column("instance_key", String(64), nullable=True),
    Column("result_id", Integer, nullable=True),
    Column("outcome", String(64), nullable=False),
)


def utcnow() -> dt.datetime:
    """Now, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class ResultRow:
    """What one scoring attempt stores (see the ``results`` table)."""

    source: str
    status: str
    instance_key: str | None = None
    study_key: str | None = None
    intake_id: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    reason: str | None = None
    reasons: list[str] = field(default_factory=list)
    advice: str | None = None
    probability: float | None = None
    decision: bool | None = None
    threshold: float | None = None
    timing_ms: dict[str, float] | None = None
    warnings: list[str] = field(default_factory=list)
    sr_key: str | None = None
    forward: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES or self.status not in STATUSES:
            raise ValueError(f"bad source/status {self.source!r}/{self.status!r}")


@dataclass
class AuditEntry:
    """One line of the audit trail (see the ``audit`` table)."""

    route: str
    caller: str
    action: str
    outcome: str
    instance_key: str | None = None
    result_id: int | None = None


@dataclass(frozen=True)
class ResultFilter:
    """Which results to list: a time window [since, until), decision, status and source."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    decision: bool | None = None
    status: str | None = None
    source: str | None = None

    def clauses(self) -> Iterator[Any]:
        """SQL conditions on ``results`` for the fields that are set."""
        c = results.c
        if self.since is not None:
            yield c.created_at >= self.since
        if self.until is not None:
            yield c.created_at < self.until
        if self.decision is not None:
            yield c.decision.is_(self.decision)
        if self.status is not None:
            yield c.status == self.status
        if self.source is not None:
            yield c.source == self.source


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=FULL")  # a committed row survives a power cut
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``: the newest migration by default (``alembic upgrade
    head``, programmatically); tests name an older one to build an old database."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


class ResultsStore:
    """Reads and writes results and audit rows; safe to call from any thread.

    Args:
        engine: a SQLAlchemy engine whose schema is migrated (use :meth:`open`).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()  # SQLite allows one writer; keep writers in line here

    @classmethod
    def open(cls, url: str) -> ResultsStore:
        """Connect, run the migrations, return the store.

        Args:
            url: a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``).
        """
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        migrate(engine)
        log.info("results store ready (%s)", engine.url.get_backend_name())
        return cls(engine)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    # ---- writing -----------------------------------------------------------------------
    def add_result(self, row: ResultRow, entry: AuditEntry) -> int:
        """Insert a result and its audit line in one transaction; return the result's id.

        A row whose ``intake_id`` is already stored is not inserted twice: the stored row's
        id is returned (a spooled instance scored again after a crash).
        """
        values = {**asdict(row), "created_at": utcnow()}
        with self._lock:
            try:
                with self.engine.begin() as conn:
                    inserted = conn.execute(insert(results).values(values))
                    result_id = int(inserted.inserted_primary_key[0])
                    conn.execute(insert(audit).values(self._audit_values(entry, result_id)))
                    return result_id
            except IntegrityError:
                existing = self.result_id_for_intake(row.intake_id) if row.intake_id else None
                if existing is None:
                    raise
                return existing

    def add_audit(self, entry: AuditEntry) -> None:
        """Append one audit line."""
        with self._lock, self.engine.begin() as conn:
            conn.execute(insert(audit).values(self._audit_values(entry, entry.result_id)))

    @staticmethod
    def _audit_values(entry: AuditEntry, result_id: int | None) -> dict[str, Any]:
        return {**asdict(entry), "result_id": result_id, "at": utcnow()}

    def set_forward(self, result_id: int, state: str) -> None:
        """Record how forwarding the result's SR went (pending, sent or dead_letter)."""
        if state not in FORWARD_STATES:
            raise ValueError(f"bad forward state {state!r}")
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(results).where(results.c.id == result_id).values(forward=state))

    def set_report(self, result_id: int, sr_key: str | None, warnings: list[str]) -> None:
        """Record the SR made for a result (``serve/dicom/reporting.py``), or that none could be.

        Without an SR there is nothing to forward, so ``forward`` is cleared as well.
        """
        values: dict[str, Any] = {"sr_key": sr_key, "warnings": list(warnings)}
        if sr_key is None:
            values["forward"] = None
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(results).where(results.c.id == result_id).values(values))

    def purge_before(self, cutoff: dt.datetime) -> int:
        """Delete results created before ``cutoff`` (retention); the audit stays. Returns rows."""
        with self._lock, self.engine.begin() as conn:
            return conn.execute(delete(results).where(results.c.created_at < cutoff)).rowcount

    # ---- reading -----------------------------------------------------------------------
    def result_id_for_intake(self, intake_id: str) -> int | None:
        """The id of the result stored for a spool entry, or None."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(results.c.id).where(results.c.intake_id == intake_id)
            ).scalar()
        return None if found is None else int(found)

    def get(self, result_id: int) -> dict[str, Any] | None:
        """One result as a plain dict, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(results).where(results.c.id == result_id)).mappings().first()
        return None if row is None else dict(row)

    def count(self, where: ResultFilter | None = None) -> int:
        """How many results match."""
        clauses = (where or ResultFilter()).clauses()
        query = select(func.count()).select_from(results).where(*clauses)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def page(
        self, where: ResultFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> tuple[int, list[dict[str, Any]]]:
        """A page of results, newest first, and the number that match.

        Args:
            where: filters (none: every result).
            limit: rows in the page.
            offset: rows skipped before the page.
        """
        clauses = list((where or ResultFilter()).clauses())
        query = (
            select(results)
            .where(*clauses)
            .order_by(results.c.created_at.desc(), results.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            total = int(
                conn.execute(select(func.count()).select_from(results).where(*clauses)).scalar_one()
            )
            rows = [dict(r) for r in conn.execute(query).mappings()]
        return total, rows

    def audit_lines(self) -> list[dict[str, Any]]:
        """Every audit line, oldest first (for tests and exports)."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(audit).order_by(audit.c.id)).mappings()]
