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


# ---- query API (issue 7)


@dataclass(frozen=True, slots=True)
class EventCount:
    """How many of an app's events have this name and status."""

    event_name: str | None
    validation_status: str
    count: int


async def select_app_by_write_key(conn: Connection, write_key: str) -> App | None:
    """The app a write key belongs to (SDK calls name no app id, only their key)."""
    row = await conn.fetchrow(f"SELECT {_APP_COLUMNS} FROM apps WHERE write_key = $1", write_key)
    return App(**dict(row)) if row else None


async def select_event_counts(
    conn: Connection, app_id: str, *, filters: EventFilter = NO_FILTER
) -> list[EventCount]:
    """An app's events matching the filter, counted by name and status, most frequent first."""
    rows = await conn.fetch(
        f"SELECT event_name, validation_status, count(*) AS count FROM log_entries"
        f" WHERE app_id = $1{FILTER_SQL}"
        " GROUP BY event_name, validation_status"
        " ORDER BY count DESC, event_name, validation_status",
        app_id,
        *filters.sql_args(),
    )
    return [EventCount(**dict(row)) for row in rows]


async def delete_log_entries(conn: Connection, app_id: str, session: str | None = None) -> int:
    """Delete an app's stored events, or one session's only; returns how many went."""
    value = await conn.fetchval(
        "WITH gone AS (DELETE FROM log_entries"
        " WHERE app_id = $1 AND ($2::text IS NULL OR session = $2) RETURNING 1)"
        " SELECT count(*) FROM gone",
        app_id,
        session,
    )
    return int(value)


# ---- dashboard (issue 6) -------------------------------------------------------------------


async def select_log_entry(conn: Connection, app_id: str, entry_id: int) -> LogEntry | None:
    """One stored event of an app by row id; None for another app's row."""
    row = await conn.fetchrow(
        f"SELECT {_ENTRY_COLUMNS} FROM log_entries WHERE app_id = $1 AND id = $2",
        app_id,
        entry_id,
    )
    return LogEntry(**dict(row)) if row else None


@dataclass(frozen=True, slots=True)
class MinuteCount:
    start: datetime
    total: int
    invalid: int


async def select_minute_counts(conn: Connection, app_id: str, since: datetime) -> list[MinuteCount]:
    """Events per minute from `since` on, minutes counted from `since`; empty minutes absent."""
    rows = await conn.fetch(
        "SELECT date_bin('1 minute', received_at, $2) AS start, count(*) AS total,"
        " count(*) FILTER (WHERE validation_status = 'invalid') AS invalid"
        " FROM log_entries WHERE app_id = $1 AND received_at >= $2"
        " GROUP BY 1 ORDER BY 1",
        app_id,
        since,
    )
    return [MinuteCount(**dict(row)) for row in rows]


@dataclass(frozen=True, slots=True)
class NameCount:
    event_name: str | None
    count: int


async def select_top_failing_events(
    conn: Connection, app_id: str, since: datetime, limit: int
) -> list[NameCount]:
    rows = await conn.fetch(
        "SELECT event_name, count(*) AS count FROM log_entries"
        " WHERE app_id = $1 AND received_at >= $2 AND validation_status = 'invalid'"
        " GROUP BY event_name ORDER BY count DESC, event_name LIMIT $3",
        app_id,
        since,
        limit,
    )
    return [NameCount(**dict(row)) for row in rows]


@dataclass(frozen=True, slots=True)
class ViolationGroup:
    """Failures sharing a fingerprint (event name, path, rule)."""

    event_name: str | None
    path: str
    rule: str
    message: str  # the latest occurrence's sentence
    count: int  # within the window
    first_seen: datetime  # within the horizon scanned
    last_seen: datetime
    buckets: dict[str, int]  # bucket number within the window (as text) -> failures


