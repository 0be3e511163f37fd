"""SQL for alerts: each app's alert settings, the failure and invalid-share scans, the list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

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
    return await _select_alert_settings(conn, app_id, "")


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
        f"""
        INSERT INTO app_alerts (app_id, email_enabled, email_recipients, webhook_enabled,
                                webhook_url, new_failures_enabled, invalid_share_enabled,
                                invalid_share, window_seconds, min_events, scanned_id)
        VALUES ($1, $2, $3::text[], $4, $5, $6, $7, $8, $9, $10,
                (SELECT coalesce(max(id), 0) FROM log_entries WHERE app_id = $1))
        ON CONFLICT (app_id) DO UPDATE
        SET email_enabled = EXCLUDED.email_enabled,
            email_recipients = EXCLUDED.email_recipients,
            webhook_enabled = EXCLUDED.webhook_enabled,
            webhook_url = EXCLUDED.webhook_url,
            new_failures_enabled = EXCLUDED.new_failures_enabled,
            invalid_share_enabled = EXCLUDED.invalid_share_enabled,
            invalid_share = EXCLUDED.invalid_share,
            window_seconds = EXCLUDED.window_seconds,
            min_events = EXCLUDED.min_events,
            updated_at = now(),
            -- Failure alerts switched back on start from now, not from where they were left.
            scanned_id = CASE WHEN app_alerts.new_failures_enabled THEN app_alerts.scanned_id
                              ELSE EXCLUDED.scanned_id END
        RETURNING {_ALERT_SETTINGS_COLUMNS}
        """,
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
        """
        SELECT app_id
        FROM app_alerts
        WHERE new_failures_enabled OR invalid_share_enabled
        ORDER BY app_id
        """
    )
    return [row["app_id"] for row in rows]


async def lock_alert_settings(conn: Connection, app_id: str) -> AlertSettings | None:
    """The app's alert settings, row-locked until the transaction ends; None if another
    scan holds them (it does the work) or there are none."""
    return await _select_alert_settings(conn, app_id, "FOR UPDATE SKIP LOCKED")


async def _select_alert_settings(
    conn: Connection, app_id: str, lock: Literal["", "FOR UPDATE SKIP LOCKED"]
) -> AlertSettings | None:
    row = await conn.fetchrow(
        f"""
        SELECT {_ALERT_SETTINGS_COLUMNS}
        FROM app_alerts
        WHERE app_id = $1
        {lock}
        """,
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
        """
        WITH batch AS (
            SELECT id, event_name, errors, created_at
            FROM log_entries
            WHERE app_id = $1 AND validation_status = 'invalid' AND id > $2
            ORDER BY id
            LIMIT $3
        ), failures AS (
            SELECT DISTINCT ON (b.event_name, path, rule)
                   b.event_name, path, rule,
                   coalesce(e ->> 'message', '') AS message,
                   b.id AS entry_id
            FROM batch b
            CROSS JOIN LATERAL jsonb_array_elements(b.errors) AS e
            CROSS JOIN LATERAL (
                SELECT coalesce(e ->> 'path', '') AS path, coalesce(e ->> 'rule', '') AS rule
            ) AS f
            WHERE coalesce(e ->> 'severity', 'error') = 'error'
            ORDER BY b.event_name, path, rule, b.id
        ), inserted AS (
            INSERT INTO alerts (app_id, kind, dedupe_key, event_name, path, rule, message,
                                first_entry_id, created_at)
            SELECT $1, 'new_failure',
                   jsonb_build_array('new_failure', event_name, path, rule)::text,
                   event_name, path, rule, message, entry_id, $5
            FROM failures
            ORDER BY entry_id
            ON CONFLICT (app_id, dedupe_key) DO NOTHING
            RETURNING id
        )
        SELECT (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM inserted) AS alert_ids,
               (SELECT count(*) FROM batch) AS scanned,
               (SELECT max(id) FROM batch WHERE created_at < $4) AS settled_id
        """,
        app_id,
        after_id,
        limit,
        settled_before,
        now,
    )
    return FailureScan(list(row["alert_ids"]), int(row["scanned"]), row["settled_id"])


async def update_alert_cursor(conn: Connection, app_id: str, scanned_id: int) -> None:
    await conn.execute(
        """
        UPDATE app_alerts
        SET scanned_id = $2
        WHERE app_id = $1 AND scanned_id < $2
        """,
        app_id,
        scanned_id,
    )


async def select_recent_alert(
    conn: Connection, app_id: str, kind: str, since: datetime
) -> int | None:
    """The id of the app's latest alert of this kind raised since `since`, if any."""
    value = await conn.fetchval(
        """
        SELECT id
        FROM alerts
        WHERE app_id = $1 AND kind = $2 AND created_at > $3
        ORDER BY created_at DESC
        LIMIT 1
        """,
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
        """
        SELECT count(*) FILTER (WHERE validation_status = 'invalid') AS invalid,
               count(*) AS total
        FROM log_entries
        WHERE app_id = $1 AND received_at >= $2 AND received_at < $3
        """,
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
        """
        INSERT INTO alerts (app_id, kind, dedupe_key, invalid_count, total_count,
                            window_start, created_at)
        VALUES ($1, 'invalid_share', $2, $3, $4, $5, $6)
        ON CONFLICT (app_id, dedupe_key) DO NOTHING
        RETURNING id
        """,
        app_id,
        dedupe_key,
        invalid,
        total,
        window_start,
        now,
    )
    return int(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class Alert:
    """What an alert says: a new failure (event name, path, rule, first message) or an
    invalid share (counts over the window since window_start)."""

    kind: str
    event_name: str | None
    path: str | None
    rule: str | None
    message: str | None
    invalid_count: int | None
    total_count: int | None
    window_start: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AlertRecord(Alert):
    """An alert as the API lists it, with each channel's delivery state."""

    id: int
    deliveries: list[dict[str, Any]]


async def select_recent_alerts(conn: Connection, app_id: str, limit: int) -> list[AlertRecord]:
    rows = await conn.fetch(
        """
        SELECT a.id, a.kind, a.event_name, a.path, a.rule, a.message, a.invalid_count,
               a.total_count, a.window_start, a.created_at,
               coalesce(
                   jsonb_agg(
                       jsonb_build_object(
                           'channel', d.channel, 'target', d.target,
                           'attempts', d.attempts, 'sent_at', d.sent_at,
                           'failed_at', d.failed_at, 'last_error', d.last_error
                       ) ORDER BY d.channel
                   ) FILTER (WHERE d.alert_id IS NOT NULL),
                   '[]'
               ) AS deliveries
        FROM alerts a
        LEFT JOIN alert_deliveries d ON d.alert_id = a.id
        WHERE a.app_id = $1
        GROUP BY a.id
        ORDER BY a.id DESC
        LIMIT $2
        """,
        app_id,
        limit,
    )
    return [AlertRecord(**dict(row)) for row in rows]
