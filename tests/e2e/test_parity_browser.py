"""Parity in headless Chromium: three platforms' sessions sent through real ingest, picked in
the picker, their differences highlighted in the table and the same in the Markdown export."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, expect
from segment.analytics.client import Client as SegmentClient

from tests.conftest import PROJECT_ROOT, LiveServer
from tests.e2e.test_browser import browser, chromium_executable  # noqa: F401 (fixtures)
from tests.e2e.test_pairing_browser import new_page
from tests.e2e.test_sdks import new_app, segment_clients  # noqa: F401 (fixture)

from .helpers import unique, wait_for_event_ids

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"


async def send_segment(client: SegmentClient, event: str, properties: dict[str, Any]) -> str:
    message_id = f"parity-{uuid.uuid4().hex}"
    await asyncio.to_thread(client.track, "tester-1", event, properties, message_id=message_id)
    return message_id


async def send_native(
    http: httpx.AsyncClient, app_id: str, session: str, event: str, properties: dict[str, Any]
) -> str:
    event_id = f"parity-{uuid.uuid4().hex}"
    body = {"eventName": event, "event_id": event_id, "properties": properties}
    response = await http.post(f"/api/logs/{app_id}", json=body, headers={"X-LVD-Session": session})
    assert response.status_code == 202, response.text
    return event_id


async def test_parity_table_shows_missing_event_and_type_difference_across_platforms(
    browser: Browser,
    live_server: LiveServer,
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    segment_clients: list[SegmentClient],
) -> None:
    app = await new_app(http, plan=None)
    ios, android, web = (unique(platform) for platform in ("ios", "android", "web"))
    # The mobile builds send through a session-scoped host, as a paired debug build does.
    mobile = {}
    for session in (ios, android):
        client = SegmentClient(
            app["write_key"], host=f"{live_server.base_url}/v1/session/{session}", sync_mode=True
        )
        segment_clients.append(client)
        mobile[session] = client
    sent = [
        await send_segment(mobile[ios], "Product Viewed", {"sku": "A1", "price": 9.99}),
        await send_segment(mobile[ios], "Checkout Started", {"total": 19.98, "items": 2}),
        # Android sends the price as a string.
        await send_segment(mobile[android], "Product Viewed", {"sku": "A1", "price": "9.99"}),
        await send_segment(mobile[android], "Checkout Started", {"total": 19.98, "items": 2}),
        # The web build never sends Checkout Started.
        await send_native(http, app["id"], web, "Product Viewed", {"sku": "A1", "price": 9.99}),
    ]
    stored = await wait_for_event_ids(pool, app["id"], sent)
    assert stored == {event_id: 1 for event_id in sent}

    console: list[str] = []
    page = await new_page(
        browser, console, viewport={"width": 1200, "height": 900}, accept_downloads=True
    )
    try:
        # From the app's views, by the nav.
        await page.goto(f"{live_server.base_url}/apps/{app['id']}/coverage")
        await (
            page.get_by_role("navigation", name=f"Views of {app['name']}")
            .get_by_role("link", name="Parity")
            .click()
        )
        await page.wait_for_url(f"{live_server.base_url}/apps/{app['id']}/parity")

        # The picker lists the three sessions; the QA lead ticks them and compares.
        picker = page.locator("#parity-picker")
        for session in (ios, android, web):
            await expect(picker.locator(f'tr[data-session="{session}"]')).to_have_count(1)
            await picker.get_by_label(session, exact=True).check()
        await page.click("#compare-sessions")
        await expect(page.locator("#parity-table")).to_be_visible()
        assert "session=" in page.url

        # The event missing on one platform.
        checkout = page.locator('tr.event-row[data-event-name="Checkout Started"]')
        await expect(checkout.locator(f'td[data-session="{web}"]')).to_have_text("missing")
        await expect(checkout.locator(f'td[data-session="{web}"]')).to_have_class(
            "num cell-missing"
        )
        await expect(checkout.locator(f'td[data-session="{ios}"]')).to_have_text("1")
        await expect(page.locator("#count-only-in-some")).to_have_text("1")
        await expect(page.locator("#only-in-some")).to_contain_text(
            f"Checkout Started (missing in {web})"
        )

        # The property whose type differs: highlighted, its details open.
        price = page.locator('tr[data-event-name="Product Viewed"][data-path="properties.price"]')
        await expect(price).to_be_visible()
        await expect(price).to_have_class("prop-type_differs")
        await expect(price.locator(f'td[data-session="{ios}"]')).to_have_text("number")
        await expect(price.locator(f'td[data-session="{android}"]')).to_have_text("string")
        await expect(price.locator(f'td[data-session="{web}"]')).to_have_text("number")
        await expect(price.locator("td.difference")).to_have_text("type differs")
        sku = page.locator('tr[data-event-name="Product Viewed"][data-path="properties.sku"]')
        background = "cell => getComputedStyle(cell).backgroundColor"
        highlighted = await price.locator("th").evaluate(background)
        plain = await sku.locator("th").evaluate(background)
        assert highlighted != plain, (highlighted, plain)
        await expect(page.locator("#count-properties-differing")).to_have_text("1")
        await page.screenshot(path=SCREENSHOTS / "parity-table.png", full_page=True)

        # The Markdown export says the same.
        async with page.expect_download() as download_info:
            await page.click("#parity-md")
        download = await download_info.value
        path = await download.path()
        text = path.read_text(encoding="utf-8")
        # Columns in the order the sessions were picked (the picker lists the latest first).
        heads = page.locator("#parity-table > thead th.session-col")
        order = [await heads.nth(i).get_attribute("data-session") or "" for i in range(3)]
        assert sorted(order) == sorted([ios, android, web])
        sent_cells = {ios: "1", android: "1", web: "MISSING"}
        types = {ios: "number x1", android: "string x1", web: "number x1"}
        checkout_line = " | ".join(sent_cells[s] for s in order)
        price_line = " | ".join(types[s] for s in order)
        assert f"| Checkout Started | missing in {web} | {checkout_line} |" in text
        assert f"| Product Viewed | properties.price | type differs | {price_line} |" in text
        assert "- Verdict: **DIFFERENCES FOUND**" in text
        assert not [line for line in console if "Content Security Policy" in line], console
    finally:
        await page.context.close()
        print("--- browser console", *console, sep="\n")
        print(live_server.logs())