async def select_violation_groups(
    conn: Connection,
    app_id: str,
    *,
    horizon: datetime,
    window: datetime,
    bucket_seconds: float,
    scan_limit: int,
    limit: int,
) -> list[ViolationGroup]:
    """The most frequent failure fingerprints since `window`, first seen judged since `horizon`.

    Reads at most `scan_limit` of the newest invalid events after `horizon` (by the
    (app_id, validation_status, id DESC) index), so the page stays fast on a busy app.
    """
    rows = await conn.fetch(
        "WITH recent AS ("
        "  SELECT event_name, errors, received_at FROM log_entries"
        "  WHERE app_id = $1 AND validation_status = 'invalid' AND received_at >= $2"
        "  ORDER BY id DESC LIMIT $5"
        "), failures AS ("
        "  SELECT r.event_name, coalesce(e ->> 'path', '') AS path,"
        "   coalesce(e ->> 'rule', '') AS rule, coalesce(e ->> 'message', '') AS message,"
        "   r.received_at"
        "  FROM recent r CROSS JOIN LATERAL jsonb_array_elements(r.errors) AS e"
        "  WHERE coalesce(e ->> 'severity', 'error') = 'error'"
        "), groups AS ("
        "  SELECT event_name, path, rule,"
        "   count(*) FILTER (WHERE received_at >= $3) AS count,"
        "   min(received_at) AS first_seen, max(received_at) AS last_seen,"
        "   (array_agg(message ORDER BY received_at DESC))[1] AS message"
        "  FROM failures GROUP BY event_name, path, rule"
        "  HAVING count(*) FILTER (WHERE received_at >= $3) > 0"
        "  ORDER BY count DESC, last_seen DESC LIMIT $6"
        "), bucketed AS ("
        "  SELECT event_name, path, rule,"
        "   floor(extract(epoch FROM received_at - $3)::float8 / $4::float8)::integer AS bucket,"
        "   count(*) AS n"
        "  FROM failures WHERE received_at >= $3 GROUP BY 1, 2, 3, 4"
        "), buckets AS ("
        "  SELECT event_name, path, rule, jsonb_object_agg(bucket, n) AS buckets"
        "  FROM bucketed GROUP BY 1, 2, 3"
        ") SELECT g.event_name, g.path, g.rule, g.message, g.count, g.first_seen, g.last_seen,"
        " b.buckets FROM groups g JOIN buckets b ON b.event_name IS NOT DISTINCT FROM g.event_name"
        " AND b.path = g.path AND b.rule = g.rule"
        " ORDER BY g.count DESC, g.last_seen DESC, g.event_name, g.path, g.rule",
        app_id,
        horizon,
        window,
        bucket_seconds,
        scan_limit,
        limit,
    )
    return [ViolationGroup(**dict(row)) for row in rows]


@dataclass(frozen=True, slots=True)
class NameActivity:
    """How often one event name arrived within a filter, and when."""

    event_name: str | None
    total: int
    invalid: int
    first_seen: datetime
    last_seen: datetime


async def select_name_activity(
    conn: Connection, app_id: str, filters: EventFilter, limit: int
) -> list[NameActivity]:
    rows = await conn.fetch(
        "SELECT event_name, count(*) AS total,"
        " count(*) FILTER (WHERE validation_status = 'invalid') AS invalid,"
        " min(received_at) AS first_seen, max(received_at) AS last_seen"
        f" FROM log_entries WHERE app_id = $1{FILTER_SQL}"
        " GROUP BY event_name ORDER BY event_name NULLS FIRST LIMIT $9",
        app_id,
        *filters.sql_args(),
        limit,
    )
    return [NameActivity(**dict(row)) for row in rows]


@dataclass(frozen=True, slots=True)
class KnownValues:
    """Event names and error rules seen lately: suggestions for the filter form."""

    event_names: list[str]
    rules: list[str]


