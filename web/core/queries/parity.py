"""SQL behind the parity page: an app's recent test sessions and one session's events read.

Bounded reads (issue 18): the recent sessions come from the hourly rollups of a recent
span (their key leads with app and hour); a session's counts from its rollups, and its
events through the session index (app_id, session, id DESC), newest first, capped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from web.core.queries.base import Connection


@dataclass(frozen=True, slots=True)
class RecentSession:
    """A test session as the picker lists it."""

    session: str
    total: int
    invalid: int
    first_seen: datetime
    last_seen: datetime


async def select_recent_sessions(
    conn: Connection, app_id: str, since: datetime, limit: int
) -> list[RecentSession]:
    """The app's sessions with events in the hours from `since`, the latest first; a session's
    counts are those of that span."""
    rows = await conn.fetch(
        """
        SELECT session,
               sum(n)::bigint AS total,
               coalesce(sum(n) FILTER (WHERE status = 'invalid'), 0)::bigint AS invalid,
               min(first_seen) AS first_seen,
               max(last_seen) AS last_seen
        FROM event_counts_hourly
        WHERE app_id = $1 AND hour >= date_bin('1 hour', $2::timestamptz, 'epoch')
          AND session IS NOT NULL
        GROUP BY session
        HAVING sum(n) > 0
        ORDER BY max(last_seen) DESC, session
        LIMIT $3
        """,
        app_id,
        since,
        limit,
    )
    return [RecentSession(**dict(row)) for row in rows]


async def select_stored_sessions(
    conn: Connection, app_id: str, sessions: Sequence[str]
) -> set[str]:
    """Which of `sessions` have any event stored (one index probe each)."""
    rows = await conn.fetch(
        """
        SELECT s.session
        FROM unnest($2::text[]) AS s (session)
        WHERE EXISTS (
            SELECT 1 FROM log_entries e WHERE e.app_id = $1 AND e.session = s.session
        )
        """,
        app_id,
        list(sessions),
    )
    return {row["session"] for row in rows}


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """An event as parity reads it: its name, and only the containers of its properties."""

    event_name: str | None
    containers: dict[str, Any]


async def select_session_events(
    conn: Connection, app_id: str, session: str, limit: int
) -> tuple[list[SessionEvent], bool]:
    """The session's newest `limit` events (properties and traits only), and whether it has
    more than that."""
    rows = await conn.fetch(
        """
        SELECT event_name,
               jsonb_build_object(
                   'properties', payload -> 'properties', 'traits', payload -> 'traits'
               ) AS containers
        FROM log_entries
        WHERE app_id = $1 AND session = $2
        ORDER BY id DESC
        LIMIT $3
        """,
        app_id,
        session,
        limit + 1,
    )
    events = [SessionEvent(row["event_name"], row["containers"]) for row in rows[:limit]]
    return events, len(rows) > limit
