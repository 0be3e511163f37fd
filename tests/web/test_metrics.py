"""/metrics: Prometheus text with ingest timing, queue depth, lag, workers and dead letters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart
from quart.typing import TestClientProtocol as Client

from web.app import create_app
from web.core.queries.base import App
from web.core.queries.dead_letters import (
    count_dead_letters,
    insert_dead_letters,
    mark_dead_letters_retried,
)
from web.core.settings import Settings
from web.core.status.keys import DEFAULT_KEYS, event_total_field
from web.status import READING_MAX_AGE
from workers.status import WorkerReport

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: Client) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(await response.get_data(as_text=True))


async def scrape_fresh(client: Client) -> Samples:
    """A scrape after the cached pipeline reading has expired."""
    await asyncio.sleep(READING_MAX_AGE + 0.05)
    return await scrape(client)


async def test_metrics_expose_the_pipeline_gauges(client: Client) -> None:
    samples = await scrape(client)

    for state in ("waiting", "in_flight", "delayed", "dead"):
        assert ("lvd_queue_messages", frozenset({("state", state)})) in samples
    for state in ("alive", "gone", "stopped"):
        assert ("lvd_workers", frozenset({("state", state)})) in samples
    names = {name for name, _ in samples}
    assert {
        "lvd_worker_lag_seconds",
        "lvd_dead_letters_pending",
        "lvd_open_streams",
        "lvd_web_processes",
    } <= names
    assert value(samples, "lvd_status_source_up", source="redis") == 1.0
    assert value(samples, "lvd_status_source_up", source="postgresql") == 1.0
    assert value(samples, "lvd_database_size_bytes") > 0


async def test_metrics_ingest_requests_are_timed_and_counted(client: Client, app: App) -> None:
    before = await scrape(client)
    accepted = await client.post(f"/api/logs/{app.id}", json={"eventName": "user_login"})
    unknown = await client.post("/api/logs/no-such-app-here", json={"eventName": "x"})
    after = await scrape(client)

    assert (accepted.status_code, unknown.status_code) == (202, 404)
    endpoint = {"endpoint": "native.ingest"}
    for name, labels, added in (
        ("lvd_ingest_latency_seconds_count", endpoint, 2),
        ("lvd_ingest_requests_total", {**endpoint, "code": "202"}, 1),
        ("lvd_ingest_requests_total", {**endpoint, "code": "404"}, 1),
    ):
        assert value(after, name, **labels) - value(before, name, **labels) == added, name
    latency = value(after, "lvd_ingest_latency_seconds_sum", **endpoint) - value(
        before, "lvd_ingest_latency_seconds_sum", **endpoint
    )
    assert 0 < latency < 5


async def test_metrics_other_requests_are_not_timed(client: Client) -> None:
    before = await scrape(client)
    for path in ("/healthz", "/status", "/api/apps"):
        await client.get(path)
    after = await scrape(client)

    def ingest_total(samples: Samples) -> float:
        return sum(v for (name, _), v in samples.items() if name == "lvd_ingest_requests_total")

    assert ingest_total(after) == ingest_total(before)


@pytest.fixture
def sync_redis(web_settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(web_settings.redis_url, socket_timeout=5.0)
    yield client
    client.close()


async def test_metrics_events_total_counts_what_workers_report(
    client: Client, sync_redis: redis.Redis
) -> None:
    app_id = f"m-{uuid.uuid4().hex[:10]}"
    report = WorkerReport()
    report.worker_id = f"metrics-test:{app_id}"
    events = [{"app_id": app_id, "status": "valid"}] * 3 + [{"app_id": app_id, "status": "invalid"}]
    report.count_message(events, failed=False)
    try:
        report.beat(sync_redis)
        samples = await scrape(client)
    finally:
        sync_redis.hdel(DEFAULT_KEYS.workers, report.worker_id)
        sync_redis.hdel(
            DEFAULT_KEYS.event_totals,
            event_total_field(app_id, "valid"),
            event_total_field(app_id, "invalid"),
        )

    assert value(samples, "lvd_events_total", app_id=app_id, status="valid") == 3
    assert value(samples, "lvd_events_total", app_id=app_id, status="invalid") == 1


async def test_metrics_dead_letters_pending_is_the_database_count(
    client: Client, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        ids = await insert_dead_letters(conn, "m-1", [{"app_id": "x"}], "bad", 1)
        expected = await count_dead_letters(conn)
        try:
            samples = await scrape_fresh(client)
        finally:
            await mark_dead_letters_retried(conn, ids)

    assert value(samples, "lvd_dead_letters_pending") == expected >= 1


@pytest.fixture
def other_processes_dir(tmp_path: Path) -> Path:
    """A multiprocess directory where two other processes each counted 40 accepted requests."""
    code = (
        "from web.metrics import INGEST_REQUESTS\n"
        "INGEST_REQUESTS.labels('native.ingest', '202').inc(40)\n"
    )
    for _ in range(2):  # two processes, two files
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": ""},
            cwd=Path(__file__).resolve().parents[2],
            check=True,
            timeout=60,
        )
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    return tmp_path


async def test_metrics_multiprocess_dir_sums_every_process_file(
    web_settings: Settings, other_processes_dir: Path
) -> None:
    app: Quart = create_app(replace(web_settings, metrics_dir=str(other_processes_dir)))
    async with app.test_app():
        samples = await scrape(app.test_client())

    labels = {"endpoint": "native.ingest", "code": "202"}
    assert value(samples, "lvd_ingest_requests_total", **labels) == 80
    assert value(samples, "lvd_status_source_up", source="redis") == 1.0


async def test_metrics_openmetrics_when_the_scraper_asks(client: Client) -> None:
    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    text = await response.get_data(as_text=True)

    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert text.rstrip().endswith("# EOF")
