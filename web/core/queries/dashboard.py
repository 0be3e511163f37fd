"""SQL behind the live view's tiles, violations and coverage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from web.core.filters import EventFilter
from web.core.queries.base import Connection
from web.core.queries.filtering import Params, filter_sql


@dataclass(frozen=True, slots=True)
class MinuteCount:
    start: datetime
    total: int
    invalid: int


async def select_minute_counts(conn: Connection, app_id: str, since: datetime) -> list[MinuteCount]:
    """Events per minute from `since` on, minutes counted from `since`; empty minutes absent."""
    rows = await conn.fetch(
        """
        SELECT date_bin('1 minute', received_at, $2) AS start,
               count(*) AS total,
               count(*) FILTER (WHERE validation_status = 'invalid') AS invalid
        FROM log_entries
        WHERE app_id = $1 AND received_at >= $2
        GROUP BY 1
        ORDER BY 1
        """,
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
        """
        SELECT event_name, count(*) AS count
        FROM log_entries
        WHERE app_id = $1 AND received_at >= $2 AND validation_status = 'invalid'
        GROUP BY event_name
        ORDER BY count DESC, event_name
        LIMIT $3
        """,
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


# $1 app, $2 horizon, $3 window, $4 bucket seconds, $5 scan limit, $6 groups.
_VIOLATION_GROUPS = """
    WITH recent AS (
        SELECT event_name, errors, received_at
        FROM log_entries
        WHERE app_id = $1 AND validation_status = 'invalid' AND received_at >= $2
        ORDER BY id DESC
        LIMIT $5
    ), failures AS (
        SELECT r.event_name,
               coalesce(e ->> 'path', '') AS path,
               coalesce(e ->> 'rule', '') AS rule,
               coalesce(e ->> 'message', '') AS message,
               r.received_at
        FROM recent r
        CROSS JOIN LATERAL jsonb_array_elements(r.errors) AS e
        WHERE coalesce(e ->> 'severity', 'error') = 'error'
    ), groups AS (
        SELECT event_name, path, rule,
               count(*) FILTER (WHERE received_at >= $3) AS count,
               min(received_at) AS first_seen,
               max(received_at) AS last_seen,
               (array_agg(message ORDER BY received_at DESC))[1] AS message
        FROM failures
        GROUP BY event_name, path, rule
        HAVING count(*) FILTER (WHERE received_at >= $3) > 0
        ORDER BY count DESC, last_seen DESC
        LIMIT $6
    ), bucketed AS (
        SELECT event_name, path, rule,
               floor(extract(epoch FROM received_at - $3)::float8 / $4::float8)::integer AS bucket,
               count(*) AS n
        FROM failures
        WHERE received_at >= $3
        GROUP BY 1, 2, 3, 4
    ), buckets AS (
        SELECT event_name, path, rule, jsonb_object_agg(bucket, n) AS buckets
        FROM bucketed
        GROUP BY 1, 2, 3
    )
    SELECT g.event_name, g.path, g.rule, g.message, g.count, g.first_seen, g.last_seen,
           b.buckets
    FROM groups g
    JOIN buckets b
      ON b.event_name IS NOT DISTINCT FROM g.event_name
     AND b.path = g.path
     AND b.rule = g.rule
    ORDER BY g.count DESC, g.last_seen DESC, g.event_name, g.path, g.rule
    """


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
        _VIOLATION_GROUPS,
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
    params = Params()
    app = params.add(app_id)
    matching = filter_sql(filters, params)
    count = params.add(limit)
    rows = await conn.fetch(
        f"""
        SELECT event_name,
               count(*) AS total,
               count(*) FILTER (WHERE validation_status = 'invalid') AS invalid,
               min(received_at) AS first_seen,
               max(received_at) AS last_seen
        FROM log_entries
        WHERE app_id = {app}
          AND {matching}
        GROUP BY event_name
        ORDER BY event_name NULLS FIRST
        LIMIT {count}
        """,
        *params.values,
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
        """
        SELECT DISTINCT event_name
        FROM (
            SELECT event_name
            FROM log_entries
            WHERE app_id = $1
            ORDER BY id DESC
            LIMIT $2
        ) recent
        WHERE event_name IS NOT NULL
        ORDER BY event_name
        LIMIT 200
        """,
        app_id,
        scan,
    )
    rules = await conn.fetch(
        """
        SELECT DISTINCT e ->> 'rule' AS rule
        FROM (
            SELECT errors
            FROM log_entries
            WHERE app_id = $1 AND validation_status = 'invalid'
            ORDER BY id DESC
            LIMIT $2
        ) recent
        CROSS JOIN LATERAL jsonb_array_elements(recent.errors) AS e
        WHERE e ->> 'rule' IS NOT NULL
        ORDER BY rule
        LIMIT 100
        """,
        app_id,
        scan,
    )
    return KnownValues([row["event_name"] for row in names], [row["rule"] for row in rules])
