"""The ASGI ingest edge (web/ingest.py): routing before Quart, the body, CORS, and its edges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from web.context import Services
from web.core.queries.base import App
from web.core.settings import Limits
from web.ingest import IngestEdge
from web.proxy import ProxyHeaders

EVENT = {"eventName": "user_login", "userId": 1, "timestamp": "2025-12-10T15:45:00Z"}


class Exchange:
    """Drives one ASGI request by hand: the body in chunks, then what the app sent back."""

    def __init__(self, chunks: list[bytes], *, hang_after: bool = False) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1 or hang_after
            self.incoming.put_nowait({"type": "http.request", "body": chunk, "more_body": more})
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.sent[0]["headers"]}

    @property
    def json(self) -> Any:
        return orjson.loads(self.sent[1]["body"])


def scope_for(path: str, headers: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        **extra,
    }


@pytest.fixture
def fast_path(quart_app: Quart) -> IngestEdge:
    # Outermost the proxy-header layer (web/proxy.py), then the ingest edge, then Quart.
    outermost = quart_app.asgi_app
    assert isinstance(outermost, ProxyHeaders)
    assert isinstance(outermost.app, IngestEdge)
    return outermost.app


@pytest.fixture
def quart_never_answers(quart_app: Quart) -> Iterator[None]:
    """Any request that reaches Quart fails loudly: an answer proves the edge gave it."""

    async def must_not_run() -> None:
        raise AssertionError("Quart saw an ingest request")

    quart_app.before_request_funcs.setdefault(None, []).insert(0, must_not_run)
    yield
    quart_app.before_request_funcs[None].remove(must_not_run)


@pytest.fixture
async def small_limits(services: Services) -> AsyncIterator[None]:
    original = services.settings
    limits = Limits(max_request_bytes=64, body_timeout_seconds=0.2)
    services.settings = replace(original, limits=limits)
    yield
    services.settings = original


async def test_ingest_posts_are_answered_without_quart(
    client: Client, app: App, quart_never_answers: None
) -> None:
    response = await client.post(f"/api/logs/{app.id}", json=EVENT)
    assert response.status_code == 202
    body = await response.get_json()
    assert body["status"] == "valid" and body["event_name"] == "user_login"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Access-Control-Allow-Origin"] == "*"  # no Origin sent


async def test_preflights_are_answered_without_quart(
    client: Client, app: App, quart_never_answers: None
) -> None:
    preflight = await client.options(f"/api/logs/{app.id}")
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"


async def test_other_methods_and_paths_still_reach_quart(client: Client, app: App) -> None:
    # A trailing slash is no ingest route: Quart's 404.
    assert (await client.post(f"/api/logs/{app.id}/", json=EVENT)).status_code == 404
    # The query API shares the path.
    assert (await client.get(f"/api/logs/{app.id}")).status_code == 200


async def test_under_a_root_path_the_edge_answers_the_same(fast_path: IngestEdge, app: App) -> None:
    body = orjson.dumps({**EVENT, "event_id": "root-path-1"})
    headers = {"content-type": "application/json", "host": "localhost"}
    exchange = Exchange([body])
    scope = scope_for(f"/lvd/api/logs/{app.id}", headers, root_path="/lvd")
    scope.update(http_version="1.1", scheme="http", server=("127.0.0.1", 80), client=None)
    await fast_path(scope, exchange.receive, exchange.send)
    assert exchange.status == 202
    assert exchange.json["event_id"] == "root-path-1"


async def test_a_refusal_keeps_its_code_and_headers(
    client: Client, services: Services, app: App
) -> None:
    original = services.limiter
    services.limiter = type(original)(rate=1, burst=1)
    try:
        await client.post(f"/api/logs/{app.id}", json=EVENT)
        response = await client.post(f"/api/logs/{app.id}", json=EVENT)
    finally:
        services.limiter = original
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert (await response.get_json())["error"]["code"] == "rate_limited"


async def test_a_declared_oversized_body_is_refused_before_reading(
    fast_path: IngestEdge, small_limits: None, app: App
) -> None:
    exchange = Exchange([], hang_after=True)  # nothing arrives: it must not wait for it
    headers = {"content-type": "application/json", "content-length": "65"}
    await asyncio.wait_for(
        fast_path(scope_for(f"/api/logs/{app.id}", headers), exchange.receive, exchange.send), 2
    )
    assert exchange.status == 413
    assert exchange.json["error"]["code"] == "request_too_large"


async def test_a_streamed_body_over_the_limit_is_refused(
    fast_path: IngestEdge, small_limits: None, app: App
) -> None:
    exchange = Exchange([b"[" + b" " * 40, b" " * 40 + b"]"])  # no Content-Length
    headers = {"content-type": "application/json"}
    await fast_path(scope_for(f"/api/logs/{app.id}", headers), exchange.receive, exchange.send)
    assert exchange.status == 413


async def test_a_body_that_stops_arriving_gets_408(
    fast_path: IngestEdge, small_limits: None, app: App
) -> None:
    exchange = Exchange([b'{"eventName": '], hang_after=True)
    headers = {"content-type": "application/json"}
    await asyncio.wait_for(
        fast_path(scope_for(f"/api/logs/{app.id}", headers), exchange.receive, exchange.send), 5
    )
    assert exchange.status == 408
    assert exchange.json["error"]["code"] == "request_timeout"


async def test_a_client_that_disconnects_gets_no_answer(fast_path: IngestEdge, app: App) -> None:
    exchange = Exchange([b'{"eventName": '], hang_after=True)
    exchange.incoming.put_nowait({"type": "http.disconnect"})
    headers = {"content-type": "application/json"}
    await fast_path(scope_for(f"/api/logs/{app.id}", headers), exchange.receive, exchange.send)
    assert exchange.sent == []


async def test_session_comes_from_the_header_before_the_query(
    fast_path: IngestEdge, app: App
) -> None:
    too_long = "x" * 101
    for headers, query in (
        ({"x-lvd-session": too_long}, b"session=ok"),
        ({}, b"session=" + too_long.encode()),
    ):
        exchange = Exchange([orjson.dumps(EVENT)])
        scope = scope_for(
            f"/api/logs/{app.id}",
            {"content-type": "application/json", **headers},
            query_string=query,
        )
        await fast_path(scope, exchange.receive, exchange.send)
        assert exchange.status == 400
        assert exchange.json["error"]["code"] == "invalid_session"


async def test_an_unexpected_error_is_a_json_500_and_logged(
    client: Client,
    app: App,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*_: Any) -> bytes:
        raise RuntimeError("boom")

    monkeypatch.setattr("web.ingest.accept", broken)
    response = await client.post(f"/api/logs/{app.id}", json=EVENT)
    assert response.status_code == 500
    assert (await response.get_json())["error"]["code"] == "internal_error"
    assert "Unhandled error on POST" in caplog.text
