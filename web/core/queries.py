"""All SQL: async functions that take a connection first and return frozen dataclasses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from web.core.filters import EventFilter


class Connection(Protocol):
    """What queries need of an asyncpg connection or pooled proxy (asyncpg ships no types)."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any) -> Any: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...
    async def execute(self, query: str, *args: Any) -> str: ...
    def transaction(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class App:
    id: str
    name: str
    write_key: str
    require_write_key: bool
    created_at: datetime
    plan_version: int | None = None


@dataclass(frozen=True, slots=True)
class PlanVersion:
    app_id: str
    version: int
    document: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AppSummary:
    app: App
    total: int
    invalid: int


@dataclass(frozen=True, slots=True)
class NewLogEntry:
    """One judged event as a worker writes it; payload and errors are JSON text."""

    app_id: str
    event_id: str
    event_name: str | None
    payload_json: str
    validation_status: str
    errors_json: str
    plan_version: int | None
    session: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    app_id: str
    event_id: str
    event_name: str | None
    payload: dict[str, Any]
    validation_status: str
    errors: list[dict[str, Any]]
    plan_version: int | None
    session: str | None
    received_at: datetime
    created_at: datetime


_APP_COLUMNS = "id, name, write_key, require_write_key, created_at, plan_version"
_ENTRY_COLUMNS = (
    "id, app_id, event_id, event_name, payload, validation_status, errors, plan_version,"
    " session, received_at, created_at"
)
NO_FILTER = EventFilter()


async def insert_app(conn: Connection, app_id: str, name: str, write_key: str) -> App | None:
    """Create an app; None when the id is taken."""
    row = await conn.fetchrow(
        f"INSERT INTO apps (id, name, write_key) VALUES ($1, $2, $3)"
        f" ON CONFLICT (id) DO NOTHING RETURNING {_APP_COLUMNS}",
        app_id,
        name,
        write_key,
    )
    return App(**dict(row)) if row else None


async def select_app(conn: Connection, app_id: str) -> App | None:
    row = await conn.fetchrow(f"SELECT {_APP_COLUMNS} FROM apps WHERE id = $1", app_id)
    return App(**dict(row)) if row else None


async def select_apps(conn: Connection) -> list[App]:
    rows = await conn.fetch(f"SELECT {_APP_COLUMNS} FROM apps ORDER BY id")
    return [App(**dict(row)) for row in rows]


async def select_app_summaries(conn: Connection) -> list[AppSummary]:
    rows = await conn.fetch(
        "SELECT a.id, a.name, a.write_key, a.require_write_key, a.created_at, a.plan_version,"
        " count(e.id) AS total,"
        " count(e.id) FILTER (WHERE e.validation_status = 'invalid') AS invalid"
        " FROM apps a LEFT JOIN log_entries e ON e.app_id = a.id"
        " GROUP BY a.id ORDER BY a.id"
    )
    summaries = []
    for row in rows:
        values = dict(row)
        total, invalid = values.pop("total"), values.pop("invalid")
        summaries.append(AppSummary(App(**values), total, invalid))
    return summaries


async def insert_log_entries(conn: Connection, entries: Sequence[NewLogEntry]) -> list[int]:
    """Insert many events in one statement; returns the ids of the rows that were new.

    A redelivered message or a client retry hits the unique (app_id, event_id) and
    inserts nothing, which is what makes at-least-once delivery store exactly once.
    """
    rows = await conn.fetch(
        "INSERT INTO log_entries (app_id, event_id, event_name, payload, validation_status,"
        " errors, plan_version, session, received_at)"
        " SELECT app_id, event_id, event_name, payload::jsonb, status, errors::jsonb,"
        " plan_version, session, received_at"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
        " $7::integer[], $8::text[], $9::timestamptz[])"
        " AS t(app_id, event_id, event_name, payload, status, errors, plan_version, session,"
        " received_at)"
        " ON CONFLICT (app_id, event_id) DO NOTHING RETURNING id",
        [e.app_id for e in entries],
        [e.event_id for e in entries],
        [e.event_name for e in entries],
        [e.payload_json for e in entries],
        [e.validation_status for e in entries],
        [e.errors_json for e in entries],
        [e.plan_version for e in entries],
        [e.session for e in entries],
        [e.received_at for e in entries],
    )
    return [row["id"] for row in rows]


async def notify(conn: Connection, channel: str, payload: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", channel, payload)


# The filter's clauses; parameters $2..$8 come from EventFilter.sql_args(), in this order.
FILTER_SQL = (
    " AND ($2::text IS NULL OR validation_status = $2)"
    " AND (cardinality($3::text[]) = 0 OR event_name = ANY($3::text[]))"
    " AND ($4::text IS NULL OR payload::text ILIKE $4)"
    " AND ($5::jsonb IS NULL OR errors @> $5::jsonb)"
    " AND ($6::text IS NULL OR session = $6)"
    " AND ($7::timestamptz IS NULL OR received_at >= $7)"
    " AND ($8::timestamptz IS NULL OR received_at < $8)"
)


async def select_log_entries(
    conn: Connection,
    app_id: str,
    *,
    filters: EventFilter = NO_FILTER,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[LogEntry]:
    """An app's events matching the filter, newest first, optionally bounded by id."""
    rows = await conn.fetch(
        f"SELECT {_ENTRY_COLUMNS} FROM log_entries WHERE app_id = $1{FILTER_SQL}"
        " AND ($9::bigint IS NULL OR id < $9)"
        " AND ($10::bigint IS NULL OR id > $10)"
        " ORDER BY id DESC LIMIT $11",
        app_id,
        *filters.sql_args(),
        before_id,
        after_id,
        limit,
    )
    return [LogEntry(**dict(row)) for row in rows]


async def select_log_entries_by_ids(conn: Connection, ids: Sequence[int]) -> list[LogEntry]:
    rows = await conn.fetch(
        f"SELECT {_ENTRY_COLUMNS} FROM log_entries WHERE id = ANY($1::bigint[]) ORDER BY id",
        list(ids),
    )
    return [LogEntry(**dict(row)) for row in rows]


async def select_log_entries_after(conn: Connection, after_id: int, limit: int) -> list[LogEntry]:
    """Every app's events above an id, oldest first: how a listener catches up."""
    rows = await conn.fetch(
        f"SELECT {_ENTRY_COLUMNS} FROM log_entries WHERE id > $1 ORDER BY id LIMIT $2",
        after_id,
        limit,
    )
    return [LogEntry(**dict(row)) for row in rows]


async def select_max_log_entry_id(conn: Connection) -> int:
    value = await conn.fetchval("SELECT coalesce(max(id), 0) FROM log_entries")
    return int(value)


async def lock_app(conn: Connection, app_id: str) -> App | None:
    """The app, row-locked until the caller's transaction ends (serialises plan versions)."""
    row = await conn.fetchrow(f"SELECT {_APP_COLUMNS} FROM apps WHERE id = $1 FOR UPDATE", app_id)
    return App(**dict(row)) if row else None


async def insert_plan_version(conn: Connection, app_id: str, document: Any) -> PlanVersion:
    """Store the next version of an app's plan and make it current; lock the app first."""
    row = await conn.fetchrow(
        "WITH next AS ("
        "  SELECT coalesce(max(version), 0) + 1 AS version FROM tracking_plans WHERE app_id = $1"
        "), saved AS ("
        "  INSERT INTO tracking_plans (app_id, version, document)"
        "  SELECT $1, version, $2::json FROM next"
        "  RETURNING app_id, version, document, created_at"
        "), current AS ("
        "  UPDATE apps SET plan_version = (SELECT version FROM saved) WHERE id = $1"
        ") SELECT app_id, version, document, created_at FROM saved",
        app_id,
        document,
    )
    return PlanVersion(**dict(row))


async def select_plan_version(
    conn: Connection, app_id: str, version: int | None = None
) -> PlanVersion | None:
    """One version of an app's plan; the current one when version is None."""
    row = await conn.fetchrow(
        "SELECT p.app_id, p.version, p.document, p.created_at FROM tracking_plans p"
        " JOIN apps a ON a.id = p.app_id"
        " WHERE p.app_id = $1 AND p.version = coalesce($2::integer, a.plan_version)",
        app_id,
        version,
    )
    return PlanVersion(**dict(row)) if row else None


async def select_plan_versions(conn: Connection, app_id: str) -> list[PlanVersion]:
    rows = await conn.fetch(
        "SELECT app_id, version, document, created_at FROM tracking_plans"
        " WHERE app_id = $1 ORDER BY version DESC",
        app_id,
    )
    return [PlanVersion(**dict(row)) for row in rows]


async def select_payload_samples(
    conn: Connection, app_id: str, per_event: int, recent: int = 10_000
) -> dict[str, list[dict[str, Any]]]:
    """Up to per_event recent payloads for each event name, among the app's recent events."""
    rows = await conn.fetch(
        "SELECT event_name, payload FROM ("
        "  SELECT event_name, payload,"
        "   row_number() OVER (PARTITION BY event_name ORDER BY id DESC) AS n"
        "  FROM (SELECT id, event_name, payload FROM log_entries"
        "        WHERE app_id = $1 AND event_name IS NOT NULL ORDER BY id DESC LIMIT $3) recent"
        ") ranked WHERE n <= $2",
        app_id,
        per_event,
        recent,
    )
    samples: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        samples.setdefault(row["event_name"], []).append(row["payload"])
    return samples


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    message_id: str
    app_id: str | None
    event_id: str | None
    event: dict[str, Any]
    reason: str
    attempts: int
    created_at: datetime
    retried_at: datetime | None


_DEAD_LETTER_COLUMNS = (
    "id, message_id, app_id, event_id, event, reason, attempts, created_at, retried_at"
)


async def insert_dead_letters(
    conn: Connection, message_id: str, events: Sequence[dict[str, Any]], reason: str, attempts: int
) -> list[int]:
    rows = await conn.fetch(
        "INSERT INTO dead_letters (message_id, app_id, event_id, event, reason, attempts)"
        " SELECT $1, e ->> 'app_id', e ->> 'event_id', e, $3, $4"
        " FROM unnest($2::jsonb[]) AS e RETURNING id",
        message_id,
        list(events),
        reason,
        attempts,
    )
    return [row["id"] for row in rows]


async def select_dead_letters(
    conn: Connection, *, pending_only: bool = True, limit: int = 100
) -> list[DeadLetter]:
    rows = await conn.fetch(
        f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters"
        " WHERE NOT $1::boolean OR retried_at IS NULL ORDER BY id DESC LIMIT $2",
        pending_only,
        limit,
    )
    return [DeadLetter(**dict(row)) for row in rows]


async def count_dead_letters(conn: Connection) -> int:
    value = await conn.fetchval("SELECT count(*) FROM dead_letters WHERE retried_at IS NULL")
    return int(value)


async def lock_pending_dead_letters(conn: Connection, ids: Sequence[int]) -> list[DeadLetter]:
    """Pending dead letters among ids, row-locked until the caller's transaction ends."""
    rows = await conn.fetch(
        f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters"
        " WHERE id = ANY($1::bigint[]) AND retried_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED",
        list(ids),
    )
    return [DeadLetter(**dict(row)) for row in rows]


async def mark_dead_letters_retried(conn: Connection, ids: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE dead_letters SET retried_at = now() WHERE id = ANY($1::bigint[])", list(ids)
    )


# ---- users and secrets (issue 5)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    password_hash: str
    created_at: datetime


async def insert_user(conn: Connection, username: str, password_hash: str) -> User | None:
    """Create a user; None when the name is taken."""
    row = await conn.fetchrow(
        "INSERT INTO users (username, password_hash) VALUES ($1, $2)"
        " ON CONFLICT (username) DO NOTHING RETURNING id, username, password_hash, created_at",
        username,
        password_hash,
    )
    return User(**dict(row)) if row else None


async def select_user(conn: Connection, username: str) -> User | None:
    row = await conn.fetchrow(
        "SELECT id, username, password_hash, created_at FROM users WHERE username = $1", username
    )
    return User(**dict(row)) if row else None


async def update_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def count_users(conn: Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM users"))


async def instance_secret(conn: Connection, name: str, candidate: str) -> str:
    """The shared secret `name`: the candidate if this call created it, else the stored one."""
    await conn.execute(
        "INSERT INTO instance_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        name,
        candidate,
    )
    return str(await conn.fetchval("SELECT value FROM instance_secrets WHERE name = $1", name))
