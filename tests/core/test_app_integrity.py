"""Every stored event's app exists: the guarantees of the foreign key that migration 0008
replaced with a check per statement, against real PostgreSQL and real concurrent sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import pytest

from tests.core.test_queries import add_apps, count_rows, entry, insert
from web.core.queries.apps import insert_app
from web.core.queries.base import App
from web.core.queries.events import insert_log_entries

T = TypeVar("T")


async def app_with_events(pool: asyncpg.Pool, app_id: str, count: int) -> None:
    async with pool.acquire() as conn:
        await add_apps(conn, app_id)
    await insert(pool, [entry(f"{app_id}-{n}", app_id=app_id) for n in range(count)])


async def orphans(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM log_entries l"
                " WHERE NOT EXISTS (SELECT FROM apps WHERE apps.id = l.app_id)"
            )
        )


async def waits_for_the_first(
    pool: asyncpg.Pool,
    first: Callable[[asyncpg.Connection], Awaitable[object]],
    second: Callable[[asyncpg.Connection], Awaitable[T]],
    not_waiting: str,
    *,
    commit: bool = True,
) -> T:
    """Run `first` in a transaction, start `second` in another session meanwhile (which must
    wait), then commit or roll back the first; the second's outcome."""
    async with pool.acquire() as holding, pool.acquire() as waiting:
        transaction = holding.transaction()
        await transaction.start()
        await first(holding)
        task = asyncio.create_task(second(waiting))
        await asyncio.sleep(0.3)
        assert not task.done(), not_waiting
        await (transaction.commit() if commit else transaction.rollback())
        return await asyncio.wait_for(task, 5)


async def test_a_batch_naming_a_missing_app_stores_nothing_and_names_it(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    batch = [entry(f"e{n}") for n in range(50)] + [entry("stray", app_id="no-such-app")]
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="no-such-app"):
        await insert(pool, batch)
    assert await count_rows(pool) == 0


@pytest.mark.parametrize(
    ("sql", "isolation", "error", "match"),
    [
        pytest.param(
            "UPDATE log_entries SET app_id = 'no-such-app'",
            "read_committed",
            asyncpg.ForeignKeyViolationError,
            "no-such-app",
            id="moving-events-to-a-missing-app",
        ),
        # A REPEATABLE READ snapshot could miss events an insert committed while the delete
        # waited for it, and leave them without their app.
        pytest.param(
            "DELETE FROM apps WHERE id = 'test-app'",
            "repeatable_read",
            asyncpg.ObjectNotInPrerequisiteStateError,
            "READ COMMITTED",
            id="deleting-an-app-outside-read-committed",
        ),
    ],
)
async def test_a_statement_that_would_orphan_events_is_refused(
    pool: asyncpg.Pool,
    test_app_row: App,
    sql: str,
    isolation: str,
    error: type[Exception],
    match: str,
) -> None:
    await insert(pool, [entry("e1")])
    async with pool.acquire() as conn:
        with pytest.raises(error, match=match):
            async with conn.transaction(isolation=isolation):
                await conn.execute(sql)
    assert await count_rows(pool) == 1
    assert await orphans(pool) == 0


async def test_deleting_an_app_deletes_its_events_and_no_others(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    await insert(pool, [entry("kept")])
    await app_with_events(pool, "going", 3)
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM apps WHERE id = 'going'")
        remaining = await conn.fetch("SELECT app_id, event_id FROM log_entries")
    assert [tuple(row) for row in remaining] == [("test-app", "kept")]


async def test_truncating_apps_empties_the_events_too(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    await insert(pool, [entry("e1"), entry("e2")])
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE apps CASCADE")
    assert await count_rows(pool) == 0


async def test_an_apps_id_cannot_change(pool: asyncpg.Pool, test_app_row: App) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="cannot change"):
            await conn.execute("UPDATE apps SET id = 'renamed' WHERE id = 'test-app'")
        # Other columns still change freely.
        await conn.execute("UPDATE apps SET name = 'Renamed' WHERE id = 'test-app'")


async def test_a_delete_waits_for_an_uncommitted_insert_then_deletes_its_events(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    await app_with_events(pool, "busy", 0)
    deleted = await waits_for_the_first(
        pool,
        lambda inserting: insert_log_entries(inserting, [entry("late", app_id="busy")]),
        lambda deleting: deleting.execute("DELETE FROM apps WHERE id = 'busy'"),
        "the app was deleted under an insert not yet committed",
    )
    assert deleted == "DELETE 1"
    assert await orphans(pool) == 0
    assert await count_rows(pool) == 0


async def insert_while_its_app_is_being_deleted(
    pool: asyncpg.Pool, app_id: str, *, delete_commits: bool
) -> list[int]:
    """Delete the app in a transaction, insert one of its events meanwhile (which must wait),
    then end the delete; the insert's outcome."""
    await app_with_events(pool, app_id, 0)
    return await waits_for_the_first(
        pool,
        lambda deleting: deleting.execute("DELETE FROM apps WHERE id = $1", app_id),
        lambda inserting: insert_log_entries(inserting, [entry("late", app_id=app_id)]),
        "the insert did not wait for the delete to finish",
        commit=delete_commits,
    )


async def test_an_insert_waits_for_an_uncommitted_delete_then_fails(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await insert_while_its_app_is_being_deleted(pool, "doomed", delete_commits=True)
    assert await orphans(pool) == 0
    assert await count_rows(pool) == 0


async def test_an_insert_fails_when_its_app_is_deleted_and_made_again_meanwhile(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    # The insert waited on the old row, which is gone; the new one is not in its snapshot.
    # The foreign key failed this insert too: storing it unlocked would let a third session
    # delete the new app at once and leave the event behind.
    await app_with_events(pool, "reborn", 0)

    async def remake(conn: asyncpg.Connection) -> None:
        await conn.execute("DELETE FROM apps WHERE id = 'reborn'")
        await insert_app(conn, "reborn", "reborn", "wk_reborn_again")

    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await waits_for_the_first(
            pool,
            remake,
            lambda inserting: insert_log_entries(inserting, [entry("late", app_id="reborn")]),
            "the insert did not wait for the delete to finish",
        )
    assert await count_rows(pool) == 0


async def test_an_insert_proceeds_when_the_delete_is_rolled_back(
    pool: asyncpg.Pool, test_app_row: App
) -> None:
    stored = await insert_while_its_app_is_being_deleted(pool, "spared", delete_commits=False)
    assert len(stored) == 1
    assert await count_rows(pool) == 1
