"""Pairing a device: "Start a QA session", the pairing page, its QR images, /p/<code>, expiry."""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from html import unescape

import asyncpg
import orjson
import pytest
import zxingcpp
from PIL import Image
from quart import Quart
from quart.typing import TestClientProtocol as Client

from tests.web.conftest import MakeApp
from tests.web.dashboard_support import elements, store, stored
from tests.web.support import event_rows
from web.app import create_app
from web.core import pairing as pairing_core
from web.core.queries.base import App
from web.core.settings import Settings
from web.core.users import create_user

LAN_HOST = {"Host": "192.168.1.20:5001"}
PASSWORD = "correct horse battery staple"


async def start(client: Client, app_id: str) -> str:
    """POST "Start a QA session"; the short code of the pairing page it leads to."""
    response = await client.post(f"/apps/{app_id}/pairings", headers=LAN_HOST)
    assert response.status_code == 303, await response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith("/pairing/"), location
    code = location.removeprefix("/pairing/")
    assert pairing_core.is_code(code), code
    return code


async def page_of(client: Client, path: str, **kwargs: object) -> str:
    response = await client.get(path, **kwargs)
    assert response.status_code == 200, path
    assert response.mimetype == "text/html"
    return await response.get_data(as_text=True)


def by_id(page: str, tag: str, element_id: str) -> dict[str, str | None]:
    [found] = [e.attrs for e in elements(page, tag) if e.attrs.get("id") == element_id]
    return found


def textarea_text(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    body = page[page.index(">", start) + 1 : page.index("</textarea>", start)]
    return unescape(body)


async def test_app_page_has_a_start_a_qa_session_button(client: Client, app: App) -> None:
    page = await page_of(client, f"/apps/{app.id}")

    form = by_id(page, "form", "start-qa-session-form")
    assert by_id(page, "button", "start-qa-session")["form"] == "start-qa-session-form"
    assert (form["method"], form["action"]) == ("post", f"/apps/{app.id}/pairings")
    assert "Start a QA session" in page


async def test_starting_a_session_stores_a_pairing(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    code = await start(client, app.id)
    second = await start(client, app.id)

    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT code, app_id, session, expires_at - created_at AS lifetime"
            " FROM pairings WHERE app_id = $1 ORDER BY created_at",
            app.id,
        )
    assert {row["code"] for row in rows} == {code, second}
    assert len({row["session"] for row in rows}) == 2
    assert all(row["session"].startswith("qa-") for row in rows)
    assert all(row["lifetime"].days == pairing_core.PAIRING_DAYS for row in rows)


async def test_pairing_page_shows_the_qr_payload_and_ingest_url(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    code = await start(client, app.id)
    async with pool.acquire() as conn:
        session = await conn.fetchval("SELECT session FROM pairings WHERE code = $1", code)

    page = await page_of(client, f"/pairing/{code}", headers=LAN_HOST)

    base = "http://192.168.1.20:5001"
    payload = orjson.loads(textarea_text(page, "pairing-payload"))
    assert payload == {
        "lvd": 1,
        "app_id": app.id,
        "session": session,
        "ingest_url": f"{base}/v1/session/{session}",
        "write_key": app.write_key,
        "live_url": f"{base}/p/{code}",
        "expires_at": payload["expires_at"],
    }
    assert by_id(page, "input", "ingest-url")["value"] == payload["ingest_url"]
    assert by_id(page, "a", "short-url")["href"] == payload["live_url"]
    assert by_id(page, "img", "pairing-qr")["src"] == f"/pairing/{code}/qr.svg"
    # The snippets point each SDK at the session's ingest URL, with the app's key.
    assert f'cdnURL: "{base}/v1/session/{session}"' in unescape(page)
    assert f'api_host: "{base}/v1/session/{session}"' in unescape(page)
    # The live list: the app's stream with the session filter, and no loopback warning.
    live = by_id(page, "div", "live")
    assert live["sse-connect"] == f"/apps/{app.id}/stream?after=0&session={session}"
    assert "pairing-warning" not in page
    assert "<script>" not in page.split("</head>", 1)[1]


async def test_pairing_page_links_coverage_and_the_apps_other_live_sessions(
    client: Client, app: App, make_app: MakeApp, pool: asyncpg.Pool
) -> None:
    first, expired, other_app = (
        await start(client, app.id),
        await start(client, app.id),
        await start(client, (await make_app()).id),
    )
    current = await start(client, app.id)
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE pairings SET created_at = now() - interval '8 days',"
            " expires_at = now() - interval '1 second' WHERE code = $1",
            expired,
        )
        session = await conn.fetchval("SELECT session FROM pairings WHERE code = $1", current)

    page = await page_of(client, f"/pairing/{current}")

    assert by_id(page, "a", "session-coverage")["href"] == (
        f"/apps/{app.id}/coverage?session={session}"
    )
    listed = page[
        page.index('id="other-sessions"') : page.index("</ul>", page.index('id="other-sessions"'))
    ]
    links = [a.attrs["href"] for a in elements(listed, "a")]
    assert links == [f"/pairing/{first}"]
    assert other_app not in page


async def test_qr_images_decode_to_the_pages_payload(client: Client, app: App) -> None:
    code = await start(client, app.id)
    page = await page_of(client, f"/pairing/{code}", headers=LAN_HOST)
    shown = orjson.loads(textarea_text(page, "pairing-payload"))

    png = await client.get(f"/pairing/{code}/qr.png", headers=LAN_HOST)
    svg = await client.get(f"/pairing/{code}/qr.svg", headers=LAN_HOST)

    assert (png.mimetype, svg.mimetype) == ("image/png", "image/svg+xml")
    assert png.headers["Cache-Control"] == svg.headers["Cache-Control"] == "no-store"
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(await png.get_data())))
    assert orjson.loads(decoded.text) == shown
    assert b"<svg" in await svg.get_data()


