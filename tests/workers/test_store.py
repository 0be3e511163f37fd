"""workers/store.py against real PostgreSQL: idempotent inserts, NOTIFY only after commit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest

from tests.conftest import run_fresh_python
from web.core.db import create_pool
from web.core.queries.base import App, LogEntry, NewLogEntry
from web.core.queries.dead_letters import select_dead_letters
from web.core.queries.events import (
    NOTIFY_PAYLOAD_LIMIT,
    insert_log_entries,
    notify,
    notify_ids,
    select_log_entries,
    select_log_entries_by_ids,
)
from web.core.queue.contract import EVENTS_CHANNEL, OrjsonEncoder, QueuedEvent
from web.core.settings import Settings
from workers.store import entry_from_message, store_events

RECEIVED = "2025-12-10T15:45:00.123456+00:00"


def message_event(
    event_id: str,
    *,
    app_id: str = "test-app",
    status: str = "valid",
    errors: list[dict[str, Any]] | None = None,
    session: str | None = None,
    plan_version: int | None = None,
) -> dict[str, Any]:
    """One event as it travels in a store_events message (built the way ingest builds it)."""
    event = QueuedEvent(
        app_id=app_id,
        event_id=event_id,
        event_name=f"name-{event_id}",
        payload=orjson.dumps({"eventName": f"name-{event_id}", "event_id": event_id}).decode(),
        status=status,
        errors=orjson.dumps([] if errors is None else errors).decode(),
        plan_version=plan_version,
        session=session,
        received_at=RECEIVED,
    )
    decoded: dict[str, Any] = OrjsonEncoder().decode(OrjsonEncoder().encode({"e": event}))["e"]
    return decoded


class Listener:
    """LISTEN on the events channel over its own connection (a pooled one would UNLISTEN)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.payloads: list[str] = []

    def on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.payloads.append(payload)

    def notified_ids(self) -> list[int]:
        return [int(text) for payload in self.payloads for text in payload.split(",")]

    def payloads_with(self, ids: list[int]) -> list[str]:
        """Payloads naming any of the ids: events other runs' workers store are ignored."""
        wanted = {str(i) for i in ids}
        return [p for p in self.payloads if wanted & set(p.split(","))]

    async def settle(self, predicate: Callable[[], bool], seconds: float = 2.0) -> bool:
        deadline = asyncio.get_running_loop().time() + seconds
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True


@pytest.fixture
async def listener(settings: Settings) -> AsyncIterator[Listener]:
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    listening = Listener(conn)
    await conn.add_listener(EVENTS_CHANNEL, listening.on_notification)
    yield listening
    await conn.close()


async def rows_of(pool: asyncpg.Pool, app_id: str = "test-app") -> list[LogEntry]:
    async with pool.acquire() as conn:
        return await select_log_entries(conn, app_id, limit=10_000)


# ---------------------------------------------------------------- storing


async def test_store_events_stores_every_column(pool: asyncpg.Pool, test_app_row: App) -> None:
    errors = [
        {
            "path": "/eventName",
            "rule": "required",
            "message": "missing required property eventName (or event, event_name)",
            "expected": None,
            "actual": None,
            "severity": "error",
        }
    ]
    events = [
        message_event("ok-1", session="qa-session", plan_version=4),
        message_event("bad-1", status="invalid", errors=errors),
    ]
    ids = await store_events(pool, events)
    assert len(ids) == 2
    async with pool.acquire() as conn:
        rows = await select_log_entries_by_ids(conn, ids)
    by_event = {row.event_id: row for row in rows}
    ok, bad = by_event["ok-1"], by_event["bad-1"]
    assert (ok.app_id, ok.event_name, ok.status) == ("test-app", "name-ok-1", "valid")
    assert ok.errors == []
    assert (ok.session, ok.plan_version) == ("qa-session", 4)
    assert ok.payload == {"eventName": "name-ok-1", "event_id": "ok-1"}
    assert ok.received_at == datetime(2025, 12, 10, 15, 45, 0, 123456, tzinfo=UTC)
    assert (bad.status, bad.errors) == ("invalid", errors)
    assert (bad.session, bad.plan_version) == (None, None)


