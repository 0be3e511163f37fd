"""SQL for apps: create, look up (by id or write key), list with counts, retention."""

from __future__ import annotations

from typing import Literal

from web.core.queries.base import _APP_COLUMNS, App, AppSummary, Connection
from web.core.queries.filtering import NO_FILTER, Params
from web.core.queries.rollups import counted_events


async def insert_app(conn: Connection, app_id: str, name: str, write_key: str) -> App | None:
    """Create an app; None when the id is taken."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO apps (id, name, write_key)
        VALUES ($1, $2, $3)
        ON CONFLICT (id) DO NOTHING
        RETURNING {_APP_COLUMNS}
        """,
        app_id,
        name,
        write_key,
    )
    return App(**dict(row)) if row else None


async def select_app(conn: Connection, app_id: str) -> App | None:
    return await _select_one_app(conn, "WHERE id = $1", app_id)


async def select_apps(conn: Connection) -> list[App]:
    rows = await conn.fetch(
        f"""
        SELECT {_APP_COLUMNS}
        FROM apps
        ORDER BY id
        """
    )
    return [App(**dict(row)) for row in rows]


async def select_app_summaries(conn: Connection) -> list[AppSummary]:
    """Every app with its stored events counted, all time (from the rollups)."""
    params = Params()
    counted = counted_events(NO_FILTER, params, "a.id")
    rows = await conn.fetch(
        f"""
        SELECT a.id, a.name, a.write_key, a.require_write_key, a.created_at, a.plan_version,
               counts.total, counts.invalid
        FROM apps a
        CROSS JOIN LATERAL (
            SELECT coalesce(sum(n), 0)::bigint AS total,
                   coalesce(sum(n) FILTER (WHERE status = 'invalid'), 0)::bigint AS invalid
            FROM {counted} AS counted
        ) AS counts
        ORDER BY a.id
        """,
        *params.values,
    )
    summaries = []
    for row in rows:
        values = dict(row)
        total, invalid = values.pop("total"), values.pop("invalid")
        summaries.append(AppSummary(App(**values), total, invalid))
    return summaries


async def lock_app(conn: Connection, app_id: str) -> App | None:
    """The app, row-locked until the caller's transaction ends (serialises plan versions)."""
    return await _select_one_app(conn, "WHERE id = $1 FOR UPDATE", app_id)


async def select_app_by_write_key(conn: Connection, write_key: str) -> App | None:
    """The app a write key belongs to (SDK calls name no app id, only their key)."""
    return await _select_one_app(conn, "WHERE write_key = $1", write_key)


# The ways one app is looked up: the clause is one of these, the value always $1.
_AppLookup = Literal["WHERE id = $1", "WHERE id = $1 FOR UPDATE", "WHERE write_key = $1"]


async def _select_one_app(conn: Connection, lookup: _AppLookup, value: str) -> App | None:
    row = await conn.fetchrow(
        f"""
        SELECT {_APP_COLUMNS}
        FROM apps
        {lookup}
        """,
        value,
    )
    return App(**dict(row)) if row else None


async def select_app_retention_days(conn: Connection, app_id: str) -> int | None:
    """The app's own retention in days (None: the server default); KeyError if no app."""
    row = await conn.fetchrow(
        """
        SELECT retention_days
        FROM apps
        WHERE id = $1
        """,
        app_id,
    )
    if row is None:
        raise KeyError(app_id)
    return row["retention_days"]  # type: ignore[no-any-return]


async def update_app_retention_days(conn: Connection, app_id: str, days: int | None) -> bool:
    """Set (or clear, with None) the app's retention; False if there is no such app."""
    status = await conn.execute(
        """
        UPDATE apps
        SET retention_days = $2
        WHERE id = $1
        """,
        app_id,
        days,
    )
    return status.endswith(" 1")
