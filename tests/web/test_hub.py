"""The Hub: bounded subscriber queues, fan-out by app and status, reconnect and back-fill."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

import web.hub
from tests.web.conftest import MakeApp
from tests.web.support import commit_out_of_id_order, eventually, message_event, new_entry
from web.core.filters import EventFilter
from web.core.queries.base import App, LogEntry
from web.core.queries.events import insert_log_entries, notify, select_log_entries_after
from web.core.queue.contract import EVENTS_CHANNEL
from web.core.settings import Settings
from web.hub import Hub, Subscription
from workers.store import store_events


def log_entry(row_id: int, app_id: str = "a", status: str = "valid") -> LogEntry:
    now = datetime.now(UTC)
    return LogEntry(
        id=row_id,
        app_id=app_id,
        event_id=f"e{row_id}",
        event_name="n",
        payload={},
        status=status,
        errors=[],
        plan_version=None,
        session=None,
        received_at=now,
        created_at=now,
    )


@pytest.fixture
async def hub(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[Hub]:
    own = Hub(settings.database_url, pool)
    await own.start()
    try:
        yield own
    finally:
        await own.close()


async def drain(subscription: Subscription, count: int, within: float = 5.0) -> list[int]:
    """The ids of the next `count` rows the subscription receives, in order."""
    async with asyncio.timeout(within):
        return [(await subscription.queue.get()).id for _ in range(count)]


async def nothing_more(subscription: Subscription, wait: float = 0.3) -> None:
    await asyncio.sleep(wait)
    extra = [subscription.queue.get_nowait().id for _ in range(subscription.queue.qsize())]
    assert extra == [], f"rows delivered again: {extra}"


async def listener_pid(hub: Hub) -> int:
    assert hub._listener is not None
    pid: int = hub._listener.get_server_pid()
    return pid


async def terminate(pool: asyncpg.Pool, pid: int) -> None:
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid) is True


# --- Subscription -----------------------------------------------------------------------


def test_subscription_full_queue_sets_overflowed_instead_of_growing() -> None:
    subscription = Subscription("a", EventFilter(), queue=asyncio.Queue(2))

    for row_id in range(1, 6):
        subscription.offer(log_entry(row_id))

    assert subscription.overflowed.is_set()
    assert subscription.queue.qsize() == 2
    assert [subscription.queue.get_nowait().id for _ in range(2)] == [1, 2]


def test_subscription_with_room_is_not_overflowed() -> None:
    subscription = Subscription("a", EventFilter(), queue=asyncio.Queue(2))

    subscription.offer(log_entry(1))
    subscription.offer(log_entry(2))

    assert not subscription.overflowed.is_set()
    assert subscription.queue.qsize() == 2


def test_subscription_default_queue_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web.hub, "SUBSCRIBER_QUEUE_SIZE", 7)

    assert Subscription("a", EventFilter()).queue.maxsize == 7


@pytest.mark.parametrize(
    ("status", "entry", "wanted"),
    [
        (None, log_entry(1, "a", "valid"), True),
        (None, log_entry(1, "a", "invalid"), True),
        ("invalid", log_entry(1, "a", "invalid"), True),
        ("invalid", log_entry(1, "a", "valid"), False),
        ("valid", log_entry(1, "a", "invalid"), False),
        (None, log_entry(1, "b", "valid"), False),
        ("valid", log_entry(1, "b", "valid"), False),
    ],
)
def test_subscription_wants_only_its_app_and_status(
    status: str | None, entry: LogEntry, wanted: bool
) -> None:
    assert Subscription("a", EventFilter(status=status)).wants(entry) is wanted


# --- fan-out ----------------------------------------------------------------------------


async def test_hub_delivers_committed_rows_to_matching_subscribers(
    hub: Hub, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    app = await make_app()
    other = await make_app()

    async with (
        hub.subscribe(app.id, EventFilter()) as everything,
        hub.subscribe(app.id, EventFilter(status="invalid")) as invalid_only,
        hub.subscribe(other.id, EventFilter()) as other_app,
    ):
        ids = await store_events(
            pool,
            [
                message_event(app.id),
                message_event(app.id, status="invalid"),
                message_event(other.id),
            ],
        )
        assert await drain(everything, 2) == ids[:2]
        assert await drain(invalid_only, 1) == [ids[1]]
        assert await drain(other_app, 1) == [ids[2]]
        await nothing_more(everything, 0.1)
        await nothing_more(invalid_only, 0.0)
        await nothing_more(other_app, 0.0)


async def test_hub_subscribe_exit_removes_the_subscription(hub: Hub) -> None:
    async with hub.subscribe("a", EventFilter()):
        assert hub.subscriber_count == 1

    assert hub.subscriber_count == 0


async def test_hub_slow_subscriber_overflows_at_its_queue_size(
    hub: Hub, pool: asyncpg.Pool, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.hub, "SUBSCRIBER_QUEUE_SIZE", 3)
    app = await make_app()

    async with hub.subscribe(app.id, EventFilter()) as slow:
        ids = await store_events(pool, [message_event(app.id) for _ in range(10)])
        await asyncio.wait_for(slow.overflowed.wait(), 5.0)

        assert slow.queue.qsize() == 3
        assert [slow.queue.get_nowait().id for _ in range(3)] == ids[:3]


async def test_hub_delivers_rows_committed_out_of_id_order(
    hub: Hub, pool: asyncpg.Pool, app: App
) -> None:
    async with hub.subscribe(app.id, EventFilter()) as subscription:
        slow_id, fast_id = await commit_out_of_id_order(pool, app.id)

        assert await drain(subscription, 2) == [fast_id, slow_id]


async def test_hub_reads_the_ids_in_a_strangers_notification_and_skips_the_rest(
    hub: Hub, pool: asyncpg.Pool, app: App
) -> None:
    # Anyone may NOTIFY the channel: what is not an id is skipped, and the feed goes on.
    async with hub.subscribe(app.id, EventFilter()) as subscription:
        async with pool.acquire() as conn:
            first, second, third = await insert_log_entries(
                conn, [new_entry(app.id) for _ in range(3)]
            )
            await notify(conn, EVENTS_CHANNEL, f"{first},hello,,²,{second}")
            await notify(conn, EVENTS_CHANNEL, "not ids at all")
            await notify(conn, EVENTS_CHANNEL, str(third))

        assert await drain(subscription, 3) == [first, second, third]
        await nothing_more(subscription, 0.1)


# --- reconnect --------------------------------------------------------------------------


async def test_hub_listener_reconnects_and_backfills_rows_committed_while_away(
    hub: Hub, pool: asyncpg.Pool, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wide first reconnect delay, so the rows below surely commit while nobody listens.
    monkeypatch.setattr(web.hub, "_RECONNECT_DELAYS", (0.5, 0.1))
    app = await make_app()

    async with hub.subscribe(app.id, EventFilter()) as subscription:
        [before] = await store_events(pool, [message_event(app.id, name="before")])
        assert await drain(subscription, 1) == [before]
        old_pid = await listener_pid(hub)

        await terminate(pool, old_pid)
        await eventually(lambda: not hub.connected.is_set(), message="the hub saw the loss")
        away = await store_events(pool, [message_event(app.id) for _ in range(3)])
        assert not hub.connected.is_set(), "the rows were meant to commit while away"

        await asyncio.wait_for(hub.connected.wait(), 5.0)
        assert await listener_pid(hub) != old_pid
        # The catch-up looks back a little (rows can commit out of id order), so the row
        # sent before may come again; streams skip repeats. Every row from away arrives.
        caught_up = await drain(subscription, 4)
        assert caught_up == [before, *away]
        [after] = await store_events(pool, [message_event(app.id, name="after")])
        assert await drain(subscription, 1) == [after]
        await nothing_more(subscription)


async def test_hub_listener_reconnects_more_than_once(
    hub: Hub, pool: asyncpg.Pool, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.hub, "_RECONNECT_DELAYS", (0.05,))
    app = await make_app()

    async with hub.subscribe(app.id, EventFilter()) as subscription:
        for _ in range(2):
            old_pid = await listener_pid(hub)
            await terminate(pool, old_pid)
            await eventually(
                lambda pid=old_pid: (
                    hub._listener is not None
                    and not hub._listener.is_closed()
                    and hub._listener.get_server_pid() != pid
                )
            )
            await asyncio.wait_for(hub.connected.wait(), 5.0)
        [row] = await store_events(pool, [message_event(app.id)])

        assert await drain(subscription, 1) == [row]
        await nothing_more(subscription)


async def test_hub_row_committed_as_listener_returns_is_delivered_once(
    hub: Hub, pool: asyncpg.Pool, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row that commits after LISTEN resumes but before the catch-up query runs is both
    in the catch-up and in a notification; subscribers must still see it once."""
    monkeypatch.setattr(web.hub, "_RECONNECT_DELAYS", (0.3,))
    app = await make_app()
    real_catch_up = select_log_entries_after
    raced: list[int] = []

    async def catch_up_with_a_commit_first(conn: Any, after_id: int, limit: int) -> Any:
        if not raced:
            raced.extend(await store_events(pool, [message_event(app.id, name="raced")]))
            # The notification for that row is now on its way to the new listener.
            await eventually(lambda: hub._pending_ids.qsize() > 0, message="notified")
        return await real_catch_up(conn, after_id, limit)

    monkeypatch.setattr(web.hub, "select_log_entries_after", catch_up_with_a_commit_first)

    async with hub.subscribe(app.id, EventFilter()) as subscription:
        await terminate(pool, await listener_pid(hub))
        await eventually(lambda: not hub.connected.is_set(), message="the hub saw the loss")
        away = await store_events(pool, [message_event(app.id, name="away")])

        await asyncio.wait_for(hub.connected.wait(), 5.0)
        received = await drain(subscription, 2)
        await nothing_more(subscription)

    assert received == [*away, *raced]


async def test_hub_forgets_the_ids_a_catch_up_sent_once_their_notifications_are_past(
    hub: Hub, pool: asyncpg.Pool, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.hub, "_RECONNECT_DELAYS", (0.1,))
    monkeypatch.setattr(web.hub, "_CAUGHT_UP_MEMORY_SECONDS", 0.3)
    app = await make_app()
    await store_events(pool, [message_event(app.id)])
    await terminate(pool, await listener_pid(hub))
    await eventually(lambda: not hub.connected.is_set(), message="the hub saw the loss")
    await asyncio.wait_for(hub.connected.wait(), 5.0)
    await eventually(lambda: bool(hub._caught_up), message="the catch-up ran")
    await eventually(lambda: not hub._caught_up, message="its ids were forgotten")


async def test_hub_close_stops_listening(settings: Settings, pool: asyncpg.Pool) -> None:
    own = Hub(settings.database_url, pool)
    await own.start()
    listener = own._listener
    assert listener is not None

    await own.close()

    assert listener.is_closed()
    assert own._tasks
    assert all(task.done() for task in own._tasks)
