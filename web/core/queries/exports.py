"""SQL for exports: an app's filtered events a page at a time, newest first, between two ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from web.core.filters import EventFilter
from web.core.queries.base import _ENTRY_COLUMNS, Connection, LogEntry
from web.core.queries.filtering import Params, filter_sql

# Row ids are a bigint identity: every id is below this.
ID_CEILING = 2**63 - 1


@dataclass(frozen=True, slots=True)
class IdSpan:
    """The row ids an export still has to read: low <= id < below."""

    low: int = 0
    below: int = ID_CEILING

    def before(self, entry_id: int) -> IdSpan:
        """What is left once every row from entry_id up has been read."""
        return replace(self, below=min(self.below, entry_id))


# The window's ids, read from (app_id, received_at) INCLUDE (id) alone. GROUP BY stops the
# planner answering min(id) by walking the primary key until a row falls in the window,
# which reads the whole history on one side of it; an empty window gives no row.
_WINDOW_IDS = """
    SELECT min(id) AS low, max(id) AS high
    FROM log_entries
    WHERE app_id = $1
      AND received_at >= coalesce($2::timestamptz, '-infinity')
      AND received_at < coalesce($3::timestamptz, 'infinity')
    GROUP BY app_id
"""


async def select_export_span(
    conn: Connection, app_id: str, filters: EventFilter, before_id: int | None = None
) -> IdSpan | None:
    """The ids an export of the filter reads, below before_id; None when there is nothing.

    A time window's rows lie between its lowest and highest id, so its pages stop there
    instead of walking the history older (or newer) than the window to find no more.
    """
    span = IdSpan(below=ID_CEILING if before_id is None else before_id)
    if filters.since is None and filters.until is None:
        return span
    async with _export_statement(conn):
        row = await conn.fetchrow(_WINDOW_IDS, app_id, filters.since, filters.until)
    if row is None:
        return None
    return IdSpan(low=row["low"], below=min(span.below, row["high"] + 1))


async def select_export_page(
    conn: Connection, app_id: str, filters: EventFilter, span: IdSpan, limit: int
) -> list[LogEntry]:
    """The newest `limit` of the app's events that match the filter and lie in span."""
    params = Params()
    app = params.add(app_id)
    matching = filter_sql(filters, params)
    low, below, count = params.add(span.low), params.add(span.below), params.add(limit)
    async with _export_statement(conn):
        rows = await conn.fetch(
            f"""
            SELECT {_ENTRY_COLUMNS}
            FROM log_entries
            WHERE app_id = {app}
              AND id >= {low} AND id < {below}
              AND {matching}
            ORDER BY id DESC
            LIMIT {count}
            """,
            *params.values,
        )
    return [LogEntry(**dict(row)) for row in rows]


# Each export statement is planned for its own values: after a few runs of one prepared
# statement PostgreSQL may keep a generic plan, which cannot use the index a filter needs (a
# session, a rare name) and walks every row back from the cursor instead. And it is never
# compiled by JIT: compiling costs more than a page saves, and a cancel that arrives while
# LLVM compiles is lost, so the query would run to its end after the client had gone.
_STATEMENT_SETTINGS = "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL jit = off"


@asynccontextmanager
async def _export_statement(conn: Connection) -> AsyncIterator[None]:
    async with conn.transaction():
        await conn.execute(_STATEMENT_SETTINGS)
        yield
