"""SQL for stored events: the worker's bulk insert, filtered reads, counts, resets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from web.core.filters import EventFilter
from web.core.queries.base import _ENTRY_COLUMNS, Connection, LogEntry, NewLogEntry
from web.core.queries.filtering import NO_FILTER, Params, filter_sql, reads_a_window
from web.core.queries.rollups import (
    COUNT_NEW,
    COUNTED_COLUMNS,
    counted_events,
    delete_counted,
    servable,
)

# Exactly once: a receipt per (app_id, event_id), whose insert decides whether the event is
# new (migration 0012: the partitioned events table cannot hold that uniqueness). Every
# event of the batch is given an id first, in the batch's order; the receipts are inserted
# in that order, so of a batch's duplicates the first wins, and only the events whose
# receipts went in are stored, under the ids their receipts name. The rollups count what
# RETURNING gives: only the rows this statement inserted, so a redelivered message, which
# inserts nothing, counts nothing. These are CTEs ending with `new`: a data-modifying WITH
# must be at the top level of the statement.
_INSERT_NEW = f"""
    batch AS (
        SELECT *, nextval('log_entry_ids') AS entry_id
        FROM unnest($1::new_log_entry[])
    ), receipts AS (
        INSERT INTO event_receipts (app_id, event_id, entry_id)
        SELECT app_id, event_id, entry_id FROM batch ORDER BY entry_id
        ON CONFLICT (app_id, event_id) DO NOTHING
        RETURNING entry_id
    ), new AS (
        INSERT INTO log_entries (id, app_id, event_id, event_name, payload, validation_status,
                                 errors, plan_version, session, received_at)
        SELECT entry_id, app_id, event_id, event_name, payload::jsonb, status, errors::jsonb,
               plan_version, session, received_at
        FROM batch
        WHERE entry_id IN (SELECT entry_id FROM receipts)
        RETURNING id, {COUNTED_COLUMNS}
    )
"""
# pg_notify payloads must stay under 8000 bytes. The ids of {source} (a relation with an
# `id` column), comma-separated in id order, in consecutive chunks of at most {limit} bytes:
# an id goes to the chunk its running total of "id," bytes ends in.
_NOTIFY_IDS = """
    SELECT count(pg_notify({channel}, ids))
    FROM (
        SELECT string_agg(id::text, ',' ORDER BY id) AS ids
        FROM (
            SELECT id, (sum(length(id::text) + 1) OVER (ORDER BY id) - 1) / {limit} AS chunk
            FROM {source}
        ) AS numbered
        GROUP BY chunk
    ) AS chunks
"""
NOTIFY_PAYLOAD_LIMIT = 7900
# Built once: the worker runs it for every message.
_NOTIFY_NEW_IDS = _NOTIFY_IDS.format(channel="$2", limit=NOTIFY_PAYLOAD_LIMIT, source="new")
_INSERT_NEW_ENTRIES = f"""
    WITH {_INSERT_NEW}, {COUNT_NEW}
    SELECT id FROM new
"""
_INSERT_NEW_ENTRIES_AND_NOTIFY = f"""
    WITH {_INSERT_NEW}, {COUNT_NEW}
    SELECT ARRAY(SELECT id FROM new ORDER BY id)
    FROM ({_NOTIFY_NEW_IDS}) AS notified
