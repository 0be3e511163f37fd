"""The real browser analytics SDKs, unchanged, in headless Chromium against the live server.

Each SDK is installed from npm at the versions pinned in tests/e2e/browser_sdks/package-lock.json
and bundled with esbuild from a small entry file there, which puts one uniform object on the
page: window.sdk = {init, track, identify, page, flush}. The page is served from another origin
than the server, so every SDK request is cross-origin and the CORS answers are the server's own:
nothing is intercepted or rewritten on the way.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Request, Response, expect

from tests.conftest import PROJECT_ROOT, LiveServer, skip_or_fail

# The one Chromium of the e2e session; each test here gets its own context.
from tests.e2e.test_browser import UI_TIMEOUT_MS, browser, chromium_executable  # noqa: F401

from .helpers import unique

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SDK_SOURCES = Path(__file__).resolve().parent / "browser_sdks"
# Installs are cached per lock file, outside the tracked tree (.lvd is git-ignored).
SDK_CACHE = PROJECT_ROOT / ".lvd" / "browser-sdks"
NPM_TIMEOUT_S = 600
# The server's long poll: how long to wait for the expected events.
WAIT_S = 15
# After the expected events are stored: time for a retried or doubled send to show up.
SETTLE_S = 1.5

USER_ID = "user-123"
TRAITS = {"email": "jane@example.com", "plan": "pro"}
VALID_PROPS = {"plan": "pro", "amount": 42}
BROKEN_PROPS = {"amount": 7}  # "plan" is required


def requires_plan(location: str) -> dict[str, Any]:
    """A schema for a whole event whose properties (under `location`) must include plan."""
    return {
        "type": "object",
        "required": [location],
        "properties": {
            location: {
                "type": "object",
                "required": ["plan"],
                "properties": {"plan": {"type": "string"}, "amount": {"type": "number"}},
            }
        },
    }


@dataclass(frozen=True)
class SdkCase:
    """One SDK: the names the server gives its events, and where its properties live."""

    name: str
    valid: str
    broken: str
    identify: str | None  # None: the SDK has no identify event
    page: str
    properties_at: str
    client_ids: bool  # the page can choose the event ids (and they come back as event_id)
    extra: tuple[str, ...] = ()  # more events the page sends (Snowplow's structured event)
    # Documents the SDK must have asked the server for (settings, config, flags) before sending.
    documents: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        named = [self.valid, self.broken, self.identify, self.page, *self.extra]
        return [name for name in named if name is not None]

    def plan(self) -> dict[str, Any]:
        events: dict[str, Any] = {
            self.valid: requires_plan(self.properties_at),
            self.broken: requires_plan(self.properties_at),
            self.page: {"type": "object"},
        }
        if self.identify is not None:
            events[self.identify] = {"type": "object"}
        for name in self.extra:
            events[name] = {"type": "object"}
        return {"events": events}


CASES = [
    SdkCase(
        "segment",
        valid="checkout_started",
        broken="checkout_completed",
        identify="identify",
        page="page",
        properties_at="properties",
        client_ids=True,
        documents=("GET /v1/projects/",),
    ),
    SdkCase(
        "posthog",
        valid="checkout_started",
        broken="checkout_completed",
        identify="$identify",
        page="$pageview",
        properties_at="properties",
        client_ids=True,
        documents=("POST /flags", "GET /array/"),
    ),
    SdkCase(
        "rudderstack",
        valid="checkout_started",
        broken="checkout_completed",
        identify="identify",
        page="page",
        properties_at="properties",
        client_ids=False,
        documents=("GET /sourceConfig",),
    ),
    SdkCase(
        "amplitude",
        valid="checkout_started",
        broken="checkout_completed",
        identify="$identify",
        page="[Amplitude] Page Viewed",
        properties_at="event_properties",
        client_ids=True,
    ),
    # Self-describing events are named vendor/name by their schema; the entry file uses the
    # vendor com.acme. Snowplow has no identify event (setUserId marks the later events).
    SdkCase(
        "snowplow",
        valid="com.acme/checkout_started",
        broken="com.acme/checkout_completed",
        identify=None,
        page="page_view",
        properties_at="properties",
        client_ids=False,
        extra=("checkout/clicked",),
    ),
]


# --- Building the bundles ------------------------------------------------------------------


def _lock_key() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((SDK_SOURCES / name).read_bytes())
    return digest.hexdigest()[:16]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run a build step; a failure skips (fails in CI) with its output."""
    try:
        done = subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, timeout=NPM_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        skip_or_fail(f"{' '.join(args[:2])} took over {NPM_TIMEOUT_S} s")
        return
    if done.returncode != 0:
        skip_or_fail(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _installed_sdks() -> Path:
    """node_modules for the lock file, installed once with `npm ci` into the cache."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        skip_or_fail("node and npm are needed to install the browser SDKs")
    assert npm is not None
    target = SDK_CACHE / _lock_key()
    ready = target / ".installed"
    SDK_CACHE.mkdir(parents=True, exist_ok=True)
    # One installer at a time: parallel test runs share the cache.
    with (SDK_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            staging = SDK_CACHE / f"{target.name}.tmp{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(target, ignore_errors=True)
            staging.mkdir()
            try:
                for name in ("package.json", "package-lock.json"):
                    shutil.copy2(SDK_SOURCES / name, staging / name)
                _run([npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"], staging)
                (staging / ".installed").touch()
                staging.rename(target)  # complete or not there at all
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def sdk_bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with <sdk>.js (an IIFE bundle per SDK) and <sdk>.html (a page loading it)."""
    installed = _installed_sdks()
    out = tmp_path_factory.mktemp("browser-sdks")
    entries = [SDK_SOURCES / f"{case.name}.js" for case in CASES]
    # NODE_PATH: the entry files stay in the repo, their imports resolve in the cache.
    env = {**os.environ, "NODE_PATH": str(installed / "node_modules")}
    esbuild = installed / "node_modules" / ".bin" / "esbuild"
    _run(
        [
            str(esbuild),
            *map(str, entries),
            "--bundle",
            "--format=iife",
            "--platform=browser",
            "--target=es2020",
            "--log-level=warning",
            '--define:process.env.NODE_ENV="production"',
            f"--outdir={out}",
        ],
        SDK_SOURCES,
        env,
    )
    for case in CASES:
        assert (out / f"{case.name}.js").stat().st_size > 10_000, case.name
        (out / f"{case.name}.html").write_text(
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{case.name} page</title></head>"
            f"<body><h1>{case.name}</h1><script src='/{case.name}.js'></script></body></html>"
        )
    return out


# --- The page's origin -----------------------------------------------------------------------


class _StaticFiles(BaseHTTPRequestHandler):
    root: ClassVar[Path]

    def do_GET(self) -> None:
        name = urlsplit(self.path).path.lstrip("/")
        path = self.root / name
        if "/" in name or not name or not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        kind = "text/html" if name.endswith(".html") else "text/javascript"
        self.send_response(200)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="session")
