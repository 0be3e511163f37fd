"""/docs in headless Chromium under the server's strict CSP: every operation shown, styled by
its own stylesheet, readable without script, and no CSP violation in the console."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.conftest import PROJECT_ROOT, LiveServer
from tests.e2e.test_browser import browser, chromium_executable  # noqa: F401 (fixtures)
from web.security import CONTENT_SECURITY_POLICY

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"


@pytest.fixture
def operation_ids(live_server: LiveServer) -> list[str]:
    document: dict[str, Any] = httpx.get(f"{live_server.base_url}/openapi.json").json()
    return [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


async def test_docs_page_shows_every_operation_under_the_csp(
    browser: Browser, live_server: LiveServer, operation_ids: list[str]
) -> None:
    console: list[str] = []
    failed: list[str] = []
    context = await browser.new_context(java_script_enabled=True)
    page = await context.new_page()
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("requestfailed", lambda request: failed.append(request.url))
    try:
        response = await page.goto(f"{live_server.base_url}/docs")
        assert response is not None and response.status == 200
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.set_viewport_size({"width": 1200, "height": 1400})
        await page.locator("#op-saveRetention").scroll_into_view_if_needed()
        await page.screenshot(path=SCREENSHOTS / "api_docs.png")

        await expect(page.locator("article.op")).to_have_count(len(operation_ids))
        rendered = await page.locator("article.op").evaluate_all("(all) => all.map(a => a.id)")
        assert sorted(rendered) == sorted(f"op-{op_id}" for op_id in operation_ids)
        # The stylesheet applied (a blocked one would leave the badge unstyled).
        badge = page.locator("#op-saveRetention .method")
        color = await badge.evaluate("(el) => getComputedStyle(el).backgroundColor")
        assert color == "rgb(138, 90, 0)"
        # Schemas read without script: <details> opens on a click.
        schema = page.locator("#schema-RetentionChange details")
        await schema.locator("summary").click()
        await expect(schema.locator("pre")).to_be_visible()
        await expect(schema.locator("pre")).to_contain_text('"additionalProperties": false')
        # A link from an operation to a schema lands on it.
        await page.locator('#op-saveRetention a[href="#schema-RetentionChange"]').click()
        assert page.url.endswith("#schema-RetentionChange")
    finally:
        await context.close()
    print("--- browser console", *console, sep="\n")
    assert not [line for line in console if "Content Security Policy" in line]
    assert not [line for line in console if line.startswith("error")]
    assert failed == []
