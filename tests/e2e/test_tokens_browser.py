"""The API tokens page in headless Chromium: create a token (shown once), use it, revoke it."""

from __future__ import annotations

import re

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.conftest import LiveServer

# The one Chromium of the e2e session, its launch options and screenshot folder.
from tests.e2e.test_browser import (  # noqa: F401 (fixtures)
    SCREENSHOTS,
    browser,
    chromium_executable,
    watched_page,
)
from web.core.apps import add_app

from .helpers import unique

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_tokens_page_creates_shows_once_and_revokes_in_a_browser(
    browser: Browser, live_server: LiveServer, pool: asyncpg.Pool
) -> None:
    app_id = unique("tokpage")
    async with pool.acquire() as conn:
        await add_app(conn, app_id, None)
    name = unique("browser-ci")
    navigations: list[str] = []
    console: list[str] = []
    async with watched_page(browser, live_server, navigations, console) as page:
        await page.goto(f"{live_server.base_url}/status")
        await page.click("nav.top-nav >> text=API tokens")
        await expect(page.locator("h1")).to_have_text("API tokens")

        await page.fill("input[name=name]", name)
        await page.select_option("select[name=scope]", "read")
        await page.select_option("select[name=app_id]", app_id)
        await page.click("form.create-app button[type=submit]")
        shown = page.locator("#new-token")
        await expect(shown).to_have_text(re.compile(r"^lvd_[A-Za-z0-9_-]{43}$"))
        token = await shown.inner_text()
        await page.screenshot(path=SCREENSHOTS / "tokens-created.png", full_page=True)

        async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as http:
            headers = {"Authorization": f"Bearer {token}"}
            assert (await http.get(f"/api/logs/{app_id}", headers=headers)).status_code == 200

            await page.goto(f"{live_server.base_url}/tokens")
            row = page.locator("tr", has_text=name)
            await expect(row).to_contain_text(f"lvd_{token[4:12]}")
            await expect(row).to_contain_text("read")
            assert token not in await page.content()

            await row.get_by_role("button", name=f"Revoke token {name}").click()
            await expect(page.locator(".notice")).to_contain_text("revoked")
            await expect(page.locator("tr", has_text=name)).to_contain_text("revoked")
            refused = await http.get(f"/api/logs/{app_id}", headers=headers)
            assert refused.status_code == 401
    assert not [line for line in console if "Content Security Policy" in line], console
