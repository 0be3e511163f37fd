"""SQL for scenarios, and for a test session's events in arrival order (what a run judges)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from web.core.queries.base import _ENTRY_COLUMNS, Connection, LogEntry


@dataclass(frozen=True, slots=True)
class StoredScenario:
    app_id: str
    name: str
    document: dict[str, Any]
    revision: int
    created_at: datetime
    updated_at: datetime


_COLUMNS = "app_id, name, document, revision, created_at, updated_at"


async def upsert_scenario(
    conn: Connection, app_id: str, name: str, document: Any
) -> tuple[StoredScenario, bool]:
    """Save a scenario in place (its revision counts the saves); True when it is new."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO scenarios (app_id, name, document)
        VALUES ($1, $2, $3::json)
        ON CONFLICT (app_id, name) DO UPDATE
        SET document = EXCLUDED.document,
            revision = scenarios.revision + 1,
            updated_at = now()
        RETURNING {_COLUMNS}, (xmax = 0) AS created
        """,
        app_id,
        name,
        document,
    )
    found = dict(row)
    created = bool(found.pop("created"))
    return StoredScenario(**found), created


async def select_scenario(conn: Connection, app_id: str, name: str) -> StoredScenario | None:
    row = await conn.fetchrow(
        f"""
        SELECT {_COLUMNS}
        FROM scenarios
        WHERE app_id = $1 AND name = $2
        """,
        app_id,
        name,
    )
    return StoredScenario(**dict(row)) if row else None


async def select_scenarios(conn: Connection, app_id: str) -> list[StoredScenario]:
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS}
        FROM scenarios
        WHERE app_id = $1
        ORDER BY name
        """,
        app_id,
    )
    return [StoredScenario(**dict(row)) for row in rows]


async def delete_scenario(conn: Connection, app_id: str, name: str) -> bool:
    status = await conn.execute(
        """
        DELETE FROM scenarios
        WHERE app_id = $1 AND name = $2
        """,
        app_id,
        name,
    )
    return status == "DELETE 1"


async def select_session_events(
    conn: Connection, app_id: str, session: str, limit: int
) -> list[LogEntry]:
    """A session's first `limit` events in arrival order: received_at, then row id (a
    batch's events share received_at and take ids in the batch's order)."""
    rows = await conn.fetch(
        f"""
        SELECT {_ENTRY_COLUMNS}
        FROM log_entries
        WHERE app_id = $1 AND session = $2
        ORDER BY received_at, id
        LIMIT $3
        """,
        app_id,
        session,
        limit,
    )
    return [LogEntry(**dict(row)) for row in rows]
