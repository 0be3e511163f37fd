"""Per-app alert settings and recent alerts: the JSON API under /api/apps/<id>/alerts."""

from __future__ import annotations

import re
from typing import Annotated, Any, NotRequired, cast
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, with_config
from quart import Blueprint, Response, jsonify
from typing_extensions import TypedDict

from web.api_types import Count, Timestamp, refuse_null_characters, whole_number
from web.context import services
from web.core.apps import require_app
from web.core.errors import Rejected
from web.core.queries.alerts import (
    AlertRecord,
    select_alert_settings,
    select_recent_alerts,
    upsert_alert_settings,
)
from web.core.queries.alerts import AlertSettings as StoredAlertSettings
from web.requests import json_body

blueprint = Blueprint("alerts", __name__)

MAX_RECIPIENTS = 20
MAX_URL_LENGTH = 2000
# Alerts the GET answer lists, newest first.
RECENT_ALERTS = 20
_EMAIL = re.compile(r"^[^@\s,;<>\"]{1,64}@[^@\s,;<>\"]{1,255}$")
_WEB_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s@:\[\]]"


# ---- the bodies (PUT takes any part of AlertSettings; a section left out takes its default)


@with_config(ConfigDict(extra="forbid"))
class EmailAlerts(TypedDict, total=False):
    """E-mail the alerts to these addresses (the server's SMTP settings send them)."""

    enabled: bool
    recipients: Annotated[
        list[Annotated[str, Field(pattern=_EMAIL.pattern)]], Field(max_length=MAX_RECIPIENTS)
    ]


@with_config(ConfigDict(extra="forbid"))
class WebhookAlerts(TypedDict, total=False):
    """POST each alert as JSON to this http(s) URL."""

    enabled: bool
    url: Annotated[str, Field(pattern=_WEB_URL, max_length=MAX_URL_LENGTH)] | None


@with_config(ConfigDict(extra="forbid"))
class NewFailureAlerts(TypedDict, total=False):
    """Alert on the first failure of a (event name, path, rule)."""

    enabled: bool


@with_config(ConfigDict(extra="forbid"))
class InvalidShareAlerts(TypedDict, total=False):
    """Alert when over `threshold` of the events in the window are invalid."""

    enabled: bool
    threshold: Annotated[float, Field(gt=0, le=1)]
    window_seconds: Annotated[int, Field(ge=10, le=86_400)]
    min_events: Annotated[int, Field(ge=1, le=1_000_000)]


@with_config(ConfigDict(extra="forbid"))
class AlertSettings(TypedDict, total=False):
    """An app's alert settings; PUT replaces them, a section left out takes its default."""

    email: EmailAlerts
    webhook: WebhookAlerts
    new_failures: NewFailureAlerts
    invalid_share: InvalidShareAlerts


class SavedAlertSettings(TypedDict):
    """The settings in force: every section whole; `configured` false until the first PUT."""

    app_id: str
    configured: bool
    email: EmailAlerts
    webhook: WebhookAlerts
    new_failures: NewFailureAlerts
    invalid_share: InvalidShareAlerts
    updated_at: NotRequired[Timestamp]


class AlertDelivery(TypedDict):
    """One channel's attempt at delivering an alert."""

    channel: str
    target: str | None
    attempts: Count
    sent_at: Timestamp | None
    failed_at: Timestamp | None
    last_error: str | None


class AlertSent(TypedDict):
    """An alert raised: a new failure (name, path, rule) or an invalid share over a window."""

    id: int
    kind: str
    event_name: str | None
    path: str | None
    rule: str | None
    message: str | None
    invalid_count: int | None
    total_count: int | None
    window_start: Timestamp | None
    created_at: Timestamp
    deliveries: list[AlertDelivery]


class AlertsAnswer(SavedAlertSettings):
    """The settings in force and the app's recent alerts, newest first."""

    recent: list[AlertSent]


DEFAULTS: AlertSettings = {
    "email": {"enabled": True, "recipients": []},
    "webhook": {"enabled": True, "url": None},
    "new_failures": {"enabled": True},
    "invalid_share": {"enabled": False, "threshold": 0.2, "window_seconds": 300, "min_events": 20},
}


def settings_as_json(app_id: str, saved: StoredAlertSettings | None) -> SavedAlertSettings:
    if saved is None:
        return {"app_id": app_id, "configured": False, **DEFAULTS}  # type: ignore[typeddict-item]
    return {
        "app_id": app_id,
        "configured": True,
        "email": {"enabled": saved.email_enabled, "recipients": saved.email_recipients},
        "webhook": {"enabled": saved.webhook_enabled, "url": saved.webhook_url},
        "new_failures": {"enabled": saved.new_failures_enabled},
        "invalid_share": {
            "enabled": saved.invalid_share_enabled,
            "threshold": saved.invalid_share,
            "window_seconds": saved.window_seconds,
            "min_events": saved.min_events,
        },
        "updated_at": saved.updated_at.isoformat(),
    }


