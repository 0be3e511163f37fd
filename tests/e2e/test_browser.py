"""The live dashboard in headless Chromium, against the real web and worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, Request, async_playwright, expect

from bench.chromium import CHROMIUM, launch_chromium
from tests.conftest import (
    PROJECT_ROOT,
    LiveServer,
    env_for,
    free_port,
    skip_or_fail,
    stop_process,
    wait_for_http,
)
from web.core.queries.apps import select_app
from web.core.queries.base import App
from web.core.queries.events import select_max_log_entry_id
from web.core.settings import Settings

from .helpers import APP_ID, post_event, quick_start_event, unique, wait_for_event_ids

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"
# Milliseconds the page may take to show what the server pushed.
UI_TIMEOUT_MS = 10_000
HOSTILE_NAMES = (
    "<img src=x onerror=window.__pwned=1>",
    "<script>window.__pwned=1</script>",
    '<div hx-get="/pwn" hx-trigger="load">x</div>',
)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    if not Path(CHROMIUM).exists():
        skip_or_fail("chromium is not installed")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium_executable: str) -> AsyncIterator[Browser]:
    expect.set_options(timeout=UI_TIMEOUT_MS)
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright, chromium_executable)
        try:
            yield chromium
        finally:
            await chromium.close()


@dataclass
class Tab:
    """A page plus what it did: requests made, main-frame navigations, console messages."""

    page: Page
    requests: list[str] = field(default_factory=list)
    navigations: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def request_paths(self) -> list[str]:
        return [urlsplit(url).path for url in self.requests]

    async def screenshot(self, name: str) -> None:
        await self.page.screenshot(path=SCREENSHOTS / name, full_page=True)


@contextlib.asynccontextmanager
async def watched_page(
    browser: Browser,
    live_server: LiveServer,
    navigations: list[str],
    console: list[str],
    **context_options: Any,
) -> AsyncIterator[Page]:
    """A page in a context of its own that appends its main-frame navigations and its console
    messages to the lists; on leaving, prints those messages and the server's logs."""
    context = await browser.new_context(**context_options)
    page = await context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.on(
        "framenavigated",
        lambda frame: navigations.append(frame.url) if frame == page.main_frame else None,
    )
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    try:
        yield page
    finally:
        await context.close()
        # Shown by pytest only when the test fails.
        print("--- browser console", *console, sep="\n")
        print(live_server.logs())


@pytest.fixture
async def tab(browser: Browser, live_server: LiveServer) -> AsyncIterator[Tab]:
    navigations: list[str] = []
    console: list[str] = []
    viewport = {"width": 1200, "height": 800}
    async with watched_page(browser, live_server, navigations, console, viewport=viewport) as page:
        tab = Tab(page, navigations=navigations, console=console)
        page.on("request", tab.on_request)
        yield tab


def row_locator(page: Page, event_id: str) -> Locator:
    return page.locator(f'#event-rows tr[data-event-id="{event_id}"]')


@pytest.fixture
def app_url(live_server: LiveServer, test_app_row: App) -> str:
    """The live page of the test app (made afresh) on the live server."""
    return f"{live_server.base_url}/apps/{APP_ID}"


async def open_live(tab: Tab, url: str) -> None:
    """Open a page and wait until its stream is connected."""
    response = await tab.page.goto(url)
    assert response is not None and response.status == 200, url
    await expect(tab.page.locator("#connection")).to_have_text("live", timeout=UI_TIMEOUT_MS)
    tab.navigations.clear()


async def test_app_page_new_event_appears_without_reload(
    tab: Tab, http: httpx.AsyncClient, app_url: str
) -> None:
    page = tab.page
    await open_live(tab, app_url)
    url = page.url
    await page.evaluate("window.__sameDocument = true")
    event = quick_start_event(eventName=unique("live_row"))

    response = await post_event(http, event)

    assert response.status_code == 202, response.text
    rows = row_locator(page, event["event_id"])
    await expect(rows.locator("td.name")).to_have_text(event["eventName"])
    await expect(rows).to_have_count(1)
    await expect(page.locator("#no-events")).to_be_hidden()
    assert page.url == url
    assert tab.navigations == []
    assert await page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    await tab.screenshot("app-page.png")


