"""Alerts: find new failure fingerprints and invalid shares, and send them by e-mail or webhook.

Plain async functions the actors in workers.actors.alerts call (tests call them directly).

Delivery is at least once, de-duplicated by the database: an alert is a row with a unique
(app, dedupe key), raised in the same transaction that moves the scan's cursor, and each
channel's delivery is a row a sender claims with a lease, sends, then marks sent. A crash
after the mail server or the webhook accepted the message but before "sent" is recorded
sends that one alert again once the lease ends; nothing else ever sends twice. (Sending
exactly once would need the receiver to de-duplicate, which neither SMTP nor a Slack-style
webhook offers.)
"""

from __future__ import annotations

import asyncio
import logging
import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import quote, urlencode

import asyncpg
import httpx

from web.core.filters import EventFilter
from web.core.queries.alert_deliveries import (
    AlertDelivery,
    claim_alert_delivery,
    insert_alert_deliveries,
    select_due_alert_deliveries,
    update_alert_delivery_failed,
    update_alert_delivery_sent,
)
from web.core.queries.alerts import (
    AlertSettings,
    insert_invalid_share_alert,
    insert_new_failure_alerts,
    lock_alert_settings,
    select_alerting_app_ids,
    select_recent_alert,
    select_window_counts,
    update_alert_cursor,
)
from web.core.queries.base import Connection
from web.core.settings import Settings

log = logging.getLogger("lvd.worker")

# Invalid events one scan reads per app at most; the rest waits for the next scan.
SCAN_LIMIT = 10_000
# Rows younger than this may have lower-numbered neighbours not yet committed: the cursor
# stops before them and the next scan reads them again (raising nothing twice).
SETTLE_SECONDS = 5.0
# A claimed delivery is not handed to another sender for this long: above both timeouts.
SEND_LEASE_SECONDS = 120.0
SMTP_TIMEOUT_SECONDS = 15.0
WEBHOOK_TIMEOUT_SECONDS = 10.0
# A delivery that failed this many times is given up (recorded with its last error).
MAX_ATTEMPTS = 8
# Deliveries one check hands to senders at most.
DUE_LIMIT = 200
EMAIL, WEBHOOK = "email", "webhook"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class PermanentDeliveryError(Exception):
    """Sending cannot succeed by trying again (no mail server set, the webhook refuses)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---- finding alerts


async def check_alerts(pool: asyncpg.Pool, *, now: datetime | None = None) -> list[tuple[int, str]]:
    """Scan every app with alerts on; returns (alert id, channel) of the deliveries due.

    Returned deliveries include older ones waiting for a retry or whose sender died; the
    caller enqueues one message for each, and a delivery already claimed or sent makes its
    message a no-op.
    """
    now = now or utc_now()
    async with pool.acquire() as conn:
        app_ids = await select_alerting_app_ids(conn)
        for app_id in app_ids:
            raised = await scan_app(conn, app_id, now)
            if raised:
                log.info("App %s: raised %d alert(s)", app_id, len(raised))
        return await select_due_alert_deliveries(conn, now, DUE_LIMIT)


async def scan_app(conn: Connection, app_id: str, now: datetime) -> list[int]:
    """Raise the app's new alerts and their deliveries, in one transaction; returns their ids."""
    async with conn.transaction():
        config = await lock_alert_settings(conn, app_id)
        if config is None:
            return []  # another scan holds this app right now, or its settings are gone
        raised: list[int] = []
        if config.new_failures_enabled:
            scan = await insert_new_failure_alerts(
                conn,
                app_id,
                after_id=config.scanned_id,
                limit=SCAN_LIMIT,
                settled_before=now - timedelta(seconds=SETTLE_SECONDS),
                now=now,
            )
            raised += scan.alert_ids
            if scan.settled_id is not None:
                await update_alert_cursor(conn, app_id, scan.settled_id)
        if config.invalid_share_enabled:
            share_alert = await _check_invalid_share(conn, config, now)
            if share_alert is not None:
                raised.append(share_alert)
        if raised:
            await _add_deliveries(conn, config, raised, now)
        return raised