async def select_known_values(conn: Connection, app_id: str, scan: int) -> KnownValues:
    """Distinct names and rules among the app's `scan` newest events (rules: newest invalid)."""
    names = await conn.fetch(
        "SELECT DISTINCT event_name FROM ("
        "  SELECT event_name FROM log_entries WHERE app_id = $1 ORDER BY id DESC LIMIT $2"
        ") recent WHERE event_name IS NOT NULL ORDER BY event_name LIMIT 200",
        app_id,
        scan,
    )
    rules = await conn.fetch(
        "SELECT DISTINCT e ->> 'rule' AS rule FROM ("
        "  SELECT errors FROM log_entries WHERE app_id = $1 AND validation_status = 'invalid'"
        "  ORDER BY id DESC LIMIT $2"
        ") recent CROSS JOIN LATERAL jsonb_array_elements(recent.errors) AS e"
        " WHERE e ->> 'rule' IS NOT NULL ORDER BY rule LIMIT 100",
        app_id,
        scan,
    )
    return KnownValues([row["event_name"] for row in names], [row["rule"] for row in rules])


# ---- pipeline status (issue 8)


@dataclass(frozen=True, slots=True)
class RecentEvents:
    """Events received since a moment (those stored by now), and how many were invalid."""

    events: int
    invalid: int


async def select_recent_event_counts(conn: Connection, since: datetime) -> RecentEvents:
    # One count per app, so each reads the (app_id, received_at) index of 0005 and not the table.
    row = await conn.fetchrow(
        "SELECT coalesce(sum(r.events), 0)::bigint AS events,"
        " coalesce(sum(r.invalid), 0)::bigint AS invalid"
        " FROM apps AS a CROSS JOIN LATERAL ("
        "  SELECT count(*) AS events,"
        "   count(*) FILTER (WHERE e.validation_status = 'invalid') AS invalid"
        "  FROM log_entries AS e WHERE e.app_id = a.id AND e.received_at >= $1"
        ") AS r",
        since,
    )
    return RecentEvents(events=int(row["events"]), invalid=int(row["invalid"]))


@dataclass(frozen=True, slots=True)
class LatestStored:
    """When the newest stored event was received, and when a worker wrote it."""

    received_at: datetime
    created_at: datetime


async def select_latest_stored(conn: Connection) -> LatestStored | None:
    row = await conn.fetchrow(
        "SELECT received_at, created_at FROM log_entries ORDER BY id DESC LIMIT 1"
    )
    return LatestStored(**dict(row)) if row else None


async def select_database_size(conn: Connection) -> int:
    return int(await conn.fetchval("SELECT pg_database_size(current_database())"))


# ---- alerts and retention (issue 8) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """An app's alert configuration; scanned_id is how far the failure scan has read."""

    app_id: str
    email_enabled: bool
    email_recipients: list[str]
    webhook_enabled: bool
    webhook_url: str | None
    new_failures_enabled: bool
    invalid_share_enabled: bool
    invalid_share: float
    window_seconds: int
    min_events: int
    scanned_id: int
    updated_at: datetime


_ALERT_SETTINGS_COLUMNS = (
    "app_id, email_enabled, email_recipients, webhook_enabled, webhook_url,"
    " new_failures_enabled, invalid_share_enabled, invalid_share, window_seconds, min_events,"
    " scanned_id, updated_at"
)


async def select_alert_settings(conn: Connection, app_id: str) -> AlertSettings | None:
    row = await conn.fetchrow(
        f"SELECT {_ALERT_SETTINGS_COLUMNS} FROM app_alerts WHERE app_id = $1", app_id
    )
    return AlertSettings(**dict(row)) if row else None


