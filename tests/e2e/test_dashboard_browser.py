"""The dashboard QA engineers keep open, in headless Chromium against real web and worker
processes: pause and resume, filters in the URL, older pages, the detail panel, violations,
coverage, exports, tiles and lag. Each test saves a screenshot to artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import orjson
import pytest
from playwright.async_api import Browser, Download, Page, expect

from tests.conftest import LiveServer

# The one Chromium of the e2e session, its launch options and screenshot folder.
from tests.e2e.test_browser import (  # noqa: F401 (fixtures)
    SCREENSHOTS,
    UI_TIMEOUT_MS,
    browser,
    chromium_executable,
    watched_page,
)
from tests.sample_plans import order_completed
from web.core.queries.base import App, NewLogEntry
from web.core.queries.events import insert_log_entries

from .helpers import APP_ID, post_event, quick_start_event, unique, wait_for_event_ids

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

HOSTILE = "<img src=x onerror=window.__pwned=1><script>window.__pwned=1</script>"
PLAN: dict[str, Any] = {
    "events": {
        "order_completed": order_completed(),
        "app_opened": {"type": "object"},
        "signup": {"type": "object", "properties": {"email": {"type": "string"}}},
        "user_login": {"type": "object"},
    }
}


@dataclass
class Tab:
    page: Page
    base_url: str
    navigations: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    async def open(self, path: str) -> None:
        """Open a live view and wait until its stream is connected."""
        response = await self.page.goto(f"{self.base_url}{path}")
        assert response is not None and response.status == 200, path
        await expect(self.page.locator("#connection")).to_have_text("live")
        await self.page.evaluate("window.__sameDocument = true")
        self.navigations.clear()

    async def screenshot(self, name: str) -> None:
        await self.page.screenshot(path=SCREENSHOTS / name, full_page=True)

    async def same_document(self) -> bool:
        return bool(await self.page.evaluate("window.__sameDocument === true"))


@pytest.fixture
async def tab(browser: Browser, live_server: LiveServer) -> AsyncIterator[Tab]:
    navigations: list[str] = []
    console: list[str] = []
    # A laptop screen; clipboard allowed so "copy as cURL" can be read back.
    async with watched_page(
        browser,
        live_server,
        navigations,
        console,
        viewport={"width": 1366, "height": 800},
        permissions=["clipboard-read", "clipboard-write"],
        accept_downloads=True,
    ) as page:
        tab = Tab(page, live_server.base_url, navigations=navigations, console=console)
        yield tab
    assert not [line for line in tab.console if "Content Security Policy" in line], tab.console


async def send(
    http: httpx.AsyncClient, pool: asyncpg.Pool, events: list[dict[str, Any]], **headers: str
) -> None:
    """POST each event in order and wait until each is stored before the next one."""
    for event in events:
        response = await http.post(f"/api/logs/{APP_ID}", json=event, headers=headers)
        assert response.status_code == 202, response.text
        counts = await wait_for_event_ids(pool, APP_ID, [event["event_id"]])
        assert counts == {event["event_id"]: 1}


@pytest.fixture
async def planned_app(http: httpx.AsyncClient, test_app_row: App) -> App:
    """The test app, with PLAN as its tracking plan."""
    response = await http.put(f"/api/apps/{APP_ID}/plan", json=PLAN)
    assert response.status_code == 200, response.text
    return test_app_row


async def downloaded(download: Download) -> str:
    path = await download.path()
    return await asyncio.to_thread(Path(path).read_text, encoding="utf-8")


async def shown_ids(page: Page) -> list[str]:
    ids: list[str] = await page.eval_on_selector_all(
        "#event-rows tr", "rows => rows.map(row => row.dataset.eventId)"
    )
    return ids


# --- live view ------------------------------------------------------------------------------


async def test_live_view_pause_counts_new_events_and_resume_inserts_them_in_order(
    tab: Tab, http: httpx.AsyncClient, pool: asyncpg.Pool, test_app_row: App
) -> None:
    page = tab.page
    before = quick_start_event(eventName=unique("before_pause"))
    await send(http, pool, [before])
    await tab.open(f"/apps/{APP_ID}")

    await page.click("#pause")
    await expect(page.locator("#pause")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#pending")).to_have_text("0 new")
    held = [quick_start_event(eventName=unique(f"held_{i}")) for i in range(3)]
    await send(http, pool, held)

    await expect(page.locator("#pending")).to_have_text("3 new")
    await page.wait_for_timeout(300)
    assert await shown_ids(page) == [before["event_id"]], "a row was inserted while paused"
    await tab.screenshot("live-paused.png")

    await page.click("#pause")

    await expect(page.locator("#event-rows tr")).to_have_count(4)
    assert await shown_ids(page) == [e["event_id"] for e in reversed(held)] + [before["event_id"]]
    await expect(page.locator("#pending")).to_be_hidden()
    await expect(page.locator("#pause")).to_have_text("Pause")
    # Live again: the next event goes straight in at the top.
    after = quick_start_event(eventName=unique("after_resume"))
    await send(http, pool, [after])
    await expect(page.locator("#event-rows tr").first).to_have_attribute(
        "data-event-id", after["event_id"]
    )
    assert tab.navigations == [] and await tab.same_document()


async def test_live_view_filter_form_round_trips_through_the_url(
    tab: Tab, http: httpx.AsyncClient, pool: asyncpg.Pool, test_app_row: App
) -> None:
    page = tab.page
    now = datetime.now(UTC).replace(microsecond=0)
    since = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await tab.open(f"/apps/{APP_ID}?status=invalid")

    await page.fill("input[name=event_name]", "checkout, refund")
    await page.fill("input[name=q]", "promo")
    await page.fill("input[name=rule]", "format")
    await page.fill("input[name=session]", "qa-7")
    await page.fill("input[name=since]", since)
    await page.fill("input[name=until]", until)
    await page.click("form.filter-form button[type=submit]")
    await expect(page.locator("#connection")).to_have_text("live")

    query = parse_qs(urlsplit(page.url).query)
    assert query == {
        "status": ["invalid"],
        "event_name": ["checkout, refund"],
        "q": ["promo"],
        "rule": ["format"],
        "session": ["qa-7"],
        "since": [since],
        "until": [until],
    }
    for name, value in [("event_name", "checkout,refund"), ("q", "promo"), ("since", since)]:
        await expect(page.locator(f"form.filter-form input[name={name}]")).to_have_value(value)

    def event(name: str, **fields: Any) -> dict[str, Any]:
        return quick_start_event(
            **{"eventName": name, "timestamp": "not a date", "note": "promo", **fields}
        )

    wanted = event("checkout")
    others = [
        event("signup"),  # another name
        event("checkout", note="plain"),  # no "promo" in the payload
        quick_start_event(eventName="checkout", note="promo"),  # valid
    ]
    await send(http, pool, [*others, wanted], **{"X-LVD-Session": "qa-7"})
    await send(http, pool, [event("checkout", event_id=unique("other-session"))])

    await expect(page.locator("#event-rows tr")).to_have_count(1)
    assert await shown_ids(page) == [wanted["event_id"]]
    await tab.screenshot("live-filtered.png")

    await page.click("button[data-copy-url]")
    assert await page.evaluate("navigator.clipboard.readText()") == page.url

    # The URL is the view: pasted into a fresh tab, it shows the same rows.
    fresh = await page.context.new_page()
    await fresh.goto(page.url)
    assert await shown_ids(fresh) == [wanted["event_id"]]
    await expect(fresh.locator("form.filter-form input[name=session]")).to_have_value("qa-7")
    await fresh.close()


async def test_live_view_older_events_page_back_through_history(
    tab: Tab, pool: asyncpg.Pool, test_app_row: App
) -> None:
    page = tab.page
    now = datetime.now(UTC)
    entries = [
        NewLogEntry(
            app_id=APP_ID,
            event_id=f"history-{i:03d}",
            event_name=f"history_{i % 4}",
            payload=orjson.dumps({"eventName": f"history_{i % 4}", "n": i}).decode(),
            status="valid",
            errors="[]",
            plan_version=None,
            session=None,
            received_at=now - timedelta(seconds=250 - i),
        )
        for i in range(250)
    ]
    async with pool.acquire() as conn:
        await insert_log_entries(conn, entries)
    newest_first = [f"history-{i:03d}" for i in reversed(range(250))]
    await tab.open(f"/apps/{APP_ID}")
    assert await shown_ids(page) == newest_first[:100]

    await page.click("#older")
    await expect(page.locator("#event-rows tr")).to_have_count(200)
    # Reading history holds the live list still.
    await expect(page.locator("#pause")).to_have_attribute("aria-pressed", "true")
    await page.click("#older")
    await expect(page.locator("#event-rows tr")).to_have_count(250)

    assert await shown_ids(page) == newest_first
    await expect(page.locator("#older")).to_be_hidden()
    await expect(page.locator("#older-status")).to_have_text("Start of history.")
    await page.locator("#older-pager").scroll_into_view_if_needed()
    await page.screenshot(path=SCREENSHOTS / "live-history.png")

    await page.click("#pause")  # resume: back to the live, bounded list
    await expect(page.locator("#event-rows tr")).to_have_count(100)
    await expect(page.locator("#older")).to_be_visible()
    assert tab.navigations == [] and await tab.same_document()


async def test_live_view_detail_panel_marks_the_failing_path_in_place(
    tab: Tab, http: httpx.AsyncClient, pool: asyncpg.Pool, planned_app: App
) -> None:
    page = tab.page
    await tab.open(f"/apps/{APP_ID}")
    event = quick_start_event(
        eventName="order_completed", price=-5, currency="GBP", note=HOSTILE, **{HOSTILE: 1}
    )
    event.pop("userId")
    await send(http, pool, [event], **{"X-LVD-Session": "qa-detail"})
    link = page.locator(f'#event-rows tr[data-event-id="{event["event_id"]}"] a.open-detail')

    await link.click()

    panel = page.locator("#detail")
    await expect(panel).to_be_visible()
    await expect(panel.locator("h2")).to_have_text("order_completed")
    await expect(panel.locator("h2")).to_be_focused()
    await expect(panel.locator('.jl.mark-error[data-pointer="/price"]')).to_contain_text("-5")
    await expect(panel.locator('.jl.mark-error[data-pointer="/currency"]')).to_be_visible()
    await expect(panel.locator('.jl.jl-missing[data-pointer="/orderId"]')).to_contain_text(
        "(missing)"
    )
    assert await panel.locator('.jl[data-pointer="/timestamp"].mark-error').count() == 0
    await expect(panel.locator(".issues-error")).to_contain_text("price must be at least 0")
    await expect(panel).to_contain_text("Schema, plan version 1")
    schema = panel.locator('pre[aria-label="Event schema"]')
    await expect(
        schema.locator('.jl.mark-error[data-pointer="/properties/price/minimum"]')
    ).to_be_visible()
    await expect(panel.locator(".facts")).to_contain_text("ms after it was received")
    await expect(panel).to_contain_text(HOSTILE)
    assert await panel.locator("img, script").count() == 0
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert tab.navigations == [] and await tab.same_document()
    await tab.screenshot("detail-panel.png")

    await panel.locator("button[data-copy]").click()
    await expect(panel.locator(".copy-status")).to_have_text("Copied")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == await panel.locator("textarea.curl").input_value()
    assert "X-LVD-Session: qa-detail" in copied and "--data-raw" in copied

    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(link).to_be_focused()

    # The same detail as a page of its own (the link opens it in a new tab).
    await page.goto(await link.evaluate("a => a.href"))
    await expect(page.locator("article.event-detail h2")).to_have_text("order_completed")
    await expect(page.locator('.jl.mark-error[data-pointer="/price"]')).to_be_visible()
    await tab.screenshot("event-page.png")


# --- violations, coverage, export ------------------------------------------------------------


async def test_violations_group_click_opens_the_filtered_live_view(
    tab: Tab, http: httpx.AsyncClient, pool: asyncpg.Pool, planned_app: App
) -> None:
    page = tab.page
    bad_price = [
        quick_start_event(eventName="order_completed", orderId="o", currency="USD", price=-1)
    ]
    bad_currency = [
        quick_start_event(eventName="order_completed", orderId="o", currency="GBP")
        for _ in range(2)
    ]
    await send(http, pool, [*bad_price, *bad_currency])

    await page.goto(f"{tab.base_url}/apps/{APP_ID}/violations")
    groups = page.locator("table.violations tbody tr")
    await expect(groups).to_have_count(2)
    await expect(groups.first).to_contain_text("/currency")
    await expect(groups.first.locator("td.num")).to_have_text("2")
    await expect(groups.first.locator(".badge-new")).to_have_text("new")
    # One bar: one move in the sparkline's outline.
    bars = groups.first.locator("svg path.bar-invalid")
    await expect(bars).to_have_attribute("d", re.compile(r"^M[^M]+z$"))
    await tab.screenshot("violations.png")

    await groups.nth(1).locator("a.show-events").click()

    await page.wait_for_url(re.compile(rf"/apps/{APP_ID}\?"))
    assert parse_qs(urlsplit(page.url).query) == {
        "status": ["invalid"],
        "event_name": ["order_completed"],
        "rule": ["minimum"],
    }
    await expect(page.locator("#connection")).to_have_text("live")
    assert await shown_ids(page) == [bad_price[0]["event_id"]]
    await expect(page.locator("form.filter-form input[name=rule]")).to_have_value("minimum")


async def test_coverage_session_sign_off_page_and_markdown_download(
    tab: Tab, http: httpx.AsyncClient, pool: asyncpg.Pool, planned_app: App
) -> None:
    page = tab.page
    session = unique("qa-coverage")
    await send(
        http,
        pool,
        [
            quick_start_event(eventName="app_opened"),
            quick_start_event(eventName="signup", email=42),
            quick_start_event(eventName="debug_ping"),
        ],
        **{"X-LVD-Session": session},
    )
    await send(http, pool, [quick_start_event(eventName="user_login")])  # no session

    await page.goto(f"{tab.base_url}/apps/{APP_ID}/coverage")
    await page.fill("form.filter-form input[name=session]", session)
    await page.click("form.filter-form button[type=submit]")
    await page.wait_for_url(re.compile(r"/coverage\?session="))

    assert parse_qs(urlsplit(page.url).query) == {"session": [session]}
    planned = page.locator("#planned tbody tr")
    await expect(planned).to_have_count(4)
    states = await page.eval_on_selector_all(
        "#planned tbody tr", "rows => rows.map(r => [r.dataset.eventName, r.className])"
    )
    assert states == [
        ["order_completed", "state-missing"],
        ["app_opened", "state-seen"],
        ["signup", "state-failing"],
        ["user_login", "state-missing"],
    ]
    await expect(page.locator("#unplanned tbody tr")).to_have_text(re.compile("debug_ping"))
    await expect(page.locator(".verdict")).to_contain_text("Not ready to sign off")
    await tab.screenshot("coverage.png")

    async with page.expect_download() as download_info:
        await page.click("text=Download Markdown")
    download = await download_info.value
    text = await downloaded(download)
    assert download.suggested_filename.startswith(f"{APP_ID}-coverage-")
    assert f"- Scope: test session {session}" in text
    assert "| signup | FAIL: seen, some invalid | 1 | 1 |" in text
    assert "| order\\_completed | MISSING: missing | 0 | 0 | - |" in text
    assert "| debug\\_ping | EXTRA: not in the plan | 1 |" in text
    await page.emulate_media(media="print")
    await tab.screenshot("coverage-print.png")
    await expect(page.locator("form.filter-form")).to_be_hidden()


async def test_export_csv_download_follows_the_live_view_filters(
    tab: Tab, http: httpx.AsyncClient, pool: asyncpg.Pool, test_app_row: App
) -> None:
    page = tab.page
    formula = quick_start_event(eventName='=HYPERLINK("http://evil","x")', timestamp="bad")
    plain = quick_start_event(eventName="signup", timestamp="bad")
    valid = quick_start_event(eventName="signup")
    await send(http, pool, [formula, plain, valid])
    await tab.open(f"/apps/{APP_ID}?status=invalid")

    async with page.expect_download() as download_info:
        await page.click(".exports a:text-is('CSV')")
    download = await download_info.value

    rows = list(csv.DictReader(io.StringIO(await downloaded(download))))
    assert download.suggested_filename.endswith(".csv")
    assert [row["event_id"] for row in rows] == [plain["event_id"], formula["event_id"]]
    assert rows[1]["event_name"] == "'" + formula["eventName"]
    assert all(row["status"] == "invalid" for row in rows)

    async with page.expect_download() as download_info:
        await page.click(".exports a:text-is('NDJSON')")
    ndjson = await downloaded(await download_info.value)
    assert [orjson.loads(line)["event_id"] for line in ndjson.splitlines()] == [
        plain["event_id"],
        formula["event_id"],
    ]
    assert tab.navigations == [] and await tab.same_document()


async def test_live_view_tiles_and_lag_show_what_arrives(
    tab: Tab, http: httpx.AsyncClient, pool: asyncpg.Pool, planned_app: App
) -> None:
    page = tab.page
    await send(
        http,
        pool,
        [
            *[quick_start_event(eventName="app_opened") for _ in range(4)],
            *[quick_start_event(eventName="order_completed", price=-1) for _ in range(2)],
            quick_start_event(eventName="signup", email=False),
        ],
    )
    await tab.open(f"/apps/{APP_ID}")

    tiles = page.locator("#tiles")
    await expect(tiles.locator(".tile").nth(0).locator(".figure")).to_contain_text("7")
    await expect(tiles.locator(".tile").nth(1).locator(".figure")).to_contain_text("42.9 %")
    await expect(tiles.locator(".top-failing li")).to_have_count(2)
    await expect(tiles.locator(".top-failing li").first).to_contain_text("order_completed")
    assert await tiles.locator("svg.spark rect").count() >= 2
    await expect(page.locator("#lag")).to_contain_text("newest stored")

    await post_event(http, quick_start_event(eventName="app_opened"))

    await expect(page.locator("#lag")).to_have_text(re.compile(r"^lag \d+ ms · newest stored "))
    await tab.screenshot("live-view.png")
    await page.set_viewport_size({"width": 1024, "height": 768})
    await page.locator("#event-rows tr a.open-detail").first.click()
    await expect(page.locator("#detail")).to_be_visible()
    await tab.screenshot("live-view-narrow-detail.png")
