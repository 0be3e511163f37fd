"""The pipeline at a glance, from Redis and PostgreSQL: one reader for the page, CLI and metrics."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from web.core import queries
from web.core.jobs import EVENTS_QUEUE

# Worker and web processes write their heartbeat this often (seconds).
HEARTBEAT_SECONDS = 2.0
# A worker without a heartbeat for this long is gone (it crashed, or its host did).
DEFAULT_GONE_AFTER = 15.0
# Gone and stopped workers stay listed this long; their records are deleted after FORGET.
SHOWN_FOR_SECONDS = 600.0
FORGET_AFTER_SECONDS = 3600.0
# A web process's open streams count while its heartbeat is this fresh.
WEB_FRESH_SECONDS = 10.0
# Ingest rate and share invalid are taken over this window.
RECENT_WINDOW = timedelta(minutes=1)
# Each source gets this long to answer; past it the figures it gives are shown as unavailable.
READ_TIMEOUT_SECONDS = 3.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StatusKeys:
    """Where the figures live in Redis: Dramatiq's keys for the events queue, and our own."""

    dramatiq_namespace: str = "dramatiq"
    prefix: str = "lvd:status"
    queue_name: str = EVENTS_QUEUE

    @property
    def queue(self) -> str:
        return f"{self.dramatiq_namespace}:{self.queue_name}"

    @property
    def queue_messages(self) -> str:
        return f"{self.queue}.msgs"

    @property
    def delayed_messages(self) -> str:
        return f"{self.queue}.DQ.msgs"

    @property
    def dead_set(self) -> str:
        return f"{self.queue}.XQ"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def web(self) -> str:
        return f"{self.prefix}:web"

    @property
    def event_totals(self) -> str:
        return f"{self.prefix}:events"


DEFAULT_KEYS = StatusKeys()


# ---- what processes write about themselves