async def upsert_alert_settings(
    conn: Connection,
    app_id: str,
    *,
    email_enabled: bool,
    email_recipients: Sequence[str],
    webhook_enabled: bool,
    webhook_url: str | None,
    new_failures_enabled: bool,
    invalid_share_enabled: bool,
    invalid_share: float,
    window_seconds: int,
    min_events: int,
) -> AlertSettings:
    """Save an app's alert settings. The scan starts after the app's newest event the first
    time, and when failure alerts are switched back on (history is not alerted on);
    other saves keep the scan where it is."""
    row = await conn.fetchrow(
        "INSERT INTO app_alerts (app_id, email_enabled, email_recipients, webhook_enabled,"
        " webhook_url, new_failures_enabled, invalid_share_enabled, invalid_share,"
        " window_seconds, min_events, scanned_id)"
        " VALUES ($1, $2, $3::text[], $4, $5, $6, $7, $8, $9, $10,"
        "  (SELECT coalesce(max(id), 0) FROM log_entries WHERE app_id = $1))"
        " ON CONFLICT (app_id) DO UPDATE SET email_enabled = EXCLUDED.email_enabled,"
        " email_recipients = EXCLUDED.email_recipients,"
        " webhook_enabled = EXCLUDED.webhook_enabled, webhook_url = EXCLUDED.webhook_url,"
        " new_failures_enabled = EXCLUDED.new_failures_enabled,"
        " invalid_share_enabled = EXCLUDED.invalid_share_enabled,"
        " invalid_share = EXCLUDED.invalid_share, window_seconds = EXCLUDED.window_seconds,"
        " min_events = EXCLUDED.min_events, updated_at = now(),"
        # Failure alerts switched back on start from now, not from where they were left.
        " scanned_id = CASE WHEN app_alerts.new_failures_enabled THEN app_alerts.scanned_id"
        "  ELSE EXCLUDED.scanned_id END"
        f" RETURNING {_ALERT_SETTINGS_COLUMNS}",
        app_id,
        email_enabled,
        list(email_recipients),
        webhook_enabled,
        webhook_url,
        new_failures_enabled,
        invalid_share_enabled,
        invalid_share,
        window_seconds,
        min_events,
    )
    return AlertSettings(**dict(row))


async def select_alerting_app_ids(conn: Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT app_id FROM app_alerts WHERE new_failures_enabled OR invalid_share_enabled"
        " ORDER BY app_id"
    )
    return [row["app_id"] for row in rows]


async def lock_alert_settings(conn: Connection, app_id: str) -> AlertSettings | None:
    """The app's alert settings, row-locked until the transaction ends; None if another
    scan holds them (it does the work) or there are none."""
    row = await conn.fetchrow(
        f"SELECT {_ALERT_SETTINGS_COLUMNS} FROM app_alerts WHERE app_id = $1"
        " FOR UPDATE SKIP LOCKED",
        app_id,
    )
    return AlertSettings(**dict(row)) if row else None


@dataclass(frozen=True, slots=True)
class FailureScan:
    """What one pass over an app's newer invalid events found."""

    alert_ids: list[int]  # alerts raised now: fingerprints never alerted before
    scanned: int  # invalid events read
    settled_id: int | None  # the cursor may move up to here (rows old enough to be final)


async def insert_new_failure_alerts(
    conn: Connection,
    app_id: str,
    *,
    after_id: int,
    limit: int,
    settled_before: datetime,
    now: datetime,
) -> FailureScan:
    """Read up to `limit` invalid events after `after_id` and raise one alert per failure
    fingerprint (event name, error path, rule) never alerted for this app.

    Only errors count, not warnings, as on the dashboard. The unique (app_id, dedupe_key)
    makes this idempotent: reading the same rows again raises nothing new. Rows written
    after `settled_before` may still have lower-numbered neighbours in flight (ids are taken
    at insert, not at commit), so the cursor stops short of them and they are read again.
    """
    row = await conn.fetchrow(
        "WITH batch AS ("
        "  SELECT id, event_name, errors, created_at FROM log_entries"
        "  WHERE app_id = $1 AND validation_status = 'invalid' AND id > $2"
        "  ORDER BY id LIMIT $3"
        "), failures AS ("
        "  SELECT DISTINCT ON (b.event_name, path, rule) b.event_name, path, rule,"
        "   coalesce(e ->> 'message', '') AS message, b.id AS entry_id"
        "  FROM batch b CROSS JOIN LATERAL jsonb_array_elements(b.errors) AS e"
        "  CROSS JOIN LATERAL (SELECT coalesce(e ->> 'path', '') AS path,"
        "   coalesce(e ->> 'rule', '') AS rule) AS f"
        "  WHERE coalesce(e ->> 'severity', 'error') = 'error'"
        "  ORDER BY b.event_name, path, rule, b.id"
        "), inserted AS ("
        "  INSERT INTO alerts (app_id, kind, dedupe_key, event_name, path, rule, message,"
        "   first_entry_id, created_at)"
        "  SELECT $1, 'new_failure',"
        "   jsonb_build_array('new_failure', event_name, path, rule)::text,"
        "   event_name, path, rule, message, entry_id, $5 FROM failures ORDER BY entry_id"
        "  ON CONFLICT (app_id, dedupe_key) DO NOTHING RETURNING id"
        ") SELECT (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM inserted) AS alert_ids,"
        " (SELECT count(*) FROM batch) AS scanned,"
        " (SELECT max(id) FROM batch WHERE created_at < $4) AS settled_id",
        app_id,
        after_id,
        limit,
        settled_before,
        now,
    )
    return FailureScan(list(row["alert_ids"]), int(row["scanned"]), row["settled_id"])


