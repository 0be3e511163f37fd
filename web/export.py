"""Export: an app's filtered events as CSV or NDJSON, streamed page by page, resumable by row id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import asyncpg
from quart import Blueprint, Response, request, stream_with_context

from web.attachments import as_attachment
from web.context import services
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.exports import EVENT_COLUMNS, csv_lines, events_csv, events_ndjson
from web.core.filters import EventFilter
from web.core.queries.base import LogEntry
from web.core.queries.exports import ID_CEILING, IdSpan, select_export_page, select_export_span

blueprint = Blueprint("export", __name__)

# Rows per query. Each page is read on a pool connection held only for that query and
# written out before the next is read, so memory stays flat however many rows there are.
PAGE_ROWS = 5000

Encoder = Callable[[Sequence[LogEntry]], bytes]


@blueprint.get("/apps/<app_id>/events.csv")
async def export_csv(app_id: str) -> Response:
    header = csv_lines([EVENT_COLUMNS]).encode()
    return await _export(app_id, "csv", "text/csv; charset=utf-8", header, events_csv)


@blueprint.get("/apps/<app_id>/events.ndjson")
async def export_ndjson(app_id: str) -> Response:
    return await _export(app_id, "ndjson", "application/x-ndjson", b"", events_ndjson)


async def _export(
    app_id: str, extension: str, content_type: str, header: bytes, encode: Encoder
) -> Response:
    filters = EventFilter.from_args(request.args)
    limit = _whole_number("limit", request.args.get("limit"), "invalid_limit")
    before_id = _whole_number("before_id", request.args.get("before_id"), "invalid_cursor")
    pool = services().pool
    async with pool.acquire() as conn:
        await require_app(conn, app_id)
        span = await select_export_span(conn, app_id, filters, before_id)

    @stream_with_context
    async def chunks() -> AsyncIterator[bytes]:
        if header:
            yield header
        if span is not None:
            async for page in _pages(pool, app_id, filters, span, limit):
                yield encode(page)

    response = as_attachment(
        Response(chunks(), content_type=content_type),
        f"{app_id}-events",
        datetime.now(UTC),
        extension,
    )
    response.headers["Cache-Control"] = "no-store"
    # As long as there are rows: a client that goes away cancels the stream (and the query
    # in flight with it), and one that was cut off resumes with ?before_id=.
    response.timeout = None
    return response


async def _pages(
    pool: asyncpg.Pool, app_id: str, filters: EventFilter, span: IdSpan, limit: int | None
) -> AsyncIterator[list[LogEntry]]:
    """The matching rows in span, newest first, a page at a time, `limit` of them at most."""
    left = ID_CEILING if limit is None else limit
    while left > 0:
        size = min(PAGE_ROWS, left)
        async with pool.acquire() as conn:
            rows = await select_export_page(conn, app_id, filters, span, size)
        if rows:
            yield rows
        if len(rows) < size:
            return
        span, left = span.before(rows[-1].id), left - len(rows)


def _whole_number(name: str, raw: str | None, code: str) -> int | None:
    """A positive integer from the query string, or None when it is absent."""
    if raw is None or raw == "":
        return None
    if len(raw) > 19 or not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < ID_CEILING:
        raise Rejected(400, code, f"{name} must be a whole number above 0")
    return int(raw)
