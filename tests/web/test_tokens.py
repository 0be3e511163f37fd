"""API tokens: the management API and page, Bearer sign-in, scopes, app limits, revocation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime

import asyncpg
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from tests.web.conftest import MakeApp
from tests.web.support import assert_error, json_of
from web.app import create_app
from web.core import users
from web.core.queries.base import App
from web.core.scopes import ROUTE_SCOPES
from web.core.settings import Settings
from web.core.tokens import TOKEN_PATTERN, create_token
from web.core.users import create_user

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
async def locked_app(web_settings: Settings) -> AsyncIterator[Quart]:
    """The app as it runs when exposed: sign-in required."""
    app = create_app(replace(web_settings, require_login=True))
    async with app.test_app():
        yield app


@pytest.fixture
def locked(locked_app: Quart) -> Client:
    return locked_app.test_client()


async def mint(pool: asyncpg.Pool, scope: str = "write", app_id: str | None = None) -> str:
    """A new token of this scope (and app), made as the CLI makes one."""
    async with pool.acquire() as conn:
        new = await create_token(conn, f"t-{secrets.token_hex(3)}", scope, app_id, created_by="t")
    return new.token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(username: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


@pytest.fixture
async def user(pool: asyncpg.Pool) -> str:
    name = f"qa-{secrets.token_hex(4)}"
    async with pool.acquire() as conn:
        await create_user(conn, name, PASSWORD)
    return name


async def stored_row(pool: asyncpg.Pool, token_id: int) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM api_tokens WHERE id = $1", token_id)
    assert row is not None
    return row


# --- the management API -------------------------------------------------------------------


async def test_tokens_api_creates_shows_once_lists_and_revokes(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    created = await client.post(
        "/api/tokens", json={"name": "ci", "scope": "read", "app_id": app.id}
    )
    assert created.status_code == 201
    body = await json_of(created)
    token = body["token"]
    assert TOKEN_PATTERN.fullmatch(token)
    assert body["prefix"] == token[4:12]
    assert (body["name"], body["scope"], body["app_id"]) == ("ci", "read", app.id)
    assert body["last_used_at"] is None and body["revoked_at"] is None

    listed = await json_of(await client.get("/api/tokens"))
    mine = [t for t in listed["tokens"] if t["id"] == body["id"]]
    assert len(mine) == 1
    assert "token" not in mine[0]
    assert token not in str(listed)

    revoked = await client.delete(f"/api/tokens/{body['id']}")
    assert revoked.status_code == 204
    again = await client.delete(f"/api/tokens/{body['id']}")
    assert again.status_code == 204  # revoking twice is harmless
    listed = await json_of(await client.get("/api/tokens"))
    assert [t["revoked_at"] for t in listed["tokens"] if t["id"] == body["id"]] != [None]


async def test_tokens_api_default_scope_is_write_for_every_app(client: Client) -> None:
    body = await json_of(await client.post("/api/tokens", json={"name": "nightly"}))
    assert (body["scope"], body["app_id"]) == ("write", None)


async def test_tokens_store_a_sha256_digest_never_the_token(
    client: Client, pool: asyncpg.Pool
) -> None:
    body = await json_of(await client.post("/api/tokens", json={"name": "digest"}))
    row = await stored_row(pool, body["id"])
    assert row["token_hash"] == hashlib.sha256(body["token"].encode()).hexdigest()
    assert all(body["token"] not in str(value) for value in dict(row).values())


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "invalid_token_name"),
        ({"name": ""}, "invalid_token_name"),
        ({"name": "   "}, "invalid_token_name"),
        ({"name": 7}, "invalid_token_name"),
        ({"name": "x" * 101}, "token_name_too_long"),
        ({"name": "ci", "scope": "root"}, "invalid_scope"),
        ({"name": "ci", "scope": ["read"]}, "invalid_scope"),
        ({"name": "ci", "app_id": "no-such-app"}, "unknown_app"),
        ({"name": "ci", "app_id": 12}, "unknown_app"),
    ],
)
async def test_tokens_api_refuses_bad_input_with_a_code(
    client: Client, payload: dict[str, object], code: str
) -> None:
    await assert_error(await client.post("/api/tokens", json=payload), 400, code)


async def test_tokens_api_refuses_a_body_that_is_not_an_object(client: Client) -> None:
    response = await client.post("/api/tokens", data=b"[1]", headers={"Content-Type": "x"})
    await assert_error(response, 400, "invalid_top_level")


async def test_tokens_api_revoking_an_unknown_token_is_404(client: Client) -> None:
    await assert_error(await client.delete("/api/tokens/999999999"), 404, "unknown_token")


async def test_tokens_api_needs_sign_in_when_required(locked: Client, user: str) -> None:
    await assert_error(await locked.get("/api/tokens"), 401, "sign_in_required")
    signed = await locked.post(
        "/api/tokens", json={"name": "by-basic"}, headers=basic(user, PASSWORD)
    )
    assert signed.status_code == 201
    assert (await json_of(signed))["created_by"] == user


async def test_tokens_api_admin_token_manages_tokens_and_is_recorded(
    locked: Client, pool: asyncpg.Pool
) -> None:
    admin = await mint(pool, "admin")
    created = await locked.post("/api/tokens", json={"name": "child"}, headers=bearer(admin))
    assert created.status_code == 201
    body = await json_of(created)
    assert body["created_by"].startswith("token:")
    listed = await locked.get("/api/tokens", headers=bearer(admin))
    assert listed.status_code == 200
    revoked = await locked.delete(f"/api/tokens/{body['id']}", headers=bearer(admin))
    assert revoked.status_code == 204


# --- Bearer sign-in and scopes ------------------------------------------------------------

READ_ONLY = [
    ("GET", "/api/logs/{app}"),
    ("GET", "/api/logs/{app}/summary"),
    ("GET", "/api/logs/{app}/wait?count=1&timeout=0"),
    ("GET", "/api/apps/{app}"),
    ("GET", "/api/apps/{app}/plan/versions"),
    ("GET", "/api/apps/{app}/retention"),
    ("GET", "/apps/{app}/events.csv"),
    ("GET", "/api/status"),
    ("GET", "/metrics"),
]
WRITES = [
    ("DELETE", "/api/logs/{app}"),
    ("PUT", "/api/apps/{app}/retention"),
    ("POST", "/api/apps"),
]
ADMIN_ONLY = [("GET", "/api/tokens"), ("POST", "/api/tokens")]


def scope_cases() -> list[tuple[str, str, str, bool]]:
    cases = []
    for scope in ("read", "write", "admin"):
        for method, path in READ_ONLY:
            cases.append((scope, method, path, True))
        for method, path in WRITES:
            cases.append((scope, method, path, scope != "read"))
        for method, path in ADMIN_ONLY:
            cases.append((scope, method, path, scope == "admin"))
    return cases


def body_for(method: str, path: str) -> dict[str, object] | None:
    if path == "/api/apps":
        return {"id": f"tok-{secrets.token_hex(5)}"}
    if path.endswith("/retention") and method == "PUT":
        return {"days": 30}
    if path == "/api/tokens" and method == "POST":
        return {"name": "made-by-a-token"}
    return None


@pytest.mark.parametrize(("scope", "method", "path", "allowed"), scope_cases())
async def test_tokens_each_scope_is_allowed_or_denied(
    locked: Client,
    pool: asyncpg.Pool,
    app: App,
    scope: str,
    method: str,
    path: str,
    allowed: bool,
) -> None:
    token = await mint(pool, scope)
    response = await locked.open(
        path.format(app=app.id), method=method, json=body_for(method, path), headers=bearer(token)
    )
    if allowed:
        assert response.status_code < 300, await response.get_data(as_text=True)
    else:
        found = await assert_error(response, 403, "insufficient_scope")
        assert found["required_scope"] in ("write", "admin")
        assert response.headers["WWW-Authenticate"].startswith('Bearer error="insufficient_scope"')


async def test_tokens_do_not_open_the_dashboard_pages(
    locked: Client, pool: asyncpg.Pool, app: App
) -> None:
    token = await mint(pool, "admin")
    for path in (f"/apps/{app.id}", "/tokens", "/"):
        response = await locked.get(path, headers={**bearer(token), "Accept": "application/json"})
        await assert_error(response, 403, "insufficient_scope")


@pytest.mark.parametrize(
    "presented",
    ["lvd_" + "A" * 43, "not-a-token", "lvd_short", ""],
    ids=["unknown", "malformed", "short", "empty"],
)
async def test_tokens_unknown_or_malformed_is_401_invalid_token(
    locked: Client, app: App, presented: str
) -> None:
    response = await locked.get(f"/api/logs/{app.id}", headers=bearer(presented))
    await assert_error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_tokens_revoked_token_is_401(
    locked: Client, client: Client, pool: asyncpg.Pool, app: App
) -> None:
    body = await json_of(await client.post("/api/tokens", json={"name": "soon-gone"}))
    path = f"/api/logs/{app.id}"
    assert (await locked.get(path, headers=bearer(body["token"]))).status_code == 200
    assert (await client.delete(f"/api/tokens/{body['id']}")).status_code == 204
    await assert_error(await locked.get(path, headers=bearer(body["token"])), 401, "invalid_token")


async def test_tokens_are_checked_even_when_sign_in_is_not_required(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    """On the loopback server nothing needs sign-in, but a presented token still counts."""
    assert (await client.get(f"/api/logs/{app.id}")).status_code == 200
    bad = await client.get(f"/api/logs/{app.id}", headers=bearer("lvd_" + "B" * 43))
    await assert_error(bad, 401, "invalid_token")
    read = await mint(pool, "read")
    reset = await client.delete(f"/api/logs/{app.id}", headers=bearer(read))
    await assert_error(reset, 403, "insufficient_scope")


async def test_tokens_app_limited_token_reaches_its_app_only(
    locked: Client, pool: asyncpg.Pool, make_app: MakeApp
) -> None:
    mine, other = await make_app(), await make_app()
    token = await mint(pool, "write", mine.id)
    ok = [
        f"/api/logs/{mine.id}",
        f"/api/apps/{mine.id}",
        f"/snowplow/{mine.id}/micro/all",
        f"/snowplow/{mine.write_key}/micro/all",
    ]
    for path in ok:
        response = await locked.get(path, headers=bearer(token))
        assert response.status_code == 200, (path, await response.get_data(as_text=True))
    refused = [
        f"/api/logs/{other.id}",
        f"/api/apps/{other.id}/plan/versions",
        "/api/apps",
        "/api/status",
        "/micro/all",
        f"/snowplow/{other.write_key}/micro/all",
    ]
    for path in refused:
        response = await locked.get(path, headers=bearer(token))
        found = await assert_error(response, 403, "token_app_forbidden")
        assert found["token_app_id"] == mine.id
    reset = await locked.delete(f"/api/logs/{other.id}", headers=bearer(token))
    await assert_error(reset, 403, "token_app_forbidden")


async def test_tokens_last_used_is_set_then_written_at_most_once_a_minute(
    locked: Client, client: Client, pool: asyncpg.Pool, app: App
) -> None:
    body = await json_of(await client.post("/api/tokens", json={"name": "used"}))
    path = f"/api/logs/{app.id}"
    assert (await stored_row(pool, body["id"]))["last_used_at"] is None
    assert (await locked.get(path, headers=bearer(body["token"]))).status_code == 200
    first = (await stored_row(pool, body["id"]))["last_used_at"]
    assert first is not None

    async def used_ago(seconds: int) -> tuple[datetime, datetime]:
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE api_tokens SET last_used_at = now() - make_interval(secs => $2)"
                " WHERE id = $1",
                body["id"],
                seconds,
            )
        before = (await stored_row(pool, body["id"]))["last_used_at"]
        assert (await locked.get(path, headers=bearer(body["token"]))).status_code == 200
        return before, (await stored_row(pool, body["id"]))["last_used_at"]

    before, after = await used_ago(30)
    assert after == before  # used 30 s ago: not written again
    before, after = await used_ago(120)
    assert after > before  # two minutes ago: written


async def test_tokens_basic_and_session_users_keep_full_access(
    locked: Client, user: str, app: App
) -> None:
    reset = await locked.delete(f"/api/logs/{app.id}", headers=basic(user, PASSWORD))
    assert reset.status_code == 200
    assert (await locked.get("/api/tokens", headers=basic(user, PASSWORD))).status_code == 200
    signed_in = await locked.post("/login", form={"username": user, "password": PASSWORD})
    assert signed_in.status_code == 303
    assert (await locked.get("/tokens")).status_code == 200


def test_tokens_every_api_route_has_a_scope(quart_app: Quart) -> None:
    """A new /api/ route must say which scope it needs, or tokens could not reach it; and
    the table names no route that does not exist."""
    routes = {
        (method, rule.rule)
        for rule in quart_app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    api = {(method, rule) for method, rule in routes if rule.startswith("/api/")}
    assert api - set(ROUTE_SCOPES) == set()
    assert set(ROUTE_SCOPES) - routes == set()


# --- the page -----------------------------------------------------------------------------


async def test_tokens_page_creates_shows_once_and_revokes(
    client: Client, pool: asyncpg.Pool, app: App
) -> None:
    page = await client.get("/tokens")
    assert page.status_code == 200
    assert 'name="name"' in await page.get_data(as_text=True)

    created = await client.post(
        "/tokens", form={"name": "from-the-page", "scope": "read", "app_id": app.id}
    )
    assert created.status_code == 201
    html = await created.get_data(as_text=True)
    shown = re.findall(r"lvd_[A-Za-z0-9_-]{43}", html)
    assert len(shown) == 1
    token = shown[0]
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT id, scope, app_id FROM api_tokens WHERE token_hash = $1",
            hashlib.sha256(token.encode()).hexdigest(),
        )
    assert (row["scope"], row["app_id"]) == ("read", app.id)

    later = await (await client.get("/tokens")).get_data(as_text=True)
    assert token not in later
    assert f"lvd_{token[4:12]}" in later
    assert "from-the-page" in later

    revoked = await client.post(f"/tokens/{row['id']}/revoke")
    assert revoked.status_code == 303
    assert (await stored_row(pool, row["id"]))["revoked_at"] is not None
    after = await (await client.get(revoked.headers["Location"])).get_data(as_text=True)
    assert "revoked" in after


async def test_tokens_page_form_shows_a_bad_name_as_an_error(client: Client) -> None:
    response = await client.post("/tokens", form={"name": "", "scope": "write"})
    assert response.status_code == 400
    assert "needs a name" in await response.get_data(as_text=True)


async def test_tokens_page_refuses_cross_site_forms(client: Client) -> None:
    response = await client.post(
        "/tokens", form={"name": "csrf"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    revoke = await client.post(
        "/tokens/1/revoke", headers={"Sec-Fetch-Site": "cross-site", "Accept": "application/json"}
    )
    await assert_error(revoke, 403, "cross_site_request")


async def test_tokens_page_is_linked_from_every_page(client: Client) -> None:
    html = await (await client.get("/status")).get_data(as_text=True)
    assert 'href="/tokens"' in html
    assert 'href="/docs"' in html


# --- password checks ----------------------------------------------------------------------


async def test_tokens_basic_auth_check_does_not_hold_up_ingest(
    locked: Client, user: str, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a Basic-auth call's argon2 check is held busy, the same process answers ingest
    (and another API call); the held check then completes. Were argon2 on the event loop,
    nothing else could be answered until it let go."""
    started, release = threading.Event(), threading.Event()
    real = users._verify

    def held(password_hash: str, password: str) -> bool:
        started.set()
        assert release.wait(10), "the loop never released the verification"
        return real(password_hash, password)

    monkeypatch.setattr(users, "_verify", held)
    users.recent_passwords.forget_all()
    pending = asyncio.create_task(locked.get("/api/apps", headers=basic(user, PASSWORD)))
    assert await asyncio.to_thread(started.wait, 10)
    ingest = await locked.post(f"/api/logs/{app.id}", json={"eventName": "during_argon2"})
    assert ingest.status_code == 202
    assert (await locked.get("/healthz")).status_code == 200
    assert not pending.done()
    release.set()
    assert (await pending).status_code == 200
    users.recent_passwords.forget_all()