async def test_app_page_invalid_filter_shows_only_invalid_events(
    tab: Tab, http: httpx.AsyncClient, pool: asyncpg.Pool, app_url: str
) -> None:
    page = tab.page
    await open_live(tab, f"{app_url}?status=invalid")
    valid = quick_start_event(eventName=unique("valid_one"))
    invalid = quick_start_event(eventName=unique("invalid_one"), timestamp="not a date")

    assert (await post_event(http, valid)).status_code == 202
    # Stored (and announced) before the invalid one is even sent: it had its chance.
    assert await wait_for_event_ids(pool, APP_ID, [valid["event_id"]]) == {valid["event_id"]: 1}
    assert (await post_event(http, invalid)).status_code == 202

    invalid_row = row_locator(page, invalid["event_id"])
    await expect(invalid_row.locator("td.name")).to_have_text(invalid["eventName"])
    await expect(invalid_row.locator(".badge")).to_have_text("invalid")
    await expect(invalid_row.locator("td.problem")).to_contain_text("timestamp")
    assert await row_locator(page, valid["event_id"]).count() == 0
    assert await page.locator("#event-rows tr.status-valid").count() == 0
    await tab.screenshot("invalid-filter.png")


async def expect_hostile_rows_inert(tab: Tab, event_ids: list[str]) -> None:
    page = tab.page
    for event_id, name in zip(event_ids, HOSTILE_NAMES, strict=True):
        cell = row_locator(page, event_id).locator("td.name")
        await expect(cell).to_have_text(name)
    # The first event's bad timestamp is quoted back in its error message: inert too.
    problem = row_locator(page, event_ids[0]).locator("td.problem")
    await expect(problem).to_contain_text(HOSTILE_NAMES[0])
    # Give any injected handler or hx-trigger="load" time to fire before looking for it.
    await page.wait_for_timeout(500)
    rows = page.locator("#event-rows")
    assert await rows.locator("img, script, [hx-get], [onerror]").count() == 0
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert not [path for path in tab.request_paths() if path in ("/pwn", "/apps/x", "/x")], (
        tab.requests
    )


async def test_app_page_hostile_event_names_render_as_text(
    tab: Tab, http: httpx.AsyncClient, pool: asyncpg.Pool, app_url: str
) -> None:
    await open_live(tab, app_url)
    events = [quick_start_event(eventName=name) for name in HOSTILE_NAMES]
    events[0]["timestamp"] = HOSTILE_NAMES[0]
    ids = [event["event_id"] for event in events]

    for event in events:
        assert (await post_event(http, event)).status_code == 202

    # Pushed over SSE into the open page...
    await expect_hostile_rows_inert(tab, ids)
    await tab.screenshot("hostile-live.png")
    # ...and rendered by the server on a fresh load.
    assert await wait_for_event_ids(pool, APP_ID, ids) == dict.fromkeys(ids, 1)
    await open_live(tab, app_url)
    await expect_hostile_rows_inert(tab, ids)
    assert not [line for line in tab.console if "Content Security Policy" in line], tab.console


async def test_home_create_app_form_lands_on_new_app_page(
    tab: Tab, pool: asyncpg.Pool, live_server: LiveServer, test_app_row: App
) -> None:
    page = tab.page
    app_id = unique("form")
    name = f"Form app {app_id}"
    await page.goto(f"{live_server.base_url}/")
    await expect(page.locator("h1")).to_have_text("Apps")
    await expect(page.locator("table.apps")).to_contain_text(APP_ID)
    await tab.screenshot("home.png")

    await page.fill("form.create-app input[name=id]", app_id)
    await page.fill("form.create-app input[name=name]", name)
    await page.click("form.create-app button[type=submit]")

    await page.wait_for_url(f"{live_server.base_url}/apps/{app_id}")
    await expect(page.locator("h1")).to_contain_text(name)
    await expect(page.locator("#connection")).to_have_text("live")
    async with pool.acquire() as conn:
        app = await select_app(conn, app_id)
    assert app is not None and app.name == name
    await tab.screenshot("created-app.png")