async def test_pairing_page_at_a_loopback_address_says_a_phone_cannot_reach_it(
    client: Client, app: App
) -> None:
    code = await start(client, app.id)

    page = await page_of(client, f"/pairing/{code}", headers={"Host": "127.0.0.1:5001"})

    assert "pairing-warning" in page and "LVD_PUBLIC_URL" in page
    payload = orjson.loads(textarea_text(page, "pairing-payload"))
    assert payload["ingest_url"].startswith("http://127.0.0.1:5001/v1/session/qa-")


@pytest.fixture(scope="module")
async def public_app(web_settings: Settings) -> AsyncIterator[Quart]:
    app = create_app(replace(web_settings, public_url="https://qa.example.com"))
    async with app.test_app():
        yield app


async def test_payload_uses_lvd_public_url_when_set(public_app: Quart, app: App) -> None:
    client = public_app.test_client()
    code = await start(client, app.id)

    page = await page_of(client, f"/pairing/{code}", headers=LAN_HOST)

    payload = orjson.loads(textarea_text(page, "pairing-payload"))
    assert payload["ingest_url"].startswith("https://qa.example.com/v1/session/qa-")
    assert payload["live_url"] == f"https://qa.example.com/p/{code}"


async def test_short_url_shows_only_the_sessions_events(
    client: Client, app: App, pool: asyncpg.Pool
) -> None:
    code = await start(client, app.id)
    async with pool.acquire() as conn:
        session = await conn.fetchval("SELECT session FROM pairings WHERE code = $1", code)
    mine, _, _ = await store(
        pool,
        [
            stored(app.id, name="mine_tapped", session=session),
            stored(app.id, name="other_tapped", session="someone-else"),
            stored(app.id, name="no_session"),
        ],
    )

    for path in (f"/p/{code}", f"/pairing/{code}"):
        page = await page_of(client, path)
        assert [row.attrs["id"] for row in event_rows(page)] == [f"event-{mine}"], path
        assert by_id(page, "div", "live")["sse-connect"] == (
            f"/apps/{app.id}/stream?after={mine}&session={session}"
        )
        assert "mine_tapped" in page and "other_tapped" not in page and "no_session" not in page
    phone = await page_of(client, f"/p/{code}")
    assert 'name="viewport"' in phone and "pairing.css" in phone
    assert "pairing-payload" not in phone  # the phone's view is the live list, not the key


@pytest.mark.parametrize("suffix", ["", "/qr.svg", "/qr.png"])
async def test_expired_pairing_is_404(
    client: Client, app: App, pool: asyncpg.Pool, suffix: str
) -> None:
    code = await start(client, app.id)
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE pairings SET created_at = now() - interval '8 days',"
            " expires_at = now() - interval '1 second' WHERE code = $1",
            code,
        )

    for path in (f"/pairing/{code}{suffix}", f"/p/{code}" if not suffix else None):
        if path is None:
            continue
        response = await client.get(path)
        text = await response.get_data(as_text=True)
        assert response.status_code == 404, path
        assert "unknown_pairing" in text and app.write_key not in text


@pytest.mark.parametrize(
    "path", ["/p/abcdefgh23", "/p/short", "/p/ABCDEFGH23", "/pairing/zzzzzzzzzz", "/p/a%00b"]
)
async def test_unknown_code_is_a_404_page(client: Client, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "unknown_pairing" in await response.get_data(as_text=True)


async def test_starting_a_session_for_an_unknown_app_is_404(
    client: Client, pool: asyncpg.Pool
) -> None:
    response = await client.post("/apps/no-such-app/pairings")

    assert response.status_code == 404
    assert "unknown_app" in await response.get_data(as_text=True)
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM pairings WHERE app_id = 'no-such-app'") == 0
        )


async def test_starting_a_session_from_another_site_is_refused(client: Client, app: App) -> None:
    response = await client.post(
        f"/apps/{app.id}/pairings", headers={"Origin": "https://evil.example"}
    )

    assert response.status_code == 403


@pytest.fixture(scope="module")
async def locked_app(web_settings: Settings) -> AsyncIterator[Quart]:
    app = create_app(replace(web_settings, require_login=True))
    async with app.test_app():
        yield app


async def test_pairing_pages_need_sign_in_when_it_is_on(
    locked_app: Quart, client: Client, app: App, pool: asyncpg.Pool
) -> None:
    code = await start(client, app.id)
    locked = locked_app.test_client()

    for path in (f"/p/{code}", f"/pairing/{code}", f"/pairing/{code}/qr.png"):
        response = await locked.get(path)
        assert response.status_code == 303, path
        assert response.headers["Location"] == f"/login?next={path}", path
    refused = await locked.post(f"/apps/{app.id}/pairings")
    assert refused.status_code == 303
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pairings WHERE app_id = $1", app.id) == 1

    # The phone signs in and lands on the session's live view.
    user = f"qa-{secrets.token_hex(4)}"
    async with pool.acquire() as conn:
        await create_user(conn, user, PASSWORD)
    signed_in = await locked.post(
        f"/login?next=/p/{code}", form={"username": user, "password": PASSWORD}
    )
    assert (signed_in.status_code, signed_in.headers["Location"]) == (303, f"/p/{code}")
    assert (await locked.get(f"/p/{code}")).status_code == 200
