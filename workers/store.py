"""Writing judged events to PostgreSQL: plain async functions the actors call."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from web.core.queries.base import NewLogEntry
from web.core.queries.dead_letters import insert_dead_letters
from web.core.queries.events import insert_log_entries, insert_log_entries_and_notify, notify_ids
from web.core.queue.contract import EVENTS_CHANNEL
from workers.failures import is_permanent

log = logging.getLogger(__name__)


def entry_from_message(data: Mapping[str, Any]) -> NewLogEntry:
    # Positional, in NewLogEntry's field order: keywords cost a third more per event.
    return NewLogEntry(
        data["app_id"],
        data["event_id"],
        data["event_name"],
        data["payload"],
        data["status"],
        data["errors"],
        data["plan_version"],
        data["session"],
        datetime.fromisoformat(data["received_at"]),
    )


async def store_events(
    pool: asyncpg.Pool, events: Sequence[Mapping[str, Any]], *, message_id: str = ""
) -> list[int]:
    """Insert the events and announce the new row ids, in one transaction.

    The notification is delivered only if the rows commit, so the live view never shows
    an event that is not stored. Returns the ids of rows that were new. If the data of
    some event can never be stored, the others are stored and that one is parked in
    dead_letters, in the same transaction: one bad event never holds back its batch.
    """
    entries = [entry_from_message(event) for event in events]
    try:
        return await _store(pool, events, entries, message_id)
    except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError) as exc:
        # After a PostgreSQL restart, the first query on a stale pooled connection fails.
        log.warning("Retrying once on a fresh connection: %s", exc)
        return await _store(pool, events, entries, message_id)


async def _store(
    pool: asyncpg.Pool,
    events: Sequence[Mapping[str, Any]],
    entries: Sequence[NewLogEntry],
    message_id: str,
) -> list[int]:
    try:
        return await _insert_and_notify(pool, entries)
    except asyncpg.PostgresError as exc:
        if not is_permanent(exc):
            raise
        log.warning("Message %s: %s; storing its events one by one", message_id, exc)
        return await _insert_each_and_park_failures(pool, events, entries, message_id)


async def _insert_and_notify(pool: asyncpg.Pool, entries: Sequence[NewLogEntry]) -> list[int]:
    async with pool.acquire() as conn:
        return await insert_log_entries_and_notify(conn, entries, EVENTS_CHANNEL)


async def _insert_each_and_park_failures(
    pool: asyncpg.Pool,
    events: Sequence[Mapping[str, Any]],
    entries: Sequence[NewLogEntry],
    message_id: str,
) -> list[int]:
    ids: list[int] = []
    async with pool.acquire() as conn, conn.transaction():
        for event, entry in zip(events, entries, strict=True):
            try:
                async with conn.transaction():  # a savepoint: a failure undoes this event only
                    ids += await insert_log_entries(conn, [entry])
            except asyncpg.PostgresError as exc:
                if not is_permanent(exc):
                    raise
                reason = f"{type(exc).__name__}: {exc}"
                await insert_dead_letters(conn, message_id, [dict(event)], reason, 1)
                log.error("Message %s: parked event %s: %s", message_id, entry.event_id, reason)
        await notify_ids(conn, EVENTS_CHANNEL, ids)
    return ids


async def park_message(
    pool: asyncpg.Pool, message_id: str, events: Sequence[Any], reason: str, attempts: int
) -> list[int]:
    """Record a whole message's events as dead letters (or the raw args if they are not events)."""
    items = [e if isinstance(e, dict) else {"raw": e} for e in events] or [{"raw": None}]
    async with pool.acquire() as conn:
        return await insert_dead_letters(conn, message_id, items, reason, attempts)
