"""workers/partitions.py and migration 0012, against real PostgreSQL: a partition a day,
exactly-once storage across partitions, and retention that drops whole partitions.

Each test has a database of its own: they move the partitions' clock.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import env_for, private_database, run_in_project
from tests.workers.test_retention import DAY, NOW, add_app, add_events, remaining
from web.core.db import create_pool
from web.core.queries.base import NewLogEntry
from web.core.queries.events import delete_log_entries, insert_log_entries, select_event_counts
from web.core.queries.partitions import (
    Partition,
    drop_partition,
    open_partition_if_due,
    select_partitions,
)
from web.core.settings import Settings
from workers.partitions import PARTITION_EVERY, maintain_partitions
from workers.retention import purge_expired


@pytest.fixture
async def db_url(service_urls: tuple[str, str]) -> AsyncIterator[str]:
    async with private_database(service_urls[0], "partitions") as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def _partitions(pool: asyncpg.Pool) -> list[Partition]:
    async with pool.acquire() as conn:
        return await select_partitions(conn)


async def _rotate(pool: asyncpg.Pool, opened_ago: timedelta) -> str:
    """The first partition dated back to before `opened_ago`, then a new one opened then."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE log_entry_partitions SET opened_at = $1"
            " WHERE first_id = (SELECT min(first_id) FROM log_entry_partitions)",
            NOW - opened_ago - PARTITION_EVERY,
        )
        name = await open_partition_if_due(conn, NOW - opened_ago, PARTITION_EVERY.total_seconds())
    assert name is not None
    return name


def _entry(app_id: str, event_id: str, payload: str = "{}") -> NewLogEntry:
    return NewLogEntry(app_id, event_id, "order_completed", payload, "valid", "[]", None, None, NOW)


async def _stored(pool: asyncpg.Pool, app_id: str) -> list[tuple[str, str, str]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_id, payload::text AS payload, tableoid::regclass::text AS part"
            " FROM log_entries WHERE app_id = $1 ORDER BY id",
            app_id,
        )
    return [(row["event_id"], row["payload"], row["part"]) for row in rows]


async def _receipts(pool: asyncpg.Pool, app_id: str) -> int:
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval("SELECT count(*) FROM event_receipts WHERE app_id = $1", app_id)
        )


async def test_a_new_partition_opens_each_day_and_new_ids_go_there(db: asyncpg.Pool) -> None:
    [first] = await _partitions(db)
    day = DAY.total_seconds()
    async with db.acquire() as conn:
        # The migration opened one: the next is due a day later, not before.
        assert await open_partition_if_due(conn, first.opened_at, day) is None
        assert await open_partition_if_due(conn, first.opened_at + DAY / 2, day) is None
        name = await open_partition_if_due(conn, first.opened_at + DAY, day)
        assert await open_partition_if_due(conn, first.opened_at + DAY, day) is None
    second = (await _partitions(db))[-1]
    assert name == second.name and second.first_id == first.end_id
    app_id = await add_app(db)
    async with db.acquire() as conn:
        [entry_id] = await insert_log_entries(conn, [_entry(app_id, "e1")])
    assert second.first_id <= entry_id < second.end_id
    assert entry_id < 2**53  # exact as a JavaScript number
    assert [part for *_, part in await _stored(db, app_id)] == [name]


