"""The settings of the scoring service: :class:`ServeSettings`, the one statement of its keys.

Each key, its type and its default is stated once, here (the read limits ``max_frames``,
``max_rows`` and ``max_cols`` take ``ReadLimits``' dataclass defaults,
``datasets/io/limits.py``). The ``labral.settings`` pattern does the rest:
``serve/command.py`` registers the model's schema (``serve_schema``) in Hydra's ConfigStore,
so every key can be overridden (``labral serve port=9000 dicom.enabled=true``) while
``configs/serve.yaml`` holds only interpolations and the values that differ;
``serve/asgi.py`` derives its ``LABRAL_*`` variables from the same fields. A ``None`` value
(``port=null``) still means "this field's default".
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from labral.datasets.io.limits import ReadLimits
from labral.errors import BadConfigError
from labral.runtimes import DEFAULT_RUNTIME, check_runtime
from labral.settings import Settings, named_error

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_READER = ReadLimits()  # the reader's default limits, the one source of max_frames/rows/cols


class _Settings(Settings):
    """Unknown keys are errors; a ``None`` value (``key=null``) takes the field's default."""

    @model_validator(mode="before")
    @classmethod
    def _none_is_default(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {key: value for key, value in values.items() if value is not None}
        return values


def _ae_title(value: str | None) -> str | None:
    """An AE title: 1-16 characters of printable ASCII without a backslash."""
    if value is None:
        return None
    title = value.strip()
    if not 1 <= len(title) <= 16 or not title.isascii() or "\\" in title or not title.isprintable():
        raise ValueError(f"{value!r} is not an AE title (1-16 printable ASCII characters)")
    return title


class StoreSettings(_Settings):
    """The results store (``serve/store/database.py``).

    Attributes:
        url: SQLAlchemy URL; None is embedded SQLite, ``sqlite:///<state_dir>/results.sqlite``.
            PostgreSQL: ``postgresql+psycopg://user:password@host/db``.
        pseudonym_key: secret of the keyed hash that turns SOP Instance and Study Instance
            UIDs into the store's keys. None: the environment (``$LABRAL_PSEUDONYM_KEY``; the
            order with the deprecated variable and an existing key file is
            ``serve/dicom/pseudonym.py``'s), else a random key kept in
            ``<state_dir>/pseudonym.key`` (``serve/dicom/pseudonym.py``; replicas
            sharing one database must share one key).
        retention_days: results rows and stored SRs older than this are deleted (at start and
            hourly); None keeps them. The audit trail is never deleted.
    """

    url: str | None = None
    pseudonym_key: str | None = None
    retention_days: float | None = Field(None, gt=0)


class ForwardSettings(_Settings):
    """Where the SR made for each DICOM instance is sent by C-STORE (``serve/dicom/forward.py``).

    Attributes:
        ae_title / host / port: the destination (a PACS); forwarding is off unless all three
            are set.
        retries: tries after the first one; then the SR goes to ``<state_dir>/dead_letter``.
        backoff_s: wait before the first retry, doubled before each further one.
        timeout_s: association and DIMSE timeout of each try.
    """

    ae_title: str | None = None
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    retries: int = Field(3, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(10.0, gt=0)

    _title = field_validator("ae_title")(_ae_title)

    @model_validator(mode="after")
    def _all_or_nothing(self) -> ForwardSettings:
        given = [name for name in ("ae_title", "host", "port") if getattr(self, name)]
        if given and len(given) < 3:
            raise ValueError(
                f"dicom.forward needs ae_title, host and port together (only {given} set)"
            )
        return self

    @property
    def enabled(self) -> bool:
        """True when a destination is fully configured."""
        return bool(self.ae_title and self.host and self.port)


class DicomSettings(_Settings):
    """The DICOM node: a C-STORE SCP beside the HTTP app (``serve/dicom/node.py``).

    Attributes:
        enabled: start the node.
        host / port / ae_title: where it listens and the AE title callers address.
        allowed_callers: calling AE titles accepted; empty accepts any caller.
        workers: spooled instances scored at once; they share the micro-batcher's model
            calls, so ``max_batch`` of them fill one.
        max_backlog: acknowledged instances waiting for their result row at which the
            node holds further C-STORE answers (at most ``backlog.BACKLOG_WAIT_S`` each;
            each row lets one go), slowing senders to the pace of the model. Under 8
            associations, send -> result p50 was 1.21-1.29x the HTTP path's at 8 clients
            (``benchmarks/dicom_load.py``); counting every received instance instead, and
            letting answers go only once that count fell to 2, gave 1.47-1.67x, and to 8,
            2.3-2.9x.
        max_associations: concurrent associations.
        score_delay_s: test-only; wait this long before scoring each spooled instance.
        forward: where SRs are sent back.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(11112, ge=0, le=65535)
    ae_title: str = "LABRAL"
    allowed_callers: list[str] = Field(default_factory=list)
    workers: int = Field(8, ge=1)
    max_backlog: int = Field(2, ge=1)
    max_associations: int = Field(8, ge=1)
    score_delay_s: float = Field(0.0, ge=0)
    forward: ForwardSettings = Field(default_factory=ForwardSettings)

    _title = field_validator("ae_title")(_ae_title)


class StreamSettings(_Settings):
    """Live sessions (``WS /v1/stream``, docs/streaming.md): what one server accepts and how
    the running values are made. The ``opened`` message states them to the client; the app's
    hub holds them (``app.state.stream_hub.limits``). Set them like any other key
    (``labral serve stream.max_sessions=8``, ``LABRAL_STREAM_MAX_SESSIONS=8``).

    Attributes:
        max_sessions: sessions open at once (per process); one more is refused
            (``too_many_sessions``).
        max_seconds: longest session in seconds of video (frames / fps); at the limit the
            session ends with its result (``over_limit``). 600 s is 18,000 frames at 30 fps.
        min_fps / max_fps: the frame rates a session may declare.
        max_side: largest frame height or width in pixels.
        max_pixels: largest frame area (height * width).
        max_frame_bytes: largest binary message (a raw frame is H*W bytes; a JPEG less).
        idle_timeout_s: a session with no message for this long ends with a partial result.
        update_every_max: the most frames a client may ask between two updates.
        check_every_s: how often (seconds of video) the running input check runs.
        check_seconds: how many recent seconds of video the running input check reads.
        check_in_background: run the running check beside the frames (an update reports
            the latest finished verdict) rather than inline, where it would delay the update
            of the frame that starts it by the check's time.
        relevance_frames: how many recent source frames each update's relevance covers.
        running_without_lag: complete the compact net's running value with the steps a
            window ending at the newest frame computes (one ``peek`` per model frame, about
            2.5 frames' work); False saves that work and lets the value lag 9 model frames.
    """

    model_config = ConfigDict(frozen=True)  # shared by every session of the app

    max_sessions: int = Field(4, ge=1)
    max_seconds: float = Field(600.0, gt=0)
    min_fps: float = Field(1.0, gt=0)
    max_fps: float = Field(120.0, gt=0)
    max_side: int = Field(2048, ge=1)
    max_pixels: int = Field(1024 * 1024, ge=1)
    max_frame_bytes: int = Field(2 * 1024 * 1024, ge=1)
    idle_timeout_s: float = Field(30.0, gt=0)
    update_every_max: int = Field(60, ge=1)
    check_every_s: float = Field(1.0, gt=0)
    check_seconds: float = Field(3.0, gt=0)
    check_in_background: bool = True
    relevance_frames: int = Field(32, ge=1)
    running_without_lag: bool = True

    @model_validator(mode="after")
    def _fps_range(self) -> StreamSettings:
        if self.min_fps > self.max_fps:
            raise named_error(
                "stream.min_fps", self.min_fps, f"is above stream.max_fps={self.max_fps!r}"
            )
        return self

    def to_json(self) -> dict[str, Any]:
        """The settings as the ``opened`` message states them."""
        return self.model_dump()


class ServeSettings(_Settings):
    """Everything ``create_app`` needs; every field has a safe default except ``bundle``.

    Attributes:
        bundle: folder of a model bundle written by ``labral export``.
        runtime: which of the bundle's model files runs it: ``torchscript`` (model.ts),
            ``export`` (model.pt2) or ``onnxruntime`` (model.onnx; spatial maps through
            model.ts); the default is ``labral.runtimes.DEFAULT_RUNTIME``.
        host / port: where uvicorn binds; loopback by default.
        api_key: bearer token for ``POST /v1/predictions`` (the probes, ``/v1/model`` and
            ``/metrics`` stay open); required when ``host`` is not
            loopback (the service refuses to start exposed without one).
        max_upload_bytes: request bodies above this get 413 ``payload_too_large``.
        max_frames / max_rows / max_cols: header-checked limits (ReadLimits) before decoding;
            their defaults are ReadLimits' defaults.
        request_timeout_s: a prediction taking longer gets ``timeout``.
        max_batch / batch_window_ms: micro-batching of concurrent requests.
        max_pending: requests being scored at once (their uploads are in memory); beyond it
            the service answers 503 ``busy`` so memory stays bounded.
        decode_workers: threads decoding uploads in parallel; torch_threads: intra-op threads.
        warmup_runs: model calls made before /readyz turns 200.
        cors_origins: allowed origins (empty: CORS off).
        samples_dir: a folder served read-only at /samples (demo and browser tests); off
            by default.
        min_fps / min_duration_s: below these a response carries a warning.
        state_dir: what the service keeps: the SQLite store, the spool of received
            instances, the SRs it made, the forward outbox and dead letters. None: a
            temporary folder removed at shutdown (nothing survives a restart).
        store / dicom / stream: the results store, the DICOM node and live sessions (see
            their classes).
    """

    bundle: Path
    runtime: str = DEFAULT_RUNTIME
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: str | None = None
    max_upload_bytes: int = Field(256 << 20, gt=0)
    max_frames: int = Field(_READER.max_frames, gt=0)
    max_rows: int = Field(_READER.max_rows, gt=0)
    max_cols: int = Field(_READER.max_cols, gt=0)
    request_timeout_s: float = Field(30.0, gt=0)
    max_batch: int = Field(8, ge=1)
    batch_window_ms: float = Field(5.0, ge=0)
    decode_workers: int = Field(2, ge=1)
    max_pending: int = Field(32, ge=1)
    torch_threads: int = Field(1, ge=1)
    warmup_runs: int = Field(2, ge=0)
    cors_origins: list[str] = Field(default_factory=list)
    samples_dir: Path | None = None
    min_fps: float = Field(10.0, ge=0)
    min_duration_s: float = Field(1.0, ge=0)
    preview_max_frames: int = Field(48, ge=1)
    preview_width: int = Field(192, ge=16)
    key_frame_width: int = Field(320, ge=16)
    log_level: str = "info"
    state_dir: Path | None = None
    store: StoreSettings = Field(default_factory=StoreSettings)
    dicom: DicomSettings = Field(default_factory=DicomSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)

    @field_validator("runtime")
    @classmethod
    def _known_runtime(cls, value: str) -> str:
        try:
            return check_runtime(value)
        except BadConfigError as exc:
            raise ValueError(exc.message) from exc

    @model_validator(mode="after")
    def _exposed_needs_key(self) -> ServeSettings:
        if not is_loopback(self.host) and not self.api_key:
            raise ValueError(
                f"host={self.host!r} exposes the service beyond this machine but api_key is "
                "empty; set serve api_key=<secret> (or bind host=127.0.0.1)"
            )
        return self

    def read_limits(self) -> ReadLimits:
        """The reader's limits from ``max_frames/max_rows/max_cols/max_upload_bytes``."""
        return ReadLimits(
            max_frames=self.max_frames,
            max_rows=self.max_rows,
            max_cols=self.max_cols,
            max_bytes=self.max_upload_bytes,
        )

    @property
    def auth_required(self) -> bool:
        """Bearer auth is enforced whenever a key is configured (always when exposed)."""
        return bool(self.api_key)