@dataclass(frozen=True, slots=True)
class WorkerHeartbeat:
    """A worker process's record, rewritten every HEARTBEAT_SECONDS. Times are Unix seconds."""

    worker_id: str
    hostname: str
    pid: int
    started_at: float
    seen_at: float
    messages: int  # finished, successfully or not
    events: int  # in successfully processed messages
    failed: int  # messages that raised (each retry counts) or were skipped
    events_per_second: float  # over the last minute
    stopped: bool = False  # shut down cleanly

    def encode(self) -> bytes:
        record = asdict(self)
        del record["worker_id"]
        return orjson.dumps(record)

    @classmethod
    def decode(cls, worker_id: str, raw: bytes | str) -> WorkerHeartbeat | None:
        """None for a record this version cannot read (another version wrote it)."""
        try:
            data = orjson.loads(raw)
            return cls(
                worker_id=worker_id,
                hostname=str(data["hostname"]),
                pid=int(data["pid"]),
                started_at=float(data["started_at"]),
                seen_at=float(data["seen_at"]),
                messages=int(data["messages"]),
                events=int(data["events"]),
                failed=int(data["failed"]),
                events_per_second=float(data["events_per_second"]),
                stopped=bool(data.get("stopped", False)),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class WebHeartbeat:
    """A web process's record: how many dashboard streams it serves right now."""

    process_id: str
    hostname: str
    pid: int
    streams: int
    seen_at: float

    def encode(self) -> bytes:
        record = asdict(self)
        del record["process_id"]
        return orjson.dumps(record)

    @classmethod
    def decode(cls, process_id: str, raw: bytes | str) -> WebHeartbeat | None:
        try:
            data = orjson.loads(raw)
            return cls(
                process_id=process_id,
                hostname=str(data["hostname"]),
                pid=int(data["pid"]),
                streams=int(data["streams"]),
                seen_at=float(data["seen_at"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def event_total_field(app_id: str, status: str) -> str:
    return f"{app_id}\t{status}"


# ---- what the readers see


@dataclass(frozen=True, slots=True)
class QueueDepths:
    waiting: int  # in the queue, not yet fetched by a worker
    in_flight: int  # fetched by a worker (running or prefetched), not yet acknowledged
    delayed: int  # waiting for a retry
    dead: int  # in Dramatiq's own dead-letter set
    oldest_waiting_seconds: float  # age of the oldest waiting message: the workers' lag


@dataclass(frozen=True, slots=True)
class WorkerState:
    worker_id: str
    hostname: str
    pid: int
    state: str  # alive, gone (no heartbeat for gone_after seconds) or stopped (cleanly)
    started_at: datetime
    last_seen: datetime
    silent_seconds: float
    messages: int
    events: int
    failed: int
    events_per_second: float  # 0 unless alive: a silent worker processes nothing we know of

    @property
    def alive(self) -> bool:
        return self.state == "alive"


@dataclass(frozen=True, slots=True)
class WebFigures:
    processes: tuple[WebHeartbeat, ...]

    @property
    def open_streams(self) -> int:
        return sum(process.streams for process in self.processes)


@dataclass(frozen=True, slots=True)
class StoreFigures:
    events_last_minute: int
    invalid_last_minute: int
    dead_letters_pending: int
    database_bytes: int
    latest: queries.LatestStored | None

    @property
    def events_per_second(self) -> float:
        return self.events_last_minute / RECENT_WINDOW.total_seconds()

    @property
    def invalid_share(self) -> float | None:
        if not self.events_last_minute:
            return None
        return self.invalid_last_minute / self.events_last_minute

    @property
    def store_delay_seconds(self) -> float | None:
        """How long the newest stored event took from ingest to its row."""
        if self.latest is None:
            return None
        return max(0.0, (self.latest.created_at - self.latest.received_at).total_seconds())


@dataclass(frozen=True, slots=True)
class EventTotal:
    app_id: str
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    """One reading of the whole pipeline; a part that could not be read is None, with a problem."""

    taken_at: datetime
    queue: QueueDepths | None
    workers: tuple[WorkerState, ...]
    web: WebFigures | None
    store: StoreFigures | None
    problems: tuple[str, ...]

    @property
    def alive_workers(self) -> int:
        return sum(1 for worker in self.workers if worker.alive)

    @property
    def workers_events_per_second(self) -> float:
        return sum(worker.events_per_second for worker in self.workers)


# ---- reading


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
        app_id, _, status = text_of(raw_field).rpartition("\t")
        totals.append(EventTotal(app_id, status, int(raw_count)))
    return tuple(sorted(totals, key=lambda t: (t.app_id, t.status)))


async def read_store(conn: queries.Connection, *, now: datetime) -> StoreFigures:
    recent = await queries.select_recent_event_counts(conn, now - RECENT_WINDOW)
    return StoreFigures(
        events_last_minute=recent.events,
        invalid_last_minute=recent.invalid,
        dead_letters_pending=await queries.count_dead_letters(conn),
        database_bytes=await queries.select_database_size(conn),
        latest=await queries.select_latest_stored(conn),
    )


async def gather_status(
    redis: aioredis.Redis,
    conn: queries.Connection | None,
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


async def _attempt(source: str, reading: Awaitable[T], problems: list[str]) -> T | None:
    try:
        return await asyncio.wait_for(reading, READ_TIMEOUT_SECONDS)
    except (
        RedisError,
        OSError,
        TimeoutError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    ) as exc:
        problems.append(f"{source}: {describe_error(exc)}")
        return None


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {READ_TIMEOUT_SECONDS:g} s"
    return f"{type(exc).__name__}: {exc}"[:200]


def text_of(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


# ---- presenting: the page and the CLI format figures with the same functions


def status_as_dict(status: PipelineStatus) -> dict[str, Any]:
    """The reading as JSON-ready data (`lvd status --json`, GET /api/status)."""
    queue = status.queue
    store = status.store
    web = status.web
    return {
        "taken_at": status.taken_at.isoformat(),
        "queue": None
        if queue is None
        else {
            "waiting": queue.waiting,
            "in_flight": queue.in_flight,
            "delayed": queue.delayed,
            "dramatiq_dead": queue.dead,
            "oldest_waiting_seconds": round(queue.oldest_waiting_seconds, 3),
        },
        "dead_letters_pending": None if store is None else store.dead_letters_pending,
        "workers": [
            {
                "worker_id": w.worker_id,
                "hostname": w.hostname,
                "pid": w.pid,
                "state": w.state,
                "started_at": w.started_at.isoformat(),
                "last_seen": w.last_seen.isoformat(),
                "silent_seconds": round(w.silent_seconds, 3),
                "messages": w.messages,
                "events": w.events,
                "failed": w.failed,
                "events_per_second": round(w.events_per_second, 3),
            }
            for w in status.workers
        ],
        "ingest": None
        if store is None
        else {
            "events_last_minute": store.events_last_minute,
            "invalid_last_minute": store.invalid_last_minute,
            "events_per_second": round(store.events_per_second, 3),
            "invalid_share": None if store.invalid_share is None else round(store.invalid_share, 4),
            "store_delay_seconds": None
            if store.store_delay_seconds is None
            else round(store.store_delay_seconds, 3),
        },
        "database_bytes": None if store is None else store.database_bytes,
        "open_streams": None if web is None else web.open_streams,
        "web_processes": None if web is None else len(web.processes),
        "problems": list(status.problems),
    }


def format_count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def format_rate(per_second: float | None) -> str:
    if per_second is None:
        return "n/a"
    return f"{per_second:,.1f}/s" if per_second < 100 else f"{per_second:,.0f}/s"


def format_share(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f} %"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def format_bytes(size: int | None) -> str:
    if size is None:
        return "n/a"
    if size < 1024:
        return f"{size} B"
    exponent = min(int(math.log(size, 1024)), 4)
    return f"{size / 1024**exponent:.1f} {('B', 'KiB', 'MiB', 'GiB', 'TiB')[exponent]}"
