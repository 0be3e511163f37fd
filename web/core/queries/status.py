"""SQL behind the pipeline status page and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from web.core.queries.base import Connection


@dataclass(frozen=True, slots=True)
class RecentEvents:
    """Events received since a moment (those stored by now), and how many were invalid."""

    events: int
    invalid: int


async def select_recent_event_counts(conn: Connection, since: datetime) -> RecentEvents:
    # One count per app, so each reads the (app_id, received_at) index of 0005 and not the table.
    row = await conn.fetchrow(
        """
        SELECT coalesce(sum(r.events), 0)::bigint AS events,
               coalesce(sum(r.invalid), 0)::bigint AS invalid
        FROM apps AS a
        CROSS JOIN LATERAL (
            SELECT count(*) AS events,
                   count(*) FILTER (WHERE e.validation_status = 'invalid') AS invalid
            FROM log_entries AS e
            WHERE e.app_id = a.id AND e.received_at >= $1
        ) AS r
        """,
        since,
    )
    return RecentEvents(events=int(row["events"]), invalid=int(row["invalid"]))


@dataclass(frozen=True, slots=True)
class LatestStored:
    """When the newest stored event was received, and when a worker wrote it."""

    received_at: datetime
    created_at: datetime


async def select_latest_stored(conn: Connection) -> LatestStored | None:
    row = await conn.fetchrow(
        """
        SELECT received_at, created_at
        FROM log_entries
        ORDER BY id DESC
        LIMIT 1
        """
    )
    return LatestStored(**dict(row)) if row else None


async def select_database_size(conn: Connection) -> int:
    return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
