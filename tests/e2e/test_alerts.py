"""Alerts end to end: `lvd web` + `lvd worker` (events, emails and maintenance queues), a real
SMTP server and a real webhook receiver on loopback.

A new failure fingerprint produces exactly one e-mail and one webhook call, each linking to
the dashboard filtered to it; repeats do not alert again; an invalid share alerts once per
window. The stack is private (its own Redis and database): see test_scale_out.PrivateStack.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.test_scale_out import LVD, PrivateStack, private_stack
from tests.workers.test_alerting import SmtpSink, WebhookReceiver

# Seconds between two alert checks in the worker under test (the default is 10).
ALERT_INTERVAL = 0.3
# Checks to wait for, when showing that something does NOT happen.
QUIET_CHECKS = 6


@dataclass
class AlertStack:
    stack: PrivateStack
    base_url: str
    sink: SmtpSink
    webhook: WebhookReceiver

    def mails_for(self, app_id: str) -> list[Any]:
        return [m for m in self.sink.messages if f"[lvd] {app_id}:" in str(m["Subject"])]

    def posts_for(self, app_id: str) -> list[dict[str, Any]]:
        return [b for b in self.webhook.bodies if f"[lvd] {app_id}:" in b["text"]]


@pytest.fixture(scope="module")
def alert_stack(
    service_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AlertStack]:
    log_dir = tmp_path_factory.mktemp("alerts")
    with (
        SmtpSink() as sink,
        WebhookReceiver() as webhook,
        private_stack(service_urls[0], log_dir, "alerts") as stack,
    ):
        try:
            base_url = stack.start_web("web")
            stack.start_worker(
                "worker",
                LVD_ALERT_INTERVAL=str(ALERT_INTERVAL),
                LVD_SMTP_HOST="127.0.0.1",
                LVD_SMTP_PORT=str(sink.port),
                LVD_SMTP_FROM="lvd-alerts@example.test",
                LVD_PUBLIC_URL=base_url,
            )
            yield AlertStack(stack, base_url, sink, webhook)
        except BaseException:
            print(stack.logs())
            raise


async def wait_for(check: Callable[[], bool], within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def new_app(client: httpx.AsyncClient, alerts: dict[str, Any]) -> str:
    app_id = f"alert-{uuid.uuid4().hex[:8]}"
    assert (await client.post("/api/apps", json={"id": app_id})).status_code == 201
    response = await client.put(f"/api/apps/{app_id}/alerts", json=alerts)
    assert response.status_code == 200, response.text
    return app_id


def invalid_event(name: str) -> dict[str, Any]:
    """Invalid with or without a plan: the timestamp is not a date (path /timestamp, rule
    format)."""
    return {"eventName": name, "event_id": uuid.uuid4().hex, "timestamp": "not a date"}


def valid_event(name: str) -> dict[str, Any]:
    return {"eventName": name, "event_id": uuid.uuid4().hex, "timestamp": "2026-01-01T00:00:00Z"}


async def post(client: httpx.AsyncClient, app_id: str, events: list[dict[str, Any]]) -> None:
    response = await client.post(f"/api/logs/{app_id}", json=events)
    assert response.status_code == 202, response.text


def link_in(text: str) -> tuple[str, dict[str, str]]:
    link = next(word for word in text.split() if "/apps/" in word)
    parts = urlsplit(link)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", {
        key: values[0] for key, values in parse_qs(parts.query).items()
    }


async def test_alerts_new_fingerprint_mails_and_posts_once_with_the_filtered_link(
    alert_stack: AlertStack,
) -> None:
    async with httpx.AsyncClient(base_url=alert_stack.base_url, timeout=10) as client:
        app_id = await new_app(
            client,
            {
                "email": {"recipients": ["qa@example.test", "lead@example.test"]},
                "webhook": {"url": alert_stack.webhook.url},
            },
        )
        started = time.monotonic()
        await post(client, app_id, [invalid_event("checkout") for _ in range(3)])
        assert await wait_for(
            lambda: bool(alert_stack.mails_for(app_id)) and bool(alert_stack.posts_for(app_id))
        ), alert_stack.stack.logs()
        print(
            f"FIGURE: alerts: first invalid event to e-mail and webhook"
            f" = {1000 * (time.monotonic() - started):.0f} ms (check interval"
            f" {ALERT_INTERVAL * 1000:.0f} ms)",
            flush=True,
        )
        # The same fingerprint again, many times, over several checks: nothing more.
        for _ in range(3):
            await post(client, app_id, [invalid_event("checkout") for _ in range(5)])
            await asyncio.sleep(ALERT_INTERVAL)
        await asyncio.sleep(QUIET_CHECKS * ALERT_INTERVAL)
        history = (await client.get(f"/api/apps/{app_id}/alerts")).json()["recent"]

    mails, posts = alert_stack.mails_for(app_id), alert_stack.posts_for(app_id)
    assert (len(mails), len(posts)) == (1, 1), alert_stack.stack.logs()
    mail = mails[0]
    assert mail["From"] == "lvd-alerts@example.test"
    assert mail["To"] == "qa@example.test, lead@example.test"
    assert "new failure in checkout: /timestamp format" in str(mail["Subject"])
    page, query = link_in(mail.get_content())
    assert page == f"{alert_stack.base_url}/apps/{app_id}"
    assert query == {"status": "invalid", "event_name": "checkout", "rule": "format"}
    assert link_in(posts[0]["text"]) == (page, query)
    # The link opens the dashboard filtered to those events.
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(page, params=query)
    assert response.status_code == 200
    assert "checkout" in response.text
    (alert,) = history
    assert (alert["kind"], alert["event_name"], alert["path"], alert["rule"]) == (
        "new_failure",
        "checkout",
        "/timestamp",
        "format",
    )
    assert sorted(
        (d["channel"], bool(d["sent_at"]), d["attempts"]) for d in alert["deliveries"]
    ) == [
        ("email", True, 1),
        ("webhook", True, 1),
    ]


async def test_alerts_invalid_share_alerts_once_per_window(alert_stack: AlertStack) -> None:
    async with httpx.AsyncClient(base_url=alert_stack.base_url, timeout=10) as client:
        app_id = await new_app(
            client,
            {
                "webhook": {"url": alert_stack.webhook.url},
                "email": {"recipients": ["qa@example.test"]},
                "new_failures": {"enabled": False},
                "invalid_share": {
                    "enabled": True,
                    "threshold": 0.5,
                    "window_seconds": 300,
                    "min_events": 8,
                },
            },
        )
        # Under the minimum number of events: no alert, however bad the share.
        await post(client, app_id, [invalid_event("pay") for _ in range(5)])
        await asyncio.sleep(QUIET_CHECKS * ALERT_INTERVAL)
        assert alert_stack.posts_for(app_id) == []
        await post(client, app_id, [invalid_event("pay") for _ in range(3)])
        await post(client, app_id, [valid_event("pay") for _ in range(2)])
        assert await wait_for(lambda: bool(alert_stack.posts_for(app_id))), alert_stack.stack.logs()
        # Still over the threshold for the rest of the window: no second alert.
        for _ in range(3):
            await post(client, app_id, [invalid_event("pay") for _ in range(4)])
            await asyncio.sleep(ALERT_INTERVAL)
        await asyncio.sleep(QUIET_CHECKS * ALERT_INTERVAL)
    posts, mails = alert_stack.posts_for(app_id), alert_stack.mails_for(app_id)
    assert (len(posts), len(mails)) == (1, 1)
    assert "% of events invalid in the last 300 s" in posts[0]["text"]
    _, query = link_in(posts[0]["text"])
    assert query["status"] == "invalid" and "since" in query


async def test_alerts_api_reads_validates_and_saves_settings(alert_stack: AlertStack) -> None:
    async with httpx.AsyncClient(base_url=alert_stack.base_url, timeout=10) as client:
        app_id = f"api-{uuid.uuid4().hex[:8]}"
        assert (await client.post("/api/apps", json={"id": app_id})).status_code == 201
        fresh = (await client.get(f"/api/apps/{app_id}/alerts")).json()
        assert fresh["configured"] is False and fresh["recent"] == []
        assert fresh["invalid_share"] == {
            "enabled": False,
            "threshold": 0.2,
            "window_seconds": 300,
            "min_events": 20,
        }
        bad_bodies = [
            {"email": {"recipients": ["not-an-address"]}},
            {"email": {"recipients": "qa@example.test"}},
            {"webhook": {"url": "ftp://example.test/hook"}},
            {"webhook": {"url": "javascript:alert(1)"}},
            {"invalid_share": {"threshold": 0}},
            {"invalid_share": {"threshold": 1.5}},
            {"invalid_share": {"window_seconds": 5}},
            {"invalid_share": {"min_events": True}},
            {"new_failures": {"enabled": "yes"}},
            {"surprise": {}},
            {"email": {"cc": []}},
        ]
        for body in bad_bodies:
            response = await client.put(f"/api/apps/{app_id}/alerts", json=body)
            assert response.status_code == 400, body
            assert response.json()["error"]["code"] == "invalid_alert_settings"
        missing = await client.put("/api/apps/no-such-app/alerts", json={})
        assert missing.status_code == 404
        saved = await client.put(
            f"/api/apps/{app_id}/alerts",
            json={"invalid_share": {"enabled": True, "threshold": 0.25}},
        )
        assert saved.status_code == 200
        body = (await client.get(f"/api/apps/{app_id}/alerts")).json()
        assert body["configured"] is True
        assert body["invalid_share"]["threshold"] == 0.25
        assert body["email"] == {"enabled": True, "recipients": []}


async def test_alerts_cli_set_changes_only_the_given_settings(alert_stack: AlertStack) -> None:
    async with httpx.AsyncClient(base_url=alert_stack.base_url, timeout=10) as client:
        app_id = await new_app(client, {"invalid_share": {"min_events": 50}})
    command = [
        LVD,
        "alerts",
        "set",
        app_id,
        "--email",
        "a@example.test",
        "--email",
        "b@example.test",
        "--webhook",
        alert_stack.webhook.url,
        "--invalid-share",
        "0.3",
        "--window",
        "120",
        "--url",
        alert_stack.base_url,
    ]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    async with httpx.AsyncClient(base_url=alert_stack.base_url, timeout=10) as client:
        body = (await client.get(f"/api/apps/{app_id}/alerts")).json()
    assert body["email"] == {"enabled": True, "recipients": ["a@example.test", "b@example.test"]}
    assert body["webhook"] == {"enabled": True, "url": alert_stack.webhook.url}
    assert body["invalid_share"] == {
        "enabled": True,
        "threshold": 0.3,
        "window_seconds": 120,
        "min_events": 50,
    }


async def test_retention_api_sets_and_clears_an_apps_retention(alert_stack: AlertStack) -> None:
    async with httpx.AsyncClient(base_url=alert_stack.base_url, timeout=10) as client:
        app_id = f"ret-{uuid.uuid4().hex[:8]}"
        assert (await client.post("/api/apps", json={"id": app_id})).status_code == 201
        url = f"/api/apps/{app_id}/retention"
        assert (await client.get(url)).json() == {
            "app_id": app_id,
            "days": None,
            "default_days": 7,
            "effective_days": 7,
        }
        assert (await client.put(url, json={"days": 30})).json()["effective_days"] == 30
        assert (await client.get(url)).json()["days"] == 30
        for bad in ({"days": 0}, {"days": 4000}, {"days": "30"}, {}, {"days": 3, "x": 1}):
            assert (await client.put(url, json=bad)).status_code == 400, bad
        assert (await client.put(url, json={"days": None})).json()["effective_days"] == 7
        assert (await client.put("/api/apps/nope/retention", json={"days": 3})).status_code == 404
