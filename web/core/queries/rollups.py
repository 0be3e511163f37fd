"""Counts kept as events are stored: their upkeep, and the SQL that reads them with the edges.

The tables (migration 0010) count events per UTC hour. A count over a time range reads the
whole hours inside it from the rollups and counts the partial hours at its edges, and
whatever lies before the app's horizon (retention), from log_entries itself: the answer is
the count of the rows, to the microsecond, at the cost of a few hundred rollup rows and at
most two hours of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from web.core.filters import EventFilter
from web.core.queries.base import Connection
from web.core.queries.filtering import Params

HOUR = timedelta(hours=1)


def floor_hour(moment: datetime) -> datetime:
    """The UTC hour a moment falls in (the rollups' date_bin('1 hour', t, 'epoch'))."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    """The first UTC hour boundary at or after a moment."""
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


# An issue's severity as the failure rollups count it: errors, and (migration 0014) warnings.
_SEVERITY = "CASE WHEN f ->> 'severity' = 'warning' THEN 'warning' ELSE 'error' END"


def _upserts(source: str, sign: str) -> str:
    """CTEs adding (sign "") or taking away (sign "-") the rows of `source` to the rollups.

    `source` is a relation with the columns app_id, session, event_name, validation_status,
    received_at and errors. Rows are aggregated per statement and upserted in key order, so
    concurrent statements lock shared rollup rows in the same order (no deadlock). A
    subtraction leaves first_seen and last_seen as they were (the taken rows were counted).
    """
    hour = "date_bin('1 hour', received_at, 'epoch')"
    return f"""
    counted_hours AS (
        INSERT INTO event_counts_hourly AS t
            (app_id, hour, session, event_name, status, n, first_seen, last_seen)
        SELECT app_id, {hour}, session, event_name, validation_status,
               {sign}count(*), min(received_at), max(received_at)
        FROM {source}
        GROUP BY 1, 2, 3, 4, 5
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (app_id, hour, session, event_name, status) DO UPDATE
        SET n = t.n + excluded.n,
            first_seen = least(t.first_seen, excluded.first_seen),
            last_seen = greatest(t.last_seen, excluded.last_seen)
    ), counted_failures AS (
        INSERT INTO failure_counts_hourly AS t
            (app_id, hour, session, event_name, path, rule, severity, n, first_seen, last_seen,
             message)
        SELECT app_id, {hour}, session, event_name, path, rule, severity, {sign}count(*),
               min(received_at), max(received_at),
               (array_agg(message ORDER BY received_at DESC))[1]
        FROM (
            SELECT s.app_id, s.session, s.event_name, s.received_at,
                   coalesce(f ->> 'path', '') AS path, coalesce(f ->> 'rule', '') AS rule,
                   {_SEVERITY} AS severity, coalesce(f ->> 'message', '') AS message
            FROM {source} AS s
            CROSS JOIN LATERAL jsonb_array_elements(
                CASE WHEN jsonb_typeof(s.errors) = 'array' THEN s.errors ELSE '[]' END
            ) AS f
            WHERE s.errors <> '[]'::jsonb
        ) AS failures
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (app_id, hour, session, event_name, path, rule, severity) DO UPDATE
        SET n = t.n + excluded.n,
            first_seen = least(t.first_seen, excluded.first_seen),
            last_seen = greatest(t.last_seen, excluded.last_seen),
            message = CASE WHEN excluded.last_seen >= t.last_seen
                           THEN excluded.message ELSE t.message END
    )"""


# What RETURNING must give the upserts, for the rows a statement inserted or deleted.
COUNTED_COLUMNS = "app_id, session, event_name, validation_status, received_at, errors"
# Built once: the worker runs it for every message.
COUNT_NEW = _upserts("new", "")
_UNCOUNT_GONE = _upserts("gone", "-")
# A CTE that deletes the receipts of `gone` (deleted rows' ids): the same event id may then
# be stored again, as before it was first stored (migration 0012).
FORGET_RECEIPTS = """
    forgotten AS (
        DELETE FROM event_receipts WHERE entry_id IN (SELECT id FROM gone)
    )"""


async def delete_counted(conn: Connection, where: str, app_id: str | None, *args: object) -> int:
    """Delete the log_entries rows `where` selects and take them from the rollups, in one
    transaction; returns how many went.

    `where` is a condition written in code whose $1 is the app (None: every app) and whose
    further parameters are `args`.
    """
    async with conn.transaction():
        gone = await conn.fetchrow(
            f"""
            WITH gone AS (
                DELETE FROM log_entries
                WHERE {where}
                RETURNING id, {COUNTED_COLUMNS}
            ), {_UNCOUNT_GONE}, {FORGET_RECEIPTS}
            SELECT count(*) AS count,
                   array_agg(DISTINCT app_id) AS apps,
                   array_agg(DISTINCT date_bin('1 hour', received_at, 'epoch')) AS hours
            FROM gone
            """,
            app_id,
            *args,
        )
        # A statement cannot see what its own upserts did: what they emptied goes next, and
        # the first and last seen of what they left are read again from the rows left.
        for table in ("event_counts_hourly", "failure_counts_hourly"):
            await conn.execute(
                f"DELETE FROM {table} WHERE ($1::text IS NULL OR app_id = $1) AND n <= 0", app_id
            )
        if gone["count"]:
            await conn.execute(_RESEEN_HOURS, gone["apps"], gone["hours"])
            await conn.execute(_RESEEN_FAILURES, gone["apps"], gone["hours"])
    return int(gone["count"])


# The rows left in the hours ($2) of the apps ($1) a deletion touched: an index range per
# hour (not one range from the first touched hour to the last, which for a session active on
# the 1st and the 30th read the whole month), and only the columns the rollups keep.
_LEFT = """
    SELECT e.app_id, h.hour, e.session, e.event_name, e.validation_status, e.received_at,
           e.errors
    FROM unnest($2::timestamptz[]) AS h (hour)
    JOIN log_entries e
      ON e.app_id = ANY($1::text[])
     AND e.received_at >= h.hour
     AND e.received_at < h.hour + interval '1 hour'
"""
_RESEEN_HOURS = f"""
    UPDATE event_counts_hourly t
    SET first_seen = r.first_seen, last_seen = r.last_seen
    FROM (
        SELECT app_id, hour, session, event_name, validation_status AS status,
               min(received_at) AS first_seen, max(received_at) AS last_seen
        FROM ({_LEFT}) AS left_rows
        GROUP BY 1, 2, 3, 4, 5
    ) AS r
    WHERE t.app_id = r.app_id AND t.hour = r.hour AND t.status = r.status
      AND t.session IS NOT DISTINCT FROM r.session
      AND t.event_name IS NOT DISTINCT FROM r.event_name
      AND (t.first_seen, t.last_seen) IS DISTINCT FROM (r.first_seen, r.last_seen)
"""
_RESEEN_FAILURES = f"""
    UPDATE failure_counts_hourly t
    SET first_seen = r.first_seen, last_seen = r.last_seen, message = r.message
    FROM (
        SELECT app_id, hour, session, event_name,
               coalesce(f ->> 'path', '') AS path, coalesce(f ->> 'rule', '') AS rule,
               {_SEVERITY} AS severity,
               min(received_at) AS first_seen, max(received_at) AS last_seen,
               (array_agg(coalesce(f ->> 'message', '') ORDER BY received_at DESC))[1] AS message
        FROM ({_LEFT}) AS left_rows
        CROSS JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(errors) = 'array' THEN errors ELSE '[]' END
        ) AS f
        WHERE errors <> '[]'::jsonb
        GROUP BY 1, 2, 3, 4, 5, 6, 7
    ) AS r
    WHERE t.app_id = r.app_id AND t.hour = r.hour AND t.path = r.path AND t.rule = r.rule
      AND t.severity = r.severity
      AND t.session IS NOT DISTINCT FROM r.session
      AND t.event_name IS NOT DISTINCT FROM r.event_name
      AND (t.first_seen, t.last_seen, t.message)
          IS DISTINCT FROM (r.first_seen, r.last_seen, r.message)
"""


# The app's horizon: hours from it on are in the rollups; rows before it are counted raw.
HORIZON_OF = """coalesce(
    (SELECT counted_from FROM rollup_horizons WHERE app_id = {app}), '-infinity'::timestamptz
)"""


@dataclass(frozen=True, slots=True)
class Span:
    """A time range [since, until), either end open, split at whole UTC hours."""

    since: datetime | None
    until: datetime | None

    def sql(self, params: Params, app: str) -> tuple[str, str, str, str]:
        """($since, $until, lo, hi): the rollups cover [lo, hi), the rows the rest.

        lo is the first whole hour at or after `since` and the app's horizon; hi the last
        hour boundary at or before `until`. Both are SQL expressions; the ends may be NULL.
        """
        since, until = params.add(self.since), params.add(self.until)
        first = params.add(ceil_hour(self.since) if self.since else None)
        last = params.add(floor_hour(self.until) if self.until else None)
        lo = f"greatest(coalesce({first}::timestamptz, '-infinity'), {HORIZON_OF.format(app=app)})"
        hi = f"coalesce({last}::timestamptz, 'infinity')"
        return since, until, lo, hi


def servable(filters: EventFilter) -> bool:
    """Whether counts under this filter come from the rollups: status, names, session, time."""
    return filters.text is None and filters.rule is None


def counted_events(filters: EventFilter, params: Params, app: str) -> str:
    """A relation of (event_name, status, n, first_seen, last_seen) whose sums are the
    counts of the app's events matching `filters` (servable ones only), per name and status.

    Its rows: the rollups of the whole hours in the range, then the rows of the edges
    (before the first whole hour or the horizon; after the last whole hour).
    """
    since, until, lo, hi = Span(filters.since, filters.until).sql(params, app)
    status = params.add(filters.status)
    names = params.add(list(filters.event_names))
    # Written only for a session, so that a session's counts come through its index.
    of_session = f"AND session = {params.add(filters.session)}" if filters.session else ""
    matching = f"""({status}::text IS NULL OR {{status}} = {status})
          AND (cardinality({names}::text[]) = 0 OR event_name = ANY({names}::text[]))
          {of_session}"""
    raw = f"""
        SELECT event_name, validation_status, count(*), min(received_at), max(received_at)
        FROM log_entries
        WHERE app_id = {app}
          AND {matching.format(status="validation_status")}
          AND received_at >= {{start}} AND received_at < {{end}}
        GROUP BY 1, 2"""
    open_since = f"coalesce({since}::timestamptz, '-infinity')"
    open_until = f"coalesce({until}::timestamptz, 'infinity')"
    return f"""(
        SELECT event_name, status, n, first_seen, last_seen
        FROM event_counts_hourly
        WHERE app_id = {app}
          AND {matching.format(status="status")}
          AND hour >= (SELECT {lo}) AND hour < (SELECT {hi})
        UNION ALL
        {raw.format(start=open_since, end=f"(SELECT least({lo}, {open_until}))")}
        UNION ALL
        {raw.format(start=f"(SELECT greatest({hi}, {lo}, {open_since}))", end=open_until)}
    )"""


async def advance_horizon(conn: Connection, app_id: str, cutoff: datetime) -> datetime:
    """Before the app's events older than `cutoff` go: count from the hour after it on, and
    drop the counts of the hours before. Never moves back; returns the horizon."""
    horizon: datetime = await conn.fetchval(
        """
        WITH horizon AS (
            INSERT INTO rollup_horizons AS h (app_id, counted_from)
            VALUES ($1, $2)
            ON CONFLICT (app_id) DO UPDATE
            SET counted_from = greatest(h.counted_from, excluded.counted_from)
            RETURNING counted_from
        ), hours AS (
            DELETE FROM event_counts_hourly
            WHERE app_id = $1 AND hour < (SELECT counted_from FROM horizon)
        ), failures AS (
            DELETE FROM failure_counts_hourly
            WHERE app_id = $1 AND hour < (SELECT counted_from FROM horizon)
        )
        SELECT counted_from FROM horizon
        """,
        app_id,
        ceil_hour(cutoff),
    )
    return horizon