async def test_store_events_redelivery_stores_nothing_twice(
    pool: asyncpg.Pool, test_app_row: App, listener: Listener
) -> None:
    events = [message_event(f"re-{i}") for i in range(5)]
    first = await store_events(pool, events)
    assert await listener.settle(lambda: bool(listener.payloads_with(first)))
    listener.payloads.clear()
    second = await store_events(pool, events)
    third = await store_events(pool, list(reversed(events)))
    await asyncio.sleep(0.3)
    assert len(first) == 5
    assert (second, third) == ([], [])
    assert sorted(row.event_id for row in await rows_of(pool)) == [f"re-{i}" for i in range(5)]
    assert listener.payloads_with(first) == [], "a redelivery announced rows again"


async def test_store_events_partly_new_message_returns_only_new_ids(
    pool: asyncpg.Pool, test_app_row: App, listener: Listener
) -> None:
    (old,) = await store_events(pool, [message_event("p-1")])
    new = await store_events(pool, [message_event("p-1"), message_event("p-2")])
    assert len(new) == 1 and new[0] > old
    assert await listener.settle(lambda: bool(listener.payloads_with(new)))
    assert listener.payloads_with(new) == [str(new[0])]
    assert listener.payloads_with([old]) == [str(old)]


async def test_store_events_empty_message_stores_nothing(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    assert await store_events(pool, []) == []
    assert await rows_of(pool) == []


# ---------------------------------------------------------------- notifying


@pytest.mark.parametrize("count", [1, 3, 50])
async def test_store_events_notifies_exactly_the_new_ids(
    pool: asyncpg.Pool, test_app_row: App, listener: Listener, count: int
) -> None:
    ids = await store_events(pool, [message_event(f"n{count}-{i}") for i in range(count)])
    assert await listener.settle(lambda: bool(listener.payloads_with(ids)))
    await asyncio.sleep(0.05)
    assert listener.payloads_with(ids) == [",".join(str(i) for i in ids)]


async def test_store_events_notifies_only_after_commit(
    pool: asyncpg.Pool, settings: Settings, test_app_row: App, listener: Listener
) -> None:
    # Another transaction holds c-1 uncommitted: the worker's statement waits on it.
    blocker = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        blocking = blocker.transaction()
        await blocking.start()
        await insert_log_entries(blocker, [entry_from_message(message_event("c-1"))])
        storing = asyncio.create_task(
            store_events(pool, [message_event("c-1"), message_event("c-2")])
        )
        await asyncio.sleep(0.3)
        assert not storing.done()
        async with pool.acquire() as other:
            visible = await other.fetchval(
                "SELECT count(*) FROM log_entries WHERE event_id = 'c-2'"
            )
        heard_meanwhile = list(listener.payloads)
        await blocking.rollback()
        ids = await asyncio.wait_for(storing, 10)
    finally:
        await blocker.close()
    assert (visible, heard_meanwhile) == (0, [])
    assert await listener.settle(lambda: bool(listener.payloads_with(ids)))
    assert listener.payloads_with(ids) == [f"{ids[0]},{ids[1]}"]


async def test_store_events_unstorable_event_is_parked_and_the_rest_stored(
    pool: asyncpg.Pool, test_app_row: App, listener: Listener
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE dead_letters")
    events = [message_event("fk-ok"), message_event("fk-orphan", app_id="no-such-app")]
    ids = await store_events(pool, events, message_id="msg-fk")
    await asyncio.sleep(0.3)
    stored = await rows_of(pool)
    assert [row.event_id for row in stored] == ["fk-ok"]
    assert ids == [stored[0].id]
    async with pool.acquire() as conn:
        parked = await select_dead_letters(conn)
    assert [(d.message_id, d.app_id, d.event_id) for d in parked] == [
        ("msg-fk", "no-such-app", "fk-orphan")
    ]
    assert "ForeignKeyViolationError" in parked[0].reason
    assert parked[0].event == events[1]
    # The notification names exactly the stored row, never the parked one.
    assert ids[0] in listener.notified_ids()


@pytest.mark.parametrize(
    ("field", "bad_value", "error"),
    [
        ("plan_version", "three", "DataError"),
        ("plan_version", 2**40, "DataError"),
        ("payload", "{not json", "InvalidTextRepresentationError"),
        ("errors", "[", "InvalidTextRepresentationError"),
    ],
)
async def test_store_events_a_malformed_field_parks_that_event_only(
    pool: asyncpg.Pool, test_app_row: App, field: str, bad_value: object, error: str
) -> None:
    """A value that cannot be stored (a message not written by ingest) is pinned to its
    own event: the other events of the message are stored."""
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE dead_letters")
    good = message_event(f"typed-ok-{field}-{error}")
    bad = {**message_event(f"typed-bad-{field}-{error}"), field: bad_value}
    ids = await store_events(pool, [good, bad], message_id="msg-typed")
    stored = [row for row in await rows_of(pool) if row.event_id.startswith("typed-")]
    assert [row.event_id for row in stored] == [good["event_id"]]
    assert ids == [stored[0].id]
    async with pool.acquire() as conn:
        parked = await select_dead_letters(conn)
    assert [(d.message_id, d.event_id) for d in parked] == [("msg-typed", bad["event_id"])]
    assert error in parked[0].reason


async def test_store_events_survives_a_terminated_backend(
    settings: Settings, test_app_row: App
) -> None:
    single = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        async with single.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
        admin = await asyncpg.connect(settings.database_url, timeout=10)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid) is True
        finally:
            await admin.close()
        await asyncio.sleep(0.1)
        ids = await store_events(single, [message_event("stale-1")])
        assert len(ids) == 1
        assert [row.event_id for row in await rows_of(single)] == ["stale-1"]
    finally:
        await single.close()


class StaleConnection:
    """A pooled connection whose server went away: every query fails."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.queries = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        self.queries += 1
        raise self.error

    async def fetchval(self, query: str, *args: Any) -> Any:
        self.queries += 1
        raise self.error

    async def execute(self, query: str, *args: Any) -> str:
        self.queries += 1
        raise self.error


class FlakyPool:
    """Hands out `stale` broken connections first, then real ones from the pool."""

    def __init__(self, pool: asyncpg.Pool, stale: list[StaleConnection]) -> None:
        self._pool = pool
        self._stale = stale
        self.acquired = 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        self.acquired += 1
        if self._stale:
            yield self._stale.pop(0)
            return
        async with self._pool.acquire() as conn:
            yield conn


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("connection is closed"),
    ],
    ids=["connection-does-not-exist", "interface-error"],
)
async def test_store_events_retries_once_on_a_stale_connection(
    pool: asyncpg.Pool,
    test_app_row: App,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    stale = StaleConnection(error)
    flaky = FlakyPool(pool, [stale])
    with caplog.at_level(logging.WARNING, logger="workers.store"):
        ids = await store_events(flaky, [message_event("stale-1")])
    assert len(ids) == 1
    assert (flaky.acquired, stale.queries) == (2, 1)
    assert [row.event_id for row in await rows_of(pool)] == ["stale-1"]
    assert any("Retrying once" in r.getMessage() for r in caplog.records)


async def test_store_events_second_stale_connection_raises(
    pool: asyncpg.Pool, test_app_row: App, caplog: pytest.LogCaptureFixture
) -> None:
    error = asyncpg.ConnectionDoesNotExistError("gone")
    flaky = FlakyPool(pool, [StaleConnection(error), StaleConnection(error)])
    with (
        caplog.at_level(logging.WARNING, logger="workers.store"),
        pytest.raises(asyncpg.ConnectionDoesNotExistError),
    ):
        await store_events(flaky, [message_event("stale-2")])
    assert flaky.acquired == 2
    assert await rows_of(pool) == []


async def test_store_events_transient_errors_propagate_for_the_actor_to_retry(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    stale = StaleConnection(asyncpg.TooManyConnectionsError("too many clients"))
    flaky = FlakyPool(pool, [stale])
    with pytest.raises(asyncpg.TooManyConnectionsError):
        await store_events(flaky, [message_event("busy")])
    assert flaky.acquired == 1
    assert await rows_of(pool) == []


# ---------------------------------------------------------------- message contract


def test_entry_from_message_reads_what_ingest_enqueues() -> None:
    data = message_event("m-1", status="invalid", session="s", plan_version=2)
    entry = entry_from_message(data)
    assert entry == NewLogEntry(
        app_id="test-app",
        event_id="m-1",
        event_name="name-m-1",
        payload='{"eventName":"name-m-1","event_id":"m-1"}',
        status="invalid",
        errors="[]",
        plan_version=2,
        session="s",
        received_at=datetime(2025, 12, 10, 15, 45, 0, 123456, tzinfo=UTC),
    )


@pytest.mark.parametrize("missing", ["app_id", "event_id", "payload", "status", "received_at"])
def test_entry_from_message_missing_field_raises_key_error(missing: str) -> None:
    data: Mapping[str, Any] = {k: v for k, v in message_event("x").items() if k != missing}
    with pytest.raises(KeyError, match=missing):
        entry_from_message(data)


# ---------------------------------------------------------------- id payloads


async def announced(
    pool: asyncpg.Pool,
    listener: Listener,
    ids: list[int],
    limit: int = NOTIFY_PAYLOAD_LIMIT,
) -> list[str]:
    """The payloads notify_ids sends for ids, read up to a marker sent after them."""
    marker = f"end-{len(listener.payloads)}-{ids[:1]}"
    async with pool.acquire() as conn:
        await notify_ids(conn, EVENTS_CHANNEL, ids, limit=limit)
        await notify(conn, EVENTS_CHANNEL, marker)  # one session's arrive in order
    assert await listener.settle(lambda: marker in listener.payloads)
    before = listener.payloads[: listener.payloads.index(marker)]
    return [p for p in before if not p.startswith("end-")]


@pytest.mark.parametrize(
    ("ids", "limit", "expected"),
    [
        ([], NOTIFY_PAYLOAD_LIMIT, []),
        ([7], NOTIFY_PAYLOAD_LIMIT, ["7"]),
        ([3, 1, 2], NOTIFY_PAYLOAD_LIMIT, ["1,2,3"]),  # in id order
        ([1, 2, 3], 4, ["1,2", "3"]),
        ([10, 20, 30, 40], 6, ["10,20", "30,40"]),
        ([10, 20, 30, 40], 3, ["10", "20", "30", "40"]),
        ([123456789], 3, ["123456789"]),  # one id never gets split, even when too long
    ],
)
async def test_notify_ids_chunks(
    pool: asyncpg.Pool, listener: Listener, ids: list[int], limit: int, expected: list[str]
) -> None:
    listener.payloads.clear()
    assert await announced(pool, listener, ids, limit) == expected


@pytest.mark.parametrize(
    "ids",
    [
        list(range(1, 5001)),
        list(range(10**15, 10**15 + 3000)),
        [9_223_372_036_854_775_807 - i for i in range(2000)][::-1],
    ],
    ids=["5000-small", "3000-16-digit", "2000-max-bigint"],
)
async def test_notify_ids_fit_a_notification_and_keep_every_id_once_in_order(
    pool: asyncpg.Pool, listener: Listener, ids: list[int]
) -> None:
    payloads = await announced(pool, listener, ids)
    assert len(payloads) > 1
    assert all(len(p.encode()) < 8000 for p in payloads)
    assert [int(text) for p in payloads for text in p.split(",")] == ids


async def test_store_events_many_ids_are_announced_in_chunks(
    pool: asyncpg.Pool, test_app_row: App, listener: Listener
) -> None:
    ids = await store_events(pool, [message_event(f"bulk-{i}") for i in range(2000)])
    assert len(ids) == 2000 and ids == sorted(ids)
    assert await listener.settle(lambda: listener.notified_ids()[-1:] == ids[-1:])
    payloads = listener.payloads_with(ids)
    assert len(payloads) > 1
    assert all(len(p.encode()) < 8000 for p in payloads)
    assert [int(text) for p in payloads for text in p.split(",")] == ids


# ---------------------------------------------------------------- import side effects


def test_workers_store_import_has_no_broker_side_effect(settings: Settings) -> None:
    # A REDIS_URL the settings would refuse: importing workers.broker would fail loudly.
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": "http://not-redis"}
    code = (
        "import json, sys, dramatiq.broker, workers.store\n"
        "print(json.dumps({'modules': sorted(m for m in sys.modules if m.startswith('workers')),"
        " 'global_broker': dramatiq.broker.global_broker is not None}))"
    )
    found = json.loads(run_fresh_python(code, env))
    assert found == {
        "modules": ["workers", "workers.failures", "workers.store"],
        "global_broker": False,
    }
