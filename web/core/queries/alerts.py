"""SQL for alerts, retention purges, delivery counting and scheduled jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from web.core.queries.base import Connection


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
