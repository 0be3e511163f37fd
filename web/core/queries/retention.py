"""SQL for retention: when each app's events expire, and purging what has."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from web.core.queries.base import Connection
from web.core.queries.partitions import select_live_partitions
from web.core.queries.rollups import FORGET_RECEIPTS


async def select_retention_cutoffs(
    conn: Connection, default_days: int, now: datetime
) -> list[tuple[str, datetime]]:
    """(app id, received_at before which its events expire), for every app."""
    rows = await conn.fetch(
        """
        SELECT id, $2::timestamptz - make_interval(days => coalesce(retention_days, $1)) AS cutoff
        FROM apps
        ORDER BY id
        """,
        default_days,
        now,
    )
    return [(row["id"], row["cutoff"]) for row in rows]


async def delete_expired_log_entries(
    conn: Connection, app_id: str, before: datetime, limit: int
) -> int:
    """Delete up to `limit` of the app's events received before `before`; returns how many.

    The (app_id, received_at) index finds the oldest rows directly, so each call costs
    about `limit` rows whatever the table's size; SKIP LOCKED lets two purges share the
    work instead of waiting on each other.
    """
    deleted = await conn.fetchval(
        f"""
        WITH doomed AS (
            SELECT id
            FROM log_entries
            WHERE app_id = $1 AND received_at < $2
            ORDER BY received_at
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        ), gone AS (
            DELETE FROM log_entries e
            USING doomed
            WHERE e.id = doomed.id
            RETURNING e.id
        ), {FORGET_RECEIPTS}
        SELECT count(*) FROM gone
        """,
        app_id,
        before,
        limit,
    )
    return int(deleted)


async def delete_expired_share_alerts(conn: Connection, app_id: str, before: datetime) -> int:
    """Invalid-share alerts older than the app's events go with them; a failure
    fingerprint's alert is kept, so a fingerprint alerts once, ever."""
    status = await conn.execute(
        """
        DELETE FROM alerts
        WHERE app_id = $1 AND kind = 'invalid_share' AND created_at < $2
        """,
        app_id,
        before,
    )
    return int(status.rsplit(" ", 1)[1])


async def select_dead_log_entries(conn: Connection) -> int:
    """Rows deleted from the events table that no VACUUM has cleared yet (PostgreSQL's own
    count, kept across purge runs and restarts)."""
    dead = await conn.fetchval(
        """
        SELECT sum(n_dead_tup)
        FROM pg_stat_user_tables
        WHERE relid IN (SELECT relid FROM pg_partition_tree('log_entries') WHERE isleaf)
        """
    )
    return int(dead or 0)


async def vacuum_log_entries(conn: Connection, timeout_seconds: float) -> bool:
    """VACUUM (ANALYZE) the events (each partition but the one being written, which
    retention never purges and which fills in order, see open_partition_if_due) and their
    receipts: purged rows' space reusable, statistics fresh, the first read of a purged
    range fast, whether or not autovacuum runs. False if it took longer than
    `timeout_seconds` and was stopped (autovacuum, if on, finishes the job)."""
    closed = [p.table for p in await select_live_partitions(conn)][:-1]
    await conn.execute(f"SET statement_timeout = {int(timeout_seconds * 1000)}")
    try:
        await conn.execute(f"VACUUM (ANALYZE) {', '.join([*closed, 'event_receipts'])}")
    except asyncpg.QueryCanceledError:
        return False
    finally:
        await conn.execute("RESET statement_timeout")
    return True
