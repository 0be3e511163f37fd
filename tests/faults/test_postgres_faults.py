"""PostgreSQL restarted, its sessions killed, or down for a while, under load."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from lvd.loadtest import Report
from web.core.directory import APP_CACHE_SECONDS
from web.core.settings import Settings

from .conftest import (
    APP_ID,
    SseClient,
    Stack,
    assert_all_alive,
    assert_no_dead_letters,
    check_oracle,
    figure,
    start_load,
    statuses,
    wait_until,
)

pytestmark = pytest.mark.faults

# Requests per second, one event each. Below 1000 rows per listener outage: a bigger
# catch-up overflows the subscriber queue by design and cuts the stream.
RATE = 100.0
PAGE_SIZE = 100  # LVD_PAGE_SIZE's default: rows the live page shows
DOWN_SECONDS = 20.0


@contextlib.asynccontextmanager
async def open_live_stream(stack: Stack) -> AsyncIterator[SseClient]:
    client = SseClient(stack.base_url, f"/apps/{APP_ID}/stream")
    client.start()
    try:
        await asyncio.wait_for(client.connected.wait(), 10.0)
        yield client
    finally:
        await client.close()


async def post_one(stack: Stack) -> str:
    """An event posted once the fault is over; returns its id."""
    event_id = f"after-fault-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10.0) as client:
        response = await client.post(
            f"/api/logs/{APP_ID}", json={"eventName": "after_fault", "event_id": event_id}
        )
    assert response.status_code == 202, response.text
    return event_id


async def check_live_view(stack: Stack, live: SseClient, test: str) -> None:
    """The stream, open through the fault, shows a row posted after it, and no row twice."""
    event_id = await post_one(stack)
    try:
        seen_after = await wait_until(
            lambda: any(m.event_id == event_id for m in live.rows()),
            within=10.0,
            message=f"the live stream showing {event_id}, posted after the fault",
        )
    except AssertionError as exc:
        row_id = await stack.fetchval(
            "SELECT id FROM log_entries WHERE app_id = $1 AND event_id = $2", APP_ID, event_id
        )
        raise AssertionError(
            f"{exc} (row {row_id}; the stream showed {len(live.rows())} rows, the last"
            f" {live.last_event_id}; stream history: {live.history})"
        ) from None
    figure(test, "post after the fault -> row on the open live stream", seen_after, "s")
    row_ids = [m.id for m in live.rows()]
    repeated = [row_id for row_id, n in Counter(row_ids).items() if n > 1]
    assert repeated == [], f"rows sent twice on the live stream: {repeated[:10]}"
    stored = [
        row["id"]
        for row in await stack.fetch(
            "SELECT id FROM log_entries WHERE app_id = $1 ORDER BY id DESC", APP_ID
        )
    ]
    missing = set(stored) - set(row_ids)
    figure(test, "stored rows the live stream never showed", len(missing))
    figure(test, "live stream (re)connects", live.connects)
    # What the live page shows, the newest page of rows, is complete in any case.
    missing_newest = set(stored[:PAGE_SIZE]) - set(row_ids)
    assert missing_newest == set(), (
        f"the live stream lacks {len(missing_newest)} of the newest {PAGE_SIZE} rows"
        f" (stream history: {live.history})"
    )
    # A stream that was never cut (so no Last-Event-ID resume, which back-fills one page)
    # got every row: the listener back-filled what committed while it reconnected.
    if live.connects == 1:
        assert missing == set(), (
            f"{len(missing)} of {len(stored)} stored rows never reached the open live stream"
            f" (ids {sorted(missing)[:20]}...; stream history: {live.history})"
        )


async def terminate_other_sessions(stack: Stack) -> int:
    """pg_terminate_backend every session on the app's database but this one."""
    conn = await stack.connect()
    try:
        # Two statements: in one, nothing guarantees the pid filter runs before the call.
        pids = await conn.fetchval(
            "SELECT array_agg(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        count: int = await conn.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(p)) FROM unnest($1::int[]) p",
            pids or [],
        )
    finally:
        await conn.close()
    return count


def non_202(report: Report) -> dict[int, int]:
    return {status: n for status, n in statuses(report).items() if status != 202}


async def check_came_through(
    stack: Stack, report: Report, test: str, live: SseClient | None = None
) -> None:
    """Nothing parked, the live stream (if one was open) complete, every process alive and,
    checked last so that the others still run when it fails, ingest answered 202 throughout."""
    figure(test, "worst queue->db latency", max(report.queue_latencies), "s")
    figure(test, "ingest answers other than 202", sum(non_202(report).values()))
    await assert_no_dead_letters(stack)
    if live is not None:
        await check_live_view(stack, live, test)
    assert_all_alive(stack)
    assert non_202(report) == {}, f"ingest did not answer 202 throughout: {statuses(report)}"