def page_origin(sdk_bundles: Path) -> Iterator[str]:
    """A static server for the pages on its own port: another origin than the live server."""
    handler = type("Files", (_StaticFiles,), {"root": sdk_bundles})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Traffic:
    """What the page asked for, only watched: answers to the server, failures, console."""

    server: str
    answers: list[str] = field(default_factory=list)
    bad_answers: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        if urlsplit(request.url).hostname not in ("127.0.0.1", "localhost"):
            self.elsewhere.append(request.url)

    def on_response(self, response: Response) -> None:
        if response.url.startswith(self.server):
            line = f"{response.request.method} {response.url} -> {response.status}"
            self.answers.append(line)
            if response.status != 200:
                self.bad_answers.append(line)

    def on_failed(self, request: Request) -> None:
        self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def watch(self, page: Page) -> None:
        page.on("request", self.on_request)
        page.on("response", self.on_response)
        page.on("requestfailed", self.on_failed)
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def report(self) -> str:
        return "\n".join(
            [
                "--- answers",
                *self.answers,
                "--- failed",
                *self.failed,
                "--- console",
                *self.console,
            ]
        )


# --- The server's side -----------------------------------------------------------------------


async def new_app(http: httpx.AsyncClient, case: SdkCase) -> dict[str, Any]:
    created = await http.post("/api/apps", json={"id": unique(f"web-{case.name}")})
    assert created.status_code == 201, created.text
    app: dict[str, Any] = created.json()
    saved = await http.put(f"/api/apps/{app['id']}/plan", json=case.plan())
    assert saved.status_code == 200, saved.text
    return app


