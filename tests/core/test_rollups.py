"""The rollups (migration 0010) against real PostgreSQL: every count they serve equals a
count of the rows, over random events, redelivered batches, concurrent writers, resets,
purges and the migration's backfill.

A database of this module's own: the purge deletes every app's old rows.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from tests.conftest import private_pool
from web.core import apps
from web.core.db import migration_files
from web.core.filters import EventFilter
from web.core.queries.apps import select_app_summaries, update_app_retention_days
from web.core.queries.base import NewLogEntry
from web.core.queries.dashboard import select_name_activity, select_violation_groups
from web.core.queries.events import (
    delete_log_entries,
    insert_log_entries,
    insert_log_entries_and_notify,
    select_event_counts,
)
from web.core.queries.filtering import Params, filter_sql
from web.core.queries.rollups import ceil_hour, floor_hour
from web.core.queries.snowplow import delete_snowplow_events
from workers.retention import purge_expired

NOW = datetime.now(UTC)
NAMES = ("checkout", "login", "search", None)
SESSIONS = (None, None, None, "qa-1", "qa-2")
FAILURES = (("/price", "type"), ("/currency", "enum"), ("/eventName", "required"))


@pytest.fixture(scope="module")
async def rollup_pool(service_urls: tuple[str, str]) -> AsyncIterator[asyncpg.Pool]:
    async with private_pool(service_urls[0], "rollups", max_size=4) as db_pool:
        yield db_pool


async def new_app(pool: asyncpg.Pool) -> str:
    app_id = f"roll-{uuid.uuid4().hex[:10]}"
    async with pool.acquire() as conn:
        await apps.add_app(conn, app_id, None)
    return app_id


def random_event(rng: random.Random, app_id: str, span: timedelta) -> NewLogEntry:
    errors = []
    for path, rule in FAILURES:
        if rng.random() < 0.2:
            severity = "warning" if rng.random() < 0.2 else "error"
            errors.append(
                {
                    "path": path,
                    "rule": rule,
                    "message": f"{path} breaks {rule}",
                    "severity": severity,
                }
            )
    invalid = any(error["severity"] == "error" for error in errors)
    payload = {"tv": "js-3", "e": "se", "eid": "x"} if rng.random() < 0.1 else {"n": 1}
    return NewLogEntry(
        app_id,
        uuid.uuid4().hex,
        rng.choice(NAMES),
        orjson.dumps(payload).decode(),
        "invalid" if invalid else "valid",
        orjson.dumps(errors).decode(),
        None,
        rng.choice(SESSIONS),
        NOW - span * rng.random(),
    )


async def store_randomly(
    pool: asyncpg.Pool, rng: random.Random, entries: Sequence[NewLogEntry]
) -> None:
    """In batches of random size, each sent a second time now and then (a redelivery)."""
    async with pool.acquire() as conn:
        start = 0
        while start < len(entries):
            batch = list(entries[start : start + rng.randint(1, 300)])
            await insert_log_entries_and_notify(conn, batch, "lvd_rollup_test")
            if rng.random() < 0.3:
                await insert_log_entries(conn, batch)
            start += len(batch)


async def app_with_events(
    pool: asyncpg.Pool, rng: random.Random, count: int, span: timedelta
) -> tuple[str, list[NewLogEntry]]:
    """A new app and `count` random events of it over the `span` before NOW, stored."""
    app_id = await new_app(pool)
    entries = [random_event(rng, app_id, span) for _ in range(count)]
    await store_randomly(pool, rng, entries)
    return app_id, entries


# ---- the rows counted directly: what the pages answered before the rollups -----------------


async def raw_counts(conn: Any, app_id: str, filters: EventFilter) -> list[tuple[Any, ...]]:
    params = Params()
    app = params.add(app_id)
    rows = await conn.fetch(
        f"""
        SELECT event_name, validation_status, count(*)
        FROM log_entries
        WHERE app_id = {app} AND {filter_sql(filters, params)}
        GROUP BY 1, 2
        ORDER BY 3 DESC, 1, 2
        """,
        *params.values,
    )
    return [tuple(row) for row in rows]


async def raw_activity(conn: Any, app_id: str, filters: EventFilter) -> list[tuple[Any, ...]]:
    params = Params()
    app = params.add(app_id)
    rows = await conn.fetch(
        f"""
        SELECT event_name, count(*),
               count(*) FILTER (WHERE validation_status = 'invalid'),
               min(received_at), max(received_at)
        FROM log_entries
        WHERE app_id = {app} AND {filter_sql(filters, params)}
        GROUP BY event_name
        ORDER BY event_name NULLS FIRST
        """,
        *params.values,
    )
    return [tuple(row) for row in rows]


# The violations query as it was before the rollups (without its scan limit).
RAW_VIOLATIONS = """
    WITH failures AS (
        SELECT r.event_name,
               coalesce(e ->> 'path', '') AS path,
               coalesce(e ->> 'rule', '') AS rule,
               CASE WHEN e ->> 'severity' = 'warning' THEN 'warning' ELSE 'error' END
                   AS severity,
               coalesce(e ->> 'message', '') AS message,
               r.received_at
        FROM log_entries r
        CROSS JOIN LATERAL jsonb_array_elements(r.errors) AS e
        WHERE r.app_id = $1 AND r.received_at >= $2
    ), bucketed AS (
        SELECT event_name, path, rule, severity,
               floor(extract(epoch FROM received_at - $3)::float8 / $4::float8)::integer AS bucket,
               count(*) AS n
        FROM failures
        WHERE received_at >= $3
        GROUP BY 1, 2, 3, 4, 5
    )
    SELECT f.event_name, f.path, f.rule, f.severity,
           count(*) FILTER (WHERE received_at >= $3) AS count,
           min(received_at) AS first_seen,
           max(received_at) AS last_seen,
           (array_agg(message ORDER BY received_at DESC))[1] AS message,
           (SELECT jsonb_object_agg(bucket, n) FROM bucketed b
            WHERE b.event_name IS NOT DISTINCT FROM f.event_name
              AND b.path = f.path AND b.rule = f.rule AND b.severity = f.severity) AS buckets
    FROM failures f
    GROUP BY 1, 2, 3, 4
    HAVING count(*) FILTER (WHERE received_at >= $3) > 0
    ORDER BY severity, count DESC, last_seen DESC, 1, 2, 3