"""


async def insert_log_entries(conn: Connection, entries: Sequence[NewLogEntry]) -> list[int]:
    """Insert many events in one statement; returns the ids of the rows that were new.

    A redelivered message or a client retry hits the unique (app_id, event_id) and
    inserts nothing, which is what makes at-least-once delivery store exactly once.
    """
    rows = await conn.fetch(_INSERT_NEW_ENTRIES, entries)
    return [row["id"] for row in rows]


async def insert_log_entries_and_notify(
    conn: Connection, entries: Sequence[NewLogEntry], channel: str
) -> list[int]:
    """insert_log_entries, and a notification of the new ids on channel, in one statement.

    One statement is one transaction: the notifications go out only if the rows commit,
    and it takes one round trip where BEGIN, INSERT, NOTIFY and COMMIT took four (the
    worker's client CPU per message fell by about 40 %).
    """
    ids: list[int] = await conn.fetchval(_INSERT_NEW_ENTRIES_AND_NOTIFY, entries, channel)
    return ids


async def notify_ids(
    conn: Connection, channel: str, ids: Sequence[int], *, limit: int = NOTIFY_PAYLOAD_LIMIT
) -> None:
    """Announce row ids on channel, in id order, in chunks of about `limit` bytes.

    Sent at commit, or at once outside a transaction. A chunk may pass `limit` by its
    first id: the default keeps every payload under PostgreSQL's 8000 bytes.
    """
    source = "unnest($2::bigint[]) AS t(id)"
    await conn.execute(
        _NOTIFY_IDS.format(channel="$1", limit=int(limit), source=source),
        channel,
        list(ids),
    )


async def notify(conn: Connection, channel: str, payload: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", channel, payload)


async def select_log_entries(
    conn: Connection,
    app_id: str,
    *,
    filters: EventFilter = NO_FILTER,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[LogEntry]:
    """An app's events matching the filter, newest first, optionally bounded by id."""
    params = Params()
    app = params.add(app_id)
    matching = filter_sql(filters, params)
    bounds = ""
    if before_id is not None:
        bounds += f" AND id < {params.add(before_id)}"
    if after_id is not None:
        bounds += f" AND id > {params.add(after_id)}"
    count = params.add(limit)
    if reads_a_window(filters):
        statement = f"""
        WITH newest AS MATERIALIZED (
            SELECT id
            FROM log_entries
            WHERE app_id = {app}
              AND {matching}{bounds}
            -- `id + 0`: found through (app_id, received_at) INCLUDE (id, ...), not by
            -- walking the primary key back to the window; only ids are sorted.
            ORDER BY id + 0 DESC
            LIMIT {count}
        )
        SELECT {_ENTRY_COLUMNS}
        FROM log_entries
        WHERE id IN (SELECT id FROM newest)
        ORDER BY id DESC
        """
    else:
        statement = f"""
        SELECT {_ENTRY_COLUMNS}
        FROM log_entries
        WHERE app_id = {app}
          AND {matching}{bounds}
        ORDER BY id DESC
        LIMIT {count}
        """
    rows = await conn.fetch(statement, *params.values)
    return [LogEntry(**dict(row)) for row in rows]


async def select_log_entries_by_ids(conn: Connection, ids: Sequence[int]) -> list[LogEntry]:
    rows = await conn.fetch(
        f"""
        SELECT {_ENTRY_COLUMNS}
        FROM log_entries
        WHERE id = ANY($1::bigint[])
        ORDER BY id
        """,
        list(ids),
    )
    return [LogEntry(**dict(row)) for row in rows]


async def select_log_entries_after(conn: Connection, after_id: int, limit: int) -> list[LogEntry]:
    """Every app's events above an id, oldest first: how a listener catches up."""
    rows = await conn.fetch(
        f"""
        SELECT {_ENTRY_COLUMNS}
        FROM log_entries
        WHERE id > $1
        ORDER BY id
        LIMIT $2
        """,
        after_id,
        limit,
    )
    return [LogEntry(**dict(row)) for row in rows]


async def select_max_log_entry_id(conn: Connection) -> int:
    value = await conn.fetchval("SELECT coalesce(max(id), 0) FROM log_entries")
    return int(value)


async def select_payload_samples(
    conn: Connection, app_id: str, per_event: int, recent: int = 10_000
) -> dict[str, list[dict[str, Any]]]:
    """Up to per_event recent payloads for each event name, among the app's recent events."""
    rows = await conn.fetch(
        """
        SELECT event_name, payload
        FROM (
            SELECT event_name, payload,
                   row_number() OVER (PARTITION BY event_name ORDER BY id DESC) AS n
            FROM (
                SELECT id, event_name, payload
                FROM log_entries
                WHERE app_id = $1 AND event_name IS NOT NULL
                ORDER BY id DESC
                LIMIT $3
            ) recent
        ) ranked
        WHERE n <= $2
        """,
        app_id,
        per_event,
        recent,
    )
    samples: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        samples.setdefault(row["event_name"], []).append(row["payload"])
    return samples


@dataclass(frozen=True, slots=True)
class EventCount:
    """How many of an app's events have this name and status."""

    event_name: str | None
    status: str
    count: int


async def select_event_counts(
    conn: Connection, app_id: str, *, filters: EventFilter = NO_FILTER
) -> list[EventCount]:
    """An app's events matching the filter, counted by name and status, most frequent first.

    From the rollups unless the filter searches text or rules (then from the rows).
    """
    params = Params()
    app = params.add(app_id)
    if servable(filters):
        source = f"""
            SELECT event_name, status, sum(n) AS n
            FROM {counted_events(filters, params, app)} AS counted
            GROUP BY event_name, status
            HAVING sum(n) > 0"""
    else:
        source = f"""
            SELECT event_name, validation_status AS status, count(*) AS n
            FROM log_entries
            WHERE app_id = {app}
              AND {filter_sql(filters, params)}
            GROUP BY event_name, validation_status"""
    rows = await conn.fetch(
        f"""
        SELECT event_name, status, n::bigint AS count
        FROM ({source}) AS counts
        ORDER BY count DESC, event_name, status
        """,
        *params.values,
    )
    return [EventCount(**dict(row)) for row in rows]


async def delete_log_entries(conn: Connection, app_id: str, session: str | None = None) -> int:
    """Delete an app's stored events, or one session's only; returns how many went.

    The rollups lose exactly the rows deleted, in the same transaction.
    """
    return await delete_counted(
        conn, "app_id = $1 AND ($2::text IS NULL OR session = $2)", app_id, session
    )


async def select_log_entry(conn: Connection, app_id: str, entry_id: int) -> LogEntry | None:
    """One stored event of an app by row id; None for another app's row."""
    row = await conn.fetchrow(
        f"""
        SELECT {_ENTRY_COLUMNS}
        FROM log_entries
        WHERE app_id = $1 AND id = $2
        """,
        app_id,
        entry_id,
    )
    return LogEntry(**dict(row)) if row else None
