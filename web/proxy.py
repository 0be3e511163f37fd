"""The outermost ASGI layer: believe trusted proxies, and give every request an id.

From a trusted proxy, X-Forwarded-Proto/Host/For (or Forwarded) set the request's scheme,
Host and client address, so that the same-origin check, secure cookies, absolute links and
logs see what the browser saw. Every answer carries X-Request-ID (the proxy's, or a new
one); log lines written while the request runs carry it too (web.core.logs).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from quart import Quart

from web.core.forwarded import TrustedProxies, read_forwarded, request_id_from
from web.core.logs import current_request_id
from web.core.settings import Settings

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Any
Send = Any
ASGIApp = Any

_FORWARDING_HEADERS = {
    b"forwarded": "forwarded",
    b"x-forwarded-for": "x-forwarded-for",
    b"x-forwarded-proto": "x-forwarded-proto",
    b"x-forwarded-host": "x-forwarded-host",
    b"x-request-id": "x-request-id",
}
_REQUEST_ID_HEADER = b"x-request-id"


class ProxyHeaders:
    """Rewrites a trusted proxy's request in place, and adds X-Request-ID to every answer.

    In place, not a copy: Hypercorn writes its access-log line from the same scope, so the
    line shows the real client, not the proxy.
    """

    def __init__(
        self, app: ASGIApp, proxies: TrustedProxies, settings: Settings | None = None
    ) -> None:
        self.app = app
        self._proxies = proxies
        # With settings, the first forwarded request checks them against what it shows.
        self._settings = settings
        self._checked_setup = settings is None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        headers = _forwarding_headers(scope) if client and self._proxies.trusts(client[0]) else {}
        if headers:
            _apply_forwarded(scope, headers, self._proxies)
            if not self._checked_setup and self._settings is not None:
                self._checked_setup = True
                _warn_about_setup(scope, self._settings)
        request_id = request_id_from(headers.get("x-request-id")) or uuid.uuid4().hex
        token = current_request_id.set(request_id)
        try:
            await self.app(scope, receive, _with_request_id(send, request_id.encode()))
        finally:
            current_request_id.reset(token)


def install_proxy_headers(app: Quart, settings: Settings) -> None:
    """Install outermost, in front of the ingest edge, so every route sees the same request."""
    app.asgi_app = ProxyHeaders(app.asgi_app, settings.trusted_proxies, settings)  # type: ignore[method-assign,assignment]


def _warn_about_setup(scope: Scope, settings: Settings) -> None:
    """Once a process: what a server behind a proxy most often gets wrong, said in the log."""
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
    reached_as = f"{scope['scheme']}://{host}"
    if reached_as != settings.public_url:
        log.warning(
            "Requests arrive through a proxy as %s, but alerts link to %s: set LVD_PUBLIC_URL",
            reached_as,
            settings.public_url,
        )
    if not settings.require_login:
        log.warning(
            "Requests arrive through a proxy, but sign-in is off: whoever reaches the proxy"
            " can read and change everything; set LVD_REQUIRE_LOGIN=true"
        )


def _forwarding_headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = _FORWARDING_HEADERS.get(name)
        if key is not None:
            # Repeated headers are one list, as RFC 9110 reads them.
            text = value.decode("latin-1")
            found[key] = f"{found[key]}, {text}" if key in found else text
    return found


def _apply_forwarded(scope: Scope, headers: dict[str, str], proxies: TrustedProxies) -> None:
    said = read_forwarded(headers, proxies)
    if said.scheme is not None:
        secure = said.scheme == "https"
        if scope["type"] == "websocket":
            scope["scheme"] = "wss" if secure else "ws"
        else:
            scope["scheme"] = said.scheme
    if said.host is not None:
        encoded = said.host.encode("latin-1")
        scope["headers"] = [
            (name, value) for name, value in scope["headers"] if name != b"host"
        ] + [(b"host", encoded)]
    if said.client is not None:
        scope["client"] = (said.client, 0)


def _with_request_id(send: Send, request_id: bytes) -> Send:
    async def send_with_id(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(name.lower() == _REQUEST_ID_HEADER for name, _ in headers):
                headers.append((_REQUEST_ID_HEADER, request_id))
            message = {**message, "headers": headers}
        await send(message)

    return send_with_id
