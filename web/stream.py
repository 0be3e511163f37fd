"""The live view's stream: an app's new rows over SSE, rendered with the page's own partial."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from quart import Blueprint, Response, render_template, request, stream_with_context

from web.context import services
from web.core.apps import unknown_app
from web.core.filters import EventFilter
from web.core.queries.base import LogEntry
from web.core.queries.events import select_log_entries
from web.sse import RETRY_FRAME, sse_frame, sse_response

blueprint = Blueprint("stream", __name__)

KEEPALIVE_SECONDS = 15.0
# Row ids a stream remembers having sent, to skip repeats (the hub may deliver a row that the
# back-fill already sent); a bound, so a day-long stream does not grow.
REMEMBERED_IDS = 10_000


@blueprint.get("/apps/<app_id>/stream")
async def app_stream(app_id: str) -> Response:
    filters = EventFilter.from_args(request.args)
    after_id = _resume_point()
    svc = services()
    if await svc.apps.get(app_id) is None:
        raise unknown_app(app_id)

    @stream_with_context
    async def frames() -> AsyncIterator[bytes]:
        yield RETRY_FRAME
        # Subscribe before back-filling: rows committed in between are then in the queue,
        # and the id check below drops the ones the back-fill already sent.
        async with svc.hub.subscribe(app_id, filters) as subscription:
            sent = SentIds(REMEMBERED_IDS)
            async with svc.pool.acquire() as conn:
                missed = await select_log_entries(
                    conn, app_id, filters=filters, after_id=after_id, limit=svc.settings.page_size
                )
            for entry in reversed(missed):
                yield await _row_frame(entry)
                sent.add(entry.id)
            while not subscription.overflowed.is_set():
                try:
                    entry = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                # Not a high-water mark: two workers can commit ids out of order, and the
                # later-committed lower id must still be shown.
                if entry.id not in sent:
                    yield await _row_frame(entry)
                    sent.add(entry.id)
            # A client too slow to keep up is cut off; it reconnects with Last-Event-ID
            # and back-fills, so memory stays bounded and nothing is missed.

    return sse_response(frames())


class SentIds:
    """A bounded set of the most recent row ids a stream has sent."""

    def __init__(self, size: int) -> None:
        self._order: deque[int] = deque()
        self._ids: set[int] = set()
        self._size = size

    def __contains__(self, row_id: int) -> bool:
        return row_id in self._ids

    def add(self, row_id: int) -> None:
        self._ids.add(row_id)
        self._order.append(row_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())


async def _row_frame(entry: LogEntry) -> bytes:
    html = await render_template("_event_row.html", entry=entry)
    return sse_frame(html, event="event", event_id=entry.id)


def _resume_point() -> int:
    """The last row id the client has: Last-Event-ID on reconnect, else ?after= from the page."""
    for raw in (request.headers.get("Last-Event-ID"), request.args.get("after")):
        if raw is not None and raw.isdigit():
            return int(raw)
    return 0