async def test_postgres_restart_immediate_under_load_keeps_ingest_and_drains(
    stack: Stack,
) -> None:
    test = "PostgreSQL restart -m immediate"
    async with open_live_stream(stack) as live:
        # Opening the stream looked the app up: the web process trusts that for
        # APP_CACHE_SECONDS, then asks PostgreSQL again. Restarting just before that moment
        # makes ingest need the database while it is away, the worst case for a restart.
        looked_up_at = time.monotonic()
        load = start_load(stack, RATE, 8.0, "pgre")
        await asyncio.sleep(looked_up_at + APP_CACHE_SECONDS - 0.3 - time.monotonic())
        restart_started = time.monotonic()
        await asyncio.to_thread(stack.pg_ctl, "restart", "-m", "immediate")
        restarted_at = time.monotonic()
        report = await load

        await check_oracle(stack, report, test=test, drain_limit=60.0)
        figure(test, "pg_ctl restart took", restarted_at - restart_started, "s")
        figure(test, "restart done -> backlog drained", time.monotonic() - restarted_at, "s")
        await check_came_through(stack, report, test, live)


async def test_postgres_sessions_terminated_under_load_keeps_ingest_and_drains(
    stack: Stack,
) -> None:
    test = "pg_terminate_backend"
    async with open_live_stream(stack) as live:
        load = start_load(stack, RATE, 6.0, "pgkill")
        # Three times, a second apart: each catches other operations in flight.
        terminated = 0
        for _ in range(3):
            await asyncio.sleep(1.0)
            terminated += await terminate_other_sessions(stack)
        terminated_at = time.monotonic()
        report = await load

        await check_oracle(stack, report, test=test, drain_limit=60.0)
        figure(test, "sessions terminated", terminated)
        figure(test, "termination -> backlog drained", time.monotonic() - terminated_at, "s")
        assert terminated >= 9, "the web pool, its listener and the worker pool had sessions"
        await check_came_through(stack, report, test, live)


async def test_postgres_down_for_a_while_events_wait_in_redis_and_drain(stack: Stack) -> None:
    test = "PostgreSQL down"
    memory_before = int(stack.redis_info("memory")["used_memory"])
    load = start_load(stack, 100.0, DOWN_SECONDS + 3.0, "pgdown")
    await asyncio.sleep(1.5)
    await asyncio.to_thread(stack.pg_ctl, "stop", "-m", "fast")
    stopped_at = time.monotonic()
    await asyncio.sleep(DOWN_SECONDS - 1.0)
    queued = stack.queue_state()
    events_held = len(stack.queued_event_ids())
    memory_during = int(stack.redis_info("memory")["used_memory"])
    await asyncio.sleep(1.0)
    await asyncio.to_thread(stack.pg_start)
    started_at = time.monotonic()
    report = await load

    await check_oracle(stack, report, test=test, drain_limit=90.0)
    drained_after = time.monotonic() - started_at
    memory_after = int(stack.redis_info("memory")["used_memory"])
    figure(test, "outage", started_at - stopped_at, "s")
    figure(test, "PostgreSQL back -> backlog drained", drained_after, "s")
    held = queued["unacked"] + queued["delayed"]  # message bodies Redis holds
    per_event = (memory_during - memory_before) / max(1, events_held)
    figure(
        test,
        "messages / events held in Redis near the end of the outage",
        f"{held} / {events_held}",
    )
    figure(test, "Redis used_memory before", memory_before, "bytes")
    figure(test, "Redis used_memory near the end of the outage", memory_during, "bytes")
    figure(test, "Redis used_memory after the drain", memory_after, "bytes")
    figure(test, "Redis memory per held event (lvd loadtest events)", round(per_event), "bytes")
    # LVD_MAX_QUEUE_DEPTH counts messages, and a message carries up to
    # LVD_ENQUEUE_BATCH_SIZE events: the bound it puts on Redis memory, for these events.
    depth, batch = Settings.max_queue_depth, Settings.enqueue_batch_size
    figure(
        test,
        f"bound at LVD_MAX_QUEUE_DEPTH ({depth}) x LVD_ENQUEUE_BATCH_SIZE ({batch})",
        round(per_event * depth * batch / 2**30, 2),
        "GiB",
    )
    await check_came_through(stack, report, test)
