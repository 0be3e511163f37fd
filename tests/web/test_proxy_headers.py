"""web/proxy.py: a trusted proxy's word rewrites the request; nobody else's does; request ids."""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from quart import Quart

from web.core.forwarded import TrustedProxies
from web.core.logs import current_request_id
from web.core.queries.base import App
from web.core.users import create_user
from web.proxy import ProxyHeaders

PROXIES = TrustedProxies.parse("127.0.0.1,::1,10.0.0.0/8")
NGINX = ("127.0.0.1", 50_000)
STRANGER = ("127.0.0.2", 50_000)
# What nginx sends for https://lvd.example.com/ asked by 203.0.113.9.
FORWARDED = {
    "x-forwarded-proto": "https",
    "x-forwarded-host": "lvd.example.com",
    "x-forwarded-for": "203.0.113.9",
}
NEW_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
PASSWORD = "correct horse battery staple"


@dataclass
class Recorder:
    """An ASGI app that remembers what it was called with and answers 200."""

    own_request_id: bytes | None = None
    scopes: list[dict[str, Any]] = field(default_factory=list)
    request_ids: list[str | None] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        self.request_ids.append(current_request_id.get())
        if scope["type"] == "lifespan":
            await send({"type": "lifespan.startup.complete"})
            return
        headers = [(b"content-type", b"text/plain")]
        if self.own_request_id is not None:
            headers.append((b"X-Request-ID", self.own_request_id))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})


def http_scope(
    client: tuple[str, int] | None, headers: Mapping[str, str] | Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:5001")]
        + [(name.encode(), value.encode()) for name, value in pairs],
        "client": client,
        "server": ("127.0.0.1", 5001),
    }


async def call(
    scope: dict[str, Any], app: Recorder | None = None, proxies: TrustedProxies = PROXIES
) -> tuple[Recorder, list[dict[str, Any]]]:
    """Runs the scope through ProxyHeaders in front of a Recorder; what the app saw and sent."""
    inner = app or Recorder()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await ProxyHeaders(inner, proxies)(scope, receive, send)
    return inner, sent


async def assert_untouched(scope: dict[str, Any], proxies: TrustedProxies = PROXIES) -> None:
    """The app is called with the scope exactly as it came."""
    before = copy.deepcopy(scope)
    app, _ = await call(scope, proxies=proxies)
    assert app.scopes == [before]


def host_headers(scope: dict[str, Any]) -> list[bytes]:
    return [value for name, value in scope["headers"] if name == b"host"]


def response_request_ids(sent: list[dict[str, Any]]) -> list[bytes]:
    return [value for name, value in sent[0]["headers"] if name.lower() == b"x-request-id"]


# ---- the scope, rewritten in place or left alone


async def test_trusted_proxy_sets_scheme_host_and_client_in_place() -> None:
    scope = http_scope(NGINX, FORWARDED)
    app, _ = await call(scope)
    # The very dict Hypercorn holds (its access log reads the client from it).
    assert app.scopes == [scope]
    assert app.scopes[0] is scope
    assert scope["scheme"] == "https"
    assert host_headers(scope) == [b"lvd.example.com"]
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["server"] == ("127.0.0.1", 5001)


@pytest.mark.parametrize("client", [STRANGER, ("203.0.113.9", 443), ("10.0.0.5", 1), None])
async def test_untrusted_peer_changes_nothing(client: tuple[str, int] | None) -> None:
    await assert_untouched(http_scope(client, FORWARDED), TrustedProxies.parse("127.0.0.1"))


async def test_untrusted_peer_forwarded_header_changes_nothing() -> None:
    forged = {"forwarded": "for=203.0.113.9;proto=https;host=evil.example"}
    await assert_untouched(http_scope(STRANGER, forged))


async def test_trusted_proxy_forwarded_header_is_read() -> None:
    scope = http_scope(
        NGINX, {"forwarded": 'for="[2001:db8::5]:1";proto=https;host=lvd.example.com'}
    )
    await call(scope)
    assert scope["scheme"] == "https"
    assert host_headers(scope) == [b"lvd.example.com"]
    assert scope["client"] == ("2001:db8::5", 0)


async def test_everyone_trusted_believes_any_peer() -> None:
    scope = http_scope(STRANGER, FORWARDED)
    await call(scope, proxies=TrustedProxies.parse("*"))
    assert (scope["scheme"], scope["client"]) == ("https", ("203.0.113.9", 0))


async def test_trusted_proxy_without_forwarding_headers_changes_nothing() -> None:
    await assert_untouched(http_scope(NGINX, {"user-agent": "curl/8"}))


async def test_trusted_proxy_only_what_it_says_is_changed() -> None:
    scope = http_scope(NGINX, {"x-forwarded-for": "203.0.113.9"})
    await call(scope)
    assert scope["scheme"] == "http"
    assert host_headers(scope) == [b"127.0.0.1:5001"]
    assert scope["client"] == ("203.0.113.9", 0)


async def test_trusted_proxy_bad_values_are_not_applied() -> None:
    headers = {
        "x-forwarded-proto": "gopher",
        "x-forwarded-host": "evil.example/path",
        "x-forwarded-for": "unknown",
    }
    await assert_untouched(http_scope(NGINX, headers))


async def test_repeated_x_forwarded_for_headers_are_one_chain() -> None:
    # A load balancer in 10.0.0.0/8 wrote one header, nginx a second: RFC 9110 joins them.
    headers = [("x-forwarded-for", "198.51.100.66, 203.0.113.9"), ("x-forwarded-for", "10.0.0.5")]
    scope = http_scope(NGINX, headers)
    await call(scope)
    assert scope["client"] == ("203.0.113.9", 0)


