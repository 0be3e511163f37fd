"""SQL for property statistics: a bounded sample of an app's recent payloads per event name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from web.core.queries.base import Connection

# The statement reads at most `recent` of the window's newest events, then keeps up to
# `per_event` of each name: a busy hour cannot make the plan page read a day of traffic.
_SAMPLE = """
SELECT event_name, payload, read
FROM (
    SELECT event_name, payload,
           row_number() OVER (PARTITION BY event_name ORDER BY id DESC) AS n,
           count(*) OVER () AS read
    FROM (
        SELECT id, event_name, payload
        FROM log_entries
        WHERE app_id = $1 AND received_at >= $2 AND event_name IS NOT NULL
        -- `id + 0`: found through (app_id, received_at), not by walking the primary key.
        ORDER BY id + 0 DESC
        LIMIT $4
    ) recent
) ranked
WHERE n <= $3
"""


@dataclass(frozen=True, slots=True)
class PayloadSample:
    """Recent payloads by event name (`kept` in all), and how many of the window's stored
    events were read to find them (at most the `recent` asked for)."""

    payloads: dict[str, list[dict[str, Any]]]
    kept: int
    read: int


async def select_recent_payloads(
    conn: Connection, app_id: str, since: datetime, per_event: int, recent: int
) -> PayloadSample:
    """Up to per_event payloads of each event name among the newest `recent` events received
    since `since`."""
    rows = await conn.fetch(_SAMPLE, app_id, since, per_event, recent)
    payloads: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        payloads.setdefault(row["event_name"], []).append(row["payload"])
    return PayloadSample(payloads, len(rows), rows[0]["read"] if rows else 0)
