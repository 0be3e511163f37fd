"""The whole pipeline with real processes: HTTP ingest -> Redis -> worker -> PostgreSQL -> SSE."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import LiveServer, wait_for_rows
from web.core.queries.base import App, LogEntry
from web.core.queries.events import select_max_log_entry_id

from .helpers import (
    APP_ID,
    dead_letter_count,
    post_event,
    quick_start_event,
    stored_counts,
    unique,
    wait_for_drain,
    wait_for_event_ids,
)

pytestmark = pytest.mark.e2e


def worker_log(live_server: LiveServer) -> str:
    return (live_server.log_dir / "worker.log").read_text(errors="replace")


async def stored_entry(pool: asyncpg.Pool, event_id: str) -> LogEntry:
    counts = await wait_for_event_ids(pool, APP_ID, [event_id])
    assert counts == {event_id: 1}, f"event {event_id} stored {counts.get(event_id, 0)} times"
    rows = await wait_for_rows(pool, APP_ID, 1)
    [entry] = [row for row in rows if row.event_id == event_id]
    return entry


async def test_ingest_quick_start_event_is_stored_as_valid(
    http: httpx.AsyncClient, pool: asyncpg.Pool, test_app_row: App
) -> None:
    event = quick_start_event()

    response = await post_event(http, event)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "valid"
    assert body["event_id"] == event["event_id"]
    assert body["errors"] == []
    entry = await stored_entry(pool, event["event_id"])
    assert entry.status == "valid"
    assert entry.event_name == "user_login"
    assert entry.payload == event
    assert entry.errors == []
    assert entry.created_at >= entry.received_at


async def test_worker_log_names_message_id_and_event_id(
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    live_server: LiveServer,
    test_app_row: App,
) -> None:
    event = quick_start_event()

    response = await post_event(http, event)

    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    await stored_entry(pool, event["event_id"])
    # The worker logs after its commit, so the line may trail the row by a moment.
    deadline = time.monotonic() + 5
    while True:
        lines = worker_log(live_server).splitlines()
        if any(task_id in line and event["event_id"] in line for line in lines):
            break
        assert time.monotonic() < deadline, (
            f"no worker log line names message {task_id} and event {event['event_id']}:\n"
            + live_server.logs()
        )
        await asyncio.sleep(0.05)


async def test_ingest_invalid_event_is_stored_as_invalid_with_its_errors(
    http: httpx.AsyncClient, pool: asyncpg.Pool, test_app_row: App
) -> None:
    event: dict[str, Any] = {"eventName": 42, "timestamp": "yesterday", "event_id": unique("bad")}

    response = await post_event(http, event)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "invalid"
    assert {error["path"] for error in body["errors"]} == {"/eventName", "/timestamp"}
    entry = await stored_entry(pool, event["event_id"])
    assert entry.status == "invalid"
    assert entry.payload == event
    assert entry.errors == body["errors"]


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
async def test_ingest_repeated_event_is_stored_once(
    mode: str,
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    broker_redis: aioredis.Redis,
    test_app_row: App,
) -> None:
    event = quick_start_event()

    if mode == "sequential":
        responses = [await post_event(http, event) for _ in range(20)]
    else:
        responses = await asyncio.gather(*(post_event(http, event) for _ in range(20)))

    assert [r.status_code for r in responses] == [202] * 20
    assert {r.json()["event_id"] for r in responses} == {event["event_id"]}
    assert await wait_for_drain(broker_redis) == 0, "the worker did not finish the messages"
    assert await stored_counts(pool, APP_ID) == {event["event_id"]: 1}


async def read_sse_frames(lines: Any, event_id: str) -> list[dict[str, str]]:
    """Read SSE frames until one carries the event id; returns every frame read."""
    frames: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    async for line in lines:
        if line:
            name, _, value = line.partition(":")
            fields[name] = (fields[name] + "\n" if name in fields else "") + value.removeprefix(" ")
            continue
        frames.append(fields)
        if event_id in fields.get("data", ""):
            return frames
        fields = {}
    raise AssertionError(f"the stream ended before event {event_id} arrived: {frames}")


async def test_stream_connected_client_receives_new_row(
    http: httpx.AsyncClient, pool: asyncpg.Pool, test_app_row: App
) -> None:
    async with pool.acquire() as conn:
        newest = await select_max_log_entry_id(conn)
    event = quick_start_event(eventName=unique("streamed"))

    async with (
        asyncio.timeout(10),
        http.stream("GET", f"/apps/{APP_ID}/stream", params={"after": newest}) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        assert (await anext(lines)).startswith("retry:")
        response = await post_event(http, event)
        assert response.status_code == 202, response.text
        frames = await read_sse_frames(lines, event["event_id"])

    entry = await stored_entry(pool, event["event_id"])
    last = frames[-1]
    assert last["event"] == "event"
    assert last["id"] == str(entry.id)
    assert event["eventName"] in last["data"]
    assert f'data-event-id="{event["event_id"]}"' in last["data"]


async def test_ingest_batch_of_200_events_is_stored_once_each(
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    broker_redis: aioredis.Redis,
    test_app_row: App,
) -> None:
    events = [quick_start_event(eventName=f"batch_{i}") for i in range(200)]
    ids = [event["event_id"] for event in events]

    response = await post_event(http, events)

    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert [result["event_id"] for result in results] == ids
    assert {result["status"] for result in results} == {"valid"}
    assert await wait_for_event_ids(pool, APP_ID, ids) == dict.fromkeys(ids, 1)
    assert await wait_for_drain(broker_redis) == 0
    assert await stored_counts(pool, APP_ID) == dict.fromkeys(ids, 1)


async def _send_events(
    http: httpx.AsyncClient, events: list[dict[str, Any]], outcomes: dict[str, int]
) -> None:
    for event in events:
        try:
            response = await post_event(http, event)
        except httpx.HTTPError as exc:
            outcomes[event["event_id"]] = -1
            print(f"{event['event_id']}: {exc!r}")
        else:
            outcomes[event["event_id"]] = response.status_code


async def test_ingest_concurrent_load_stores_each_accepted_event_exactly_once(
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    broker_redis: aioredis.Redis,
    live_server: LiveServer,
    test_app_row: App,
) -> None:
    """RELIABILITY.md's oracle, small: every 202 stored exactly once, nothing else stored."""
    senders, per_sender = 6, 50
    events = [quick_start_event(eventName=f"load_{i}") for i in range(senders * per_sender)]
    outcomes: dict[str, int] = {}

    await asyncio.gather(
        *(
            _send_events(http, events[i * per_sender : (i + 1) * per_sender], outcomes)
            for i in range(senders)
        )
    )

    accepted = {event_id for event_id, status in outcomes.items() if status == 202}
    refused = {event_id: status for event_id, status in outcomes.items() if status != 202}
    assert not refused, f"{len(refused)} events were refused with nothing failing: {refused}"
    assert await wait_for_drain(broker_redis) == 0, "the worker did not finish the messages"
    assert await stored_counts(pool, APP_ID) == dict.fromkeys(accepted, 1)
    assert await dead_letter_count(broker_redis) == 0
    assert live_server.web.poll() is None, "the web process died"
    assert live_server.worker.poll() is None, "the worker process died"
