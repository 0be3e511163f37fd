"""Behind a real nginx terminating TLS: sign-in, forms and live views over HTTPS; forged
forwarding headers from anyone but the proxy change nothing.

nginx (the Debian package) runs the repository's deploy/nginx/lvd.conf, with only what a
test must change changed (site_for_test): a free port on loopback instead of 443, a
self-signed certificate for localhost, log files in the test's folder, and the upstream on
this test's own `lvd web`. That web process requires sign-in and trusts 127.0.0.1 alone
(LVD_FORWARDED_ALLOW_IPS), so a client on 127.0.0.2 talking to it directly is a stranger
whose X-Forwarded-* headers must be ignored. The session's live_server supplies the worker
that stores events (same database, same broker).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import async_playwright, expect

from bench.chromium import CHROMIUM, launch_chromium
from tests.conftest import (
    PROJECT_ROOT,
    LiveServer,
    env_for,
    free_port,
    skip_or_fail,
    start_process,
    stop_process,
    wait_for_http,
    wait_for_log,
)
from web.core.apps import add_app
from web.core.settings import Settings

from .helpers import LVD, quick_start_event, unique
from .test_cli_users import create_user

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SHIPPED_SITE = PROJECT_ROOT / "deploy" / "nginx" / "lvd.conf"
PASSWORD = "correct horse battery staple"
UI_TIMEOUT_MS = 10_000
# The peer that is not a trusted proxy: another loopback address, so nothing leaves the host.
STRANGER = "127.0.0.2"
FORGED = {
    "Origin": "https://evil.example",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-For": "203.0.113.9",
}


def nginx_executable() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        skip_or_fail("nginx is not installed (Debian: apt-get install nginx)")
    return found


def replace_once(text: str, old: str, new: str) -> str:
    """`old` replaced where it occurs; it must occur, or the shipped site changed under us."""
    assert old in text, f"deploy/nginx/lvd.conf no longer has {old!r}: update site_for_test"
    return text.replace(old, new)


def site_for_test(shipped: str, *, port: int, web_port: int, folder: Path) -> str:
    """The shipped site with what a test must change changed, and nothing else.

    Dropped: the port-80 server (it redirects to https://$host/ on port 443) and the IPv6
    listen line. On a port other than 443 the browser's Origin carries the port, so Host and
    X-Forwarded-Host become $http_host, as the shipped file's comment tells its readers.
    """
    lines = [
        line for line in shipped.splitlines(keepends=True) if not line.lstrip().startswith("#")
    ]
    site, plain = re.subn(r"\nserver \{\n    listen 80;.*?\n\}\n", "\n", "".join(lines), flags=re.S)
    assert plain == 1, "deploy/nginx/lvd.conf no longer has one port-80 server block"
    for old, new in [
        ("server 127.0.0.1:5001;", f"server 127.0.0.1:{web_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;"),
        ("    listen [::]:443 ssl http2;\n", ""),
        ("server_name lvd.example.com;", "server_name localhost;"),
        ("/etc/letsencrypt/live/lvd.example.com/fullchain.pem", str(folder / "cert.pem")),
        ("/etc/letsencrypt/live/lvd.example.com/privkey.pem", str(folder / "key.pem")),
        ("/var/log/nginx/", f"{folder}/"),
        ("proxy_set_header Host $host;", "proxy_set_header Host $http_host;"),
        ("X-Forwarded-Host $host;", "X-Forwarded-Host $http_host;"),
    ]:
        site = replace_once(site, old, new)
    assert "lvd.example.com" not in site and "/etc/" not in site, site
    return site


def nginx_conf(site: str, folder: Path) -> str:
    # As root, workers would run as nobody, who cannot enter pytest's folders (mode 700).
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(
        f"    {kind}_temp_path {folder / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} info;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n{temp_paths}{site}}}\n"
    )


def self_signed_certificate(folder: Path) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip


@dataclass
class ProxiedSite:
    """nginx on https://localhost:<port>, in front of a `lvd web` on http://127.0.0.1:<port>."""

    https_url: str
    web_url: str
    folder: Path
    timings: dict[str, float]

    def read(self, name: str) -> str:
        path = self.folder / name
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n{self.read(name)[-4000:]}"
            for name in ("web.log", "error.log", "lvd.error.log", "lvd.access.log")
        )

    def wait_for_log_line(self, name: str, pattern: str, within: float = 10.0) -> re.Match[str]:
        deadline = time.monotonic() + within
        while True:
            found = re.search(pattern, self.read(name), flags=re.M)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no line of {name} matches {pattern!r}\n{self.logs()}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def site(
    settings: Settings, live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxiedSite]:
    nginx = nginx_executable()
    if not Path(CHROMIUM).exists():
        skip_or_fail("chromium is not installed")
    folder = tmp_path_factory.mktemp("https-proxy")
    timings: dict[str, float] = {}
    started = time.monotonic()
    self_signed_certificate(folder)
    port, web_port = free_port(), free_port()
    site = site_for_test(SHIPPED_SITE.read_text(), port=port, web_port=web_port, folder=folder)
    (folder / "nginx.conf").write_text(nginx_conf(site, folder))
    nginx_args = [nginx, "-p", f"{folder}/", "-e", str(folder / "error.log")]
    nginx_args += ["-c", str(folder / "nginx.conf")]
    checked = subprocess.run([*nginx_args, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    env = env_for(
        settings,
        HOST="127.0.0.1",
        PORT=str(web_port),
        LVD_REQUIRE_LOGIN="true",
        LVD_FORWARDED_ALLOW_IPS="127.0.0.1",
        LVD_ACCESS_LOG="true",
    )
    web = start_process([LVD, "web"], env, folder / "web.log")
    proxy = start_process(nginx_args, dict(os.environ), folder / "nginx.out")
    proxied = ProxiedSite(f"https://localhost:{port}", f"http://127.0.0.1:{web_port}", folder, {})
    try:
        wait_for_http(f"{proxied.web_url}/healthz", web)
        # nginx listens before it starts its worker process, which says so.
        wait_for_log(folder / "error.log", "start worker process", proxy)
        timings["start nginx and lvd web"] = time.monotonic() - started
        proxied.timings = timings
        yield proxied
    finally:
        stop_process(proxy)
        stop_process(web)
        print(proxied.logs())
        print("timings:", {name: round(seconds, 2) for name, seconds in timings.items()})


@pytest.fixture(scope="module")
def user(settings: Settings) -> str:
    name = f"qa-{secrets.token_hex(4)}"
    created = create_user(settings, name, PASSWORD)
    assert created.returncode == 0, created.stderr
    return name


async def test_browser_over_https_signs_in_creates_an_app_and_sees_it_live(
    site: ProxiedSite, user: str
) -> None:
    base = site.https_url
    app_id = unique("https")
    started = time.monotonic()
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        context = await browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        try:
            await page.goto(f"{base}/")
            await expect(page.locator("h1")).to_have_text("Sign in", timeout=UI_TIMEOUT_MS)
            assert page.url.startswith(f"{base}/login?next="), page.url

            await page.fill("input[name=username]", user)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form button[type=submit]")
            await page.wait_for_url(f"{base}/")
            await expect(page.locator("h1")).to_have_text("Apps", timeout=UI_TIMEOUT_MS)
            [cookie] = [c for c in await context.cookies() if c["name"] == "lvd_session"]
            assert cookie["secure"] is True, cookie
            assert cookie["httpOnly"] is True, cookie
            assert cookie["domain"] == "localhost", cookie
            # Chromium spoke HTTP/2 to nginx, and the same-origin check let the form through.
            site.wait_for_log_line("lvd.access.log", r'"POST /login\?next=/ HTTP/2\.0" 303 ')

            await page.fill("form.create-app input[name=id]", app_id)
            await page.fill("form.create-app input[name=name]", f"HTTPS app {app_id}")
            await page.click("form.create-app button[type=submit]")
            await page.wait_for_url(f"{base}/apps/{app_id}")
            await expect(page.locator("h1")).to_contain_text(f"HTTPS app {app_id}")
            await expect(page.locator("#connection")).to_have_text("live", timeout=UI_TIMEOUT_MS)
            # The SDK snippets name the server as the browser sees it: through the proxy.
            await expect(page.locator(".sdk-snippets").first).to_contain_text(
                f"{base}/api/logs/{app_id}"
            )

            event = quick_start_event(eventName=unique("over_https"))
            async with httpx.AsyncClient(verify=False, timeout=10.0) as client:
                response = await client.post(f"{base}/api/logs/{app_id}", json=event)
            assert response.status_code == 202, response.text
            assert response.headers["strict-transport-security"].startswith("max-age=31536000")
            row = page.locator(f'#event-rows tr[data-event-id="{event["event_id"]}"]')
            await expect(row.locator("td.name")).to_have_text(event["eventName"])
            # nginx's request id reached lvd and came back (both access logs carry it).
            request_id = response.headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
            site.wait_for_log_line(
                "lvd.access.log", rf"POST /api/logs/{app_id} .* id={request_id}$"
            )
            site.wait_for_log_line("web.log", rf'"POST /api/logs/{app_id} .* id={request_id} ')
        finally:
            await context.close()
            await browser.close()
            print("--- browser console", *console, sep="\n")
    site.timings["browser: sign in, create app, live event"] = time.monotonic() - started


async def test_forged_forwarding_headers_from_an_untrusted_address_change_nothing(
    site: ProxiedSite, user: str, pool: asyncpg.Pool
) -> None:
    started = time.monotonic()
    login = {"username": user, "password": PASSWORD}
    async with (
        httpx.AsyncClient(
            base_url=site.web_url,
            transport=httpx.AsyncHTTPTransport(local_address=STRANGER),
            timeout=10.0,
        ) as stranger,
        # From 127.0.0.1, the trusted proxy's address: what nginx's requests look like.
        httpx.AsyncClient(base_url=site.web_url, timeout=10.0) as proxy,
    ):
        # A form POST claiming to come from https://evil.example, through a "proxy" there.
        refused = await stranger.post("/login", data=login, headers=FORGED)
        assert refused.status_code == 403, refused.text
        assert "cross_site_request" in refused.text
        assert "set-cookie" not in refused.headers
        # The same words from the trusted proxy are believed: the browser was on that site.
        believed = await proxy.post("/login", data=login, headers=FORGED)
        assert believed.status_code == 303, believed.text
        assert "Secure" in believed.headers["set-cookie"]
        # (A Secure cookie that httpx keeps for https:// only: sign in again without it.)
        assert (await proxy.post("/login", data=login)).status_code == 303

        # A stranger's sign-in claiming HTTPS gets a cookie browsers send over plain HTTP.
        forged_https = {"X-Forwarded-Proto": "https"}
        signed_in = await stranger.post("/login", data=login, headers=forged_https)
        assert signed_in.status_code == 303, signed_in.text
        cookie = signed_in.headers["set-cookie"]
        assert cookie.startswith("lvd_session=") and "HttpOnly" in cookie, cookie
        assert "Secure" not in cookie, cookie

        # Absolute links: the stranger's page names the server it really reached.
        app_id = unique("forged")
        async with pool.acquire() as conn:
            await add_app(conn, app_id, "Forged headers")
        page = await stranger.get(f"/apps/{app_id}", headers=FORGED)
        assert page.status_code == 200, page.text
        assert f"{site.web_url}/api/logs/{app_id}" in page.text
        assert "evil.example" not in page.text
        page = await proxy.get(f"/apps/{app_id}", headers=FORGED)
        assert page.status_code == 200, page.text
        assert f"https://evil.example/api/logs/{app_id}" in page.text

        # The client address (the access log) and the request id.
        probe = uuid.uuid4().hex
        answer = await stranger.get(
            f"/healthz?stranger={probe}", headers={**FORGED, "X-Request-ID": f"forged-{probe}"}
        )
        assert answer.headers["x-request-id"] != f"forged-{probe}"
        await proxy.get(f"/healthz?proxy={probe}", headers=FORGED)
    stranger_line = rf'hypercorn\.access: (\S+) "GET /healthz\?stranger={probe} '
    assert site.wait_for_log_line("web.log", stranger_line)[1].startswith(f"{STRANGER}:")
    proxy_line = rf'hypercorn\.access: (\S+) "GET /healthz\?proxy={probe} '
    assert site.wait_for_log_line("web.log", proxy_line)[1] == "203.0.113.9:0"

    # Through nginx from the stranger's address: nginx appends the real peer to the chain
    # the stranger forged, and lvd takes the nearest address that is not a trusted proxy.
    async with httpx.AsyncClient(
        verify=False, transport=httpx.AsyncHTTPTransport(local_address=STRANGER, verify=False)
    ) as via_nginx:
        answer = await via_nginx.get(
            f"{site.https_url}/healthz?via_nginx={probe}",
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
    assert answer.status_code == 200
    nginx_line = rf'hypercorn\.access: (\S+) "GET /healthz\?via_nginx={probe} '
    assert site.wait_for_log_line("web.log", nginx_line)[1] == f"{STRANGER}:0"
    site.timings["forged headers, direct and through nginx"] = time.monotonic() - started