async def test_app_page_rows_stay_bounded_after_a_burst(
    tab: Tab, http: httpx.AsyncClient, pool: asyncpg.Pool, app_url: str
) -> None:
    page = tab.page
    await open_live(tab, app_url)
    max_rows = int(await page.get_attribute("#event-rows", "data-max-rows") or "0")
    assert max_rows > 0
    events = [quick_start_event(eventName=f"burst_{i}") for i in range(max_rows + 5)]
    ids = [event["event_id"] for event in events]

    response = await post_event(http, events)

    assert response.status_code == 202, response.text
    assert await wait_for_event_ids(pool, APP_ID, ids) == dict.fromkeys(ids, 1)
    async with pool.acquire() as conn:
        newest = await select_max_log_entry_id(conn)
    await expect(page.locator(f"#event-{newest}")).to_be_visible()
    await expect(page.locator("#event-rows tr")).to_have_count(max_rows)
    await page.wait_for_timeout(300)
    assert await page.locator("#event-rows tr").count() == max_rows
    await tab.screenshot("bounded.png")


def spawn_web(settings: Settings, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """`lvd web` on a port of our own (the parent's copy of the log file is closed at once)."""
    env = env_for(settings, HOST="127.0.0.1", PORT=str(port))
    lvd = str(Path(sys.executable).parent / "lvd")
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            [lvd, "web"], env=env, cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT
        )


@pytest.fixture
def own_web(
    settings: Settings, live_server: LiveServer, tmp_path: Path
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A web process of this test's own; the list holds every incarnation, all stopped after."""
    port = free_port()
    processes = [spawn_web(settings, port, tmp_path / "web.log")]
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", processes[0])
        yield f"http://127.0.0.1:{port}", processes
    finally:
        for process in processes:
            stop_process(process)
        print("--- own web.log", (tmp_path / "web.log").read_text(errors="replace")[-4000:])


async def test_app_page_web_restart_reconnects_and_misses_nothing(
    # own_web before tab: the page closes first, so stopping the server waits on no stream.
    own_web: tuple[str, list[subprocess.Popen[bytes]]],
    tab: Tab,
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    settings: Settings,
    tmp_path: Path,
    test_app_row: App,
) -> None:
    page = tab.page
    base_url, processes = own_web
    port = urlsplit(base_url).port
    assert port is not None
    await open_live(tab, f"{base_url}/apps/{APP_ID}")
    await page.evaluate("window.__sameDocument = true")
    before = quick_start_event(eventName=unique("before_restart"))
    assert (await post_event(http, before)).status_code == 202
    await expect(row_locator(page, before["event_id"])).to_have_count(1)

    processes[0].send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(processes[0].wait, 15) == 0
    await expect(page.locator("#connection")).not_to_have_text("live")
    during = quick_start_event(eventName=unique("during_restart"))
    # Sent through the other web process while this one is down; the worker stores it.
    assert (await post_event(http, during)).status_code == 202
    assert await wait_for_event_ids(pool, APP_ID, [during["event_id"]]) == {during["event_id"]: 1}
    processes.append(spawn_web(settings, port, tmp_path / "web.log"))
    await asyncio.to_thread(wait_for_http, f"{base_url}/healthz", processes[-1])

    await expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
    await expect(row_locator(page, during["event_id"]).locator("td.name")).to_have_text(
        during["eventName"]
    )
    await page.wait_for_timeout(1000)  # room for a duplicate to show up, if one were coming
    await expect(row_locator(page, during["event_id"])).to_have_count(1)
    await expect(row_locator(page, before["event_id"])).to_have_count(1)
    shown: list[str] = await page.eval_on_selector_all(
        "#event-rows tr", "rows => rows.map(row => row.dataset.eventId)"
    )
    assert len(shown) == len(set(shown)), f"duplicate rows: {shown}"
    assert await page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    await tab.screenshot("after-restart.png")