async def _check_invalid_share(
    conn: Connection, config: AlertSettings, now: datetime
) -> int | None:
    """An alert when the invalid share of the last window reaches the threshold.

    At most one per window: none while the previous one is younger than the window (the
    app's settings row is locked, so this check and the insert cannot race), and the
    window's number in the unique dedupe key as a second guard.
    """
    window = timedelta(seconds=config.window_seconds)
    since = now - window
    if await select_recent_alert(conn, config.app_id, "invalid_share", since):
        return None
    invalid, total = await select_window_counts(conn, config.app_id, since, now)
    if total < config.min_events or invalid < config.invalid_share * total:
        return None
    window_number = int(now.timestamp() // config.window_seconds)
    return await insert_invalid_share_alert(
        conn,
        config.app_id,
        dedupe_key=f'["invalid_share", {config.window_seconds}, {window_number}]',
        invalid=invalid,
        total=total,
        window_start=since,
        now=now,
    )


async def _add_deliveries(
    conn: Connection, config: AlertSettings, alert_ids: list[int], now: datetime
) -> None:
    # The targets are copied: a delivery goes where the settings said when it was raised.
    if config.email_enabled and config.email_recipients:
        target = ", ".join(config.email_recipients)
        await insert_alert_deliveries(conn, alert_ids, EMAIL, target, now)
    if config.webhook_enabled and config.webhook_url:
        await insert_alert_deliveries(conn, alert_ids, WEBHOOK, config.webhook_url, now)


# ---- sending alerts


@dataclass(frozen=True, slots=True)
class Composed:
    subject: str
    text: str
    link: str


async def send_alert(
    pool: asyncpg.Pool,
    settings: Settings,
    alert_id: int,
    channel: str,
    *,
    now: datetime | None = None,
) -> str:
    """Send one delivery if it is due and nobody else holds it; returns what happened:
    "sent", "skipped" (sent, claimed elsewhere or not due), "retry" or "failed"."""
    now = now or utc_now()
    async with pool.acquire() as conn:
        delivery = await claim_alert_delivery(conn, alert_id, channel, now, SEND_LEASE_SECONDS)
    if delivery is None:
        return "skipped"
    composed = compose(delivery, settings.public_url)
    try:
        if channel == EMAIL:
            recipients = [r.strip() for r in delivery.target.split(",") if r.strip()]
            await asyncio.to_thread(send_email, settings, recipients, composed)
        else:
            await post_webhook(delivery.target, composed)
    except Exception as exc:  # every failure is recorded on the delivery, then retried or not
        return await _record_failure(pool, delivery, exc)
    async with pool.acquire() as conn:
        await update_alert_delivery_sent(conn, alert_id, channel, utc_now())
    log.info("Alert %d sent by %s to %s", alert_id, channel, delivery.target)
    return "sent"


async def _record_failure(pool: asyncpg.Pool, delivery: AlertDelivery, exc: Exception) -> str:
    reason = f"{type(exc).__name__}: {exc}"
    give_up = isinstance(exc, PermanentDeliveryError) or delivery.attempts >= MAX_ATTEMPTS
    now = utc_now()
    retry_at = None if give_up else now + retry_delay(delivery.attempts)
    async with pool.acquire() as conn:
        await update_alert_delivery_failed(
            conn, delivery.alert_id, delivery.channel, reason, retry_at=retry_at, now=now
        )
    outcome = "failed" if give_up else "retry"
    log.warning(
        "Alert %d by %s, attempt %d: %s (%s)",
        delivery.alert_id,
        delivery.channel,
        delivery.attempts,
        reason,
        "given up" if give_up else f"next try at {retry_at:%H:%M:%S}",
    )
    return outcome


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


def dashboard_link(public_url: str, app_id: str, filters: EventFilter) -> str:
    """The app's dashboard page showing only the events the filter selects."""
    query = urlencode(filters.query_args())
    return f"{public_url}/apps/{quote(app_id)}" + (f"?{query}" if query else "")


def compose(delivery: AlertDelivery, public_url: str) -> Composed:
    """Subject, text and dashboard link of an alert. Event data in it is plain text."""
    app = delivery.app_id
    if delivery.kind == "new_failure":
        name = delivery.event_name
        filters = EventFilter(
            status="invalid", event_names=(name,) if name else (), rule=delivery.rule or None
        )
        link = dashboard_link(public_url, app, filters)
        shown_name = name if name is not None else "(no event name)"
        subject = (
            f"[lvd] {app}: new failure in {shown_name}: {delivery.path or '/'} {delivery.rule}"
        )
        lines = [
            f"A failure never seen before in app {app}:",
            f"  event: {shown_name}",
            f"  path:  {delivery.path or '/'}",
            f"  rule:  {delivery.rule}",
            f"  first: {delivery.message}",
            f"  at:    {delivery.created_at:%Y-%m-%d %H:%M:%S} UTC",
        ]
    else:
        invalid, total = delivery.invalid_count or 0, delivery.total_count or 0
        since = delivery.window_start or delivery.created_at
        seconds = round((delivery.created_at - since).total_seconds())
        share = 100 * invalid / total if total else 0.0
        link = dashboard_link(public_url, app, EventFilter(status="invalid", since=since))
        subject = f"[lvd] {app}: {share:.0f}% of events invalid in the last {seconds} s"
        lines = [
            f"{invalid} of the {total} events app {app} received in the {seconds} s"
            f" before {delivery.created_at:%Y-%m-%d %H:%M:%S} UTC were invalid ({share:.1f}%).",
        ]
    lines += ["", f"See them in the dashboard: {link}"]
    return Composed(_one_line(subject)[:200], "\n".join(lines), link)


def _one_line(text: str) -> str:
    # Event names come from the apps: no line breaks may reach a mail header.
    return _CONTROL.sub(" ", text).strip()


def send_email(settings: Settings, recipients: Sequence[str], composed: Composed) -> None:
    """Blocking: send over SMTP (run it in a thread)."""
    if not settings.smtp_host:
        raise PermanentDeliveryError("no mail server: set LVD_SMTP_HOST")
    if not recipients:
        raise PermanentDeliveryError("no recipients")
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(recipients)
    message["Subject"] = composed.subject
    message.set_content(composed.text)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        refused = smtp.send_message(message)
    if refused:
        log.warning("Alert e-mail refused for %s", ", ".join(refused))


async def post_webhook(url: str, composed: Composed) -> None:
    """POST {"text": ...}, the body Slack's incoming webhooks (and Mattermost, Teams'
    Slack-compatible ones, Discord's /slack endpoint) accept."""
    async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
        response = await client.post(url, json={"text": f"{composed.subject}\n{composed.text}"})
    if response.status_code in (408, 429) or response.status_code >= 500:
        raise RuntimeError(f"the webhook answered {response.status_code}")
    if response.status_code >= 300:
        raise PermanentDeliveryError(f"the webhook answered {response.status_code}")