@pytest.mark.parametrize("token_id", ["99999999999999999999", "0", "-1"])
async def test_tokens_api_out_of_range_ids_are_404(client: Client, token_id: str) -> None:
    response = await client.delete(f"/api/tokens/{token_id}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"name": "a\\u0000b"}', "invalid_token_name"),
        (b'{"name": "two\\nlines"}', "invalid_token_name"),
        (b'{"name": "ci", "app_id": "a\\u0000b"}', "unknown_app"),
        (b'{"name": "\\ud800"}', "invalid_json"),
    ],
    ids=["nul-name", "newline-name", "nul-app", "lone-surrogate"],
)
async def test_tokens_api_text_postgresql_cannot_hold_is_400(
    client: Client, body: bytes, code: str
) -> None:
    response = await client.post(
        "/api/tokens", data=body, headers={"Content-Type": "application/json"}
    )
    await assert_error(response, 400, code)


async def test_tokens_api_refuses_other_sites_but_the_page_opens_from_a_link(
    client: Client,
) -> None:
    cross = {"Sec-Fetch-Site": "cross-site"}
    await assert_error(await client.get("/api/tokens", headers=cross), 403, "cross_site_request")
    assert (await client.get("/tokens", headers=cross)).status_code == 200


async def test_tokens_api_name_is_stripped_and_its_length_counted_as_sent(client: Client) -> None:
    body = await json_of(await client.post("/api/tokens", json={"name": "  ci  "}))
    assert body["name"] == "ci"
    padded = await client.post("/api/tokens", json={"name": " " + "x" * 100})
    await assert_error(padded, 400, "token_name_too_long")
