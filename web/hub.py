"""The live feed: one LISTEN connection per web process, fanned out to bounded subscriber queues."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import asyncpg

from web.core.db import init_connection
from web.core.filters import EventFilter
from web.core.plans import PLANS_CHANNEL
from web.core.queries.base import Connection, LogEntry
from web.core.queries.events import (
    select_log_entries_after,
    select_log_entries_by_ids,
    select_max_log_entry_id,
)
from web.core.queue.contract import EVENTS_CHANNEL
from web.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# Rows a subscriber may have waiting before it is cut off and made to reconnect; a slow
# client then costs a bounded amount of memory and back-fills what it missed.
SUBSCRIBER_QUEUE_SIZE = 1000
_CATCH_UP_PAGE = 1000
_RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
# After a failed read, the next catch-up comes this soon (seconds).
_RETRY_SECONDS = 0.5
# A catch-up starts this many ids below the last one seen (rows commit out of id order).
_LOOKBACK_IDS = 500
# How long the ids a catch-up sent are remembered: their notifications, if any, were on
# their way when it ran. Forgetting them early costs only a repeat, which streams skip.
_CAUGHT_UP_MEMORY_SECONDS = 30.0


@dataclass(eq=False)
class Subscription:
    app_id: str
    filters: EventFilter
    queue: asyncio.Queue[LogEntry] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)
    )
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, entry: LogEntry) -> bool:
        return entry.app_id == self.app_id and self.filters.matches(entry)

    def offer(self, entry: LogEntry) -> None:
        try:
            self.queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.overflowed.set()


class Hub:
    """Turns committed-row notifications into rows for every interested subscriber."""

    def __init__(
        self,
        database_url: str,
        pool: asyncpg.Pool,
        on_app_changed: Callable[[str | None], None] = lambda app_id: None,
    ) -> None:
        self._database_url = database_url
        self._pool = pool
        # Called with an app id when its plan changes, and with None after a reconnect,
        # when notifications may have been missed.
        self._on_app_changed = on_app_changed
        self._subscriptions: set[Subscription] = set()
        self._pending_ids: asyncio.Queue[list[int] | None] = asyncio.Queue()
        self._last_id = 0
        self._caught_up: set[int] = set()
        # The lowest id that may not have reached subscribers after a failure, if any.
        self._floor: int | None = None
        self._listener: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.connected = asyncio.Event()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    async def start(self) -> None:
        async with self._pool.acquire() as conn:
            self._last_id = await select_max_log_entry_id(conn)
        await self._listen()
        self._tasks.append(asyncio.create_task(self._deliver_forever(), name="hub-deliver"))

    async def close(self) -> None:
        self._closing = True
        await cancel_and_wait(*self._tasks)
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()

    @contextlib.asynccontextmanager
    async def subscribe(self, app_id: str, filters: EventFilter) -> AsyncIterator[Subscription]:
        subscription = Subscription(app_id, filters)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self._database_url, timeout=10)
        await init_connection(conn)
        await conn.add_listener(EVENTS_CHANNEL, self._on_notification)
        await conn.add_listener(PLANS_CHANNEL, self._on_plan_changed)
        conn.add_termination_listener(self._on_connection_lost)
        self._listener = conn
        self.connected.set()

    def _on_notification(
        self, conn: asyncpg.Connection, pid: int, channel: str, payload: str
    ) -> None:
        # Runs for every commit of every worker, watched or not: the plain parse of what
        # the worker's SQL writes first, the careful one only for a stranger's NOTIFY.
        try:
            ids = list(map(int, payload.split(",")))
        except ValueError:
            ids = [int(part) for part in payload.split(",") if part.isascii() and part.isdigit()]
        self._pending_ids.put_nowait(ids)

    def _on_plan_changed(
        self, conn: asyncpg.Connection, pid: int, channel: str, payload: str
    ) -> None:
        # An empty payload means "every app" (sent after bulk changes such as a restore).
        self._on_app_changed(payload or None)

    def _on_connection_lost(self, conn: asyncpg.Connection) -> None:
        self.connected.clear()
        if not self._closing:
            log.warning("Live feed lost its database connection; reconnecting")
            self._tasks.append(asyncio.create_task(self._reconnect(), name="hub-reconnect"))

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._closing:
            delay = _RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)]
            await asyncio.sleep(delay)
            attempt += 1
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.info("Live feed reconnect attempt %d failed: %s", attempt, exc)
                continue
            log.info("Live feed reconnected after %d attempt(s)", attempt)
            self._on_app_changed(None)
            # None asks the delivery task to back-fill what committed while we were away.
            self._pending_ids.put_nowait(None)
            return

    async def _deliver_forever(self) -> None:
        # Nothing may end this loop but cancellation: if it died, every live stream of this
        # process would freeze while still sending keepalives, and never reconnect.
        while True:
            ids = await self._pending_ids.get()
            try:
                await self._deliver(ids)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Live feed could not read new rows (%r); catching up shortly", exc)
                if ids:
                    self._floor = min(self._floor or ids[0], *ids) - 1
                elif self._floor is None:
                    self._floor = self._last_id
                asyncio.get_running_loop().call_later(
                    _RETRY_SECONDS, self._pending_ids.put_nowait, None
                )

    async def _deliver(self, ids: list[int] | None) -> None:
        if ids is None:
            async with self._pool.acquire() as conn:
                await self._catch_up(conn)
            return
        fresh = ids
        if self._caught_up:  # ids a catch-up sent, whose notifications may still come
            fresh = [row_id for row_id in ids if row_id not in self._caught_up]
            self._caught_up.difference_update(ids)
        if not fresh:
            return
        if not self._subscriptions:
            # Nobody is watching: no connection, no query (a pool round trip per commit).
            self._last_id = max(self._last_id, max(fresh))
            return
        async with self._pool.acquire() as conn:
            entries = await select_log_entries_by_ids(conn, fresh)
        self._fan_out(entries)

    async def _catch_up(self, conn: Connection) -> None:
        """Send every row from just below what may have been missed, oldest first.

        It starts LOOKBACK ids below that point, because rows can commit out of id order
        while the listener is away; streams skip the rows they already sent.
        """
        start = max(0, min(self._floor or self._last_id, self._last_id) - _LOOKBACK_IDS)
        # Rows that commit between LISTEN resuming and this query come back here and again
        # by notification; remember them so they go out once.
        self._caught_up.clear()
        while entries := await select_log_entries_after(conn, start, _CATCH_UP_PAGE):
            self._fan_out(entries)
            self._caught_up.update(entry.id for entry in entries)
            start = entries[-1].id
        self._floor = None
        # Most of these ids are never notified again: forget them, or every later
        # notification would be checked against them for the life of the process.
        asyncio.get_running_loop().call_later(_CAUGHT_UP_MEMORY_SECONDS, self._caught_up.clear)

    def _fan_out(self, entries: list[LogEntry]) -> None:
        for entry in entries:
            self._last_id = max(self._last_id, entry.id)
            for subscription in self._subscriptions:
                if subscription.wants(entry):
                    subscription.offer(entry)
