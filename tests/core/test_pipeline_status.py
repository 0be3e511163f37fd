"""web/core/status/ and what workers/status.py writes for it, on real Redis and PG.

Each test works under its own Redis key names (a fresh Dramatiq namespace and status prefix),
so nothing else in the database, nor another test, changes its figures.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import dramatiq
import orjson
import pytest
import redis
import redis.asyncio as aioredis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import free_port
from tests.web.support import new_entry
from web.core.apps import add_app
from web.core.queries.base import Connection
from web.core.queries.dead_letters import insert_dead_letters, mark_dead_letters_retried
from web.core.queries.events import insert_log_entries
from web.core.queries.status import select_recent_event_counts
from web.core.queue.contract import EVENTS_QUEUE, STORE_EVENTS_ACTOR, build_job_message
from web.core.settings import Settings
from web.core.status.formatting import (
    format_bytes,
    format_rate,
    format_seconds,
    format_share,
    status_as_dict,
)
from web.core.status.keys import StatusKeys
from web.core.status.readers import (
    SHOWN_FOR_SECONDS,
    WEB_FRESH_SECONDS,
    gather_status,
    read_event_totals,
    read_queue,
    read_store,
    read_web,
    read_workers,
    status_redis,
)
from web.core.status.records import FORGET_AFTER_SECONDS, EventTotal, WebHeartbeat, WorkerHeartbeat
from workers.status import WorkerReport, WorkerStatus


@pytest.fixture
async def async_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5.0)
    yield client
    await client.aclose()


def store_message(events: list[dict[str, Any]], **options: Any) -> dramatiq.Message[Any]:
    """A message for the store actor, with events as given; options set its attributes."""
    return build_job_message(EVENTS_QUEUE, STORE_EVENTS_ACTOR, events).copy(**options)


def event(app_id: str, status: str = "valid") -> dict[str, Any]:
    return {"app_id": app_id, "event_id": uuid.uuid4().hex, "status": status}


# ---------------------------------------------------------------- the queue


async def test_read_queue_counts_waiting_in_flight_delayed_and_dead(
    broker: RedisBroker, async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    for _ in range(4):
        broker.enqueue(store_message([event("a")]))
    broker.enqueue(store_message([event("a")]), delay=60_000)
    consumer = broker.consume(EVENTS_QUEUE, prefetch=1, timeout=1000)
    try:
        failed = next(consumer)
        assert failed is not None
        consumer.nack(failed)
        assert next(consumer) is not None  # taken and held: in flight
    finally:
        consumer.close()

    depths = await read_queue(async_redis, keys, now=time.time())

    assert (depths.waiting, depths.in_flight, depths.delayed, depths.dead) == (2, 1, 1, 1)


async def test_read_queue_lag_is_the_age_of_the_oldest_waiting_message(
    broker: RedisBroker, async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    now = time.time()
    broker.enqueue(store_message([event("a")], message_timestamp=int((now - 30) * 1000)))
    broker.enqueue(store_message([event("a")], message_timestamp=int((now - 5) * 1000)))

    depths = await read_queue(async_redis, keys, now=now)

    assert depths.waiting == 2
    assert depths.oldest_waiting_seconds == pytest.approx(30, abs=0.01)


async def test_read_queue_empty_has_no_lag(async_redis: aioredis.Redis, keys: StatusKeys) -> None:
    depths = await read_queue(async_redis, keys, now=time.time())

    assert depths == type(depths)(0, 0, 0, 0, 0.0)


# ---------------------------------------------------------------- workers


async def test_worker_report_beat_shows_an_alive_worker_with_its_counts(
    sync_redis: redis.Redis, async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    report = WorkerReport(keys)
    report.count_message([event("a"), event("a", "invalid")], failed=False)
    report.count_message([event("a")], failed=True)
    now = time.time()
    report.beat(sync_redis, now=now)

    [worker] = await read_workers(async_redis, keys, now=now + 1, gone_after=15)

    assert (worker.state, worker.hostname, worker.pid) == ("alive", report.hostname, report.pid)
    assert (worker.messages, worker.events, worker.failed) == (2, 2, 1)
    assert worker.silent_seconds == pytest.approx(1, abs=0.01)


async def test_read_workers_silent_worker_is_gone_and_idle(
    sync_redis: redis.Redis, async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    report = WorkerReport(keys)
    now = time.time()
    report.beat(sync_redis, now=now - 60)
    report.count_message([event("a")] * 60, failed=False)
    report.beat(sync_redis, now=now)

    [alive] = await read_workers(async_redis, keys, now=now + 14, gone_after=15)
    [gone] = await read_workers(async_redis, keys, now=now + 16, gone_after=15)

    assert (alive.state, alive.events_per_second) == ("alive", pytest.approx(1.0))
    assert (gone.state, gone.events_per_second) == ("gone", 0.0)


async def test_read_workers_clean_stop_is_stopped_not_gone(
    sync_redis: redis.Redis, async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    report = WorkerReport(keys)
    now = time.time()
    report.beat(sync_redis, now=now, stopped=True)

    [worker] = await read_workers(async_redis, keys, now=now + 1, gone_after=15)

    assert worker.state == "stopped"


async def test_read_workers_long_silent_worker_is_no_longer_listed(
    sync_redis: redis.Redis, async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    report = WorkerReport(keys)
    now = time.time()
    report.beat(sync_redis, now=now)

    assert await read_workers(async_redis, keys, now=now + SHOWN_FOR_SECONDS + 1) == ()


async def test_worker_report_throughput_is_over_the_last_minute(
    sync_redis: redis.Redis, async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    report = WorkerReport(keys)
    start = time.time() - 300
    report.beat(sync_redis, now=start)
    report.count_message([event("a")] * 120, failed=False)
    report.beat(sync_redis, now=start + 60)
    [busy] = await read_workers(async_redis, keys, now=start + 60)
    report.beat(sync_redis, now=start + 200)  # nothing processed in the last minute
    [idle] = await read_workers(async_redis, keys, now=start + 200, gone_after=15)

    assert busy.events_per_second == pytest.approx(2.0)
    assert idle.events_per_second == 0.0


async def test_worker_report_adds_event_totals_once_per_message(
    sync_redis: redis.Redis, async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    report = WorkerReport(keys)
    report.count_message([event("a"), event("a"), event("a", "invalid"), event("b")], failed=False)
    report.count_message([event("b")], failed=True)  # a failed attempt stores nothing
    report.beat(sync_redis)
    report.beat(sync_redis)  # nothing new: nothing added
    report.count_message([event("b", "invalid")], failed=False)
    report.beat(sync_redis)

    totals = await read_event_totals(async_redis, keys)

    assert totals == (
        EventTotal("a", "invalid", 1),
        EventTotal("a", "valid", 2),
        EventTotal("b", "invalid", 1),
        EventTotal("b", "valid", 1),
    )


async def test_worker_report_failed_beat_keeps_counts_for_the_next(
    sync_redis: redis.Redis, async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    report = WorkerReport(keys)
    report.count_message([event("a"), event("a")], failed=False)
    unreachable = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.RedisError):
        report.beat(unreachable)
    report.count_message([event("a")], failed=False)
    report.beat(sync_redis)

    assert await read_event_totals(async_redis, keys) == (EventTotal("a", "valid", 3),)


async def test_worker_report_forgets_long_silent_workers_only(
    sync_redis: redis.Redis, keys: StatusKeys
) -> None:
    now = time.time()
    old = WorkerHeartbeat("old:1", "old", 1, now - 9000, now - FORGET_AFTER_SECONDS - 1, 0, 0, 0, 0)
    recent = WorkerHeartbeat("recent:2", "recent", 2, now - 9000, now - 60, 0, 0, 0, 0)
    sync_redis.hset(keys.workers, mapping={b.worker_id: b.encode() for b in (old, recent)})
    sync_redis.hset(keys.workers, "unreadable:3", b"{not json")

    WorkerReport(keys).forget_old_workers(sync_redis, now=now)

    assert set(sync_redis.hkeys(keys.workers)) == {b"recent:2"}


def test_worker_heartbeat_decode_refuses_what_it_cannot_read() -> None:
    assert WorkerHeartbeat.decode("w", b"{not json") is None
    assert WorkerHeartbeat.decode("w", b'{"hostname": "h"}') is None
    beat = WorkerHeartbeat("w", "h", 7, 1.0, 2.0, 3, 4, 5, 6.5, stopped=True)
    assert WorkerHeartbeat.decode("w", beat.encode()) == beat


async def test_worker_status_middleware_reports_a_real_worker(
    broker: RedisBroker, async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    broker.add_middleware(WorkerStatus(keys))

    @dramatiq.actor(broker=broker, queue_name=EVENTS_QUEUE, actor_name=STORE_EVENTS_ACTOR)
    def store_events(events: list[dict[str, Any]]) -> None:
        return None

    @dramatiq.actor(broker=broker, queue_name=EVENTS_QUEUE, actor_name="another_actor")
    def another_actor(items: list[Any]) -> None:
        return None

    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=1)
    worker.start()
    try:
        store_events.send([event("a"), event("a", "invalid")])
        store_events.send([event("b")])
        another_actor.send([event("c")])  # a message, but no events stored
        broker.join(EVENTS_QUEUE, timeout=10_000)
        [running] = await read_workers(async_redis, keys, now=time.time())
    finally:
        worker.stop()
    [stopped] = await read_workers(async_redis, keys, now=time.time())

    assert running.state == "alive"
    assert (stopped.state, stopped.messages, stopped.events) == ("stopped", 3, 3)
    assert await read_event_totals(async_redis, keys) == (
        EventTotal("a", "invalid", 1),
        EventTotal("a", "valid", 1),
        EventTotal("b", "valid", 1),
    )


def test_worker_status_middleware_without_redis_stays_out_of_the_way() -> None:
    """Another broker (RabbitMQ, here Dramatiq's stub) has no Redis: nothing is reported."""
    broker = StubBroker()
    broker.add_middleware(WorkerStatus(StatusKeys(prefix=f"t-{uuid.uuid4().hex[:10]}")))
    broker.declare_queue(EVENTS_QUEUE)
    done: list[int] = []

    @dramatiq.actor(broker=broker, queue_name=EVENTS_QUEUE, actor_name=STORE_EVENTS_ACTOR)
    def store_events(events: list[dict[str, Any]]) -> None:
        done.append(len(events))

    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=1)
    worker.start()
    try:
        store_events.send([event("a")])
        broker.join(EVENTS_QUEUE)
    finally:
        worker.stop()
        broker.close()

    assert done == [1]
    assert "lvd-status" not in {thread.name for thread in threading.enumerate()}


