"""SQL for the Snowplow Micro API: the events Snowplow trackers sent, counted, listed, reset."""

from __future__ import annotations

from web.core.queries.base import _ENTRY_COLUMNS, Connection, LogEntry

# A Snowplow tracker payload always names its tracker version (tv); no other SDK sends one.
# An app of None means every app, as a Micro collector sees everything sent to it.
_SNOWPLOW_ROWS = """
    ($1::text IS NULL OR app_id = $1)
    AND payload ? 'tv' AND payload ? 'e'
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
    conn: Connection, app_id: str | None, status: str, limit: int
) -> list[LogEntry]:
    """The newest Snowplow events of one verdict (valid or invalid)."""
    rows = await conn.fetch(
        f"""
        SELECT {_ENTRY_COLUMNS}
        FROM log_entries
        WHERE {_SNOWPLOW_ROWS} AND validation_status = $2
        ORDER BY id DESC
        LIMIT $3
        """,
        app_id,
        status,
        limit,
    )
    return [LogEntry(**dict(row)) for row in rows]


async def delete_snowplow_events(conn: Connection, app_id: str | None) -> int:
    value = await conn.fetchval(
        f"""
        WITH gone AS (DELETE FROM log_entries WHERE {_SNOWPLOW_ROWS} RETURNING 1)
        SELECT count(*) FROM gone
        """,
        app_id,
    )
    return int(value)
