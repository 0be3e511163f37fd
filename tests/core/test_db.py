"""web/core/db.py: database creation, ordered idempotent migrations, URL helpers."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.conftest import free_port
from web.core import db
from web.core.db import (
    EACH_ROW_A_STATEMENT,
    NO_TRANSACTION,
    create_database_if_missing,
    database_name,
    drop_database,
    migrate,
    migration_files,
    migration_statements,
    prepare_database,
    with_database,
)
from web.core.queries.base import NewLogEntry
from web.core.queries.events import insert_log_entries
from web.core.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "web" / "core" / "migrations"


async def _drop(url: str) -> None:
    conn = await asyncpg.connect(with_database(url, "postgres"), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def throwaway_url(settings: Settings) -> AsyncIterator[str]:
    """The URL of a database that does not exist yet; dropped afterwards if a test made it."""
    name = f"lvd_throwaway_{os.getpid()}_{secrets.token_hex(4)}"
    url = with_database(settings.database_url, name)
    yield url
    await _drop(url)


async def _exists(url: str) -> bool:
    conn = await asyncpg.connect(with_database(url, "postgres"), timeout=10)
    try:
        found = await conn.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", database_name(url)
        )
    finally:
        await conn.close()
    return bool(found == 1)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("postgresql://127.0.0.1:5432/lvd", "lvd"),
        ("postgresql://u:p@db:5433/other_db?sslmode=disable", "other_db"),
        ("postgres:///sockets_db?host=/tmp", "sockets_db"),
        ("postgresql://127.0.0.1:5432", "postgres"),
        ("postgresql://127.0.0.1:5432/", "postgres"),
    ],
)
def test_database_name_is_the_url_path(url: str, name: str) -> None:
    assert database_name(url) == name


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("postgresql://127.0.0.1:5432/lvd", "postgres"),
        ("postgresql://u:p@db:5433/a?sslmode=require", "b"),
        ("postgresql://127.0.0.1:5432", "x"),
        ("postgres:///a?host=/run/pg", "b"),
        ("postgresql://u@/a?host=/tmp/sock", "b"),
    ],
)
def test_with_database_replaces_only_the_path(url: str, name: str) -> None:
    result = with_database(url, name)
    assert database_name(result) == name
    assert urlsplit(result).path == f"/{name}"
    assert urlsplit(result)._replace(path="") == urlsplit(url)._replace(path="")


def test_migration_files_are_ordered_and_match_the_folder() -> None:
    files = migration_files()
    versions = [version for version, _, _ in files]
    assert versions, "at least the initial migration ships"
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions), "two migrations share a number"
    assert files[0][:2] == (1, "initial")
    on_disk = sorted(
        p.name for p in MIGRATIONS_DIR.iterdir() if re.match(r"^\d{4}_.+\.sql$", p.name)
    )
    assert [f"{v:04d}_{name}.sql" for v, name, _ in files] == on_disk
    for (_, _, sql), filename in zip(files, on_disk, strict=True):
        assert sql == (MIGRATIONS_DIR / filename).read_text(encoding="utf-8")
    assert "CREATE TABLE log_entries" in files[0][2]


async def test_create_database_if_missing_returns_true_then_false(throwaway_url: str) -> None:
    assert await _exists(throwaway_url) is False
    assert await create_database_if_missing(throwaway_url) is True
    assert await _exists(throwaway_url) is True
    assert await create_database_if_missing(throwaway_url) is False
    assert await _exists(throwaway_url) is True


async def test_drop_database_drops_it_and_refuses_a_malicious_name(throwaway_url: str) -> None:
    assert await create_database_if_missing(throwaway_url)
    await drop_database(throwaway_url)
    await drop_database(throwaway_url)  # gone already: nothing to do
    assert await create_database_if_missing(throwaway_url)  # it was dropped
    with pytest.raises(ValueError, match="refusing to drop a database named"):
        await drop_database(with_database(throwaway_url, 'x"; DROP DATABASE postgres; --'))


async def test_migrate_is_idempotent(throwaway_url: str) -> None:
    all_versions = [version for version, _, _ in migration_files()]
    await create_database_if_missing(throwaway_url)
    conn = await asyncpg.connect(throwaway_url, timeout=10)
    try:
        assert await migrate(conn) == all_versions
        assert await migrate(conn) == []
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [
            (version, name) for version, name, _ in migration_files()
        ]
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {"apps", "log_entries", "schema_migrations"} <= tables
        # The advisory lock is released: another session can take it at once.
        locked = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert locked == 0
    finally:
        await conn.close()


async def test_prepare_database_creates_migrates_then_does_nothing(throwaway_url: str) -> None:
    all_versions = [version for version, _, _ in migration_files()]
    assert await prepare_database(throwaway_url) == all_versions
    assert await prepare_database(throwaway_url) == []
    assert await _exists(throwaway_url) is True


@pytest.mark.parametrize(
    "name",
    [
        'x"; DROP DATABASE postgres; --',
        'lvd" WITH TEMPLATE template0',
        "lvd test",
        "semi;colon",
        "quote'",
        "dollar$sign",
        "1starts_with_digit",
        "-starts-with-dash",
        "caf\u00e9",
        "a" * 64,
    ],
)
async def test_create_database_if_missing_refuses_a_malicious_name(name: str) -> None:
    # Nothing listens on this port: a refusal that connected first would fail differently.
    url = with_database(f"postgresql://127.0.0.1:{free_port()}", name)
    with pytest.raises(ValueError, match="refusing to create a database named"):
        await create_database_if_missing(url)


@pytest.mark.parametrize(
    "template",
    ["l{token}", "lvd_test-{token}", "A{token}".ljust(62, "b"), "_{token}"],
)
async def test_create_database_if_missing_allows_a_plain_name(
    template: str, settings: Settings
) -> None:
    url = with_database(settings.database_url, template.format(token=secrets.token_hex(4)))
    assert len(database_name(url)) <= 63
    try:
        assert await create_database_if_missing(url) is True
        assert await _exists(url) is True
    finally:
        await _drop(url)


# ---- migrations outside a transaction (CREATE INDEX CONCURRENTLY)

HISTORY_INDEXES = {"log_entries_app_name_recent", "log_entries_app_received_ids"}


def test_migration_statements_are_sent_one_by_one_without_the_comments_between() -> None:
    sql = (
        "-- lvd: no-transaction\n-- why\n\nDROP INDEX CONCURRENTLY IF EXISTS a;\n"
        "CREATE INDEX CONCURRENTLY a\n    -- the column\n    ON t (c);\n\n-- done\n"
    )
    assert migration_statements(sql) == [
        "DROP INDEX CONCURRENTLY IF EXISTS a;",
        "CREATE INDEX CONCURRENTLY a\n    -- the column\n    ON t (c);",
    ]


def test_migration_statements_keep_the_line_that_makes_a_query_generate_statements() -> None:
    sql = f"{NO_TRANSACTION}\n-- why\n{EACH_ROW_A_STATEMENT}\nSELECT 'SELECT 1';\n"
    assert migration_statements(sql) == [f"{EACH_ROW_A_STATEMENT}\nSELECT 'SELECT 1';"]


def test_migration_statements_refuse_a_statement_without_its_semicolon() -> None:
    with pytest.raises(ValueError, match="end each statement"):
        migration_statements(f"{NO_TRANSACTION}\nCREATE INDEX CONCURRENTLY a ON t (c)\n")


async def _valid_indexes(conn: asyncpg.Connection) -> dict[str, bool]:
    rows = await conn.fetch(
        """
        SELECT c.relname AS name, i.indisvalid AS valid
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'log_entries'::regclass
        """
    )
    return {row["name"]: row["valid"] for row in rows}


async def test_a_no_transaction_migration_builds_its_indexes_concurrently_and_reruns(
    throwaway_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    [(version, _, sql)] = [m for m in migration_files() if m[1] == "history_indexes"]
    assert sql.startswith(NO_TRANSACTION)
    # The schema as it was when 0009 was the newest (0012 made log_entries partitioned,
    # whose indexes are never built concurrently).
    shipped = migration_files()
    monkeypatch.setattr(db, "migration_files", lambda: [m for m in shipped if m[0] <= version])
    await create_database_if_missing(throwaway_url)
    conn = await asyncpg.connect(throwaway_url, timeout=10)
    try:
        # CREATE INDEX CONCURRENTLY in a transaction is refused: that it applied at all
        # shows it ran outside one.
        assert version in await migrate(conn)
        indexes = await _valid_indexes(conn)
        assert set(indexes) >= HISTORY_INDEXES and all(indexes.values())
        assert "log_entries_app_received" not in indexes  # replaced by the wider one

        # Interrupted after its first index, with a half-built (invalid) second one left
        # behind, as a crash during CREATE INDEX CONCURRENTLY leaves it: the next run
        # starts it again from the top and ends with valid indexes.
        await conn.execute("DELETE FROM schema_migrations WHERE version = $1", version)
        await conn.execute(
            "UPDATE pg_index SET indisvalid = false"
            " WHERE indexrelid = 'log_entries_app_received_ids'::regclass"
        )
        assert await migrate(conn) == [version]
        indexes = await _valid_indexes(conn)
        assert set(indexes) >= HISTORY_INDEXES and all(indexes.values())
    finally:
        await conn.close()


async def test_pool_connections_never_jit_compile(pool: asyncpg.Pool) -> None:
    # LLVM compilation cost 500 ms on statements that run in 60 ms over a big history.
    async with pool.acquire() as conn:
        assert await conn.fetchval("SHOW jit") == "off"


async def test_two_migrators_started_together_both_finish(throwaway_url: str) -> None:
    # One builds 0009's indexes CONCURRENTLY while the other waits for the migration lock:
    # waiting inside one long `pg_advisory_lock` statement held a snapshot that CREATE INDEX
    # CONCURRENTLY waits for, and the two deadlocked.
    await create_database_if_missing(throwaway_url)
    first = await asyncpg.connect(throwaway_url, timeout=10)
    second = await asyncpg.connect(throwaway_url, timeout=10)
    try:
        applied = await asyncio.wait_for(asyncio.gather(migrate(first), migrate(second)), 60)
    finally:
        await first.close()
        await second.close()
    assert sorted(applied, key=len) == [[], [version for version, _, _ in migration_files()]]


async def _migrated_before(
    name: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, list[tuple[int, str, str]], asyncpg.Connection]:
    """A new database at the schema just before the migration `name`: its version, every
    shipped migration (for the test to ship them all again) and a connection."""
    shipped = migration_files()
    [version] = [m[0] for m in shipped if m[1] == name]
    monkeypatch.setattr(db, "migration_files", lambda: [m for m in shipped if m[0] < version])
    await create_database_if_missing(url)
    conn = await asyncpg.connect(url, timeout=10)
    await migrate(conn)
    return version, shipped, conn


async def test_partitioning_keeps_the_events_stored_before_it_as_they_are(
    throwaway_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    version, shipped, conn = await _migrated_before(
        "partitioned_log_entries", throwaway_url, monkeypatch
    )
    try:
        # Written as that schema takes it (add_app writes today's columns).
        await conn.execute("INSERT INTO apps (id, name, write_key) VALUES ('shop', 'shop', 'k')")
        await conn.execute(
            "INSERT INTO log_entries (app_id, event_id, payload, validation_status, received_at)"
            " SELECT 'shop', 'old-' || i, '{}', 'valid', now() FROM generate_series(1, 50) i"
        )
        monkeypatch.setattr(db, "migration_files", lambda: shipped)
        assert await migrate(conn) == [m[0] for m in shipped if m[0] >= version]

        parts = await conn.fetch("SELECT name, end_id FROM log_entry_partitions ORDER BY first_id")
        assert [p["name"] for p in parts][:1] == ["log_entries_before_partitions"]
        assert await conn.fetchval("SELECT count(*) FROM log_entries_before_partitions") == 50
        assert await conn.fetchval("SELECT count(*) FROM event_receipts") == 50
        # Its indexes were attached to the new table's, not built a second time (and 0016's
        # index of the rows with issues built on it).
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM pg_index"
                " WHERE indrelid = 'log_entries_before_partitions'::regclass"
            )
            == 8
        )
        retry = NewLogEntry(
            "shop", "old-7", None, "{}", "valid", "[]", None, None, datetime.now(UTC)
        )
        assert await insert_log_entries(conn, [retry]) == []  # stored before: stored once
        [new_id] = await insert_log_entries(conn, [retry._replace(event_id="new-1")])
        assert new_id >= parts[0]["end_id"]
        assert (
            await conn.fetchval(
                "SELECT tableoid::regclass::text FROM log_entries WHERE id = $1", new_id
            )
            == parts[1]["name"]
        )
    finally:
        await conn.close()


ISSUE_ROWS_INDEX = "log_entries_app_issues_received"


async def _issue_row_indexes(conn: asyncpg.Connection) -> dict[str, tuple[str, bool]]:
    """Each partition's index attached to the parent's index of rows with issues: its name
    and whether it is valid."""
    rows = await conn.fetch(
        """
        SELECT t.relname AS partition, c.relname AS name, x.indisvalid AS valid
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_index x ON x.indexrelid = c.oid
        JOIN pg_class t ON t.oid = x.indrelid
        WHERE i.inhparent = $1::regclass
        """,
        ISSUE_ROWS_INDEX,
    )
    return {row["partition"]: (row["name"], row["valid"]) for row in rows}


async def test_the_index_of_rows_with_issues_is_built_partition_by_partition_and_reruns(
    throwaway_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    version, shipped, conn = await _migrated_before("issue_rows_index", throwaway_url, monkeypatch)
    try:
        assert next(m[2] for m in shipped if m[0] == version).startswith(NO_TRANSACTION)
        await conn.execute("INSERT INTO apps (id, name, write_key) VALUES ('shop', 'shop', 'k')")
        entry = NewLogEntry(
            "shop",
            "e-1",
            None,
            "{}",
            "invalid",
            '[{"rule": "required"}]',
            None,
            None,
            datetime.now(UTC),
        )
        await insert_log_entries(conn, [entry])
        second = await conn.fetchval("SELECT open_log_entries_partition(now())")
        await insert_log_entries(conn, [entry._replace(event_id="e-2")])
        first = await conn.fetchval(
            "SELECT name FROM log_entry_partitions WHERE name <> $1", second
        )
        # A run cut short: the parent's index made, one partition's half built (invalid,
        # not attached), as a crash during CREATE INDEX CONCURRENTLY leaves it.
        half_built = f"{ISSUE_ROWS_INDEX}_{first.removeprefix('log_entries_from_')}"
        await conn.execute(
            f"CREATE INDEX {ISSUE_ROWS_INDEX} ON ONLY log_entries (app_id, received_at)"
            " WHERE errors <> '[]'::jsonb"
        )
        await conn.execute(
            f"CREATE INDEX {half_built} ON {first} (app_id, received_at)"
            " WHERE errors <> '[]'::jsonb"
        )
        await conn.execute(
            f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{half_built}'::regclass"
        )

        monkeypatch.setattr(db, "migration_files", lambda: shipped)
        assert await migrate(conn) == [m[0] for m in shipped if m[0] >= version]

        # Every partition's built, named as 0012 names them, attached: the parent's is valid.
        built = await _issue_row_indexes(conn)
        assert built == {
            first: (half_built, True),
            second: (f"{ISSUE_ROWS_INDEX}_{second.removeprefix('log_entries_from_')}", True),
        }
        assert await conn.fetchval(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = $1::regclass", ISSUE_ROWS_INDEX
        )
        # A partition opened later gets its own from open_log_entries_partition.
        third = await conn.fetchval("SELECT open_log_entries_partition(now())")
        assert (await _issue_row_indexes(conn))[third][1]
    finally:
        await conn.close()
