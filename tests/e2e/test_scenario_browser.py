"""A checkout scenario in Chromium: built in the editor, then ticking live over a session."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.conftest import LiveServer
from tests.e2e.test_browser import SCREENSHOTS, Tab, browser, chromium_executable, tab  # noqa: F401 (fixtures)
from web.core.ingest.accept import SESSION_HEADER

from .helpers import unique

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

STEPS = ("product_viewed", "product_added", "checkout_started", "order_completed")


async def build_checkout(page: Page, base_url: str, app_id: str) -> None:
    """The scenario made in the editor, step by step, as a QA engineer would."""
    await page.goto(f"{base_url}/apps/{app_id}/scenarios")
    await page.fill("#new-scenario-name", "checkout")
    await page.get_by_role("button", name="Create").click()
    await page.wait_for_url(f"{base_url}/apps/{app_id}/scenarios/checkout")
    for index, name in enumerate(STEPS):
        if index:
            await page.get_by_role("button", name="Add step").click()
        field = page.locator(f"#step-{index}-event")
        await expect(field).to_be_visible()
        await field.fill(name)
    await page.locator("#step-editor-3").get_by_role("button", name="Add assertion").click()
    path = page.locator('[name="step-3-assertion-0-path"]')
    await expect(path).to_be_visible()
    await path.fill("/properties/total")
    await page.select_option('[name="step-3-assertion-0-kind"]', "schema")
    await page.fill(
        '[name="step-3-assertion-0-value"]', '{"type": "number", "exclusiveMinimum": 0}'
    )
    # A step moved down and back: the order is the server's, round trip by round trip.
    await page.get_by_role("button", name="Move step 1 down").click()
    await expect(page.locator("#step-0-event")).to_have_value("product_added")
    await page.get_by_role("button", name="Move step 2 up").click()
    await expect(page.locator("#step-0-event")).to_have_value("product_viewed")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#editor-status")).to_have_text("Saved as revision 1.")
    await page.locator("details.scenario-json summary").click()
    await expect(page.locator("#scenario-json")).to_contain_text('"exclusiveMinimum": 0')
    await page.screenshot(path=SCREENSHOTS / "scenario-editor.png", full_page=True)
    await expect(page.locator("#scenario-problems")).to_have_text("The scenario is valid.")


async def test_checkout_scenario_ticks_live_and_fails_on_a_bad_order(
    tab: Tab, http: httpx.AsyncClient, live_server: LiveServer
) -> None:
    page = tab.page
    created = await http.post("/api/apps", json={"id": unique("scn")})
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    await build_checkout(page, live_server.base_url, app_id)
    saved = (await http.get(f"/api/apps/{app_id}/scenarios/checkout")).json()
    assert [step["event"] for step in saved["scenario"]["steps"]] == list(STEPS)

    # Saved, the editor offers to run it against a session: the run has an address of its own.
    session = unique("qa")
    await page.fill("#run-session", session)
    await page.get_by_role("button", name="Open the run").click()
    await page.wait_for_url(
        f"{live_server.base_url}/apps/{app_id}/scenarios/checkout/runs/{session}"
    )
    await expect(page.locator("#connection")).to_have_text("live")
    await page.evaluate("window.__sameDocument = true")
    verdict = page.locator("#run-verdict")
    await expect(verdict).to_have_attribute("data-verdict", "in_progress")
    await tab.screenshot("scenario-run-waiting.png")

    sent = {}
    for number, name in enumerate(STEPS, start=1):
        total = 0 if name == "order_completed" else None
        body = {"eventName": name, "event_id": unique("evt"), "properties": {"total": total}}
        answer = await http.post(
            f"/api/logs/{app_id}", json=body, headers={SESSION_HEADER: session}
        )
        assert answer.status_code == 202, answer.text
        sent[name] = body["event_id"]
        step = page.locator(f"#step-{number}")
        expected = "failed" if name == "order_completed" else "passed"
        await expect(step).to_have_attribute("data-state", expected)
        if expected == "passed":
            await expect(verdict).to_have_attribute("data-verdict", "in_progress")

    await expect(verdict).to_have_attribute("data-verdict", "failed")
    await expect(verdict).to_contain_text("Failed: 3 of 4 steps passed")
    failed = page.locator("#step-4")
    await expect(failed.locator(".step-failure")).to_contain_text(
        "0 is less than or equal to the minimum of 0"
    )
    assert await page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    await tab.screenshot("scenario-run-failed.png")

    # The breaking event is one click away.
    await failed.get_by_role("link", name=f"event {sent['order_completed']}").click()
    await page.wait_for_url(f"{live_server.base_url}/apps/{app_id}/events/*")
    await expect(page.locator("main")).to_contain_text(sent["order_completed"])
    await expect(page.locator("main")).to_contain_text("order_completed")
