"""`lvd status`: the pipeline's figures, read from Redis and PostgreSQL directly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import orjson

from web.core.settings import Settings
from web.core.status.formatting import (
    format_bytes,
    format_count,
    format_rate,
    format_seconds,
    format_share,
    status_as_dict,
)
from web.core.status.readers import READ_TIMEOUT_SECONDS, gather_status_over, status_redis
from web.core.status.records import PipelineStatus

WORKER_COLUMNS = (
    *("STATE", "HOST", "PID", "STARTED (UTC)", "LAST HEARTBEAT"),
    *("MESSAGES", "EVENTS", "FAILED", "THROUGHPUT"),
)


def print_status(*, as_json: bool) -> int:
    """Print the figures; exit status 1 when Redis or PostgreSQL could not be read."""
    status = asyncio.run(read_status(Settings.from_env()))
    if as_json:
        print(orjson.dumps(status_as_dict(status), option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_status(status))
    return 1 if status.problems else 0


async def read_status(settings: Settings) -> PipelineStatus:
    client = status_redis(settings.redis_url, timeout=READ_TIMEOUT_SECONDS)
    try:
        return await gather_status_over(
            client, _connection(settings.database_url), gone_after=settings.worker_gone_seconds
        )
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def _connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url, timeout=READ_TIMEOUT_SECONDS)
    try:
        yield conn
    finally:
        await conn.close()


def format_status(status: PipelineStatus) -> str:
    """The page's figures as plain text, with the page's labels and formatting."""
    lines = [f"Pipeline status at {status.taken_at:%Y-%m-%d %H:%M:%S} UTC", "", "Queue"]
    lines += _queue_lines(status)
    lines += ["", "Ingest and storage"]
    lines += _ingest_lines(status)
    lines += [
        "",
        f"Workers: {status.alive_workers} alive,"
        f" {format_rate(status.workers_events_per_second)} in all",
    ]
    lines += _worker_lines(status)
    if status.problems:
        lines += ["", "Problems (their figures show n/a)"]
        lines += [f"  {problem}" for problem in status.problems]
    return "\n".join(lines)


def _queue_lines(status: PipelineStatus) -> list[str]:
    queue, store = status.queue, status.store
    return _pairs(
        ("Messages waiting", format_count(queue.waiting if queue else None)),
        ("In flight", format_count(queue.in_flight if queue else None)),
        ("Retrying", format_count(queue.delayed if queue else None)),
        ("Worker lag", format_seconds(queue.oldest_waiting_seconds if queue else None)),
        ("Dramatiq dead set", format_count(queue.dead if queue else None)),
        ("Dead letters pending", format_count(store.dead_letters_pending if store else None)),
    )


def _ingest_lines(status: PipelineStatus) -> list[str]:
    store, web = status.store, status.web
    share = format_share(store.invalid_share if store else None)
    if store:
        share += (
            f" ({format_count(store.invalid_last_minute)}"
            f" of {format_count(store.events_last_minute)} in the last minute)"
        )
    streams = format_count(web.open_streams if web else None)
    if web:
        count = len(web.processes)
        streams += f" (across {count} web process{'' if count == 1 else 'es'})"
    return _pairs(
        ("Ingest rate", format_rate(store.events_per_second if store else None)),
        ("Share invalid", share),
        ("Newest event stored after", format_seconds(store.store_delay_seconds if store else None)),
        ("Database size", format_bytes(store.database_bytes if store else None)),
        ("Open dashboard streams", streams),
    )


def _worker_lines(status: PipelineStatus) -> list[str]:
    """A table of the workers, or a hint to start one when the queue could be read."""
    if not status.workers:
        if status.queue:
            return ["  No worker reported in the last 10 minutes: start one with `lvd worker`."]
        return []
    rows = [WORKER_COLUMNS]
    rows += [
        (
            w.state,
            w.hostname,
            str(w.pid),
            f"{w.started_at:%Y-%m-%d %H:%M:%S}",
            f"{format_seconds(w.silent_seconds)} ago",
            format_count(w.messages),
            format_count(w.events),
            format_count(w.failed),
            format_rate(w.events_per_second),
        )
        for w in status.workers
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(n) for c, n in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _pairs(*pairs: tuple[str, str]) -> list[str]:
    width = max(len(label) for label, _ in pairs)
    return [f"  {label.ljust(width)}  {value}" for label, value in pairs]
