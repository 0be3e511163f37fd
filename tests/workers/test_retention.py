"""workers/retention.py and the periodic-job schedule, against real PostgreSQL.

A database of this module's own: the purge deletes every app's old rows, and the shared
database holds other tests' rows dated 2025.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest

from tests.conftest import env_for, private_database, run_in_project
from web.core import apps
from web.core.db import create_pool
from web.core.queries.alerts import insert_invalid_share_alert
from web.core.queries.apps import update_app_retention_days
from web.core.queries.base import NewLogEntry
from web.core.queries.events import insert_log_entries
from web.core.queries.message_deliveries import count_message_delivery
from web.core.queries.partitions import open_partition_if_due
from web.core.queries.scheduled_jobs import claim_scheduled_job, update_scheduled_job_due
from web.core.settings import Settings
from workers.partitions import PARTITION_EVERY
from workers.retention import VACUUM_AFTER_ROWS, PurgeReport, purge_expired

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
async def retention_db(service_urls: tuple[str, str]) -> AsyncIterator[str]:
    async with private_database(service_urls[0], "retention") as url:
        yield url


@pytest.fixture(scope="module")
async def retention_pool(retention_db: str) -> AsyncIterator[asyncpg.Pool]:
    db_pool = await create_pool(retention_db, min_size=1, max_size=4)
    yield db_pool
    await db_pool.close()


@pytest.fixture
async def empty(retention_pool: asyncpg.Pool) -> None:
    async with retention_pool.acquire() as conn:
        await conn.execute("TRUNCATE log_entries, apps, message_deliveries, scheduled_jobs CASCADE")


async def add_app(pool: asyncpg.Pool, retention_days: int | None = None) -> str:
    app_id = f"ret-{uuid.uuid4().hex[:10]}"
    async with pool.acquire() as conn:
        await apps.add_app(conn, app_id, None)
        assert await update_app_retention_days(conn, app_id, retention_days)
    return app_id


async def add_events(pool: asyncpg.Pool, app_id: str, ages: list[timedelta]) -> None:
    """Events received `age` before NOW, in one statement per 5000."""
    entries = [
        NewLogEntry(
            app_id=app_id,
            event_id=uuid.uuid4().hex,
            event_name=f"age-{age.total_seconds():.0f}",
            payload=orjson.dumps({"n": n}).decode(),
            status="valid",
            errors="[]",
            plan_version=None,
            session=None,
            received_at=NOW - age,
        )
        for n, age in enumerate(ages)
    ]
    async with pool.acquire() as conn:
        for start in range(0, len(entries), 5000):
            await insert_log_entries(conn, entries[start : start + 5000])


async def remaining(pool: asyncpg.Pool, app_id: str) -> list[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_name FROM log_entries WHERE app_id = $1 ORDER BY received_at DESC",
            app_id,
        )
    return [row["event_name"] for row in rows]


# Events are kept a partition's span (PARTITION_EVERY, a day) past their retention before
# they are deleted row by row: 2.5 days is past a one-day retention by more than that.
AGES = [DAY / 2, 2.5 * DAY, 10 * DAY, 40 * DAY]


def names(*ages: timedelta) -> list[str]:
    return [f"age-{age.total_seconds():.0f}" for age in ages]


async def test_purge_expired_keeps_each_apps_retention(
    retention_pool: asyncpg.Pool, empty: None
) -> None:
    default_app = await add_app(retention_pool)
    long_app = await add_app(retention_pool, retention_days=30)
    short_app = await add_app(retention_pool, retention_days=1)
    for app_id in (default_app, long_app, short_app):
        await add_events(retention_pool, app_id, AGES)
    report = await purge_expired(retention_pool, default_days=7, batch_size=100, pause=0, now=NOW)
    assert await remaining(retention_pool, default_app) == names(DAY / 2, 2.5 * DAY)
    assert await remaining(retention_pool, long_app) == names(DAY / 2, 2.5 * DAY, 10 * DAY)
    assert await remaining(retention_pool, short_app) == names(DAY / 2)
    assert report.per_app == {default_app: 2, long_app: 1, short_app: 3}
    assert (report.deleted, report.finished) == (6, True)
    # A second run finds nothing left to do.
    again = await purge_expired(retention_pool, default_days=7, batch_size=100, pause=0, now=NOW)
    assert (again.deleted, again.chunks) == (0, 0)


async def test_purge_expired_deletes_in_chunks_of_batch_size(
    retention_pool: asyncpg.Pool, empty: None
) -> None:
    app_id = await add_app(retention_pool)
    old = [9 * DAY + timedelta(seconds=n) for n in range(3000)]
    await add_events(retention_pool, app_id, old + [timedelta(seconds=n) for n in range(50)])
    # As in production, the purged rows lie in a closed partition: the next one opens.
    async with retention_pool.acquire() as conn:
        await conn.execute(
            "UPDATE log_entry_partitions SET opened_at = opened_at - $1::interval", 2 * DAY
        )
        assert await open_partition_if_due(conn, NOW, PARTITION_EVERY.total_seconds())
    report = await purge_expired(
        retention_pool, default_days=7, batch_size=500, pause=0.001, now=NOW
    )
    assert (report.deleted, report.chunks, report.finished) == (3000, 6, True)
    assert len(await remaining(retention_pool, app_id)) == 50
    # A purge this large vacuums and analyses the table itself, autovacuum or not: every
    # partition but the one being written, which is analysed only (open_partition_if_due).
    assert report.vacuumed
    async with retention_pool.acquire() as conn:
        stats = await conn.fetch(
            "SELECT p.name, s.last_vacuum, s.last_analyze FROM log_entry_partitions p"
            " JOIN pg_stat_user_tables s ON s.relname = p.name"
            " WHERE p.dropped_at IS NULL ORDER BY p.first_id"
        )
    *closed, current = stats
    assert closed and all(row["last_vacuum"] and row["last_analyze"] for row in closed)
    assert current["last_vacuum"] is None and current["last_analyze"]
    print(
        f"FIGURE: retention: purged {report.deleted} rows in {report.chunks} chunks of 500"
        f" in {report.seconds:.3f} s = {report.rows_per_second:.0f} rows/s",
        flush=True,
    )


async def purge_cut_short(
    pool: asyncpg.Pool, *, expired: int, budget: float
) -> tuple[str, PurgeReport]:
    """An app with `expired` events past its retention, and the report of a purge run whose
    budget (in seconds; chunks of 100 with pauses of 50 ms) ends it before it is done."""
    app_id = await add_app(pool)
    await add_events(pool, app_id, [9 * DAY + timedelta(seconds=n) for n in range(expired)])
    first = await purge_expired(
        pool, default_days=7, batch_size=100, pause=0.05, budget=budget, now=NOW
    )
    return app_id, first


async def test_purge_expired_stops_at_its_budget_and_resumes(
    retention_pool: asyncpg.Pool, empty: None
) -> None:
    app_id, first = await purge_cut_short(retention_pool, expired=600, budget=0.08)
    assert not first.finished
    assert 0 < first.deleted < 600
    rest = await purge_expired(retention_pool, default_days=7, batch_size=100, pause=0, now=NOW)
    assert rest.finished and first.deleted + rest.deleted == 600
    assert await remaining(retention_pool, app_id) == []


async def test_a_purge_finishing_what_earlier_runs_began_vacuums_their_rows_too(
    retention_pool: asyncpg.Pool, empty: None
) -> None:
    _, first = await purge_cut_short(retention_pool, expired=1200, budget=0.3)
    assert not first.finished and not first.vacuumed
    await asyncio.sleep(1.5)  # a backend reports its deletions to the statistics within ~1 s
    rest = await purge_expired(retention_pool, default_days=7, batch_size=100, pause=0, now=NOW)
    # Fewer than VACUUM_AFTER_ROWS this run, but the table holds the first run's too.
    assert rest.finished and rest.deleted < VACUUM_AFTER_ROWS <= first.deleted + rest.deleted
    assert rest.vacuumed


async def test_purge_expired_drops_old_share_alerts_and_stale_delivery_counts(
    retention_pool: asyncpg.Pool, empty: None
) -> None:
    app_id = await add_app(retention_pool, retention_days=2)
    async with retention_pool.acquire() as conn:
        for age, key in ((3.5 * DAY, "old"), (DAY, "new")):
            await insert_invalid_share_alert(
                conn,
                app_id,
                dedupe_key=key,
                invalid=5,
                total=6,
                window_start=NOW - age,
                now=NOW - age,
            )
        await conn.execute(
            "INSERT INTO alerts (app_id, kind, dedupe_key, created_at)"
            " VALUES ($1, 'new_failure', 'fingerprint', $2)",
            app_id,
            NOW - 30 * DAY,
        )
        assert await count_message_delivery(conn, "stale") == 1
        assert await count_message_delivery(conn, "fresh") == 1
        await conn.execute(
            "UPDATE message_deliveries SET updated_at = now() - interval '2 days'"
            " WHERE message_id = 'stale'"
        )
    await purge_expired(retention_pool, default_days=7, batch_size=100, pause=0, now=NOW)
    async with retention_pool.acquire() as conn:
        keys = {r["dedupe_key"] for r in await conn.fetch("SELECT dedupe_key FROM alerts")}
        counted = {r["message_id"] for r in await conn.fetch("SELECT * FROM message_deliveries")}
    # A fingerprint's alert stays: it alerts once, ever.
    assert keys == {"new", "fingerprint"}
    assert counted == {"fresh"}


async def test_lvd_purge_command_deletes_expired_events(
    retention_pool: asyncpg.Pool, retention_db: str, empty: None
) -> None:
    app_id = await add_app(retention_pool, retention_days=3)
    await add_events(retention_pool, app_id, [DAY, 4.5 * DAY, 5 * DAY])
    settings = Settings(database_url=retention_db)
    result = await asyncio.to_thread(
        run_in_project,
        [str(Path(sys.executable).parent / "lvd"), "purge", "--batch-size", "1"],
        env_for(settings),
    )
    assert result.returncode == 0, result.stderr
    assert "Purged 2 expired events in 2 chunks" in result.stdout
    assert f"{app_id}: 2" in result.stdout


# ---------------------------------------------------------------- the schedule


async def test_claim_scheduled_job_first_schedules_then_claims_once_per_interval(
    retention_pool: asyncpg.Pool, empty: None
) -> None:
    async def claim() -> bool:
        async with retention_pool.acquire() as conn:
            return await claim_scheduled_job(conn, "job", 3600)

    # The first look only schedules: a fresh install purges an interval after it starts.
    assert await claim() is False
    assert await claim() is False
    async with retention_pool.acquire() as conn:
        await update_scheduled_job_due(conn, "job")
    # Many processes look at once: exactly one enqueues.
    claims = await asyncio.gather(*(claim() for _ in range(8)))
    assert claims.count(True) == 1
    assert await claim() is False
    async with retention_pool.acquire() as conn:
        due_at = await conn.fetchval("SELECT due_at FROM scheduled_jobs WHERE name = 'job'")
    assert timedelta(minutes=59) < due_at - datetime.now(UTC) <= timedelta(hours=1)