async def update_alert_cursor(conn: Connection, app_id: str, scanned_id: int) -> None:
    await conn.execute(
        "UPDATE app_alerts SET scanned_id = $2 WHERE app_id = $1 AND scanned_id < $2",
        app_id,
        scanned_id,
    )


async def select_recent_alert(
    conn: Connection, app_id: str, kind: str, since: datetime
) -> int | None:
    """The id of the app's latest alert of this kind raised since `since`, if any."""
    value = await conn.fetchval(
        "SELECT id FROM alerts WHERE app_id = $1 AND kind = $2 AND created_at > $3"
        " ORDER BY created_at DESC LIMIT 1",
        app_id,
        kind,
        since,
    )
    return int(value) if value is not None else None


async def select_window_counts(
    conn: Connection, app_id: str, since: datetime, until: datetime
) -> tuple[int, int]:
    """(invalid, total) events the app received in [since, until): an index-only scan."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE validation_status = 'invalid') AS invalid,"
        " count(*) AS total FROM log_entries"
        " WHERE app_id = $1 AND received_at >= $2 AND received_at < $3",
        app_id,
        since,
        until,
    )
    return int(row["invalid"]), int(row["total"])


async def insert_invalid_share_alert(
    conn: Connection,
    app_id: str,
    *,
    dedupe_key: str,
    invalid: int,
    total: int,
    window_start: datetime,
    now: datetime,
) -> int | None:
    """Raise an invalid-share alert; None if this window's was raised already."""
    value = await conn.fetchval(
        "INSERT INTO alerts (app_id, kind, dedupe_key, invalid_count, total_count,"
        " window_start, created_at) VALUES ($1, 'invalid_share', $2, $3, $4, $5, $6)"
        " ON CONFLICT (app_id, dedupe_key) DO NOTHING RETURNING id",
        app_id,
        dedupe_key,
        invalid,
        total,
        window_start,
        now,
    )
    return int(value) if value is not None else None


async def insert_alert_deliveries(
    conn: Connection, alert_ids: Sequence[int], channel: str, target: str, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO alert_deliveries (alert_id, channel, target, next_attempt_at)"
        " SELECT id, $2, $3, $4 FROM unnest($1::bigint[]) AS id ON CONFLICT DO NOTHING",
        list(alert_ids),
        channel,
        target,
        now,
    )


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """One alert to send on one channel, with what the message says."""

    alert_id: int
    channel: str
    target: str
    attempts: int
    app_id: str
    kind: str
    event_name: str | None
    path: str | None
    rule: str | None
    message: str | None
    invalid_count: int | None
    total_count: int | None
    window_start: datetime | None
    created_at: datetime