def alert_as_json(alert: AlertRecord) -> AlertSent:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "event_name": alert.event_name,
        "path": alert.path,
        "rule": alert.rule,
        "message": alert.message,
        "invalid_count": alert.invalid_count,
        "total_count": alert.total_count,
        "window_start": alert.window_start.isoformat() if alert.window_start else None,
        "created_at": alert.created_at.isoformat(),
        # Built by the query as these objects (web/core/queries/alerts.py).
        "deliveries": cast(list[AlertDelivery], alert.deliveries),
    }


@blueprint.get("/api/apps/<app_id>/alerts")
async def get_alerts(app_id: str) -> Response:
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
        saved = await select_alert_settings(conn, app_id)
        recent = await select_recent_alerts(conn, app_id, RECENT_ALERTS)
    answer: AlertsAnswer = {
        **settings_as_json(app_id, saved),
        "recent": [alert_as_json(a) for a in recent],
    }
    return jsonify(answer)


@blueprint.put("/api/apps/<app_id>/alerts")
async def put_alerts(app_id: str) -> Response:
    """Replace the app's alert settings; a section left out takes its default."""
    body = await json_body()
    refuse_null_characters(body)
    fields = parse_alert_settings(body)
    async with services().pool.acquire() as conn:
        await require_app(conn, app_id)
        saved = await upsert_alert_settings(conn, app_id, **fields)
    return jsonify(settings_as_json(app_id, saved))


def parse_alert_settings(body: dict[str, Any]) -> dict[str, Any]:
    """The body's settings as upsert_alert_settings' arguments; Rejected (400) when bad."""
    unknown = set(body) - set(DEFAULTS)
    if unknown:
        _bad(f"unknown settings: {', '.join(sorted(unknown))}")
    email = _section(body, "email")
    webhook = _section(body, "webhook")
    new_failures = _section(body, "new_failures")
    share = _section(body, "invalid_share")
    recipients = email["recipients"]
    if not isinstance(recipients, list) or len(recipients) > MAX_RECIPIENTS:
        _bad(f"email.recipients must be a list of at most {MAX_RECIPIENTS} addresses")
    for recipient in recipients:
        if not isinstance(recipient, str) or not _EMAIL.fullmatch(recipient):
            _bad(f"email.recipients: {str(recipient)[:100]!r} is not an e-mail address")
    url = webhook["url"]
    if url is not None and not _is_web_url(url):
        _bad(f"webhook.url must be an http(s) URL of at most {MAX_URL_LENGTH} characters")
    threshold = share["threshold"]
    if not _number(threshold) or not 0 < threshold <= 1:
        _bad("invalid_share.threshold must be a number above 0 and at most 1")
    window = share["window_seconds"]
    if not whole_number(window) or not 10 <= window <= 86_400:
        _bad("invalid_share.window_seconds must be a whole number from 10 to 86400")
    min_events = share["min_events"]
    if not whole_number(min_events) or not 1 <= min_events <= 1_000_000:
        _bad("invalid_share.min_events must be a whole number from 1 to 1000000")
    return {
        "email_enabled": _flag(email, "email"),
        "email_recipients": list(dict.fromkeys(recipients)),
        "webhook_enabled": _flag(webhook, "webhook"),
        "webhook_url": url,
        "new_failures_enabled": _flag(new_failures, "new_failures"),
        "invalid_share_enabled": _flag(share, "invalid_share"),
        "invalid_share": float(threshold),
        "window_seconds": window,
        "min_events": min_events,
    }


def _section(body: dict[str, Any], name: str) -> dict[str, Any]:
    given = body.get(name, {})
    if not isinstance(given, dict):
        _bad(f"{name} must be an object")
    defaults: dict[str, Any] = DEFAULTS[name]  # type: ignore[literal-required]
    unknown = set(given) - set(defaults)
    if unknown:
        _bad(f"{name}: unknown settings: {', '.join(sorted(unknown))}")
    section: dict[str, Any] = {**defaults, **given}
    return section


def _flag(section: dict[str, Any], name: str) -> bool:
    if not isinstance(section["enabled"], bool):
        _bad(f"{name}.enabled must be true or false")
    return bool(section["enabled"])


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_web_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH:
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # an unclosed [IPv6 host
        return False


def _bad(message: str) -> None:
    raise Rejected(400, "invalid_alert_settings", message)
