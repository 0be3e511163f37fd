"""Hygiene checks end to end in headless Chromium: an email in an event is warned about in the
202 answer, stored with the warning by the real worker, grouped on the violations page and
marked in the live view; the page's switch turns the checks off for the next event."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.e2e.test_browser import (  # noqa: F401 (fixtures)
    SCREENSHOTS,
    UI_TIMEOUT_MS,
    browser,
    chromium_executable,
)

from .helpers import unique, wait_for_event_ids

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def send_sign_up(http: httpx.AsyncClient, app_id: str, event_id: str) -> dict[str, Any]:
    event = {
        "eventName": "signed_up",
        "event_id": event_id,
        "timestamp": "2025-12-10T15:45:00Z",
        "properties": {"contact": "jane.doe@example.com"},
    }
    response = await http.post(f"/api/logs/{app_id}", json=event)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def stored_errors(pool: asyncpg.Pool, app_id: str, event_id: str) -> tuple[str, Any]:
    assert await wait_for_event_ids(pool, app_id, [event_id]) == {event_id: 1}
    row = await pool.fetchrow(
        "SELECT validation_status, errors FROM log_entries WHERE app_id = $1 AND event_id = $2",
        app_id,
        event_id,
    )
    errors = row["errors"]
    return row["validation_status"], orjson.loads(errors) if isinstance(errors, str) else errors


def warning_rows(page: Page) -> Any:
    return page.locator("table.warnings tbody tr")


async def test_email_warned_grouped_and_switched_off_in_the_browser(
    browser: Browser, live_server: LiveServer, http: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    created = await http.post("/api/apps", json={"id": unique("hyg")})
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]

    first = await send_sign_up(http, app_id, "hyg-first")
    assert first["status"] == "valid"
    assert [(e["rule"], e["severity"], e["actual"]) for e in first["errors"]] == [
        ("pii_email", "warning", "j***@example.com")
    ]
    status, errors = await stored_errors(pool, app_id, "hyg-first")
    assert status == "valid"
    assert errors == first["errors"]

    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        await page.goto(f"{live_server.base_url}/apps/{app_id}/violations")
        rows = warning_rows(page)
        await expect(rows).to_have_count(1)
        await expect(rows.first.locator("td").nth(1)).to_have_text("/properties/contact")
        await expect(rows.first.locator("td").nth(2)).to_contain_text(
            "pii_email /properties/contact holds an email address (j***@example.com)"
        )
        await expect(rows.first.locator("td").nth(3)).to_have_text("1")
        await expect(page.locator("table.violations:not(.warnings)")).to_have_count(0)
        assert "jane.doe" not in await page.content()
        await page.screenshot(path=SCREENSHOTS / "hygiene-violations.png", full_page=True)

        # The live view marks the event's warning.
        await page.goto(f"{live_server.base_url}/apps/{app_id}")
        marker = page.locator('#event-rows tr[data-event-id="hyg-first"] .warning-marker')
        await expect(marker).to_have_text("! 1 warning")

        # The switch on the violations page turns the checks off.
        await page.goto(f"{live_server.base_url}/apps/{app_id}/violations")
        await expect(page.locator(".hygiene-state")).to_have_text("on")
        await page.get_by_role("button", name="Turn hygiene checks off").click()
        await expect(page.locator(".hygiene-state")).to_have_text("off")
        await expect(page.get_by_role("button", name="Turn hygiene checks on")).to_be_visible()
        assert page.url.endswith(f"/apps/{app_id}/violations#hygiene")
    finally:
        await context.close()

    second = await send_sign_up(http, app_id, "hyg-second")
    assert (second["status"], second["errors"]) == ("valid", [])
    assert await stored_errors(pool, app_id, "hyg-second") == ("valid", [])
    setting = await http.get(f"/api/apps/{app_id}/hygiene")
    assert setting.json()["enabled"] is False