# ---------------------------------------------------------------- web processes


async def test_read_web_sums_the_streams_of_fresh_processes_only(
    sync_redis: redis.Redis, async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    now = time.time()
    beats = [
        WebHeartbeat("h:1", "h", 1, 3, now - 1),
        WebHeartbeat("h:2", "h", 2, 4, now - WEB_FRESH_SECONDS + 1),
        WebHeartbeat("h:3", "h", 3, 50, now - WEB_FRESH_SECONDS - 1),  # stopped beating
    ]
    sync_redis.hset(keys.web, mapping={b.process_id: b.encode() for b in beats})

    web = await read_web(async_redis, keys, now=now)

    assert web.open_streams == 7
    assert [p.process_id for p in web.processes] == ["h:1", "h:2"]


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture
async def status_app(pool: asyncpg.Pool) -> str:
    app_id = f"st-{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn:
        await add_app(conn, app_id, "Status test")
    return app_id


async def test_read_store_counts_the_last_minute_and_the_share_invalid(
    pool: asyncpg.Pool, status_app: str
) -> None:
    now = datetime.now(UTC) + timedelta(hours=1)  # a minute no other test writes in
    recent = now - timedelta(seconds=10)
    older = now - timedelta(minutes=2)
    async with pool.acquire() as conn:
        before = await read_store(conn, now=now)
        await insert_log_entries(
            conn,
            [
                new_entry(status_app, received_at=recent),
                new_entry(status_app, received_at=recent),
                new_entry(status_app, status="invalid", received_at=recent),
                new_entry(status_app, status="invalid", received_at=older),
            ],
        )
        after = await read_store(conn, now=now)

    assert before.events_last_minute == 0
    assert (after.events_last_minute, after.invalid_last_minute) == (3, 1)
    assert after.invalid_share == pytest.approx(1 / 3)
    assert after.events_per_second == pytest.approx(3 / 60)
    assert after.database_bytes > 0


async def test_read_store_store_delay_is_of_the_newest_row(
    pool: asyncpg.Pool, status_app: str
) -> None:
    received = datetime.now(UTC) - timedelta(seconds=5)
    async with pool.acquire() as conn:
        await insert_log_entries(conn, [new_entry(status_app, received_at=received)])
        store = await read_store(conn, now=datetime.now(UTC))

    assert store.latest is not None and store.latest.received_at == received
    assert store.store_delay_seconds is not None
    assert 4.5 < store.store_delay_seconds < 30


async def test_read_store_counts_pending_dead_letters(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        before = (await read_store(conn, now=datetime.now(UTC))).dead_letters_pending
        ids = await insert_dead_letters(conn, "m-1", [event("x"), event("x")], "bad", 1)
        parked = (await read_store(conn, now=datetime.now(UTC))).dead_letters_pending
        await mark_dead_letters_retried(conn, ids)
        retried = (await read_store(conn, now=datetime.now(UTC))).dead_letters_pending

    assert (parked - before, retried - before) == (2, 0)


class Explaining:
    """A connection that also records the plan PostgreSQL chooses for each row it fetches."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.plans: list[Any] = []

    async def fetchrow(self, query: str, *args: Any) -> Any:
        self.plans.append(await self.conn.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *args))
        return await self.conn.fetchrow(query, *args)


async def test_recent_event_counts_read_the_app_received_index(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        # What the planner does on a large table, where scanning it all would cost most.
        await conn.execute("SET enable_seqscan = off")
        try:
            explaining = Explaining(conn)
            await select_recent_event_counts(cast(Connection, explaining), datetime.now(UTC))
        finally:
            await conn.execute("RESET enable_seqscan")

    [plan] = explaining.plans
    assert "log_entries_app_received_ids" in orjson.dumps(plan).decode()


# ---------------------------------------------------------------- the whole reading


async def test_gather_status_reads_every_source(
    sync_redis: redis.Redis, async_redis: aioredis.Redis, keys: StatusKeys, pool: asyncpg.Pool
) -> None:
    WorkerReport(keys).beat(sync_redis)
    async with pool.acquire() as conn:
        status = await gather_status(async_redis, conn, keys=keys)

    assert status.problems == ()
    assert status.queue is not None and status.web is not None and status.store is not None
    assert status.alive_workers == 1
    assert orjson.loads(orjson.dumps(status_as_dict(status)))["workers"][0]["state"] == "alive"


async def test_gather_status_unreachable_redis_is_a_problem_not_an_error(
    pool: asyncpg.Pool,
) -> None:
    unreachable = status_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
    try:
        async with pool.acquire() as conn:
            status = await gather_status(unreachable, conn)
    finally:
        await unreachable.aclose()

    assert (status.queue, status.web, status.workers) == (None, None, ())
    assert status.store is not None
    assert len(status.problems) == 1 and status.problems[0].startswith("Redis: ")
    assert status_as_dict(status)["queue"] is None


async def test_gather_status_without_database_says_why(
    async_redis: aioredis.Redis, keys: StatusKeys
) -> None:
    status = await gather_status(async_redis, None, keys=keys, database_problem="refused")

    assert status.store is None and status.queue is not None
    assert status.problems == ("PostgreSQL: refused",)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB"), (None, "n/a")],
)
def test_format_bytes_picks_the_unit(value: int | None, shown: str) -> None:
    assert format_bytes(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "0 ms"),
        (0.0404, "40 ms"),
        (2.46, "2.5 s"),
        (42.4, "42 s"),
        (75, "1 min 15 s"),
        (7300, "2 h 1 min"),
    ],
)
def test_format_seconds_reads_naturally(value: float, shown: str) -> None:
    assert format_seconds(value) == shown


def test_format_share_and_rate_say_na_when_unknown() -> None:
    assert (format_share(None), format_rate(None)) == ("n/a", "n/a")
    assert (format_share(0.125), format_rate(2.25), format_rate(1234.4)) == (
        "12.5 %",
        "2.2/s",
        "1,234/s",
    )
