"""SQL behind the live view's tiles, violations and coverage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from web.core.filters import EventFilter
from web.core.queries.base import Connection
from web.core.queries.filtering import Params, filter_sql
from web.core.queries.rollups import HORIZON_OF, ceil_hour, counted_events, servable


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
    """Failures, or warnings, sharing a fingerprint (event name, path, rule)."""

    event_name: str | None
    path: str
    rule: str
    message: str  # the latest occurrence's sentence
    count: int  # within the window
    first_seen: datetime  # within the horizon scanned
    last_seen: datetime
    buckets: dict[str, int]  # bucket number within the window (as text) -> failures
    severity: str = "error"  # or warning (migration 0014): counted and shown apart


# $1 app, $2 horizon, $3 window, $4 bucket seconds, $5 scan limit, $6 groups, $7 the first
# whole hour from the horizon on, $8 where the rollups' counts in the window start (NULL:
# none do; the window's rows are read). Pieces: the rows of the failures before the rollups
# (the horizon's partial hour, or what precedes the app's retention horizon) and in the
# window before $8, and the rollups' hours; each piece counts only what it holds within the
# window, and they share first seen, last seen and the latest message.
_HOURS_FROM = f"greatest($7::timestamptz, {HORIZON_OF.format(app='$1')})"
_VIOLATION_GROUPS = f"""
    WITH recent AS (
        (SELECT event_name, errors, received_at
         FROM log_entries
         WHERE app_id = $1 AND errors <> '[]'::jsonb
           AND received_at >= $2 AND received_at < (SELECT {_HOURS_FROM})
         ORDER BY received_at DESC
         LIMIT $5)
        UNION ALL
        (SELECT event_name, errors, received_at
         FROM log_entries
         WHERE app_id = $1 AND errors <> '[]'::jsonb
           AND received_at >= (SELECT greatest($3, {_HOURS_FROM}))
           AND received_at < coalesce($8::timestamptz, 'infinity')
         ORDER BY received_at DESC
         LIMIT $5)
    ), pieces AS (
        SELECT r.event_name,
               coalesce(e ->> 'path', '') AS path,
               coalesce(e ->> 'rule', '') AS rule,
               CASE WHEN e ->> 'severity' = 'warning' THEN 'warning' ELSE 'error' END
                   AS severity,
               coalesce(e ->> 'message', '') AS message,
               CASE WHEN r.received_at >= $3 THEN 1 ELSE 0 END AS n,
               r.received_at AS at, r.received_at AS first_seen, r.received_at AS last_seen
        FROM recent r
        CROSS JOIN LATERAL jsonb_array_elements(r.errors) AS e
        UNION ALL
        SELECT event_name, path, rule, severity, message,
               CASE WHEN hour >= coalesce($8::timestamptz, 'infinity') THEN n ELSE 0 END,
               hour, first_seen, last_seen
        FROM failure_counts_hourly
        WHERE app_id = $1 AND hour >= (SELECT {_HOURS_FROM})
    ), counted AS (
        -- One hashed pass, no sort on the text keys: plain aggregates, and each piece's
        -- bucket and failures as two arrays (summed per bucket by the caller). An ordered
        -- aggregate for the latest message would sort every piece: it is looked up below.
        SELECT event_name, path, rule, severity,
               sum(n)::bigint AS count,
               min(first_seen) AS first_seen,
               max(last_seen) AS last_seen,
               array_agg(floor(extract(epoch FROM at - $3)::float8 / $4::float8)::integer)
                   FILTER (WHERE n > 0) AS piece_buckets,
               array_agg(n::bigint) FILTER (WHERE n > 0) AS piece_failures
        FROM pieces
        GROUP BY event_name, path, rule, severity
        HAVING sum(n) > 0
    ), groups AS (
        -- At most $6 groups of each severity: warnings never crowd failures out.
        SELECT *
        FROM (
            SELECT counted.*,
                   row_number() OVER (
                       PARTITION BY severity ORDER BY count DESC, last_seen DESC
                   ) AS place
            FROM counted
        ) AS ranked
        WHERE place <= $6
    )
    SELECT g.event_name, g.path, g.rule, g.severity,
           -- The latest failure's message: its hour's count keeps the message of the hour's
           -- latest failure (an index probe per group). Failing that (before the app's
           -- retention horizon, where no hour is counted), the pieces' own.
           coalesce(
               (SELECT min(f.message)
                FROM failure_counts_hourly f
                WHERE f.app_id = $1
                  AND f.hour = date_bin('1 hour', g.last_seen, 'epoch')
                  AND f.event_name IS NOT DISTINCT FROM g.event_name
                  AND f.path = g.path AND f.rule = g.rule AND f.severity = g.severity
                  AND f.last_seen = g.last_seen),
               (SELECT min(p.message)
                FROM pieces p
                WHERE p.event_name IS NOT DISTINCT FROM g.event_name
                  AND p.path = g.path AND p.rule = g.rule AND p.severity = g.severity
                  AND p.last_seen = g.last_seen)
           ) AS message,
           g.count, g.first_seen, g.last_seen, g.piece_buckets, g.piece_failures
    FROM groups g
    ORDER BY g.severity, g.count DESC, g.last_seen DESC, g.event_name, g.path, g.rule
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
    """The most frequent failure (and warning) fingerprints since `window`, at most `limit`
    of each severity; first seen judged since `horizon`.

    Whole hours come from the failure rollups; the rows read are those of the horizon's
    partial hour and the window's (its first partial hour when buckets are whole hours, as
    the rollups count them; else the whole window), at most `scan_limit` of each, newest
    first. With hour buckets, a rolled-up hour falls in the bucket its start falls in.
    """
    hourly = bucket_seconds % 3600 == 0
    rows = await conn.fetch(
        _VIOLATION_GROUPS,
        app_id,
        horizon,
        window,
        bucket_seconds,
        scan_limit,
        limit,
        ceil_hour(horizon),
        ceil_hour(window) if hourly else None,
    )
    return [_violation_group(row) for row in rows]


def _violation_group(row: Mapping[str, Any]) -> ViolationGroup:
    """A row as a ViolationGroup, its pieces' failures summed per bucket."""
    buckets: dict[str, int] = {}
    for bucket, failures in zip(row["piece_buckets"], row["piece_failures"], strict=True):
        buckets[str(bucket)] = buckets.get(str(bucket), 0) + failures
    fields = {k: v for k, v in row.items() if k not in ("piece_buckets", "piece_failures")}
    return ViolationGroup(**fields, buckets=buckets)


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
    """Per event name: events, invalid ones, first and last seen (from the rollups unless the
    filter searches text or rules)."""
    params = Params()
    app = params.add(app_id)
    if servable(filters):
        source = counted_events(filters, params, app)
    else:
        source = f"""(
            SELECT event_name, validation_status AS status, 1 AS n,
                   received_at AS first_seen, received_at AS last_seen
            FROM log_entries
            WHERE app_id = {app}
              AND {filter_sql(filters, params)}
        )"""
    count = params.add(limit)
    rows = await conn.fetch(
        f"""
        SELECT event_name,
               sum(n)::bigint AS total,
               coalesce(sum(n) FILTER (WHERE status = 'invalid'), 0)::bigint AS invalid,
               min(first_seen) AS first_seen,
               max(last_seen) AS last_seen
        FROM {source} AS counted
        GROUP BY event_name
        HAVING sum(n) > 0
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
