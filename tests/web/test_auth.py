"""Sign-in, write keys and rate limits: what the server demands, especially when exposed."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from web.app import create_app
from web.core.queries.base import App
from web.core.settings import Settings
from web.core.users import create_user

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
async def locked_app(web_settings: Settings) -> AsyncIterator[Quart]:
    """The app as it runs when exposed: sign-in, write keys and secure cookies on."""
    settings = replace(
        web_settings,
        require_login=True,
        require_write_keys=True,
        secure_cookies=True,
        rate_limit=5,
        rate_burst=5,
    )
    app = create_app(settings)
    async with app.test_app():
        yield app


@pytest.fixture
async def user(pool: asyncpg.Pool) -> str:
    name = f"qa-{secrets.token_hex(4)}"
    async with pool.acquire() as conn:
        await create_user(conn, name, PASSWORD)
    return name


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("path", ["/", "/apps/x", "/apps/x/plan"])
async def test_auth_pages_redirect_to_sign_in(locked_app: Quart, path: str) -> None:
    response = await locked_app.test_client().get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")


async def test_auth_htmx_request_gets_hx_redirect(locked_app: Quart) -> None:
    response = await locked_app.test_client().get("/apps/x", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


@pytest.mark.parametrize("path", ["/api/apps", "/api/apps/x/plan"])
async def test_auth_api_without_credentials_is_401_json(locked_app: Quart, path: str) -> None:
    response = await locked_app.test_client().get(path)
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "sign_in_required"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


async def test_auth_api_with_basic_credentials_works(locked_app: Quart, user: str) -> None:
    client = locked_app.test_client()
    assert (await client.get("/api/apps", headers=basic(user, PASSWORD))).status_code == 200
    wrong = await client.get("/api/apps", headers=basic(user, PASSWORD + "x"))
    assert wrong.status_code == 401


@pytest.mark.parametrize("path", ["/healthz", "/login", "/static/app.css"])
async def test_auth_open_paths_need_no_sign_in(locked_app: Quart, path: str) -> None:
    assert (await locked_app.test_client().get(path)).status_code == 200


async def test_auth_sign_in_sets_a_hardened_cookie_and_opens_pages(
    locked_app: Quart, user: str
) -> None:
    client = locked_app.test_client()
    response = await client.post(
        "/login?next=/apps/nope", form={"username": user, "password": PASSWORD}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/apps/nope"
    cookie = response.headers["Set-Cookie"]
    assert "lvd_session=" in cookie
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    home = await client.get("/")
    assert home.status_code == 200
    assert user in await home.get_data(as_text=True)
    await client.post("/logout")
    assert (await client.get("/")).status_code == 303


async def test_auth_wrong_password_is_refused_without_saying_which_part(
    locked_app: Quart, user: str
) -> None:
    client = locked_app.test_client()
    wrong_password = await client.post("/login", form={"username": user, "password": "nope"})
    no_such_user = await client.post("/login", form={"username": "ghost", "password": "nope"})
    assert wrong_password.status_code == no_such_user.status_code == 401
    text = await wrong_password.get_data(as_text=True)
    assert "do not match" in text
    assert "Set-Cookie" not in wrong_password.headers


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
async def test_auth_sign_in_never_redirects_off_site(
    locked_app: Quart, user: str, target: str
) -> None:
    response = await locked_app.test_client().post(
        "/login", query_string={"next": target}, form={"username": user, "password": PASSWORD}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


async def test_auth_ingest_stays_open_but_requires_the_write_key(
    locked_app: Quart, app: App
) -> None:
    client = locked_app.test_client()
    event = {"eventName": "user_login"}
    missing = await client.post(f"/api/logs/{app.id}", json=event)
    assert missing.status_code == 401
    assert (await missing.get_json())["error"]["code"] == "write_key_required"
    keyed = await client.post(
        f"/api/logs/{app.id}", json=event, headers={"X-Write-Key": app.write_key}
    )
    assert keyed.status_code == 202


async def test_auth_rate_limit_answers_429_with_retry_after(locked_app: Quart, app: App) -> None:
    client = locked_app.test_client()
    headers = {"X-Write-Key": app.write_key}
    batch = [{"eventName": "e", "event_id": f"r{i}"} for i in range(5)]
    first = await client.post(f"/api/logs/{app.id}", json=batch, headers=headers)
    assert first.status_code == 202
    limited = await client.post(f"/api/logs/{app.id}", json={"eventName": "e"}, headers=headers)
    assert limited.status_code == 429
    assert (await limited.get_json())["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1


async def test_auth_open_by_default_on_loopback(client: Client) -> None:
    assert (await client.get("/")).status_code == 200
    assert (await client.get("/api/apps")).status_code == 200


@pytest.mark.parametrize(
    ("host", "exposed"),
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("::1", False),
        ("127.0.0.5", False),
        ("0.0.0.0", True),
        ("192.168.1.20", True),
        ("lvd.example.com", True),
    ],
)
def test_settings_exposed_host_turns_protections_on(host: str, exposed: bool) -> None:
    settings = Settings.from_env({"HOST": host})
    assert settings.exposed is exposed
    assert settings.require_login is exposed
    assert settings.require_write_keys is exposed
    assert settings.secure_cookies is exposed


def test_settings_protections_can_be_forced_either_way() -> None:
    forced = Settings.from_env({"HOST": "0.0.0.0", "LVD_REQUIRE_LOGIN": "false"})
    assert forced.require_login is False
    assert Settings.from_env({"LVD_REQUIRE_WRITE_KEYS": "1"}).require_write_keys is True
