"""The events table's partitions: open a new one each day, drop those whose events all expired.

Retention's cheap path (issue 18): a partition whose every event is past its app's
retention is dropped whole, so the table shrinks and nothing is deleted row by row. Events
therefore stay up to one partition's span (a day) beyond their retention; the row-by-row
purge (workers/retention.py) only takes events older than that, which exist when an app
keeps its events for less time than another app sharing the partition.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from web.core.queries.partitions import (
    Partition,
    analyze_partition,
    delete_partition_receipts,
    drop_partition,
    forget_partition,
    open_partition_if_due,
    select_live_partitions,
    select_newest_received,
    select_partitions,
    vacuum_partition,
)
from web.core.queries.rollups import advance_horizon

log = logging.getLogger("lvd.worker")

# A new partition every day: the span an event may outlive its retention by.
PARTITION_EVERY = timedelta(days=1)
# A statement that took an id just before the next partition opened may still be storing
# into the previous one: a partition is dropped only this long after its successor opened.
SETTLE = timedelta(minutes=10)


@dataclass
class PartitionReport:
    opened: str | None = None
    dropped: list[str] = field(default_factory=list)
    receipts_deleted: int = 0
    finished: bool = True  # False: the deadline came with receipts left to delete


async def maintain_partitions(
    pool: asyncpg.Pool,
    cutoffs: dict[str, datetime],
    now: datetime,
    *,
    batch_size: int,
    pause: float,
    deadline: float,
) -> PartitionReport:
    """Open today's partition if due, then drop every closed partition whose events have
    all expired (`cutoffs`: app -> received_at before which its events expire)."""
    report = PartitionReport()
    async with pool.acquire() as conn:
        report.opened = await open_partition_if_due(conn, now, PARTITION_EVERY.total_seconds())
        live = await select_live_partitions(conn)
    if report.opened:
        log.info("Opened the events partition %s", report.opened)
    await _tend_statistics(pool, live, vacuum_closed=report.opened is not None)
    for partition, successor in itertools.pairwise(live):
        if successor.opened_at > now - SETTLE:
            break
        async with pool.acquire() as conn:
            if await _drop_if_expired(conn, partition, cutoffs, now):
                report.dropped.append(partition.name)
    for partition in await _dropped(pool):
        # A drop that failed half-way (a crash, a cancelled DETACH) is finished first: the
        # receipts of events still stored must never go.
        async with pool.acquire() as conn:
            await drop_partition(conn, partition, now)
        if not await _delete_receipts(pool, partition, report, batch_size, pause, deadline):
            report.finished = False
            break
    return report


async def _tend_statistics(
    pool: asyncpg.Pool, live: list[Partition], *, vacuum_closed: bool
) -> None:
    """Fresh statistics for the partition being written, which autovacuum leaves alone
    (open_partition_if_due says why); on the day one closes, its VACUUM (ANALYZE)."""
    async with pool.acquire() as conn:
        if vacuum_closed and len(live) >= 2:
            await vacuum_partition(conn, live[-2])
        if live:
            await analyze_partition(conn, live[-1])


async def _drop_if_expired(
    conn: asyncpg.Connection, partition: Partition, cutoffs: dict[str, datetime], now: datetime
) -> bool:
    """Drop the partition if none of its events is within its app's retention. Each app's
    counts first stop at the hour after its newest event there, so no page ever counts a
    dropped event (rows before that hour left elsewhere are counted from the rows)."""
    newest = await select_newest_received(conn, partition)
    if any(app in cutoffs and last >= cutoffs[app] for app, last in newest.items()):
        return False
    for app, last in newest.items():
        await advance_horizon(conn, app, last + timedelta(microseconds=1))
    await drop_partition(conn, partition, now)
    log.info("Dropped the events partition %s (events of %d apps)", partition.name, len(newest))
    return True


async def _dropped(pool: asyncpg.Pool) -> list[Partition]:
    async with pool.acquire() as conn:
        return [p for p in await select_partitions(conn) if p.dropped_at is not None]


async def _delete_receipts(
    pool: asyncpg.Pool,
    partition: Partition,
    report: PartitionReport,
    batch_size: int,
    pause: float,
    deadline: float,
) -> bool:
    """The dropped partition's receipts, a chunk per transaction; then its row. False if the
    deadline (a time.monotonic() value) came first."""
    while True:
        if time.monotonic() > deadline:
            return False
        async with pool.acquire() as conn:
            deleted = await delete_partition_receipts(conn, partition, batch_size)
        report.receipts_deleted += deleted
        if deleted < batch_size:
            break
        if pause:
            await asyncio.sleep(pause)
    async with pool.acquire() as conn:
        await forget_partition(conn, partition)
    return True
