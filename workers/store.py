"""Writing judged events to PostgreSQL: plain async functions the actors call."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from web.core import queries
from web.core.jobs import EVENTS_CHANNEL

log = logging.getLogger(__name__)

# pg_notify payloads must stay under 8000 bytes; ids are sent in chunks below that.
NOTIFY_PAYLOAD_LIMIT = 7900


def entry_from_message(data: Mapping[str, Any]) -> queries.NewLogEntry:
    return queries.NewLogEntry(
        app_id=data["app_id"],
        event_id=data["event_id"],
        event_name=data["event_name"],
        payload_json=data["payload"],
        validation_status=data["status"],
        errors_json=data["errors"],
        plan_version=data["plan_version"],
        session=data["session"],
        received_at=datetime.fromisoformat(data["received_at"]),
    )


async def store_events(pool: asyncpg.Pool, events: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert the events and announce the new row ids, in one transaction.

    The notification is delivered only if the rows commit, so the live view never shows
    an event that is not stored. Returns the ids of rows that were new.
    """
    entries = [entry_from_message(event) for event in events]
    try:
        return await _insert_and_notify(pool, entries)
    except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError) as exc:
        # After a PostgreSQL restart, the first query on a stale pooled connection fails.
        log.warning("Retrying once on a fresh connection: %s", exc)
        return await _insert_and_notify(pool, entries)


async def _insert_and_notify(
    pool: asyncpg.Pool, entries: Sequence[queries.NewLogEntry]
) -> list[int]:
    async with pool.acquire() as conn, conn.transaction():
        ids = await queries.insert_log_entries(conn, entries)
        for payload in id_payloads(ids):
            await queries.notify(conn, EVENTS_CHANNEL, payload)
    return ids


def id_payloads(ids: Sequence[int], limit: int = NOTIFY_PAYLOAD_LIMIT) -> Iterator[str]:
    """Comma-separated ids, in chunks that each fit one notification."""
    chunk: list[str] = []
    size = 0
    for row_id in ids:
        text = str(row_id)
        if chunk and size + len(text) + 1 > limit:
            yield ",".join(chunk)
            chunk, size = [], 0
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        yield ",".join(chunk)
