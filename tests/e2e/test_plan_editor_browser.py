"""The tracking-plan editor in Chromium: inline checks as you type, save, history, re-validate."""

from __future__ import annotations

import asyncpg
import httpx
import orjson
import pytest
from playwright.async_api import expect

from tests.conftest import LiveServer
from tests.e2e.test_browser import Tab, browser, chromium_executable, tab  # noqa: F401 (fixtures)
from web.core.queries.base import App

from .helpers import APP_ID, post_event, unique, wait_for_event_ids

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

GOOD_PLAN = {
    "events": {
        "Order Completed": {
            "type": "object",
            "required": ["orderId"],
            "properties": {"orderId": {"type": "string"}, "total": {"type": "number"}},
        }
    },
    "allow_unplanned": True,
}


async def test_plan_editor_checks_inline_saves_and_shows_history(
    tab: Tab,
    http: httpx.AsyncClient,
    live_server: LiveServer,
    test_app_row: App,
    pool: asyncpg.Pool,
) -> None:
    page = tab.page
    # Two events stored under no plan: one the plan will fail, one it will pass.
    failing, passing = unique("o"), unique("o")
    await post_event(http, {"eventName": "Order Completed", "event_id": failing, "total": "9"})
    await post_event(
        http, {"eventName": "Order Completed", "event_id": passing, "orderId": "A1", "total": 9}
    )
    counts = await wait_for_event_ids(pool, APP_ID, [failing, passing])
    assert counts == {failing: 1, passing: 1}

    await page.goto(f"{live_server.base_url}/apps/{APP_ID}/plan")
    editor = page.locator("#plan-document")
    problems = page.locator("#plan-problems")

    await editor.fill('{"events": {"Order Completed": {"type": "numbr"}}}')
    await expect(problems).to_contain_text("/events/Order Completed/type")
    await tab.screenshot("plan-editor-problem.png")

    await editor.fill(orjson.dumps(GOOD_PLAN, option=orjson.OPT_INDENT_2).decode())
    await expect(problems).to_contain_text("The plan is valid.")

    await page.get_by_role("button", name="Save as a new version").click()
    await expect(page.locator("text=Version 1, saved")).to_be_visible()
    await expect(page.locator("table.plan-props")).to_contain_text("orderId")
    await expect(page.locator("table.plan-props")).to_contain_text("required")

    await page.get_by_role("button", name="Version 1").click()
    await expect(page.locator("#plan-diff")).to_contain_text("Events added")
    await expect(page.locator("#plan-diff")).to_contain_text("Order Completed")

    await page.get_by_role("button", name="Re-validate").click()
    revalidation = page.locator("#revalidation")
    await expect(revalidation).to_contain_text("newly failing")
    await expect(revalidation).to_contain_text(failing)
    await tab.screenshot("plan-editor-saved.png")
    assert not [line for line in tab.console if "Content Security Policy" in line], tab.console


async def test_plan_editor_refuses_to_save_a_broken_plan(
    tab: Tab, live_server: LiveServer, test_app_row: App
) -> None:
    page = tab.page
    await page.goto(f"{live_server.base_url}/apps/{APP_ID}/plan")
    await page.locator("#plan-document").fill('{"events": [], "naming": "kebab"}')
    await page.get_by_role("button", name="Save as a new version").click()
    await expect(page.locator("#plan-problems")).to_contain_text("/naming")
    await expect(page.locator("#plan-problems")).to_contain_text("/events")
    await expect(page.locator("text=No plan yet")).to_be_visible()
