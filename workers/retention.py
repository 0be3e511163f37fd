"""Retention: drop expired partitions, delete the events left past their retention in chunks."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from web.core.queries.message_deliveries import delete_stale_message_deliveries
from web.core.queries.retention import (
    delete_expired_log_entries,
    delete_expired_share_alerts,
    select_dead_log_entries,
    select_retention_cutoffs,
    vacuum_log_entries,
)
from web.core.queries.rollups import advance_horizon
from workers.partitions import PARTITION_EVERY, PartitionReport, maintain_partitions

log = logging.getLogger("lvd.worker")

# A run stops after this long and asks to be run again at once: a Dramatiq message should
# not run for minutes (time limits, shutdowns), and other jobs get their turn.
RUN_BUDGET_SECONDS = 60.0
# Delivery counters of messages that stopped crashing long ago (RabbitMQ brokers only).
STALE_DELIVERIES = timedelta(days=1)
# Once a purge has finished and the events table holds at least this many deleted rows no
# VACUUM has cleared (this run's, or earlier runs' that ran out of time), it is vacuumed
# and analysed at once (issue 18: the first read of a purged range took 11 s until then).
VACUUM_AFTER_ROWS = 1_000
VACUUM_TIMEOUT_SECONDS = 300.0


@dataclass
class PurgeReport:
    deleted: int = 0
    chunks: int = 0
    seconds: float = 0.0
    finished: bool = True  # False: the budget ran out with expired events left
    vacuumed: bool = False  # the events table vacuumed and analysed after this purge
    per_app: dict[str, int] = field(default_factory=dict)
    partitions: PartitionReport = field(default_factory=PartitionReport)

    @property
    def rows_per_second(self) -> float:
        return self.deleted / self.seconds if self.seconds > 0 else 0.0


async def purge_expired(
    pool: asyncpg.Pool,
    *,
    default_days: int,
    batch_size: int,
    pause: float,
    budget: float = RUN_BUDGET_SECONDS,
    now: datetime | None = None,
) -> PurgeReport:
    """Drop the events partitions whose events all expired, then delete, `batch_size` rows
    per transaction, the events still kept more than a partition's span past their app's
    cutoff (workers/partitions.py says when those exist).

    Each chunk is a short transaction that finds its rows through the (app_id,
    received_at) index, so its cost does not grow with the table, locks are brief, and the
    pause between chunks leaves room for ingest and autovacuum.
    """
    now = now or datetime.now(UTC)
    report = PurgeReport()
    started = time.monotonic()
    async with pool.acquire() as conn:
        cutoffs = await select_retention_cutoffs(conn, default_days, now)
    report.partitions = await maintain_partitions(
        pool, dict(cutoffs), now, batch_size=batch_size, pause=pause, deadline=started + budget
    )
    for app_id, cutoff in cutoffs:
        if not report.partitions.finished or not await _purge_app(
            pool, app_id, cutoff - PARTITION_EVERY, report, batch_size, pause, started + budget
        ):
            report.finished = False
            report.seconds = time.monotonic() - started
            return report
    async with pool.acquire() as conn:
        await _tidy_up(conn, report, now)
    report.seconds = time.monotonic() - started
    if report.deleted or report.partitions.dropped:
        log.info(
            "Purged %d expired events in %d chunks (%.0f rows/s)%s, and dropped partitions %s: %s",
            report.deleted,
            report.chunks,
            report.rows_per_second,
            ", then vacuumed and analysed the table" if report.vacuumed else "",
            report.partitions.dropped,
            report.per_app,
        )
    return report


async def _purge_app(
    pool: asyncpg.Pool,
    app_id: str,
    cutoff: datetime,
    report: PurgeReport,
    batch_size: int,
    pause: float,
    deadline: float,
) -> bool:
    """Delete the app's events received before `cutoff`; False if the deadline (a
    time.monotonic() value) came first."""
    # First the counts: they stop at the hour after the cutoff before any row goes, so no
    # page ever counts a purged event (the rest of that hour is counted from rows).
    async with pool.acquire() as conn:
        await advance_horizon(conn, app_id, cutoff)
    while True:
        if time.monotonic() > deadline:
            return False
        async with pool.acquire() as conn:
            deleted = await delete_expired_log_entries(conn, app_id, cutoff, batch_size)
        if deleted:
            report.deleted += deleted
            report.chunks += 1
            report.per_app[app_id] = report.per_app.get(app_id, 0) + deleted
        if deleted < batch_size:
            break
        if pause:
            await asyncio.sleep(pause)
    async with pool.acquire() as conn:
        await delete_expired_share_alerts(conn, app_id, cutoff)
    return True


async def _tidy_up(conn: asyncpg.Connection, report: PurgeReport, now: datetime) -> None:
    """After a finished purge: stale delivery counts go, and the table is vacuumed when
    enough deleted rows wait for it."""
    await delete_stale_message_deliveries(conn, now - STALE_DELIVERIES)
    # This run's deletions, and earlier runs' in PostgreSQL's statistics (a backend reports
    # its own within about a second, so some of this run's may count twice: at worst a
    # VACUUM comes a little early).
    if report.deleted and (
        report.deleted + await select_dead_log_entries(conn) >= VACUUM_AFTER_ROWS
    ):
        report.vacuumed = await vacuum_log_entries(conn, VACUUM_TIMEOUT_SECONDS)