async def test_the_partition_being_written_is_left_unvacuumed_until_the_next_opens(
    db: asyncpg.Pool,
) -> None:
    app_id = await add_app(db)
    await add_events(db, app_id, [DAY / 2 + timedelta(seconds=n) for n in range(500)])
    async with db.acquire() as conn:
        await conn.execute("UPDATE log_entry_partitions SET opened_at = $1", NOW - 2 * DAY)

    report = await purge_expired(db, default_days=7, batch_size=500, pause=0, now=NOW)

    closed, current = await _partitions(db)
    assert report.partitions.opened == current.name
    async with db.acquire() as conn:
        options = dict(
            await conn.fetch(
                "SELECT relname, reloptions FROM pg_class WHERE relname = ANY($1::text[])",
                [closed.name, current.name],
            )
        )
        stats = {
            row["relname"]: row
            for row in await conn.fetch(
                "SELECT relname, last_vacuum, last_analyze FROM pg_stat_user_tables"
                " WHERE relname = ANY($1::text[])",
                [closed.name, current.name],
            )
        }
    # Autovacuum is off for the partition being written and back on for the one it closed.
    assert options == {closed.name: None, current.name: ["autovacuum_enabled=off"]}
    # The run that opened it vacuumed the one it closed, and analysed the new one only.
    assert stats[closed.name]["last_vacuum"] and stats[closed.name]["last_analyze"]
    assert stats[current.name]["last_vacuum"] is None and stats[current.name]["last_analyze"]


async def test_an_event_is_stored_once_whichever_partition_its_retry_meets(
    db: asyncpg.Pool,
) -> None:
    app_id = await add_app(db)
    async with db.acquire() as conn:
        # Duplicates in one batch: the first one wins.
        batch = [_entry(app_id, "e1", '{"n": 1}'), _entry(app_id, "e1", '{"n": 2}')]
        assert len(await insert_log_entries(conn, batch)) == 1
    await _rotate(db, opened_ago=timedelta(0))
    retry = [_entry(app_id, "e1", '{"n": 3}'), _entry(app_id, "e2")]

    async def redeliver() -> list[int]:
        async with db.acquire() as conn, conn.transaction():
            return await insert_log_entries(conn, retry)

    # The same message redelivered to two workers at once, after the partition changed.
    first, second = await asyncio.gather(redeliver(), redeliver())
    assert sorted([len(first), len(second)]) == [0, 1]
    stored = await _stored(db, app_id)
    assert [(event_id, payload) for event_id, payload, _ in stored] == [
        ("e1", '{"n": 1}'),
        ("e2", "{}"),
    ]
    assert stored[0][2] != stored[1][2]  # in two partitions, yet e1 once
    assert await _receipts(db, app_id) == 2
    # A reset forgets the events and their receipts: the same ids may be stored again.
    async with db.acquire() as conn:
        assert await delete_log_entries(conn, app_id) == 2
        assert await _receipts(db, app_id) == 0
        assert len(await insert_log_entries(conn, retry)) == 2


async def _tree_bytes(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT sum(pg_total_relation_size(relid))"
                " FROM pg_partition_tree('log_entries') WHERE isleaf"
            )
        )


async def test_retention_drops_a_partition_whose_events_all_expired(db: asyncpg.Pool) -> None:
    app_id = await add_app(db)  # the default retention: 7 days
    await add_events(db, app_id, [20 * DAY + timedelta(seconds=n) for n in range(2000)])
    old = (await _partitions(db))[0]
    await _rotate(db, opened_ago=19 * DAY)
    await add_events(db, app_id, [DAY, 2 * DAY])
    before = await _tree_bytes(db)

    report = await purge_expired(db, default_days=7, batch_size=500, pause=0, now=NOW)

    assert report.partitions.dropped == [old.name] and report.finished
    assert report.deleted == 0  # nothing deleted row by row
    assert report.partitions.receipts_deleted == 2000
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT to_regclass($1)", old.name) is None
        counts = await select_event_counts(conn, app_id)
    assert old.name not in [p.name for p in await _partitions(db)]
    assert len(await remaining(db, app_id)) == 2 == await _receipts(db, app_id)
    # The counts stopped at the hour after the dropped events: none of them is counted.
    assert sum(count.count for count in counts) == 2
    assert await _tree_bytes(db) < before  # the table shrank
    again = await purge_expired(db, default_days=7, batch_size=500, pause=0, now=NOW)
    assert (again.partitions.dropped, again.deleted) == ([], 0)


