"""SQL for counting RabbitMQ's redeliveries of a message that never finished (it has no count)."""

from __future__ import annotations

from datetime import datetime

from web.core.queries.base import Connection


async def count_message_delivery(conn: Connection, message_id: str) -> int:
    """Count one more delivery of a message that was delivered before; returns the count."""
    value = await conn.fetchval(
        """
        INSERT INTO message_deliveries (message_id, deliveries)
        VALUES ($1, 1)
        ON CONFLICT (message_id) DO UPDATE
        SET deliveries = message_deliveries.deliveries + 1, updated_at = now()
        RETURNING deliveries
        """,
        message_id,
    )
    return int(value)


async def delete_message_deliveries(conn: Connection, message_id: str) -> None:
    await conn.execute(
        """
        DELETE FROM message_deliveries
        WHERE message_id = $1
        """,
        message_id,
    )


async def delete_stale_message_deliveries(conn: Connection, before: datetime) -> int:
    status = await conn.execute(
        """
        DELETE FROM message_deliveries
        WHERE updated_at < $1
        """,
        before,
    )
    return int(status.rsplit(" ", 1)[1])
