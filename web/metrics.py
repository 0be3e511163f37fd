"""GET /metrics for Prometheus: ingest timing summed over web processes, the rest read at scrape.

Counters and histograms that each web process keeps (ingest latency and requests) go through
prometheus_client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (`lvd web` sets
it): each process writes its own file there and any process answering a scrape sums them
all. Gauges (queue depth, lag, workers, dead letters, streams) are not kept per process:
they are read from Redis and PostgreSQL at scrape time, so every process gives the same.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from quart import Blueprint, Response, request
from redis.exceptions import RedisError

from web.context import services
from web.core.settings import Settings
from web.core.status.readers import read_event_totals
from web.core.status.records import EventTotal, PipelineStatus
from web.status import board

log = logging.getLogger(__name__)

blueprint = Blueprint("metrics", __name__)

# registry=None: each scrape builds its own registry (see metrics() below).
INGEST_LATENCY = Histogram(
    "lvd_ingest_latency_seconds",
    "Time from an ingest request's arrival to its answer (parse, judge, enqueue)",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=None,
)
INGEST_REQUESTS = Counter(
    "lvd_ingest_requests",
    "Ingest requests answered, by endpoint and HTTP status code",
    ["endpoint", "code"],
    registry=None,
)


def prepare_metrics_dir(settings: Settings) -> None:
    """Make the folder the web processes share their ingest counters in, if one is set."""
    if settings.metrics_dir:
        os.makedirs(settings.metrics_dir, exist_ok=True)


_observe_failed = False


def record_ingest(endpoint: str, code: int, started: float) -> None:
    """Count an answered ingest request and its latency since started (perf_counter).

    endpoint is the wire format and route (web/core/ingest/registry.py), e.g. native.ingest.
    """
    global _observe_failed
    try:
        INGEST_LATENCY.labels(endpoint).observe(time.perf_counter() - started)
        INGEST_REQUESTS.labels(endpoint, str(code)).inc()
    except Exception:  # a metric must never fail an ingest request
        if not _observe_failed:
            log.exception("Could not record ingest metrics (reported once)")
        _observe_failed = True


@blueprint.get("/metrics")
async def metrics() -> Response:
    settings = services().settings
    status_board = board()
    status = await status_board.status()
    try:
        totals: tuple[EventTotal, ...] | None = await read_event_totals(status_board.redis)
    except (RedisError, OSError):
        totals = None  # the reading's problems already say Redis did not answer
    registry = CollectorRegistry(auto_describe=False)
    if settings.metrics_dir:
        MultiProcessCollector(registry, path=settings.metrics_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(INGEST_LATENCY)
        registry.register(INGEST_REQUESTS)
    registry.register(PipelineCollector(status, totals))
    # Prometheus's own text format unless the scraper asks for OpenMetrics.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    # The multiprocess collector reads every process's file: off the event loop.
    body = await asyncio.to_thread(encode, registry)
    return Response(body, content_type=content_type)


class PipelineCollector(Collector):
    """The figures of one pipeline reading, as Prometheus metrics."""

    def __init__(self, status: PipelineStatus, totals: tuple[EventTotal, ...] | None) -> None:
        self._status = status
        self._totals = totals

    def collect(self) -> Iterable[Metric]:
        status = self._status
        up = GaugeMetricFamily(
            "lvd_status_source_up",
            "Whether the last reading could read each source (1) or not (0)",
            labels=["source"],
        )
        up.add_metric(["redis"], 0.0 if status.queue is None else 1.0)
        up.add_metric(["postgresql"], 0.0 if status.store is None else 1.0)
        yield up
        yield from self._queue()
        yield from self._workers()
        yield from self._store()
        if self._totals is not None:
            events = CounterMetricFamily(
                "lvd_events",
                "Events the workers processed, by app and verdict (redeliveries count again)",
                labels=["app_id", "status"],
            )
            for total in self._totals:
                events.add_metric([total.app_id, total.status], total.count)
            yield events

    def _queue(self) -> Iterable[Metric]:
        queue = self._status.queue
        if queue is None:
            return
        depth = GaugeMetricFamily(
            "lvd_queue_messages",
            "Messages of the events queue: waiting, in_flight (taken by a worker), delayed"
            " (waiting for a retry), dead (Dramatiq's dead-letter set)",
            labels=["state"],
        )
        for state, value in (
            ("waiting", queue.waiting),
            ("in_flight", queue.in_flight),
            ("delayed", queue.delayed),
            ("dead", queue.dead),
        ):
            depth.add_metric([state], value)
        yield depth
        yield GaugeMetricFamily(
            "lvd_worker_lag_seconds",
            "Age of the oldest message waiting in the events queue (0 when none waits)",
            value=queue.oldest_waiting_seconds,
        )

    def _workers(self) -> Iterable[Metric]:
        if self._status.queue is None:
            return  # the workers' records live in Redis too
        states = GaugeMetricFamily(
            "lvd_workers", "Worker processes by state (alive, gone, stopped)", labels=["state"]
        )
        for state in ("alive", "gone", "stopped"):
            states.add_metric([state], sum(w.state == state for w in self._status.workers))
        yield states
        throughput = GaugeMetricFamily(
            "lvd_worker_events_per_second",
            "Events each live worker process handled per second over the last minute",
            labels=["worker"],
        )
        for worker in self._status.workers:
            if worker.alive:
                throughput.add_metric([worker.worker_id], worker.events_per_second)
        yield throughput
        web = self._status.web
        if web is not None:
            yield GaugeMetricFamily(
                "lvd_open_streams",
                "Dashboard live streams open, summed over every web process",
                value=web.open_streams,
            )
            yield GaugeMetricFamily(
                "lvd_web_processes",
                "Web processes with a fresh heartbeat",
                value=len(web.processes),
            )

    def _store(self) -> Iterable[Metric]:
        store = self._status.store
        if store is None:
            return
        yield GaugeMetricFamily(
            "lvd_dead_letters_pending",
            "Events parked in dead_letters and not yet sent again",
            value=store.dead_letters_pending,
        )
        yield GaugeMetricFamily(
            "lvd_database_size_bytes", "Size of the PostgreSQL database", value=store.database_bytes
        )
        if store.store_delay_seconds is not None:
            yield GaugeMetricFamily(
                "lvd_store_delay_seconds",
                "Time from ingest to stored row, for the newest stored event",
                value=store.store_delay_seconds,
            )
