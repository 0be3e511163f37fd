"""Every ingest URL, served as plain ASGI in front of Quart: routing, CORS, the body, metrics.

Ingest is the one hot path, and Quart's per-request machinery (request and app contexts,
the session, hooks, Response objects) costs as much CPU as Hypercorn's HTTP handling
itself: about 0.3 ms a request on this project's 2-core machine. So the wire formats'
routes (web/core/ingest/registry.py) are answered here, with the Quart-free core, and
every other request goes on to Quart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from quart import Quart

from web.context import Services
from web.core.errors import TOO_LARGE_MESSAGE, Rejected
from web.core.ingest.accept import accept
from web.core.ingest.registry import ALLOWED_HEADERS, ROUTER, Match
from web.core.ingest.wire import Answer, WireRequest
from web.core.settings import Limits
from web.metrics import record_ingest
from web.security import SECURITY_HEADERS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Quart types its own asgi_app with hypercorn.typing; any ASGI callable will do here.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

log = logging.getLogger(__name__)

_FIXED_HEADERS = [
    (name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
]
# The request headers ingest reads (the wire formats read no other), by their raw names.
_READ_HEADERS = {
    name.encode(): name
    for name in (
        "content-type",
        "content-encoding",
        "content-length",
        "authorization",
        "x-write-key",
        "x-lvd-session",
        "origin",
        "host",
        "access-control-request-private-network",
    )
}
# A browser may cache a preflight's answer this many seconds.
PREFLIGHT_MAX_AGE = "600"


class _ClientGone(Exception):
    """The client disconnected before its body arrived: there is no one to answer."""


class IngestEdge:
    """ASGI middleware: ingest routes (and their preflights) here, the rest to `downstream`."""

    def __init__(self, app: Quart, downstream: ASGIApp) -> None:
        self.app = app
        self.downstream = downstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            match = ROUTER.match(_route_path(scope))
            svc: Services | None = self.app.extensions.get("lvd")
            if match is not None and svc is not None:
                if scope["method"] == "OPTIONS":
                    await _preflight(match, scope, send)
                    return
                if scope["method"] in match.route.methods:
                    await self._serve(svc, match, scope, receive, send)
                    return
        await self.downstream(scope, receive, send)

    async def _serve(
        self, svc: Services, match: Match, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        headers = _headers_of(scope)
        cors = _cors_headers(match, headers.get("origin"))
        fmt = match.formats[0]
        document = match.route.document
        try:
            body = await _read_body(receive, headers, match, svc.settings.limits)
            request = WireRequest(
                method=scope["method"],
                route=match.route.name,
                path_params=match.params,
                query=_query_of(scope),
                headers=headers,
                body=body,
                # Only documents point back at this server.
                base_url=_base_url(scope, headers) if document else "",
                path_session=match.session,
            )
            if document is not None:
                await _answer(send, document(request), cors)
                return
            fmt, answer = await accept(svc, match.formats, request)
        except _ClientGone:
            return
        except Rejected as exc:
            answer = fmt.refused(exc)
        except Exception:
            log.exception("Unhandled error on %s %s", scope["method"], scope["path"])
            answer = fmt.refused(Rejected(500, "internal_error", "an unexpected error occurred"))
        served = match.served_by(fmt)
        final = served.route.final_statuses.get(answer.status)
        if final is not None:
            answer = replace(answer, status=final)
        await _answer(send, answer, cors)
        record_ingest(served.endpoint, answer.status, started)


def install_ingest(app: Quart) -> None:
    app.asgi_app = IngestEdge(app, app.asgi_app)  # type: ignore[method-assign,assignment]


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _base_url(scope: Scope, headers: Mapping[str, str]) -> str:
    """scheme://host[/root] as the client reached this server."""
    host = headers.get("host")
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"


def _headers_of(scope: Scope) -> dict[str, str]:
    # HTTP header values are Latin-1, as Werkzeug reads them; the first of repeats wins.
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = _READ_HEADERS.get(name)
        if key is not None and key not in found:
            found[key] = value.decode("latin-1")
    return found


def _query_of(scope: Scope) -> dict[str, str]:
    """The first value of each query parameter, as Quart's request.args.get gives it."""
    query: dict[str, str] = {}
    raw: bytes = scope.get("query_string", b"")
    if raw:
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            query.setdefault(name, value)
    return query


def _cors_headers(match: Match, origin: str | None) -> list[tuple[bytes, bytes]]:
    """Ingest answers any origin. Where the SDK sends cookies (Snowplow's tracker does), the
    answer must name the page's origin and allow credentials, as `*` may not; ingest reads
    no cookie, so this grants a page nothing. Elsewhere `*`: no credentials are allowed."""
    if origin is None or not match.credentials:
        return _ANY_ORIGIN
    return _encoded(
        {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Expose-Headers": "Retry-After",
            "Vary": "Origin",
        }
    )


def _encoded(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()]


_ANY_ORIGIN = _encoded(
    {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After"}
)


async def _preflight(match: Match, scope: Scope, send: Send) -> None:
    headers = _headers_of(scope)
    answer_headers = {
        "Access-Control-Allow-Methods": ", ".join((*match.route.methods, "OPTIONS")),
        "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        "Allow": ", ".join((*match.route.methods, "OPTIONS")),
    }
    if headers.get("access-control-request-private-network") == "true":
        # Chrome asks before a public page may reach a server on a private address.
        answer_headers["Access-Control-Allow-Private-Network"] = "true"
    cors = _cors_headers(match, headers.get("origin"))
    await _answer(send, Answer(204, b"", "text/plain", answer_headers), cors)


async def _answer(send: Send, answer: Answer, cors: list[tuple[bytes, bytes]]) -> None:
    response_headers = [
        (b"content-type", answer.content_type.encode()),
        (b"content-length", str(len(answer.body)).encode()),
        *_FIXED_HEADERS,
        *cors,
    ]
    if answer.headers:
        response_headers += _encoded(answer.headers)
    await send(
        {"type": "http.response.start", "status": answer.status, "headers": response_headers}
    )
    await send({"type": "http.response.body", "body": answer.body})


async def _read_body(
    receive: Receive, headers: Mapping[str, str], match: Match, limits: Limits
) -> bytes:
    """The whole body, refused early when it is over the size limit or too slow to arrive."""
    limit = match.max_request_bytes(limits)
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
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