async def claim_alert_delivery(
    conn: Connection, alert_id: int, channel: str, now: datetime, lease_seconds: float
) -> AlertDelivery | None:
    """Take a due delivery for `lease_seconds` (counting the attempt); None if it is sent,
    given up, not due, or another sender holds it."""
    row = await conn.fetchrow(
        "WITH claimed AS ("
        "  UPDATE alert_deliveries SET attempts = attempts + 1,"
        "   next_attempt_at = $3 + make_interval(secs => $4)"
        "  WHERE alert_id = $1 AND channel = $2 AND sent_at IS NULL AND failed_at IS NULL"
        "   AND next_attempt_at <= $3"
        "  RETURNING alert_id, channel, target, attempts"
        ") SELECT c.alert_id, c.channel, c.target, c.attempts, a.app_id, a.kind, a.event_name,"
        " a.path, a.rule, a.message, a.invalid_count, a.total_count, a.window_start,"
        " a.created_at FROM claimed c JOIN alerts a ON a.id = c.alert_id",
        alert_id,
        channel,
        now,
        lease_seconds,
    )
    return AlertDelivery(**dict(row)) if row else None


async def update_alert_delivery_sent(
    conn: Connection, alert_id: int, channel: str, now: datetime
) -> None:
    await conn.execute(
        "UPDATE alert_deliveries SET sent_at = $3, last_error = NULL"
        " WHERE alert_id = $1 AND channel = $2",
        alert_id,
        channel,
        now,
    )


async def update_alert_delivery_failed(
    conn: Connection,
    alert_id: int,
    channel: str,
    error: str,
    *,
    retry_at: datetime | None,
    now: datetime,
) -> None:
    """Record a failed attempt: try again at retry_at, or give up when it is None."""
    await conn.execute(
        "UPDATE alert_deliveries SET last_error = $3,"
        " next_attempt_at = coalesce($4, next_attempt_at),"
        " failed_at = CASE WHEN $4::timestamptz IS NULL THEN $5::timestamptz END"
        " WHERE alert_id = $1 AND channel = $2 AND sent_at IS NULL",
        alert_id,
        channel,
        error[:1000],
        retry_at,
        now,
    )


async def select_due_alert_deliveries(
    conn: Connection, now: datetime, limit: int
) -> list[tuple[int, str]]:
    """(alert id, channel) of deliveries waiting to be sent or retried, oldest first."""
    rows = await conn.fetch(
        "SELECT alert_id, channel FROM alert_deliveries"
        " WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1"
        " ORDER BY next_attempt_at LIMIT $2",
        now,
        limit,
    )
    return [(row["alert_id"], row["channel"]) for row in rows]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as the API lists it, with each channel's delivery state."""

    id: int
    kind: str
    event_name: str | None
    path: str | None
    rule: str | None
    message: str | None
    invalid_count: int | None
    total_count: int | None
    window_start: datetime | None
    created_at: datetime
    deliveries: list[dict[str, Any]]


async def select_recent_alerts(conn: Connection, app_id: str, limit: int) -> list[AlertRecord]:
    rows = await conn.fetch(
        "SELECT a.id, a.kind, a.event_name, a.path, a.rule, a.message, a.invalid_count,"
        " a.total_count, a.window_start, a.created_at,"
        " coalesce(jsonb_agg(jsonb_build_object('channel', d.channel, 'target', d.target,"
        "  'attempts', d.attempts, 'sent_at', d.sent_at, 'failed_at', d.failed_at,"
        "  'last_error', d.last_error) ORDER BY d.channel)"
        "  FILTER (WHERE d.alert_id IS NOT NULL), '[]') AS deliveries"
        " FROM alerts a LEFT JOIN alert_deliveries d ON d.alert_id = a.id"
        " WHERE a.app_id = $1 GROUP BY a.id ORDER BY a.id DESC LIMIT $2",
        app_id,
        limit,
    )
    return [AlertRecord(**dict(row)) for row in rows]


async def select_app_retention_days(conn: Connection, app_id: str) -> int | None:
    """The app's own retention in days (None: the server default); KeyError if no app."""
    row = await conn.fetchrow("SELECT retention_days FROM apps WHERE id = $1", app_id)
    if row is None:
        raise KeyError(app_id)
    return row["retention_days"]  # type: ignore[no-any-return]


