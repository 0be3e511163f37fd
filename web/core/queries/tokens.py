"""SQL for API tokens: create, find by digest, list, revoke, and mark as used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from web.core.queries.base import Connection

_COLUMNS = """
    id, name, prefix, scope, app_id, created_by, created_at, last_used_at, revoked_at
"""


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token as stored: never the token itself, only what identifies and limits it."""

    id: int
    name: str
    prefix: str
    scope: str
    app_id: str | None
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


async def insert_token(
    conn: Connection,
    *,
    name: str,
    token_hash: str,
    prefix: str,
    scope: str,
    app_id: str | None,
    created_by: str | None,
) -> ApiToken:
    row = await conn.fetchrow(
        f"""
        INSERT INTO api_tokens (name, token_hash, prefix, scope, app_id, created_by)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING {_COLUMNS}
        """,
        name,
        token_hash,
        prefix,
        scope,
        app_id,
        created_by,
    )
    return ApiToken(**dict(row))


@dataclass(frozen=True, slots=True)
class FoundToken:
    """A token looked up by its digest, and whether its last_used_at is due to be written
    (judged on the database's clock, the one that wrote it)."""

    token: ApiToken
    touch_due: bool


async def select_token_by_hash(
    conn: Connection, token_hash: str, touch_interval_seconds: float
) -> FoundToken | None:
    """The token with this digest, revoked or not (the caller decides)."""
    row = await conn.fetchrow(
        f"""
        SELECT {_COLUMNS},
               (last_used_at IS NULL
                OR last_used_at < now() - make_interval(secs => $2)) AS touch_due
        FROM api_tokens
        WHERE token_hash = $1
        """,
        token_hash,
        touch_interval_seconds,
    )
    if row is None:
        return None
    fields = dict(row)
    touch_due = bool(fields.pop("touch_due"))
    return FoundToken(ApiToken(**fields), touch_due)


async def select_tokens(conn: Connection) -> list[ApiToken]:
    """Every token, newest first; revoked ones too, so a list shows what was revoked."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS}
        FROM api_tokens
        ORDER BY id DESC
        """
    )
    return [ApiToken(**dict(row)) for row in rows]


async def revoke_token(conn: Connection, token_id: int) -> bool:
    """Revoke the token (once: a second revocation keeps the first time); False when there
    is no token with this id."""
    row = await conn.fetchrow(
        """
        UPDATE api_tokens
        SET revoked_at = coalesce(revoked_at, now())
        WHERE id = $1
        RETURNING id
        """,
        token_id,
    )
    return row is not None


async def touch_token(conn: Connection, token_id: int, min_interval_seconds: float) -> None:
    """Set last_used_at to now unless it was set less than `min_interval_seconds` ago.

    The condition is checked in the statement, so processes that use a token at the same
    moment write it once between them.
    """
    await conn.execute(
        """
        UPDATE api_tokens
        SET last_used_at = now()
        WHERE id = $1
          AND (last_used_at IS NULL
               OR last_used_at < now() - make_interval(secs => $2))
        """,
        token_id,
        min_interval_seconds,
    )
