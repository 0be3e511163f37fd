"""SQL for the Snowplow Micro API: the events Snowplow trackers sent, counted, listed, reset."""

from __future__ import annotations

from web.core.queries.base import _ENTRY_COLUMNS, Connection, LogEntry
from web.core.queries.rollups import delete_counted

# A Snowplow tracker payload names its tracker version (tv), event type (e) and event id
# (eid); no other SDK sends those three. An app of None means every app, as a Micro
# collector sees everything sent to it.
_SNOWPLOW_ROWS = """
    ($1::text IS NULL OR app_id = $1)
    AND payload ?& array['tv', 'e', 'eid']
"""


async def count_snowplow_events(conn: Connection, app_id: str | None) -> tuple[int, int]:
    """(valid, invalid): Micro's good and bad."""
    row = await conn.fetchrow(
        f"""
        SELECT count(*) FILTER (WHERE validation_status = 'valid') AS good,
               count(*) FILTER (WHERE validation_status = 'invalid') AS bad
        FROM log_entries
        WHERE {_SNOWPLOW_ROWS}
        """,
        app_id,
    )
    return int(row["good"]), int(row["bad"])


async def select_snowplow_events(
    conn: Connection,
    app_id: str | None,
    status: str,
    limit: int,
    *,
    event_code: str | None = None,
    schema: str | None = None,
    contexts: list[dict[str, str]] | None = None,
) -> list[LogEntry]:
    """The newest Snowplow events of one verdict (valid or invalid), optionally only of one
    tracker event type (e), one self-describing schema, or carrying every context in
    `contexts` ([{"schema": ...}])."""
    rows = await conn.fetch(
        f"""
        SELECT {_ENTRY_COLUMNS}
        FROM log_entries
        WHERE {_SNOWPLOW_ROWS}
          AND validation_status = $2
          AND ($4::text IS NULL OR payload->>'e' = $4)
          AND ($5::text IS NULL OR payload->>'schema' = $5)
          AND ($6::jsonb IS NULL OR payload->'contexts' @> $6::jsonb)
        ORDER BY id DESC
        LIMIT $3
        """,
        app_id,
        status,
        limit,
        event_code,
        schema,
        contexts,
    )
    return [LogEntry(**dict(row)) for row in rows]


async def delete_snowplow_events(conn: Connection, app_id: str | None) -> int:
    return await delete_counted(conn, _SNOWPLOW_ROWS, app_id)
