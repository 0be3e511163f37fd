"""SQL for device pairings: a QA session's short code, created, looked up while it lasts, purged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from web.core.queries.base import Connection

_COLUMNS = "code, app_id, session, created_at, expires_at"


@dataclass(frozen=True, slots=True)
class Pairing:
    """A QA session paired with a short code: /p/<code> shows the session live until it expires."""

    code: str
    app_id: str
    session: str
    created_at: datetime
    expires_at: datetime


async def insert_pairing(
    conn: Connection, *, code: str, app_id: str, session: str, days: int
) -> Pairing | None:
    """A new pairing valid for `days` from now (the database's clock); None when the code is
    taken (the caller draws another)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO pairings (code, app_id, session, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(days => $4))
        ON CONFLICT (code) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        code,
        app_id,
        session,
        days,
    )
    return Pairing(**dict(row)) if row else None


async def select_live_pairing(conn: Connection, code: str) -> Pairing | None:
    """The pairing with this code, unless there is none or it has expired."""
    row = await conn.fetchrow(
        f"""
        SELECT {_COLUMNS}
        FROM pairings
        WHERE code = $1 AND expires_at > now()
        """,
        code,
    )
    return Pairing(**dict(row)) if row else None


async def delete_expired_pairings(conn: Connection) -> int:
    """Forget pairings that have expired; how many went."""
    status = await conn.execute("DELETE FROM pairings WHERE expires_at <= now()")
    return int(status.split()[-1])


async def select_live_pairings(conn: Connection, app_id: str, limit: int) -> list[Pairing]:
    """An app's pairings that have not expired, newest first."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS}
        FROM pairings
        WHERE app_id = $1 AND expires_at > now()
        ORDER BY created_at DESC, code
        LIMIT $2
        """,
        app_id,
        limit,
    )
    return [Pairing(**dict(row)) for row in rows]