"""


async def assert_counts_match_rows(pool: asyncpg.Pool, app_id: str, rng: random.Random) -> None:
    """Every rollup-backed answer equals the same question put to the rows."""
    async with pool.acquire() as conn:
        summaries = {s.app.id: (s.total, s.invalid) for s in await select_app_summaries(conn)}
        total, invalid = await conn.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE validation_status = 'invalid')"
            " FROM log_entries WHERE app_id = $1",
            app_id,
        )
        assert summaries[app_id] == (total, invalid)
        for filters in [EventFilter(), *(random_filter(rng) for _ in range(25))]:
            counts = await select_event_counts(conn, app_id, filters=filters)
            expected = await raw_counts(conn, app_id, filters)
            assert [(c.event_name, c.status, c.count) for c in counts] == expected, filters
            activity = await select_name_activity(conn, app_id, filters, 2000)
            assert [
                (a.event_name, a.total, a.invalid, a.first_seen, a.last_seen) for a in activity
            ] == await raw_activity(conn, app_id, filters), filters
        for span, buckets in (
            (timedelta(hours=1), 12),
            (timedelta(days=1), 24),
            (timedelta(days=7), 28),
        ):
            await assert_violations_match_rows(conn, app_id, span, buckets)


def random_filter(rng: random.Random) -> EventFilter:
    def moment() -> datetime | None:
        if rng.random() < 0.3:
            return None
        # Now and then exactly on an hour, where the rollups and the rows meet.
        found = NOW - timedelta(hours=80) * rng.random()
        return floor_hour(found) if rng.random() < 0.2 else found

    since, until = moment(), moment()
    if since and until and since >= until:
        since, until = until, since
    if since and until and since == until:
        until = None
    return EventFilter(
        status=rng.choice((None, None, "valid", "invalid")),
        event_names=tuple(rng.sample([n for n in NAMES if n], rng.choice((0, 0, 1, 2)))),
        session=rng.choice((None, None, "qa-1", "qa-2", "nobody")),
        since=since,
        until=until,
    )


async def assert_violations_match_rows(
    conn: Any, app_id: str, span: timedelta, buckets: int
) -> None:
    now = datetime.now(UTC)
    horizon, window = now - timedelta(days=7), now - span
    seconds = span.total_seconds() / buckets
    groups = await select_violation_groups(
        conn,
        app_id,
        horizon=horizon,
        window=window,
        bucket_seconds=seconds,
        scan_limit=100_000,
        limit=200,
    )
    expected = await conn.fetch(RAW_VIOLATIONS, app_id, horizon, window, seconds)
    assert [
        (g.event_name, g.path, g.rule, g.severity, g.count, g.first_seen, g.last_seen, g.message)
        for g in groups
    ] == [tuple(row)[:8] for row in expected]
    for group, row in zip(groups, expected, strict=True):
        counts = {int(k): int(v) for k, v in group.buckets.items()}
        assert sum(counts.values()) == group.count
        if seconds < 3600:
            found = row["buckets"]
            found = orjson.loads(found) if isinstance(found, str) else found
            assert counts == {int(k): v for k, v in found.items()}
        else:
            # Whole hours are counted in the bucket their start falls in (the rollups' grain).
            assert all(0 <= bucket <= buckets for bucket in counts)


# ---- tests ----------------------------------------------------------------------------------


async def test_rollups_answer_as_the_rows_over_random_redelivered_events(
    rollup_pool: asyncpg.Pool,
) -> None:
    rng = random.Random(18)
    app_id, entries = await app_with_events(rollup_pool, rng, 3000, timedelta(hours=80))

    await assert_counts_match_rows(rollup_pool, app_id, rng)
    # The same batch once more: nothing new is stored, nothing is counted twice.
    async with rollup_pool.acquire() as conn:
        assert await insert_log_entries_and_notify(conn, entries[:500], "lvd_rollup_test") == []
        before = await select_event_counts(conn, app_id)
        await insert_log_entries(conn, entries)
        assert await select_event_counts(conn, app_id) == before
    await assert_counts_match_rows(rollup_pool, app_id, rng)


async def test_rollups_count_each_event_once_under_concurrent_overlapping_writers(
    rollup_pool: asyncpg.Pool,
) -> None:
    rng = random.Random(7)
    app_id = await new_app(rollup_pool)
    # Few keys (the last ten minutes, two names): the writers fight over the same rows.
    entries = [
        random_event(rng, app_id, timedelta(minutes=10))._replace(event_name=rng.choice("ab"))
        for _ in range(4000)
    ]

    messages = [entries[start : start + 100] for start in range(0, len(entries), 100)]

    async def worker(deliveries: list[list[NewLogEntry]]) -> None:
        async with rollup_pool.acquire() as conn:
            for message in deliveries:
                await insert_log_entries_and_notify(conn, message, "lvd_rollup_test")

    # Three connections deliver the same messages (each a redelivery of another's) at the
    # same time, starting at different places, so they meet on the same rollup rows.
    half = len(messages) // 2
    await asyncio.gather(
        worker(messages), worker(messages[half:] + messages[:half]), worker(messages[::-1])
    )

    async with rollup_pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM log_entries WHERE app_id = $1", app_id)
    assert stored == len(entries)
    await assert_counts_match_rows(rollup_pool, app_id, rng)


async def test_rollups_lose_exactly_what_a_reset_deletes(rollup_pool: asyncpg.Pool) -> None:
    rng = random.Random(3)
    app_id, _ = await app_with_events(rollup_pool, rng, 1500, timedelta(hours=30))

    async with rollup_pool.acquire() as conn:
        qa1 = await conn.fetchval(
            "SELECT count(*) FROM log_entries WHERE app_id = $1 AND session = 'qa-1'", app_id
        )
        assert await delete_log_entries(conn, app_id, "qa-1") == qa1 > 0
        assert await select_event_counts(conn, app_id, filters=EventFilter(session="qa-1")) == []
    await assert_rollups_as_rebuilt(rollup_pool, app_id)
    await assert_counts_match_rows(rollup_pool, app_id, rng)

    async with rollup_pool.acquire() as conn:
        assert await delete_snowplow_events(conn, app_id) > 0
    # Some rows of a name and hour went, others stayed: first and last seen are of those left.
    await assert_rollups_as_rebuilt(rollup_pool, app_id)
    await assert_counts_match_rows(rollup_pool, app_id, rng)

    async with rollup_pool.acquire() as conn:
        await delete_log_entries(conn, app_id)
        assert await select_event_counts(conn, app_id) == []
        left = await conn.fetchval(
            "SELECT (SELECT count(*) FROM event_counts_hourly WHERE app_id = $1)"
            " + (SELECT count(*) FROM failure_counts_hourly WHERE app_id = $1)",
            app_id,
        )
        assert left == 0
    await assert_counts_match_rows(rollup_pool, app_id, rng)


async def test_rollups_never_count_purged_events(rollup_pool: asyncpg.Pool) -> None:
    rng = random.Random(5)
    # Four days of events: the purge cuts the third day mid-hour.
    app_id, _ = await app_with_events(rollup_pool, rng, 2000, timedelta(days=4))
    async with rollup_pool.acquire() as conn:
        assert await update_app_retention_days(conn, app_id, 2)

    report = await purge_expired(rollup_pool, default_days=3650, batch_size=300, pause=0)

    assert report.finished and report.per_app[app_id] > 0
    async with rollup_pool.acquire() as conn:
        oldest = await conn.fetchval(
            "SELECT min(received_at) FROM log_entries WHERE app_id = $1", app_id
        )
        horizon = await conn.fetchval(
            "SELECT counted_from FROM rollup_horizons WHERE app_id = $1", app_id
        )
        kept_hours = await conn.fetchval(
            "SELECT min(hour) FROM event_counts_hourly WHERE app_id = $1", app_id
        )
    # Counted from the first whole hour after the cutoff; that hour's rows are counted raw.
    assert horizon == ceil_hour(horizon) and horizon - timedelta(hours=1) < oldest
    assert kept_hours >= horizon
    await assert_counts_match_rows(rollup_pool, app_id, rng)
    # An event arriving late for an hour before the horizon is counted from its row.
    late = random_event(rng, app_id, timedelta(0))._replace(received_at=horizon - timedelta(1))
    await store_randomly(rollup_pool, rng, [late])
    await assert_counts_match_rows(rollup_pool, app_id, rng)


async def test_migration_backfill_counts_the_rows_already_stored(
    rollup_pool: asyncpg.Pool,
) -> None:
    rng = random.Random(10)
    app_id, _ = await app_with_events(rollup_pool, rng, 800, timedelta(hours=10))
    await assert_rollups_as_rebuilt(rollup_pool, app_id)


async def assert_rollups_as_rebuilt(pool: asyncpg.Pool, app_id: str) -> None:
    """The app's rollup rows, to the last column, are what the backfills of migrations 0010
    (events, failures) and 0014 (warnings) make of the rows stored (rebuilt in a transaction
    that is rolled back)."""
    [sql] = [text for version, _, text in migration_files() if version == 10]
    [warnings_sql] = [text for version, _, text in migration_files() if version == 14]
    backfill = (
        sql[sql.index("-- The events stored so far.") :]
        + warnings_sql[warnings_sql.index("-- The warnings stored so far") :]
    )
    hours = f"SELECT * FROM event_counts_hourly WHERE app_id = '{app_id}' ORDER BY 2, 3, 4, 5"
    failures = (
        f"SELECT * FROM failure_counts_hourly WHERE app_id = '{app_id}'"
        " ORDER BY 2, 3, 4, 5, 6, severity"
    )
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            kept = await conn.fetch(hours), await conn.fetch(failures)
            await conn.execute("DELETE FROM event_counts_hourly; DELETE FROM failure_counts_hourly")
            await conn.execute(backfill)
            assert (await conn.fetch(hours), await conn.fetch(failures)) == kept
        finally:
            await transaction.rollback()


async def test_rollups_go_with_their_app_and_with_truncate(rollup_pool: asyncpg.Pool) -> None:
    rng = random.Random(11)
    gone, _ = await app_with_events(rollup_pool, rng, 50, timedelta(hours=3))
    kept, _ = await app_with_events(rollup_pool, rng, 50, timedelta(hours=3))

    async with rollup_pool.acquire() as conn:
        await conn.execute("DELETE FROM apps WHERE id = $1", gone)
        counted = await conn.fetch("SELECT DISTINCT app_id FROM failure_counts_hourly")
        assert gone not in {row["app_id"] for row in counted}
        assert gone not in {s.app.id for s in await select_app_summaries(conn)}
        await assert_counts_match_rows(rollup_pool, kept, rng)
        await conn.execute("TRUNCATE log_entries")
        assert {s.app.id: s.total for s in await select_app_summaries(conn)}[kept] == 0
