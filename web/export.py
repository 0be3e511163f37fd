"""Export: an app's filtered events as CSV or NDJSON, streamed page by page and bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from quart import Blueprint, Response, request, stream_with_context

from web.context import services
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.exports import EVENT_COLUMNS, csv_lines, event_csv_row, event_ndjson
from web.core.filters import EventFilter
from web.core.queries.base import LogEntry
from web.core.queries.events import select_log_entries

blueprint = Blueprint("export", __name__)

# Rows one export carries at most (?limit= may ask for fewer), and rows per query: each
# page is read on a pool connection held only for that query, newest first by id cursor.
MAX_ROWS = 50_000
CHUNK_ROWS = 1000
# Seconds an export may take to stream before the server ends it.
EXPORT_TIMEOUT = 300


@blueprint.get("/apps/<app_id>/events.csv")
async def export_csv(app_id: str) -> Response:
    header = csv_lines([EVENT_COLUMNS]).encode()
    return await _export(
        app_id,
        "csv",
        "text/csv; charset=utf-8",
        header,
        lambda rows: csv_lines(event_csv_row(entry) for entry in rows).encode(),
    )


@blueprint.get("/apps/<app_id>/events.ndjson")
async def export_ndjson(app_id: str) -> Response:
    return await _export(
        app_id,
        "ndjson",
        "application/x-ndjson",
        b"",
        lambda rows: b"".join(event_ndjson(entry) for entry in rows),
    )


async def _export(
    app_id: str,
    extension: str,
    content_type: str,
    header: bytes,
    encode: Callable[[list[LogEntry]], bytes],
) -> Response:
    filters = EventFilter.from_args(request.args)
    limit = _limit(request.args.get("limit"))
    pool = services().pool
    async with pool.acquire() as conn:
        await require_app(conn, app_id)

    @stream_with_context
    async def chunks() -> AsyncIterator[bytes]:
        if header:
            yield header
        sent, before = 0, None
        while sent < limit:
            size = min(CHUNK_ROWS, limit - sent)
            async with pool.acquire() as conn:
                rows = await select_log_entries(
                    conn, app_id, filters=filters, before_id=before, limit=size
                )
            if rows:
                yield encode(rows)
            if len(rows) < size:
                return
            sent, before = sent + len(rows), rows[-1].id

    response = Response(chunks(), content_type=content_type)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # App ids are [a-z0-9_-] (checked at creation), so the name needs no quoting.
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{app_id}-events-{stamp}.{extension}"'
    )
    response.headers["Cache-Control"] = "no-store"
    response.timeout = EXPORT_TIMEOUT
    return response


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return MAX_ROWS
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ROWS:
        raise Rejected(400, "invalid_limit", f"limit must be a whole number from 1 to {MAX_ROWS}")
    return int(raw)