async def update_app_retention_days(conn: Connection, app_id: str, days: int | None) -> bool:
    """Set (or clear, with None) the app's retention; False if there is no such app."""
    status = await conn.execute("UPDATE apps SET retention_days = $2 WHERE id = $1", app_id, days)
    return status.endswith(" 1")


async def select_retention_cutoffs(
    conn: Connection, default_days: int, now: datetime
) -> list[tuple[str, datetime]]:
    """(app id, received_at before which its events expire), for every app."""
    rows = await conn.fetch(
        "SELECT id, $2::timestamptz - make_interval(days => coalesce(retention_days, $1))"
        " AS cutoff FROM apps ORDER BY id",
        default_days,
        now,
    )
    return [(row["id"], row["cutoff"]) for row in rows]


async def delete_expired_log_entries(
    conn: Connection, app_id: str, before: datetime, limit: int
) -> int:
    """Delete up to `limit` of the app's events received before `before`; returns how many.

    The (app_id, received_at) index finds the oldest rows directly, so each call costs
    about `limit` rows whatever the table's size; SKIP LOCKED lets two purges share the
    work instead of waiting on each other.
    """
    status = await conn.execute(
        "WITH doomed AS ("
        "  SELECT id FROM log_entries WHERE app_id = $1 AND received_at < $2"
        "  ORDER BY received_at LIMIT $3 FOR UPDATE SKIP LOCKED"
        ") DELETE FROM log_entries e USING doomed WHERE e.id = doomed.id",
        app_id,
        before,
        limit,
    )
    return int(status.rsplit(" ", 1)[1])


async def delete_expired_share_alerts(conn: Connection, app_id: str, before: datetime) -> int:
    """Invalid-share alerts older than the app's events go with them; a failure
    fingerprint's alert is kept, so a fingerprint alerts once, ever."""
    status = await conn.execute(
        "DELETE FROM alerts WHERE app_id = $1 AND kind = 'invalid_share' AND created_at < $2",
        app_id,
        before,
    )
    return int(status.rsplit(" ", 1)[1])


async def count_message_delivery(conn: Connection, message_id: str) -> int:
    """Count one more delivery of a message that was delivered before; returns the count."""
    value = await conn.fetchval(
        "INSERT INTO message_deliveries (message_id, deliveries) VALUES ($1, 1)"
        " ON CONFLICT (message_id) DO UPDATE"
        " SET deliveries = message_deliveries.deliveries + 1, updated_at = now()"
        " RETURNING deliveries",
        message_id,
    )
    return int(value)


async def delete_message_deliveries(conn: Connection, message_id: str) -> None:
    await conn.execute("DELETE FROM message_deliveries WHERE message_id = $1", message_id)


async def delete_stale_message_deliveries(conn: Connection, before: datetime) -> int:
    status = await conn.execute("DELETE FROM message_deliveries WHERE updated_at < $1", before)
    return int(status.rsplit(" ", 1)[1])


async def claim_scheduled_job(conn: Connection, name: str, interval_seconds: float) -> bool:
    """True if the job is due and this caller moved it to its next time (then it runs it).

    A job seen for the first time is scheduled one interval ahead, not run. The database's
    clock decides, so workers on several machines agree.
    """
    await conn.execute(
        "INSERT INTO scheduled_jobs (name, due_at)"
        " VALUES ($1, now() + make_interval(secs => $2)) ON CONFLICT (name) DO NOTHING",
        name,
        interval_seconds,
    )
    claimed = await conn.fetchval(
        "UPDATE scheduled_jobs SET due_at = now() + make_interval(secs => $2)"
        " WHERE name = $1 AND due_at <= now() RETURNING true",
        name,
        interval_seconds,
    )
    return bool(claimed)


async def update_scheduled_job_due(conn: Connection, name: str) -> None:
    """Make a job due now (a job that has more to do asks for its next run at once)."""
    await conn.execute(
        "INSERT INTO scheduled_jobs (name, due_at) VALUES ($1, now())"
        " ON CONFLICT (name) DO UPDATE SET due_at = now()",
        name,
    )
