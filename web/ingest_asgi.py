"""POST /api/logs/<app_id> served as plain ASGI, in front of Quart.

Ingest is the one hot path, and Quart's per-request machinery (request and app contexts,
the session, hooks, Response objects) costs as much CPU as Hypercorn's HTTP handling
itself: about 0.3 ms a request on this project's 2-core machine. This middleware answers
ingest POSTs directly, with the same core (web.ingest.accept_events), the same error
bodies, headers and metrics; everything else, including OPTIONS on the same URL, goes on
to Quart.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson
from quart import Quart

from web.context import Services
from web.core.errors import Rejected
from web.core.jobs import EnqueueUnavailable
from web.errors import RETRY_AFTER_SECONDS, TOO_LARGE_MESSAGE, error_document
from web.ingest import SESSION_HEADER, IngestCall, accept_events
from web.metrics import record_ingest
from web.security import CROSS_ORIGIN_HEADERS, SECURITY_HEADERS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Quart types its own asgi_app with hypercorn.typing; any ASGI callable will do here.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

log = logging.getLogger(__name__)

# The same URLs as Quart's rule /api/logs/<app_id>: one segment, no trailing slash.
INGEST_PATH = re.compile(r"/api/logs/([^/]+)")
# The metrics label Quart gives the route, so both ways of serving it count as one.
ENDPOINT = "ingest.ingest"
_SESSION_HEADER = SESSION_HEADER.lower().encode()
_WANTED_HEADERS = {
    b"content-type",
    b"content-encoding",
    b"content-length",
    b"authorization",
    b"x-write-key",
    _SESSION_HEADER,
}
_FIXED_HEADERS = [
    (name.lower().encode(), value.encode())
    for name, value in {**SECURITY_HEADERS, **CROSS_ORIGIN_HEADERS}.items()
]


class _ClientGone(Exception):
    """The client disconnected before its body arrived: there is no one to answer."""


class IngestFastPath:
    """ASGI middleware: ingest POSTs answered here, everything else passed to `downstream`."""

    def __init__(self, app: Quart, downstream: ASGIApp) -> None:
        self.app = app
        self.downstream = downstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            match = INGEST_PATH.fullmatch(scope["path"])
            svc: Services | None = self.app.extensions.get("lvd")
            if match is not None and svc is not None:
                await self._ingest(svc, match[1], scope, receive, send)
                return
        await self.downstream(scope, receive, send)

    async def _ingest(
        self, svc: Services, app_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        headers = _headers_of(scope)
        extra: dict[str, str] = {}
        try:
            raw = await _read_body(receive, headers.get(b"content-length"), svc)
            call = IngestCall(
                app_id=app_id,
                content_type=headers.get(b"content-type"),
                content_encoding=headers.get(b"content-encoding"),
                authorization=headers.get(b"authorization"),
                write_key=headers.get(b"x-write-key"),
                session=headers.get(_SESSION_HEADER) or _query_value(scope, "session"),
            )
            status, body = 202, await accept_events(svc, call, raw)
        except _ClientGone:
            return
        except Rejected as exc:
            status, body = exc.status, _error_body(exc.code, exc.message, exc.details)
            extra = exc.headers
        except EnqueueUnavailable as exc:
            status, body = 503, _error_body("queue_unavailable", str(exc))
            extra = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        except Exception:
            log.exception("Unhandled error on POST %s", scope["path"])
            status, body = 500, _error_body("internal_error", "an unexpected error occurred")
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *_FIXED_HEADERS,
            *((name.lower().encode(), value.encode()) for name, value in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})
        record_ingest(ENDPOINT, status, started)


def install_ingest_fast_path(app: Quart) -> None:
    app.asgi_app = IngestFastPath(app, app.asgi_app)  # type: ignore[method-assign,assignment]


def _headers_of(scope: Scope) -> dict[bytes, str]:
    # HTTP header values are Latin-1, as Werkzeug reads them; the first of repeats wins.
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED_HEADERS and name not in found:
            found[name] = value.decode("latin-1")
    return found


def _query_value(scope: Scope, name: str) -> str | None:
    query: bytes = scope.get("query_string", b"")
    if not query:
        return None
    values = parse_qs(query.decode("latin-1"), keep_blank_values=True).get(name)
    return values[0] if values else None


async def _read_body(receive: Receive, declared_length: str | None, svc: Services) -> bytes:
    """The whole body, refused early when it is over the size limit or too slow to arrive."""
    limits = svc.settings.limits
    limit = limits.max_request_bytes
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.body_timeout_seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _ClientGone
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large()
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise Rejected(
            408,
            "request_timeout",
            f"the request body did not arrive within {limits.body_timeout_seconds:g} s",
        ) from None


def _too_large() -> Rejected:
    return Rejected(413, "request_too_large", TOO_LARGE_MESSAGE)


def _error_body(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps(error_document(code, message, details))
