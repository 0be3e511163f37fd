"""SQL for the events table's partitions (migration 0012): open the next, find and drop old ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from web.core.queries.base import Connection

# Two sessions opening a partition at once would open two: the second waits, then sees the
# first's. (A constant of its own, unlike any other advisory lock key in the product.)
_OPEN_LOCK = 0x6C76_6470  # "lvdp"
# Partition names are made by open_log_entries_partition (or are the table from before
# partitions); anything else is refused rather than spliced into DDL.
_PARTITION_NAME = re.compile(r"^log_entries_(from_\d+|before_partitions)$")


@dataclass(frozen=True, slots=True)
class Partition:
    """A range of event ids [first_id, end_id) stored in one table, opened at `opened_at`.

    `dropped_at` is set once the table is gone while its receipts are still being deleted.
    """

    name: str
    first_id: int
    end_id: int
    opened_at: datetime
    dropped_at: datetime | None

    @property
    def table(self) -> str:
        """The partition's name, quoted for DDL; only names the product makes pass."""
        return partition_table(self.name)


def partition_table(name: str) -> str:
    """A partition's name, quoted for DDL; only names the product makes pass."""
    if not _PARTITION_NAME.match(name):
        raise ValueError(f"not an events partition: {name!r}")
    return f'"{name}"'


async def open_partition_if_due(
    conn: Connection, now: datetime, every_seconds: float
) -> str | None:
    """Open the next partition if the newest was opened `every_seconds` or more before `now`;
    returns its name, or None when none was due."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _OPEN_LOCK)
        due = await conn.fetchval(
            """
            SELECT coalesce(max(opened_at), '-infinity')
                   <= $1::timestamptz - make_interval(secs => $2)
            FROM log_entry_partitions
            WHERE dropped_at IS NULL
            """,
            now,
            every_seconds,
        )
        if not due:
            return None
        live = await select_live_partitions(conn)
        name: str = await conn.fetchval("SELECT open_log_entries_partition($1)", now)
        # The partition being written is left to fill page after page: a VACUUM would note
        # the bytes left at the end of each full page, and each smaller event would then go
        # to another old page, read and written whole to the WAL (issue 18: half the batch
        # throughput over a big history). The closed one is vacuumed as any other table.
        await set_autovacuum(conn, name, enabled=False)
        if live:
            await set_autovacuum(conn, live[-1], enabled=True)
    return name


async def select_live_partitions(conn: Connection) -> list[Partition]:
    """The partitions not dropped, oldest first: the last is the one being written."""
    return [p for p in await select_partitions(conn) if p.dropped_at is None]


async def set_autovacuum(conn: Connection, partition: Partition | str, enabled: bool) -> None:
    """Autovacuum off for a partition (the one being written), or back to the default."""
    table = partition.table if isinstance(partition, Partition) else partition_table(partition)
    setting = "RESET (autovacuum_enabled)" if enabled else "SET (autovacuum_enabled = off)"
    await conn.execute(f"ALTER TABLE {table} {setting}")


async def vacuum_partition(conn: Connection, partition: Partition) -> None:
    """VACUUM (ANALYZE) a closed partition: its visibility map and statistics, whether or
    not autovacuum runs."""
    await conn.execute(f"VACUUM (ANALYZE) {partition.table}")


async def analyze_partition(conn: Connection, partition: Partition) -> None:
    """Fresh statistics for the partition being written, which autovacuum leaves alone."""
    await conn.execute(f"ANALYZE {partition.table}")


async def select_partitions(conn: Connection) -> list[Partition]:
    """Every partition, oldest first."""
    rows = await conn.fetch(
        """
        SELECT name, first_id, end_id, opened_at, dropped_at
        FROM log_entry_partitions
        ORDER BY first_id
        """
    )
    return [Partition(**dict(row)) for row in rows]


async def select_newest_received(conn: Connection, partition: Partition) -> dict[str, datetime]:
    """Per app with events in the partition, the latest received_at among them: one probe of
    the partition's (app_id, received_at) index per app."""
    rows = await conn.fetch(
        f"""
        SELECT a.id AS app_id,
               (SELECT max(received_at) FROM {partition.table} WHERE app_id = a.id) AS newest
        FROM apps AS a
        """
    )
    return {row["app_id"]: row["newest"] for row in rows if row["newest"] is not None}


async def drop_partition(conn: Connection, partition: Partition, now: datetime) -> None:
    """Take the partition out of the events table and drop it; safe to repeat after a crash
    at any step. DETACH ... CONCURRENTLY waits for the readers that may see the partition
    but blocks neither them nor storage (a plain DROP would lock the whole table)."""
    await conn.execute(
        "UPDATE log_entry_partitions SET dropped_at = coalesce(dropped_at, $2) WHERE name = $1",
        partition.name,
        now,
    )
    state = await conn.fetchrow(
        """
        SELECT i.inhdetachpending AS pending
        FROM pg_class c
        LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'log_entries'::regclass
        WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace
        """,
        partition.name,
    )
    if state is None:
        return  # dropped already
    if state["pending"] is not None:
        how = "FINALIZE" if state["pending"] else "CONCURRENTLY"
        await conn.execute(f"ALTER TABLE log_entries DETACH PARTITION {partition.table} {how}")
    await conn.execute(f"DROP TABLE {partition.table}")


async def delete_partition_receipts(conn: Connection, partition: Partition, limit: int) -> int:
    """Delete up to `limit` receipts of the partition's ids; returns how many went."""
    deleted = await conn.fetchval(
        """
        WITH gone AS (
            DELETE FROM event_receipts
            WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM event_receipts
                WHERE entry_id >= $1 AND entry_id < $2
                LIMIT $3
            ))
            RETURNING 1
        )
        SELECT count(*) FROM gone
        """,
        partition.first_id,
        partition.end_id,
        limit,
    )
    return int(deleted)


async def forget_partition(conn: Connection, partition: Partition) -> None:
    """The partition and its receipts are gone: its row goes too."""
    await conn.execute("DELETE FROM log_entry_partitions WHERE name = $1", partition.name)
