"""workers/alerting.py against real PostgreSQL, a real SMTP server and a real webhook receiver.

Everything runs in a database of this module's own: the session's shared database may have
a live worker (tests/e2e) scanning alerts, which would race these direct calls. The SMTP
server (aiosmtpd) and the webhook receiver (http.server) listen on loopback; the e2e alert
tests import them from here.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import asyncpg
import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.conftest import free_port, private_pool
from tests.web.dashboard_support import stored
from web.core.apps import add_app
from web.core.filters import EventFilter
from web.core.queries.alert_deliveries import AlertDelivery, select_due_alert_deliveries
from web.core.queries.alerts import (
    AlertRecord,
    select_alert_settings,
    select_recent_alerts,
    upsert_alert_settings,
)
from web.core.queries.base import NewLogEntry
from web.core.queries.events import insert_log_entries
from web.core.settings import Settings
from workers import alerting

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


# ---------------------------------------------------------------- test doubles that are real


class LoopbackServer:
    """A server on loopback, running for the length of a `with` block."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SmtpSink(LoopbackServer):
    """A real SMTP server on loopback (aiosmtpd) that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        self.messages.append(message_from_bytes(raw, policy=policy.default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


class WebhookReceiver(LoopbackServer):
    """A real HTTP server on loopback that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(orjson.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/lvd"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
async def alert_pool(service_urls: tuple[str, str]) -> AsyncIterator[asyncpg.Pool]:
    async with private_pool(service_urls[0], "alerting", max_size=6) as db_pool:
        yield db_pool


# ---------------------------------------------------------------- helpers


def failure(path: str, rule: str, severity: str = "error") -> dict[str, Any]:
    return {"path": path, "rule": rule, "message": f"{path} breaks {rule}", "severity": severity}


def entry(
    app_id: str,
    name: str | None,
    errors: list[dict[str, Any]],
    *,
    received_at: datetime = NOW,
    event_id: str | None = None,
) -> NewLogEntry:
    """An event as a worker stores it: invalid when it has any failure, a warning too."""
    return stored(
        app_id,
        name=name,
        errors=errors,
        status="invalid" if errors else "valid",
        received_at=received_at,
        event_id=event_id,
    )


async def insert(pool: asyncpg.Pool, entries: list[NewLogEntry]) -> list[int]:
    async with pool.acquire() as conn:
        return await insert_log_entries(conn, entries)


async def new_app(pool: asyncpg.Pool, **settings: Any) -> str:
    """A fresh app with alert settings (both channels on, share alerts as given)."""
    app_id = f"app-{uuid.uuid4().hex[:10]}"
    fields: dict[str, Any] = {
        "email_enabled": True,
        "email_recipients": ["qa@example.test"],
        "webhook_enabled": True,
        "webhook_url": "http://127.0.0.1:9/unused",
        "new_failures_enabled": True,
        "invalid_share_enabled": False,
        "invalid_share": 0.5,
        "window_seconds": 60,
        "min_events": 4,
        **settings,
    }
    async with pool.acquire() as conn:
        await add_app(conn, app_id, None)
        await upsert_alert_settings(conn, app_id, **fields)
    return app_id


async def alerts_of(pool: asyncpg.Pool, app_id: str) -> list[AlertRecord]:
    async with pool.acquire() as conn:
        return list(reversed(await select_recent_alerts(conn, app_id, 100)))


async def scan(pool: asyncpg.Pool, app_id: str, now: datetime) -> list[int]:
    async with pool.acquire() as conn:
        return await alerting.scan_app(conn, app_id, now)


# ---------------------------------------------------------------- new failures


async def test_scan_app_new_fingerprint_raises_one_alert_with_both_deliveries(
    alert_pool: asyncpg.Pool,
) -> None:
    app_id = await new_app(alert_pool)
    await insert(
        alert_pool,
        [entry(app_id, "checkout", [failure("/price", "type")]) for _ in range(3)],
    )
    raised = await scan(alert_pool, app_id, datetime.now(UTC))
    assert len(raised) == 1
    (alert,) = await alerts_of(alert_pool, app_id)
    assert (alert.kind, alert.event_name, alert.path, alert.rule) == (
        "new_failure",
        "checkout",
        "/price",
        "type",
    )
    assert alert.message == "/price breaks type"
    assert sorted(d["channel"] for d in alert.deliveries) == ["email", "webhook"]
    assert all(d["sent_at"] is None for d in alert.deliveries)


async def test_scan_app_repeated_fingerprint_does_not_alert_again(
    alert_pool: asyncpg.Pool,
) -> None:
    app_id = await new_app(alert_pool)
    await insert(alert_pool, [entry(app_id, "login", [failure("/user", "required")])])
    assert len(await scan(alert_pool, app_id, datetime.now(UTC))) == 1
    await insert(alert_pool, [entry(app_id, "login", [failure("/user", "required")])] * 1)
    assert await scan(alert_pool, app_id, datetime.now(UTC)) == []
    # Another rule on the same path, or the same failure in another event, is new.
    await insert(
        alert_pool,
        [
            entry(app_id, "login", [failure("/user", "type")]),
            entry(app_id, "signup", [failure("/user", "required")]),
            entry(app_id, None, [failure("/user", "required")]),
        ],
    )
    assert len(await scan(alert_pool, app_id, datetime.now(UTC))) == 3
    fingerprints = {(a.event_name, a.path, a.rule) for a in await alerts_of(alert_pool, app_id)}
    assert fingerprints == {
        ("login", "/user", "required"),
        ("login", "/user", "type"),
        ("signup", "/user", "required"),
        (None, "/user", "required"),
    }


async def test_scan_app_same_rows_read_again_raise_nothing_twice(
    alert_pool: asyncpg.Pool,
) -> None:
    app_id = await new_app(alert_pool)
    await insert(alert_pool, [entry(app_id, "view", [failure("/a", "enum")])])
    # Rows just written are not settled: the cursor stays, the next scan reads them again.
    now = datetime.now(UTC)
    assert len(await scan(alert_pool, app_id, now)) == 1
    async with alert_pool.acquire() as conn:
        saved = await select_alert_settings(conn, app_id)
    assert saved is not None and saved.scanned_id == 0
    assert await scan(alert_pool, app_id, now) == []
    # Concurrent scans (two workers, a redelivered message): still one alert.
    await insert(alert_pool, [entry(app_id, "view", [failure("/b", "enum")])])
    results = await asyncio.gather(*(scan(alert_pool, app_id, now) for _ in range(4)))
    assert sum(len(r) for r in results) == 1
    assert len(await alerts_of(alert_pool, app_id)) == 2


async def test_scan_app_cursor_moves_past_settled_rows_only(alert_pool: asyncpg.Pool) -> None:
    app_id = await new_app(alert_pool)
    ids = await insert(alert_pool, [entry(app_id, "view", [failure("/a", "enum")])])
    await scan(alert_pool, app_id, datetime.now(UTC))
    async with alert_pool.acquire() as conn:
        before = await select_alert_settings(conn, app_id)
    await scan(alert_pool, app_id, datetime.now(UTC) + timedelta(seconds=60))
    async with alert_pool.acquire() as conn:
        after = await select_alert_settings(conn, app_id)
    assert before is not None and after is not None
    assert before.scanned_id < ids[0] <= after.scanned_id


async def test_scan_app_ignores_history_warnings_and_valid_events(
    alert_pool: asyncpg.Pool,
) -> None:
    app_id = f"app-{uuid.uuid4().hex[:10]}"
    async with alert_pool.acquire() as conn:
        await add_app(conn, app_id, None)
    await insert(alert_pool, [entry(app_id, "old", [failure("/x", "type")])])
    async with alert_pool.acquire() as conn:
        await upsert_alert_settings(
            conn,
            app_id,
            email_enabled=True,
            email_recipients=["qa@example.test"],
            webhook_enabled=False,
            webhook_url=None,
            new_failures_enabled=True,
            invalid_share_enabled=False,
            invalid_share=0.2,
            window_seconds=300,
            min_events=20,
        )
    await insert(
        alert_pool,
        [
            entry(app_id, "fine", []),
            entry(app_id, "styled", [failure("/camelCase", "naming", severity="warning")]),
        ],
    )
    assert await scan(alert_pool, app_id, datetime.now(UTC)) == []


async def test_scan_app_without_channels_records_the_alert_only(
    alert_pool: asyncpg.Pool,
) -> None:
    app_id = await new_app(alert_pool, email_enabled=False, webhook_url=None)
    await insert(alert_pool, [entry(app_id, "view", [failure("/a", "enum")])])
    assert len(await scan(alert_pool, app_id, datetime.now(UTC))) == 1
    (alert,) = await alerts_of(alert_pool, app_id)
    assert alert.deliveries == []


# ---------------------------------------------------------------- invalid share


async def test_scan_app_invalid_share_alerts_once_per_window(alert_pool: asyncpg.Pool) -> None:
    app_id = await new_app(
        alert_pool, new_failures_enabled=False, invalid_share_enabled=True, window_seconds=60
    )
    bad = [failure("/t", "format")]
    await insert(
        alert_pool,
        [entry(app_id, "e", bad, received_at=NOW - timedelta(seconds=s)) for s in (5, 10, 15)]
        + [entry(app_id, "e", [], received_at=NOW - timedelta(seconds=20))],
    )
    first = await scan(alert_pool, app_id, NOW)
    assert len(first) == 1
    # Within the window: more invalid events, no second alert.
    await insert(alert_pool, [entry(app_id, "e", bad, received_at=NOW + timedelta(seconds=30))])
    assert await scan(alert_pool, app_id, NOW + timedelta(seconds=31)) == []
    assert await scan(alert_pool, app_id, NOW + timedelta(seconds=59)) == []
    # A window later, still over the threshold: one more.
    later = NOW + timedelta(seconds=61)
    await insert(
        alert_pool,
        [entry(app_id, "e", bad, received_at=later - timedelta(seconds=s)) for s in (1, 2, 3)],
    )
    assert len(await scan(alert_pool, app_id, later)) == 1
    alerts = await alerts_of(alert_pool, app_id)
    assert [a.kind for a in alerts] == ["invalid_share", "invalid_share"]
    assert (alerts[0].invalid_count, alerts[0].total_count) == (3, 4)
    assert alerts[0].window_start == NOW - timedelta(seconds=60)


@pytest.mark.parametrize(
    ("invalid", "valid", "expected"),
    [
        pytest.param(2, 2, 1, id="at-threshold"),
        pytest.param(1, 3, 0, id="below-threshold"),
        pytest.param(3, 0, 0, id="too-few-events"),
    ],
)
async def test_scan_app_invalid_share_threshold_and_min_events(
    alert_pool: asyncpg.Pool, invalid: int, valid: int, expected: int
) -> None:
    app_id = await new_app(
        alert_pool,
        new_failures_enabled=False,
        invalid_share_enabled=True,
        invalid_share=0.5,
        min_events=4,
    )
    at = NOW - timedelta(seconds=1)
    await insert(
        alert_pool,
        [entry(app_id, "e", [failure("/t", "format")], received_at=at) for _ in range(invalid)]
        + [entry(app_id, "e", [], received_at=at) for _ in range(valid)],
    )
    assert len(await scan(alert_pool, app_id, NOW)) == expected


# ---------------------------------------------------------------- sending


# Event names come from the apps: hostile HTML and a header injection attempt.
EVIL_NAME = "pay <b>now</b>\r\nBcc: x@y"


async def raise_one(pool: asyncpg.Pool, **settings: Any) -> tuple[str, int]:
    app_id = await new_app(pool, **settings)
    await insert(pool, [entry(app_id, EVIL_NAME, [failure("/amount", "minimum")])])
    (alert_id,) = await scan(pool, app_id, datetime.now(UTC))
    return app_id, alert_id


def smtp_settings(sink: SmtpSink) -> Settings:
    return replace(
        Settings(),
        smtp_host="127.0.0.1",
        smtp_port=sink.port,
        smtp_from="alerts@lvd.test",
        public_url="http://dash.test:8080",
    )


async def test_send_alert_email_and_webhook_deliver_once_with_filtered_link(
    alert_pool: asyncpg.Pool, smtp_sink: SmtpSink, webhook: WebhookReceiver
) -> None:
    app_id, alert_id = await raise_one(alert_pool, webhook_url=webhook.url)
    settings = smtp_settings(smtp_sink)
    assert await alerting.send_alert(alert_pool, settings, alert_id, "email") == "sent"
    assert await alerting.send_alert(alert_pool, settings, alert_id, "webhook") == "sent"
    # A redelivered message for a sent delivery sends nothing.
    assert await alerting.send_alert(alert_pool, settings, alert_id, "email") == "skipped"
    assert await alerting.send_alert(alert_pool, settings, alert_id, "webhook") == "skipped"
    assert len(smtp_sink.messages) == 1 and len(webhook.bodies) == 1
    mail = smtp_sink.messages[0]
    assert smtp_sink.recipients == [["qa@example.test"]]
    assert mail["From"] == "alerts@lvd.test"
    assert "\n" not in str(mail["Subject"]) and "Bcc" not in mail
    assert "new failure" in str(mail["Subject"])
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    link = next(w for w in body.decode().split() if w.startswith("http://dash.test:8080/"))
    parts = urlsplit(link)
    assert parts.path == f"/apps/{app_id}"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {"status": "invalid", "event_name": EVIL_NAME, "rule": "minimum"}
    assert EventFilter.from_args(query) == EventFilter(
        status="invalid", event_names=(EVIL_NAME,), rule="minimum"
    )
    assert link in webhook.bodies[0]["text"]
    (alert,) = await alerts_of(alert_pool, app_id)
    assert all(d["sent_at"] and d["attempts"] == 1 for d in alert.deliveries)


async def test_send_alert_concurrent_senders_send_once(
    alert_pool: asyncpg.Pool, smtp_sink: SmtpSink
) -> None:
    _, alert_id = await raise_one(alert_pool, webhook_url=None)
    settings = smtp_settings(smtp_sink)
    outcomes = await asyncio.gather(
        *(alerting.send_alert(alert_pool, settings, alert_id, "email") for _ in range(5))
    )
    assert sorted(outcomes) == ["sent", "skipped", "skipped", "skipped", "skipped"]
    assert len(smtp_sink.messages) == 1


async def test_send_alert_webhook_server_error_is_retried_later(
    alert_pool: asyncpg.Pool, webhook: WebhookReceiver
) -> None:
    app_id, alert_id = await raise_one(alert_pool, email_enabled=False, webhook_url=webhook.url)
    webhook.status = 503
    assert await alerting.send_alert(alert_pool, Settings(), alert_id, "webhook") == "retry"
    async with alert_pool.acquire() as conn:
        due_now = await select_due_alert_deliveries(conn, datetime.now(UTC), 100)
        due_later = await select_due_alert_deliveries(
            conn, datetime.now(UTC) + timedelta(seconds=31), 10_000
        )
    assert (alert_id, "webhook") not in due_now
    assert (alert_id, "webhook") in due_later
    webhook.status = 200
    later = datetime.now(UTC) + timedelta(seconds=31)
    assert (
        await alerting.send_alert(alert_pool, Settings(), alert_id, "webhook", now=later) == "sent"
    )
    assert len(webhook.bodies) == 2
    (alert,) = await alerts_of(alert_pool, app_id)
    assert alert.deliveries[0]["attempts"] == 2 and alert.deliveries[0]["sent_at"]


@pytest.mark.parametrize(
    ("webhook_status", "smtp_host"),
    [pytest.param(404, None, id="webhook-404"), pytest.param(None, None, id="no-smtp-host")],
)
async def test_send_alert_permanent_failure_is_given_up(
    alert_pool: asyncpg.Pool,
    webhook: WebhookReceiver,
    webhook_status: int | None,
    smtp_host: str | None,
) -> None:
    channel = "webhook" if webhook_status else "email"
    app_id, alert_id = await raise_one(alert_pool, webhook_url=webhook.url)
    webhook.status = webhook_status or 200
    settings = replace(Settings(), smtp_host=smtp_host)
    assert await alerting.send_alert(alert_pool, settings, alert_id, channel) == "failed"
    (alert,) = await alerts_of(alert_pool, app_id)
    (delivery,) = [d for d in alert.deliveries if d["channel"] == channel]
    assert delivery["failed_at"] and delivery["sent_at"] is None
    assert ("404" if webhook_status else "LVD_SMTP_HOST") in delivery["last_error"]
    async with alert_pool.acquire() as conn:
        due = await select_due_alert_deliveries(conn, datetime.now(UTC) + timedelta(days=1), 10_000)
    assert (alert_id, channel) not in due


async def test_check_alerts_returns_the_due_deliveries(alert_pool: asyncpg.Pool) -> None:
    app_id = await new_app(alert_pool)
    await insert(alert_pool, [entry(app_id, "view", [failure("/q", "enum")])])
    due = await alerting.check_alerts(alert_pool)
    (alert,) = await alerts_of(alert_pool, app_id)
    assert {(alert.id, "email"), (alert.id, "webhook")} <= set(due)


# ---------------------------------------------------------------- composing (no I/O)


def delivery(**fields: Any) -> AlertDelivery:
    base: dict[str, Any] = {
        "alert_id": 1,
        "channel": "email",
        "target": "qa@example.test",
        "attempts": 1,
        "app_id": "shop",
        "kind": "new_failure",
        "event_name": "checkout",
        "path": "/price",
        "rule": "type",
        "message": "price must be a number",
        "invalid_count": None,
        "total_count": None,
        "window_start": None,
        "created_at": NOW,
    }
    return AlertDelivery(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "expected_query"),
    [
        pytest.param(
            {}, {"status": "invalid", "event_name": "checkout", "rule": "type"}, id="new-failure"
        ),
        pytest.param(
            {"event_name": None}, {"status": "invalid", "rule": "type"}, id="no-event-name"
        ),
        pytest.param(
            {
                "kind": "invalid_share",
                "invalid_count": 30,
                "total_count": 100,
                "window_start": NOW - timedelta(seconds=300),
            },
            {"status": "invalid", "since": (NOW - timedelta(seconds=300)).isoformat()},
            id="invalid-share",
        ),
    ],
)
def test_compose_links_to_the_filtered_dashboard(
    fields: dict[str, Any], expected_query: dict[str, str]
) -> None:
    composed = alerting.compose(delivery(**fields), "https://lvd.example.com")
    parts = urlsplit(composed.link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "lvd.example.com", "/apps/shop")
    assert {k: v[0] for k, v in parse_qs(parts.query).items()} == expected_query
    assert composed.link in composed.text


def test_compose_invalid_share_states_the_share_and_window() -> None:
    composed = alerting.compose(
        delivery(
            kind="invalid_share",
            invalid_count=30,
            total_count=100,
            window_start=NOW - timedelta(seconds=300),
        ),
        "http://127.0.0.1:5001",
    )
    assert composed.subject == "[lvd] shop: 30% of events invalid in the last 300 s"
    assert "30 of the 100 events" in composed.text


def test_compose_subject_is_one_line_whatever_the_event_name() -> None:
    composed = alerting.compose(delivery(event_name="a\r\nBcc: evil@x\x00"), "http://h")
    assert "\n" not in composed.subject and "\r" not in composed.subject
    assert "\x00" not in composed.subject


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 30), (2, 60), (5, 480), (20, 3600)])
def test_retry_delay_doubles_up_to_an_hour(attempts: int, seconds: int) -> None:
    assert alerting.retry_delay(attempts) == timedelta(seconds=seconds)