@pytest.mark.parametrize(("proto", "scheme"), [("https", "wss"), ("http", "ws")])
async def test_websocket_scheme_is_ws_or_wss(proto: str, scheme: str) -> None:
    scope = {**http_scope(NGINX, {"x-forwarded-proto": proto}), "type": "websocket"}
    scope["scheme"] = "ws" if scheme == "wss" else "wss"
    await call(scope)
    assert scope["scheme"] == scheme


async def test_lifespan_passes_through_untouched() -> None:
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    app, sent = await call(scope)
    assert app.scopes == [{"type": "lifespan", "asgi": {"version": "3.0"}}]
    assert sent == [{"type": "lifespan.startup.complete"}]
    assert app.request_ids == [None]


# ---- X-Request-ID


async def test_every_answer_gets_a_new_request_id_the_app_sees_too() -> None:
    app, sent = await call(http_scope(STRANGER))
    [request_id] = response_request_ids(sent)
    assert NEW_REQUEST_ID.match(request_id.decode())
    assert app.request_ids == [request_id.decode()]
    assert current_request_id.get() is None, "the id outlived its request"
    _, again = await call(http_scope(STRANGER))
    assert response_request_ids(again) != [request_id]


async def test_trusted_proxy_request_id_is_kept() -> None:
    app, sent = await call(http_scope(NGINX, {"x-request-id": "0123456789abcdef0123"}))
    assert response_request_ids(sent) == [b"0123456789abcdef0123"]
    assert app.request_ids == ["0123456789abcdef0123"]


@pytest.mark.parametrize(
    ("client", "request_id"),
    [(STRANGER, "forged-by-a-client"), (None, "forged-by-a-client"), (NGINX, "not a token")],
)
async def test_other_request_ids_are_replaced(
    client: tuple[str, int] | None, request_id: str
) -> None:
    app, sent = await call(http_scope(client, {"x-request-id": request_id}))
    [answered] = response_request_ids(sent)
    assert NEW_REQUEST_ID.match(answered.decode()), answered
    assert app.request_ids == [answered.decode()]


async def test_an_app_s_own_request_id_is_not_doubled() -> None:
    _, sent = await call(http_scope(NGINX), Recorder(own_request_id=b"set-by-the-app"))
    assert response_request_ids(sent) == [b"set-by-the-app"]
    assert sent[1] == {"type": "http.response.body", "body": b"ok"}


# ---- the real app: same-origin check, secure cookie, absolute links


async def sign_in_form(
    quart_app: Quart, client: tuple[str, int], headers: dict[str, str], username: str = "nobody"
) -> Any:
    return await quart_app.test_client().post(
        "/login",
        form={"username": username, "password": PASSWORD},
        headers=headers,
        scope_base={"client": client},
    )


async def test_forged_origin_and_host_from_a_stranger_is_cross_site(quart_app: Quart) -> None:
    headers = {"Origin": "https://evil.example", "X-Forwarded-Host": "evil.example"}
    headers["X-Forwarded-Proto"] = "https"
    stranger = await sign_in_form(quart_app, STRANGER, headers)
    assert stranger.status_code == 403
    assert "cross_site_request" in await stranger.get_data(as_text=True)
    # From the trusted proxy the browser was on https://evil.example: same origin, so the
    # sign-in form is judged (and this user does not exist).
    proxied = await sign_in_form(quart_app, NGINX, headers)
    assert proxied.status_code == 401
    assert "X-Request-ID" in proxied.headers and "X-Request-ID" in stranger.headers


async def test_browser_behind_tls_proxy_may_sign_in(quart_app: Quart) -> None:
    headers = {"Origin": "https://lvd.example.com", **FORWARDED}
    assert (await sign_in_form(quart_app, NGINX, headers)).status_code == 401
    # Without the proxy's word the app sees http://127.0.0.1:5001: the 403.
    refused = await sign_in_form(quart_app, NGINX, {"Origin": "https://lvd.example.com"})
    assert refused.status_code == 403


async def test_session_cookie_secure_only_when_a_trusted_proxy_says_https(
    quart_app: Quart, pool: asyncpg.Pool
) -> None:
    username = f"qa-{secrets.token_hex(4)}"
    async with pool.acquire() as conn:
        await create_user(conn, username, PASSWORD)
    https = {"X-Forwarded-Proto": "https"}

    cookies = {}
    for name, client, headers in [
        ("proxied https", NGINX, https),
        ("proxied http", NGINX, {"X-Forwarded-Proto": "http"}),
        ("stranger forging https", STRANGER, https),
    ]:
        response = await sign_in_form(quart_app, client, headers, username)
        assert response.status_code == 303, name
        cookies[name] = response.headers["Set-Cookie"]
        assert "lvd_session=" in cookies[name] and "HttpOnly" in cookies[name], cookies[name]
    assert "Secure" in cookies["proxied https"]
    assert "Secure" not in cookies["proxied http"]
    assert "Secure" not in cookies["stranger forging https"]


async def test_absolute_links_use_the_trusted_proxy_s_scheme_and_host(
    quart_app: Quart, app: App
) -> None:
    async def ingest_links(client: tuple[str, int]) -> set[str]:
        response = await quart_app.test_client().get(
            f"/apps/{app.id}", headers=FORWARDED, scope_base={"client": client}
        )
        assert response.status_code == 200
        html = await response.get_data(as_text=True)
        return set(re.findall(rf"\S+/api/logs/{app.id}", html))

    assert await ingest_links(NGINX) == {f"https://lvd.example.com/api/logs/{app.id}"}
    assert await ingest_links(STRANGER) == {f"http://localhost/api/logs/{app.id}"}
