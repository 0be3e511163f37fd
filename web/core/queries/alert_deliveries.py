"""SQL for alert deliveries: each alert sent once per channel, claimed, retried or given up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from web.core.queries.alerts import Alert
from web.core.queries.base import Connection


async def insert_alert_deliveries(
    conn: Connection, alert_ids: Sequence[int], channel: str, target: str, now: datetime
) -> None:
    await conn.execute(
        """
        INSERT INTO alert_deliveries (alert_id, channel, target, next_attempt_at)
        SELECT id, $2, $3, $4
        FROM unnest($1::bigint[]) AS id
        ON CONFLICT DO NOTHING
        """,
        list(alert_ids),
        channel,
        target,
        now,
    )


@dataclass(frozen=True, slots=True)
class AlertDelivery(Alert):
    """One alert to send on one channel, with what the message says."""

    alert_id: int
    channel: str
    target: str
    attempts: int
    app_id: str


async def claim_alert_delivery(
    conn: Connection, alert_id: int, channel: str, now: datetime, lease_seconds: float
) -> AlertDelivery | None:
    """Take a due delivery for `lease_seconds` (counting the attempt); None if it is sent,
    given up, not due, or another sender holds it."""
    row = await conn.fetchrow(
        """
        WITH claimed AS (
            UPDATE alert_deliveries
            SET attempts = attempts + 1,
                next_attempt_at = $3 + make_interval(secs => $4)
            WHERE alert_id = $1 AND channel = $2 AND sent_at IS NULL AND failed_at IS NULL
              AND next_attempt_at <= $3
            RETURNING alert_id, channel, target, attempts
        )
        SELECT c.alert_id, c.channel, c.target, c.attempts, a.app_id, a.kind, a.event_name,
               a.path, a.rule, a.message, a.invalid_count, a.total_count, a.window_start,
               a.created_at
        FROM claimed c
        JOIN alerts a ON a.id = c.alert_id
        """,
        alert_id,
        channel,
        now,
        lease_seconds,
    )
    return AlertDelivery(**dict(row)) if row else None


async def update_alert_delivery_sent(
    conn: Connection, alert_id: int, channel: str, now: datetime
) -> None:
    await conn.execute(
        """
        UPDATE alert_deliveries
        SET sent_at = $3, last_error = NULL
        WHERE alert_id = $1 AND channel = $2
        """,
        alert_id,
        channel,
        now,
    )


async def update_alert_delivery_failed(
    conn: Connection,
    alert_id: int,
    channel: str,
    error: str,
    *,
    retry_at: datetime | None,
    now: datetime,
) -> None:
    """Record a failed attempt: try again at retry_at, or give up when it is None."""
    await conn.execute(
        """
        UPDATE alert_deliveries
        SET last_error = $3,
            next_attempt_at = coalesce($4, next_attempt_at),
            failed_at = CASE WHEN $4::timestamptz IS NULL THEN $5::timestamptz END
        WHERE alert_id = $1 AND channel = $2 AND sent_at IS NULL
        """,
        alert_id,
        channel,
        error[:1000],
        retry_at,
        now,
    )


async def select_due_alert_deliveries(
    conn: Connection, now: datetime, limit: int
) -> list[tuple[int, str]]:
    """(alert id, channel) of deliveries waiting to be sent or retried, oldest first."""
    rows = await conn.fetch(
        """
        SELECT alert_id, channel
        FROM alert_deliveries
        WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
        ORDER BY next_attempt_at
        LIMIT $2
        """,
        now,
        limit,
    )
    return [(row["alert_id"], row["channel"]) for row in rows]
