"""SQL for dead letters: parking events that cannot be stored, and retrying them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from web.core.queries.base import Connection


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    message_id: str
    app_id: str | None
    event_id: str | None
    event: dict[str, Any]
    reason: str
    attempts: int
    created_at: datetime
    retried_at: datetime | None


_DEAD_LETTER_COLUMNS = (
    "id, message_id, app_id, event_id, event, reason, attempts, created_at, retried_at"
)


async def insert_dead_letters(
    conn: Connection, message_id: str, events: Sequence[dict[str, Any]], reason: str, attempts: int
) -> list[int]:
    rows = await conn.fetch(
        """
        INSERT INTO dead_letters (message_id, app_id, event_id, event, reason, attempts)
        SELECT $1, e ->> 'app_id', e ->> 'event_id', e, $3, $4
        FROM unnest($2::jsonb[]) AS e
        RETURNING id
        """,
        message_id,
        list(events),
        reason,
        attempts,
    )
    return [row["id"] for row in rows]


async def select_dead_letters(
    conn: Connection, *, pending_only: bool = True, limit: int = 100
) -> list[DeadLetter]:
    rows = await conn.fetch(
        f"""
        SELECT {_DEAD_LETTER_COLUMNS}
        FROM dead_letters
        WHERE NOT $1::boolean OR retried_at IS NULL
        ORDER BY id DESC
        LIMIT $2
        """,
        pending_only,
        limit,
    )
    return [DeadLetter(**dict(row)) for row in rows]


async def count_dead_letters(conn: Connection) -> int:
    value = await conn.fetchval(
        """
        SELECT count(*)
        FROM dead_letters
        WHERE retried_at IS NULL
        """
    )
    return int(value)


async def lock_pending_dead_letters(conn: Connection, ids: Sequence[int]) -> list[DeadLetter]:
    """Pending dead letters among ids, row-locked until the caller's transaction ends."""
    rows = await conn.fetch(
        f"""
        SELECT {_DEAD_LETTER_COLUMNS}
        FROM dead_letters
        WHERE id = ANY($1::bigint[]) AND retried_at IS NULL
        ORDER BY id
        FOR UPDATE SKIP LOCKED
        """,
        list(ids),
    )
    return [DeadLetter(**dict(row)) for row in rows]


async def mark_dead_letters_retried(conn: Connection, ids: Sequence[int]) -> None:
    await conn.execute(
        """
        UPDATE dead_letters
        SET retried_at = now()
        WHERE id = ANY($1::bigint[])
        """,
        list(ids),
    )
