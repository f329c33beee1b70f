"""Prometheus metrics of one app instance (its own registry, so tests can build many apps).

With several uvicorn workers each process exposes its own numbers; scrape every replica
(see serve/README.md) rather than relying on prometheus_client's multiprocess mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from labral.input_check.verdict import NOT_ASSESSABLE, REASONS, SCORED, CheckVerdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class ServeMetrics:
    """Counters and histograms exposed at /metrics."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        reg = self.registry
        self.requests = Counter(
            "labral_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "labral_request_latency_seconds",
            "End-to-end request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.stage_latency = Histogram(
            "labral_stage_latency_seconds",
            "Prediction stage latency (decode, preprocess, model)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.errors = Counter(
            "labral_errors", "Error responses by stable error code", ["code"], registry=reg
        )
        self.batch_size = Histogram(
            "labral_batch_size",
            "Clips per model call",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
            registry=reg,
        )
        self.model_load_seconds = Gauge(
            "labral_model_load_seconds", "Time to load and warm the bundle", registry=reg
        )
        self.model_ready = Gauge(
            "labral_model_ready", "1 once the model is loaded and warmed", registry=reg
        )
        self.clips = Counter(
            "labral_clips",
            "Clips through the model, by the input check's verdict (scored, not_assessable); "
            "every route (upload, C-STORE, STOW-RS) counts here",
            ["status"],
            registry=reg,
        )
        self.not_assessable = Counter(
            "labral_not_assessable",
            "Clips the input check refused, by reason (a clip refused for two reasons counts "
            'under both; labral_clips_total{status="not_assessable"} counts clips)',
            ["reason"],
            registry=reg,
        )
        self.stream_sessions = Gauge(
            "labral_stream_sessions",
            "Live sessions on WS /v1/stream, from their opening until their result row is "
            "stored (read from the app's stream hub at each scrape)",
            registry=reg,
        )
        for status in (SCORED, NOT_ASSESSABLE):  # every series exists from the start, at 0
            self.clips.labels(status=status)
        for reason in REASONS:
            self.not_assessable.labels(reason=reason)

    def count_verdict(self, verdict: CheckVerdict) -> None:
        """Count one clip's verdict (once per clip scored, whatever route brought it)."""
        self.clips.labels(status=verdict.status).inc()
        for reason in verdict.reasons:
            self.not_assessable.labels(reason=reason).inc()