async def wait_for(http: httpx.AsyncClient, app_id: str, count: int, seconds: float) -> Any:
    """The query API's long poll: up to `count` stored events, newest first."""
    response = await http.get(
        f"/api/logs/{app_id}/wait",
        params={"count": count, "timeout": seconds},
        timeout=seconds + 15,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def check_segment_settings(http: httpx.AsyncClient, server: str, write_key: str) -> None:
    """The settings document analytics.js loads must send it back here (the page also says so)."""
    response = await http.get(f"/v1/projects/{write_key}/settings")
    assert response.status_code == 200, response.text
    segment_io = response.json()["integrations"]["Segment.io"]
    host = urlsplit(server).netloc
    assert segment_io["apiHost"] in (host, f"{host}/v1"), segment_io
    assert segment_io.get("protocol") == "http", segment_io


# --- The test --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_browser_sdk_events_are_judged_stored_once_and_shown(
    case: SdkCase,
    browser: Browser,
    page_origin: str,
    live_server: LiveServer,
    http: httpx.AsyncClient,
) -> None:
    server = live_server.base_url
    app = await new_app(http, case)
    if case.name == "segment":
        await check_segment_settings(http, server, app["write_key"])
    # UUIDs: posthog keeps a client-chosen id only if it is one.
    ids = {"valid": str(uuid.uuid4()), "broken": str(uuid.uuid4())}

    context = await browser.new_context()
    traffic = Traffic(server)
    try:
        page = await context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        traffic.watch(page)
        response = await page.goto(f"{page_origin}/{case.name}.html")
        assert response is not None and response.status == 200
        codes = await page.evaluate(
            """async ([server, writeKey, appId, sends, user, traits]) => {
                const sdk = window.sdk;
                await sdk.init(server, writeKey, appId);
                const codes = [];
                for (const [name, props, id] of sends) codes.push(await sdk.track(name, props, id));
                if (sdk.structured) await sdk.structured('checkout', 'clicked');
                codes.push(await sdk.identify(user, traits));
                await sdk.page();
                await sdk.flush();
                return codes;
            }""",
            [
                server,
                app["write_key"],
                app["id"],
                [
                    [_sent_name(case.valid), VALID_PROPS, ids["valid"]],
                    [_sent_name(case.broken), BROKEN_PROPS, ids["broken"]],
                ],
                USER_ID,
                TRAITS,
            ],
        )
        # Amplitude reads the answer's body: a 200 whose JSON lacks "code": 200 makes it retry.
        if case.name == "amplitude":
            assert codes == [200, 200, 200], (codes, traffic.report())

        expected = len(case.names)
        found = await wait_for(http, app["id"], expected, WAIT_S)
        assert found["reached"], (found, traffic.report(), live_server.logs())
        await page.wait_for_timeout(SETTLE_S * 1000)
        # Asking for one more than were sent: nothing else (no second copy) may be stored.
        again = await wait_for(http, app["id"], expected + 1, 1)
        events: list[dict[str, Any]] = again["events"]
        assert again["count"] == expected, (events, traffic.report())

        event_ids = [event["event_id"] for event in events]
        assert len(set(event_ids)) == expected, event_ids
        assert sorted(event["event_name"] for event in events) == sorted(case.names), events
        by_name = {event["event_name"]: event for event in events}
        valid, broken = by_name[case.valid], by_name[case.broken]
        if case.client_ids:
            assert (valid["event_id"], broken["event_id"]) == (ids["valid"], ids["broken"])
        assert valid["status"] == "valid", valid
        assert broken["status"] == "invalid", broken
        problems = [e for e in broken["errors"] if e.get("severity", "error") == "error"]
        assert [(e["rule"], "plan" in f"{e['path']} {e['message']}") for e in problems] == [
            ("required", True)
        ], broken["errors"]
        others = [by_name[name] for name in case.names if name not in (case.valid, case.broken)]
        assert {event["status"] for event in others} == {"valid"}, others

        # Every SDK request was answered 200 (preflights included), none was blocked by CORS,
        # and nothing tried to leave loopback.
        assert traffic.bad_answers == [], traffic.report()
        assert traffic.failed == [], traffic.report()
        assert traffic.elsewhere == [], traffic.elsewhere
        for document in case.documents:
            method, path = document.split(" ")
            asked = [a for a in traffic.answers if a.startswith(f"{method} {server}{path}")]
            assert asked, (document, traffic.report())

        # The dashboard shows the rows.
        dashboard = await context.new_page()
        dashboard.set_default_timeout(UI_TIMEOUT_MS)
        shown = await dashboard.goto(f"{server}/apps/{app['id']}")
        assert shown is not None and shown.status == 200
        for event in events:
            row = dashboard.locator(f'#event-rows tr[data-event-id="{event["event_id"]}"]')
            await expect(row).to_have_count(1)
            await expect(row.locator("td.name")).to_have_text(event["event_name"])
            await expect(row.locator(".badge")).to_have_text(event["status"])
        broken_row = dashboard.locator(f'#event-rows tr[data-event-id="{broken["event_id"]}"]')
        await expect(broken_row.locator("td.problem")).to_contain_text("plan")
    finally:
        with contextlib.suppress(Exception):
            await context.close()
        # Shown by pytest only when the test fails.
        print(traffic.report())


def _sent_name(name: str) -> str:
    """The name the page passes to track(): Snowplow's entry adds the com.acme/ vendor."""
    return name.removeprefix("com.acme/")
