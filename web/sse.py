"""Server-sent events on the wire: the frames, and the response that carries them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from quart import Response

# Tells EventSource how soon to reconnect after the stream ends (milliseconds).
RETRY_MS = 1000
# The first frame of every stream.
RETRY_FRAME = f"retry: {RETRY_MS}\n\n".encode()
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def sse_frame(data: str, *, event: str, event_id: int) -> bytes:
    """One SSE message; every line of the payload gets its own data: field."""
    lines = [f"id: {event_id}", f"event: {event}"]
    # SSE ends a line at CR, LF or CRLF only; str.splitlines would also split on U+2028 etc.
    lines += [f"data: {line}" for line in _LINE_BREAK.split(data)]
    return ("\n".join(lines) + "\n\n").encode()


def sse_response(frames: AsyncIterator[bytes]) -> Response:
    """A text/event-stream answer of `frames`, open for as long as they last."""
    response = Response(frames, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    # nginx would otherwise buffer the frames and deliver them late, in bursts.
    response.headers["X-Accel-Buffering"] = "no"
    response.timeout = None  # Quart would otherwise end the stream after 60 s
    return response
