"""Database plumbing: create the database if missing, apply migrations, build pools."""

from __future__ import annotations

import asyncio
import logging
import re
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

log = logging.getLogger(__name__)

_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
# Any constant works: it only has to be the same in every process that migrates.
_MIGRATION_LOCK = 7_305_001


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _checked_name(url: str, doing: str) -> str:
    # An identifier cannot be a bind parameter: the name is checked against a strict pattern.
    name = database_name(url)
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"refusing to {doing} a database named {name!r}")
    return name


async def create_database_if_missing(url: str) -> bool:
    """Create the URL's database when it does not exist; True when it was created."""
    name = _checked_name(url, "create")
    conn = await asyncpg.connect(with_database(url, "postgres"), timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')
        log.info("Created database %s", name)
        return True
    except asyncpg.DuplicateDatabaseError:  # another process won the race
        return False
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    """Drop the URL's database if it exists, ending its sessions (benchmarks and tests)."""
    name = _checked_name(url, "drop")
    conn = await asyncpg.connect(with_database(url, "postgres"), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped in the package, in order."""
    folder = resources.files("web.core") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_(.+)\.sql$", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found)


# A migration whose first line is this runs outside a transaction, statement by statement,
# so that it can build indexes with CREATE INDEX CONCURRENTLY while events keep being stored.
NO_TRANSACTION = "-- lvd: no-transaction"
# In such a migration, a query after this line is not run for itself: each row it returns is
# a statement, run in turn (CREATE INDEX CONCURRENTLY for each partition, say, which no
# function may run).
EACH_ROW_A_STATEMENT = "-- lvd: each row is a statement"
# How often a process waiting for another one's migrations tries the lock again.
MIGRATION_LOCK_POLL_SECONDS = 0.2
# The oldest server the migrations run on (0010's NULLS NOT DISTINCT came with 15).
MIN_POSTGRES_MAJOR = 15


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply pending migrations, each in its own transaction unless it opts out; returns the
    versions applied."""
    applied: list[int] = []
    version = conn.get_server_version()
    if version.major < MIN_POSTGRES_MAJOR:
        raise RuntimeError(
            f"PostgreSQL {MIN_POSTGRES_MAJOR} or newer is needed (UNIQUE NULLS NOT DISTINCT);"
            f" this server is {version.major}.{version.minor}"
        )
    # The advisory lock lets web, worker and release start together without racing.
    await _take_migration_lock(conn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migration_files():
            if version in done:
                continue
            if sql.startswith(NO_TRANSACTION):
                await _apply_statement_by_statement(conn, version, name, sql)
            else:
                async with conn.transaction():
                    await conn.execute(sql)
                    await _record(conn, version, name)
            log.info("Applied migration %04d_%s", version, name)
            applied.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def _take_migration_lock(conn: asyncpg.Connection) -> None:
    """Wait for the migration lock between short tries, not inside one long statement.

    A session waiting in `SELECT pg_advisory_lock` holds a snapshot, and CREATE INDEX
    CONCURRENTLY in the migrating session waits for every older snapshot: two `lvd migrate`
    started together would deadlock.
    """
    while True:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", _MIGRATION_LOCK):
            return
        await asyncio.sleep(MIGRATION_LOCK_POLL_SECONDS)


async def _apply_statement_by_statement(
    conn: asyncpg.Connection, version: int, name: str, sql: str
) -> None:
    """Each statement on its own, then the record. One interrupted half-way runs again from
    the top, so its statements must be safe to repeat (DROP INDEX CONCURRENTLY IF EXISTS
    before each CREATE INDEX CONCURRENTLY, which also clears an invalid half-built index)."""
    for statement in migration_statements(sql):
        if statement.startswith(EACH_ROW_A_STATEMENT):
            for row in await conn.fetch(statement):
                await conn.execute(row[0])
        else:
            await conn.execute(statement)
    await _record(conn, version, name)


def migration_statements(sql: str) -> list[str]:
    """A no-transaction migration's statements: each ends with `;` at the end of a line, and
    one that generates statements keeps its EACH_ROW_A_STATEMENT line first.

    One string of several statements would run as one implicit transaction, in which
    CREATE INDEX CONCURRENTLY is refused; so they are sent one by one.
    """
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        directive = line.strip() == EACH_ROW_A_STATEMENT
        if not current and not directive and (not line.strip() or line.lstrip().startswith("--")):
            continue  # a comment between statements
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current))
            current = []
    if current:
        raise ValueError("a no-transaction migration must end each statement with ;")
    return statements


async def _record(conn: asyncpg.Connection, version: int, name: str) -> None:
    await conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
    )


async def prepare_database(url: str) -> list[int]:
    """Everything `release` does: create the database if needed, then migrate it."""
    await create_database_if_missing(url)
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def init_connection(conn: asyncpg.Connection) -> None:
    """Read and write json and jsonb with orjson."""
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=_encode_json,
            decoder=orjson.loads,
            schema="pg_catalog",
            format="text",
        )


def _encode_json(value: Any) -> str:
    return orjson.dumps(value).decode()


# Failures that mean "the database is not reachable right now", not "this query is wrong".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


async def create_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, connect_timeout: float = 10.0
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        timeout=connect_timeout,
        # No JIT: on a big history the planner's cost estimates cross jit_above_cost and
        # LLVM compiles for ~500 ms a statement that then runs in 60 ms (the violations
        # page: p95 610 ms over 20 M events). Nothing we run is long enough to repay it.
        server_settings={"jit": "off"},
    )
    assert pool is not None
    return pool
