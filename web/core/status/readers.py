"""Reading the pipeline from Redis and PostgreSQL: one reader for the page, CLI and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from web.core.queries import status as status_queries
from web.core.queries.base import Connection
from web.core.queries.dead_letters import count_dead_letters
from web.core.status.keys import DEFAULT_KEYS, StatusKeys, parse_event_total_field
from web.core.status.records import (
    RECENT_WINDOW,
    EventTotal,
    PipelineStatus,
    QueueDepths,
    StoreFigures,
    WebFigures,
    WebHeartbeat,
    WorkerHeartbeat,
    WorkerState,
    text_of,
)

# A worker without a heartbeat for this long is gone (it crashed, or its host did).
DEFAULT_GONE_AFTER = 15.0
# Gone and stopped workers stay listed this long (until FORGET_AFTER_SECONDS deletes them).
SHOWN_FOR_SECONDS = 600.0
# A web process's open streams count while its heartbeat is this fresh.
WEB_FRESH_SECONDS = 10.0
# Each source gets this long to answer; past it the figures it gives are shown as unavailable.
READ_TIMEOUT_SECONDS = 3.0

T = TypeVar("T")

# What reaching PostgreSQL (or Redis, for OSError and TimeoutError) raises when it is away.
_UNREACHABLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def status_redis(redis_url: str, *, timeout: float) -> aioredis.Redis:
    """A client for status reads: each call bounded in time, one immediate retry, no backoff
    (redis-py's default backoff would hold a page for seconds when Redis is down)."""
    return aioredis.Redis.from_url(
        redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
    )


async def read_queue(
    redis: aioredis.Redis, keys: StatusKeys = DEFAULT_KEYS, *, now: float
) -> QueueDepths:
    # One transaction, so waiting and in-flight come from the same instant.
    async with redis.pipeline(transaction=True) as pipe:
        pipe.llen(keys.queue)
        pipe.hlen(keys.queue_messages)
        pipe.hlen(keys.delayed_messages)
        pipe.zcard(keys.dead_set)
        pipe.lindex(keys.queue, 0)  # workers take from the left: this one waited longest
        waiting, messages, delayed, dead, head = await pipe.execute()
    oldest = 0.0
    if head is not None:
        raw = await redis.hget(keys.queue_messages, head)
        if raw is not None:
            oldest = max(0.0, now - _enqueued_at(raw, default=now))
    return QueueDepths(
        waiting=int(waiting),
        in_flight=max(0, int(messages) - int(waiting)),
        delayed=int(delayed),
        dead=int(dead),
        oldest_waiting_seconds=oldest,
    )


def _enqueued_at(raw: bytes | str, *, default: float) -> float:
    try:
        return float(orjson.loads(raw)["message_timestamp"]) / 1000
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return default


async def read_workers(
    redis: aioredis.Redis,
    keys: StatusKeys = DEFAULT_KEYS,
    *,
    now: float,
    gone_after: float = DEFAULT_GONE_AFTER,
) -> tuple[WorkerState, ...]:
    records = await redis.hgetall(keys.workers)
    states = []
    for raw_id, raw in records.items():
        beat = WorkerHeartbeat.decode(text_of(raw_id), raw)
        if beat is None or now - beat.seen_at > SHOWN_FOR_SECONDS:
            continue
        states.append(worker_state(beat, now=now, gone_after=gone_after))
    order = {"alive": 0, "gone": 1, "stopped": 2}
    return tuple(sorted(states, key=lambda w: (order[w.state], w.hostname, w.pid, w.worker_id)))


def worker_state(beat: WorkerHeartbeat, *, now: float, gone_after: float) -> WorkerState:
    silent = max(0.0, now - beat.seen_at)
    state = "stopped" if beat.stopped else ("gone" if silent > gone_after else "alive")
    return WorkerState(
        worker_id=beat.worker_id,
        hostname=beat.hostname,
        pid=beat.pid,
        state=state,
        started_at=datetime.fromtimestamp(beat.started_at, UTC),
        last_seen=datetime.fromtimestamp(beat.seen_at, UTC),
        silent_seconds=silent,
        messages=beat.messages,
        events=beat.events,
        failed=beat.failed,
        events_per_second=beat.events_per_second if state == "alive" else 0.0,
    )


async def read_web(
    redis: aioredis.Redis, keys: StatusKeys = DEFAULT_KEYS, *, now: float
) -> WebFigures:
    records = await redis.hgetall(keys.web)
    beats = [WebHeartbeat.decode(text_of(raw_id), raw) for raw_id, raw in records.items()]
    fresh = [b for b in beats if b is not None and now - b.seen_at <= WEB_FRESH_SECONDS]
    return WebFigures(tuple(sorted(fresh, key=lambda b: b.process_id)))


async def read_event_totals(
    redis: aioredis.Redis, keys: StatusKeys = DEFAULT_KEYS
) -> tuple[EventTotal, ...]:
    """Events the workers processed since Redis was last emptied, by app and verdict."""
    records = await redis.hgetall(keys.event_totals)
    totals = []
    for raw_field, raw_count in records.items():
        app_id, status = parse_event_total_field(text_of(raw_field))
        totals.append(EventTotal(app_id, status, int(raw_count)))
    return tuple(sorted(totals, key=lambda t: (t.app_id, t.status)))


async def read_store(conn: Connection, *, now: datetime) -> StoreFigures:
    recent = await status_queries.select_recent_event_counts(conn, now - RECENT_WINDOW)
    return StoreFigures(
        events_last_minute=recent.events,
        invalid_last_minute=recent.invalid,
        dead_letters_pending=await count_dead_letters(conn),
        database_bytes=await status_queries.select_database_size(conn),
        latest=await status_queries.select_latest_stored(conn),
    )


async def gather_status(
    redis: aioredis.Redis,
    conn: Connection | None,
    *,
    keys: StatusKeys = DEFAULT_KEYS,
    gone_after: float = DEFAULT_GONE_AFTER,
    database_problem: str | None = None,
    now: datetime | None = None,
) -> PipelineStatus:
    """Everything the status page and `lvd status` show. conn None: the database is unreachable
    (database_problem says why); a source that fails or hangs is reported, never raised."""
    taken_at = now or datetime.now(UTC)
    unix_now = taken_at.timestamp()
    problems: list[str] = []

    async def from_redis() -> tuple[QueueDepths, tuple[WorkerState, ...], WebFigures]:
        return (
            await read_queue(redis, keys, now=unix_now),
            await read_workers(redis, keys, now=unix_now, gone_after=gone_after),
            await read_web(redis, keys, now=unix_now),
        )

    redis_part = await _attempt("Redis", from_redis(), problems)
    store = None
    if conn is None:
        problems.append(f"PostgreSQL: {database_problem or 'not connected'}")
    else:
        store = await _attempt("PostgreSQL", read_store(conn, now=taken_at), problems)
    queue, workers, web = redis_part if redis_part else (None, (), None)
    return PipelineStatus(taken_at, queue, workers, web, store, tuple(problems))


async def gather_status_over(
    redis: aioredis.Redis,
    connection: AbstractAsyncContextManager[Connection],
    *,
    gone_after: float = DEFAULT_GONE_AFTER,
) -> PipelineStatus:
    """gather_status over a connection from `connection` (a pool's acquire, a connect);
    when none can be had, without one, saying why."""
    try:
        async with connection as conn:
            return await gather_status(redis, conn, gone_after=gone_after)
    except _UNREACHABLE as exc:
        return await gather_status(
            redis, None, gone_after=gone_after, database_problem=describe_error(exc)
        )


async def _attempt(source: str, reading: Awaitable[T], problems: list[str]) -> T | None:
    try:
        return await asyncio.wait_for(reading, READ_TIMEOUT_SECONDS)
    except (RedisError, *_UNREACHABLE) as exc:
        problems.append(f"{source}: {describe_error(exc)}")
        return None


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {READ_TIMEOUT_SECONDS:g} s"
    return f"{type(exc).__name__}: {exc}"[:200]
