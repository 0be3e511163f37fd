"""Pairing a phone in headless Chromium: the QR code decoded, a real SDK sends into the session."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Browser, Page, expect
from segment.analytics.client import Client as SegmentClient

from tests.conftest import PROJECT_ROOT, LiveServer
from tests.e2e.test_browser import (  # noqa: F401 (fixtures)
    UI_TIMEOUT_MS,
    browser,
    chromium_executable,
)
from tests.e2e.test_sdks import segment_clients  # noqa: F401 (fixture)
from web.core import pairing as pairing_core

from .helpers import unique, wait_for_event_ids

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


async def new_page(browser: Browser, console: list[str], **options: Any) -> Page:
    context = await browser.new_context(**options)
    page = await context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    return page


async def decode_qr(page: Page) -> dict[str, Any]:
    """The pairing payload, read from the QR code as the page shows it (a screenshot)."""
    qr = page.locator("#pairing-qr")
    await expect(qr).to_be_visible()
    await page.wait_for_function(
        "document.getElementById('pairing-qr').complete"
        " && document.getElementById('pairing-qr').naturalWidth > 0"
    )
    shot = await qr.screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))
    assert [code.format for code in found] == [zxingcpp.BarcodeFormat.QRCode], found
    document: dict[str, Any] = orjson.loads(found[0].text)
    return document


async def send_track(client: SegmentClient, event: str, message_id: str) -> None:
    await asyncio.to_thread(
        client.track, "tester-1", event, {"screen": "cart"}, message_id=message_id
    )


def row(page: Page, event_id: str) -> Any:
    return page.locator(f'#event-rows tr[data-event-id="{event_id}"]')


async def test_phone_pairs_by_qr_and_sees_only_its_sessions_events(
    browser: Browser,
    live_server: LiveServer,
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    segment_clients: list[SegmentClient],
) -> None:
    created = await http.post("/api/apps", json={"id": unique("pair")})
    assert created.status_code == 201, created.text
    app = created.json()
    console: list[str] = []
    desk = await new_page(
        browser,
        console,
        viewport={"width": 1200, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    try:
        # A QA lead starts a session from the app's live view.
        await desk.goto(f"{live_server.base_url}/apps/{app['id']}")
        await expect(desk.locator("#start-qa-session")).to_have_text("Start a QA session")
        await desk.screenshot(path=SCREENSHOTS / "pairing-start.png")
        await desk.click("#start-qa-session")
        await desk.wait_for_url(f"{live_server.base_url}/pairing/*")
        code = desk.url.rsplit("/", 1)[1]
        assert pairing_core.is_code(code), desk.url
        await expect(desk.locator("#connection")).to_have_text("live")

        # The debug build scans the code: the payload is the one documented.
        payload = await decode_qr(desk)
        session = payload["session"]
        assert list(payload) == list(pairing_core.PAYLOAD_KEYS)
        assert payload["lvd"] == 1 and payload["app_id"] == app["id"]
        assert payload["write_key"] == app["write_key"]
        assert payload["ingest_url"] == f"{live_server.base_url}/v1/session/{session}"
        assert payload["live_url"] == f"{live_server.base_url}/p/{code}"
        shown = orjson.loads(await desk.locator("#pairing-payload").input_value())
        assert shown == payload
        assert await desk.locator("#ingest-url").input_value() == payload["ingest_url"]
        # The texts are one click from the clipboard (for a simulator, or a chat to the tester).
        for button, expected in (
            ("Copy ingest URL", payload["ingest_url"]),
            ("Copy JSON", await desk.locator("#pairing-payload").input_value()),
        ):
            await desk.get_by_role("button", name=button).click()
            await expect(
                desk.get_by_role("button", name=button).locator("xpath=..")
            ).to_contain_text("Copied")
            assert await desk.evaluate("navigator.clipboard.readText()") == expected
        await desk.screenshot(path=SCREENSHOTS / "pairing-page.png", full_page=True)

        # The tester's phone opens the short URL from the payload.
        phone = await new_page(browser, console, **PHONE)
        response = await phone.goto(payload["live_url"])
        assert response is not None and response.status == 200
        await expect(phone.locator("#connection")).to_have_text("live")
        await expect(phone.locator("#session-id")).to_have_text(session)

        # Another tester's build sends to the same app without the session: not shown here.
        plain = SegmentClient(payload["write_key"], host=live_server.base_url, sync_mode=True)
        segment_clients.append(plain)
        elsewhere = f"pair-other-{uuid.uuid4().hex}"
        await send_track(plain, "Other Tester Tapped", elsewhere)
        assert await wait_for_event_ids(pool, app["id"], [elsewhere]) == {elsewhere: 1}

        # The paired build: the SDK configured from the decoded payload alone.
        paired = SegmentClient(payload["write_key"], host=payload["ingest_url"], sync_mode=True)
        segment_clients.append(paired)
        mine = f"pair-mine-{uuid.uuid4().hex}"
        await send_track(paired, "Checkout Tapped", mine)

        for page in (desk, phone):
            await expect(row(page, mine).locator("td.name")).to_have_text("Checkout Tapped")
            await expect(row(page, mine)).to_have_count(1)
            # Stored before the paired event was sent: it had its chance to appear.
            assert await row(page, elsewhere).count() == 0
            assert await page.locator("#event-rows tr").count() == 1
        stored = await http.get(f"/api/logs/{app['id']}", params={"session": session})
        assert [event["event_id"] for event in stored.json()["events"]] == [mine]

        # The phone's view fits the phone: nothing wider than the screen.
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["viewport"]["width"], width  # type: ignore[index]
        await phone.screenshot(path=SCREENSHOTS / "pairing-phone.png", full_page=True)
        assert not [line for line in console if "Content Security Policy" in line], console
    finally:
        await desk.context.close()
        print("--- browser console", *console, sep="\n")
        print(live_server.logs())