async def test_a_partition_is_kept_while_one_of_its_events_is_within_retention(
    db: asyncpg.Pool,
) -> None:
    short_app = await add_app(db)  # 7 days
    long_app = await add_app(db, retention_days=30)
    await add_events(db, short_app, [20 * DAY, 21 * DAY])
    await add_events(db, long_app, [20 * DAY])
    await _rotate(db, opened_ago=19 * DAY)

    report = await purge_expired(db, default_days=7, batch_size=500, pause=0, now=NOW)

    assert report.partitions.dropped == []
    # The short app's events go row by row instead, with their receipts.
    assert report.per_app == {short_app: 2}
    assert await remaining(db, short_app) == [] and await _receipts(db, short_app) == 0
    assert len(await remaining(db, long_app)) == 1 == await _receipts(db, long_app)


async def test_a_partition_is_dropped_only_after_its_successor_settled(
    db: asyncpg.Pool,
) -> None:
    app_id = await add_app(db)
    # Expired, but within a partition's span of its retention: left to the partition's drop.
    await add_events(db, app_id, [7.5 * DAY])
    # The next partition opened a minute ago: a statement holding an id of the old one may
    # still be storing there.
    await _rotate(db, opened_ago=timedelta(minutes=1))
    report = await purge_expired(db, default_days=7, batch_size=500, pause=0, now=NOW)
    assert report.partitions.dropped == [] and report.deleted == 0
    assert len(await remaining(db, app_id)) == 1


async def test_a_drop_cut_short_is_finished_by_the_next_run(db: asyncpg.Pool) -> None:
    app_id = await add_app(db)
    await add_events(db, app_id, [20 * DAY + timedelta(seconds=n) for n in range(30)])
    old = (await _partitions(db))[0]
    await _rotate(db, opened_ago=19 * DAY)
    async with db.acquire() as conn:
        await drop_partition(conn, old, NOW)
        await drop_partition(conn, old, NOW)  # again, as after a crash: nothing left to do
    assert await _receipts(db, app_id) == 30  # the crash came before the receipts went
    report = await maintain_partitions(
        db, {}, NOW, batch_size=7, pause=0, deadline=time.monotonic() + 60
    )
    assert report.receipts_deleted == 30 and report.finished
    assert await _receipts(db, app_id) == 0
    assert old.name not in [p.name for p in await _partitions(db)]


async def test_receipts_stay_while_a_dropped_partition_is_still_attached(
    db: asyncpg.Pool,
) -> None:
    # The drop was recorded, then its DETACH failed (cancelled, say): the next run finishes
    # the drop before it deletes the receipts, never the other way round.
    app_id = await add_app(db)
    await add_events(db, app_id, [20 * DAY + timedelta(seconds=n) for n in range(5)])
    old = (await _partitions(db))[0]
    await _rotate(db, opened_ago=19 * DAY)
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE log_entry_partitions SET dropped_at = $2 WHERE name = $1", old.name, NOW
        )
    report = await maintain_partitions(
        db, {}, NOW, batch_size=100, pause=0, deadline=time.monotonic() + 60
    )
    assert report.receipts_deleted == 5
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT to_regclass($1)", old.name) is None
    assert await remaining(db, app_id) == [] and await _receipts(db, app_id) == 0


async def test_lvd_purge_opens_todays_partition_and_drops_expired_ones(
    db: asyncpg.Pool, db_url: str
) -> None:
    app_id = await add_app(db)
    await add_events(db, app_id, [20 * DAY])
    old = (await _partitions(db))[0]
    await _rotate(db, opened_ago=19 * DAY)
    result = await asyncio.to_thread(
        run_in_project,
        [str(Path(sys.executable).parent / "lvd"), "purge"],
        env_for(Settings(database_url=db_url)),
    )
    assert result.returncode == 0, result.stderr
    assert "Opened the events partition log_entries_from_" in result.stdout
    assert f"Dropped the events partition {old.name}: its events had all expired" in result.stdout
    assert await remaining(db, app_id) == []
