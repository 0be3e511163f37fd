"""The per-app hygiene switch: GET/PUT /api/apps/<id>/hygiene and the violations page's form."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, with_config
from quart import Blueprint, Response, jsonify, redirect, request, url_for
from typing_extensions import TypedDict
from werkzeug.wrappers.response import Response as WerkzeugResponse

from web.context import services
from web.core.apps import require_app, unknown_app
from web.core.errors import Rejected
from web.core.queries.hygiene import update_app_hygiene_checks
from web.core.validation.hygiene import RULES
from web.requests import json_body

blueprint = Blueprint("hygiene", __name__)

HygieneRule = Literal[
    "pii_email", "pii_phone", "pii_card_number", "pii_jwt", "pii_api_key", "size_near_limit"
]


@with_config(ConfigDict(extra="forbid"))
class HygieneChange(TypedDict):
    """Turn the app's hygiene checks on (true) or off (false)."""

    enabled: bool


class HygieneSetting(TypedDict):
    """Whether the app's events get hygiene warnings, and the rules that give them."""

    app_id: str
    enabled: bool
    rules: list[HygieneRule]


@blueprint.get("/api/apps/<app_id>/hygiene")
async def get_hygiene(app_id: str) -> Response:
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
    return jsonify(hygiene_as_json(app_id, app.hygiene_checks))


@blueprint.put("/api/apps/<app_id>/hygiene")
async def put_hygiene(app_id: str) -> Response:
    """{"enabled": true|false} switches the app's hygiene checks; ingest applies it at once."""
    enabled = parse_hygiene(await json_body())
    await _switch(app_id, enabled)
    return jsonify(hygiene_as_json(app_id, enabled))


@blueprint.post("/apps/<app_id>/hygiene")
async def switch_hygiene(app_id: str) -> WerkzeugResponse:
    """The violations page's form: enabled=true or enabled=false, then the page again."""
    form = await request.form
    value = form.get("enabled")
    if value not in ("true", "false"):
        raise _invalid()
    await _switch(app_id, value == "true")
    return redirect(url_for("violations.violations_page", app_id=app_id) + "#hygiene", 303)


async def _switch(app_id: str, enabled: bool) -> None:
    svc = services()
    async with svc.pool.acquire() as conn:
        if not await update_app_hygiene_checks(conn, app_id, enabled):
            raise unknown_app(app_id)
    # This process at once; the others when the notification sent with the change arrives.
    svc.apps.forget(app_id)


def parse_hygiene(body: dict[str, Any]) -> bool:
    """The switch a HygieneChange body asks for; Rejected (400 invalid_hygiene) when bad."""
    enabled = body.get("enabled")
    if set(body) != {"enabled"} or not isinstance(enabled, bool):
        raise _invalid()
    return enabled


def _invalid() -> Rejected:
    return Rejected(
        400, "invalid_hygiene", 'enabled must be true or false: {"enabled": true}, nothing else'
    )


def hygiene_as_json(app_id: str, enabled: bool) -> HygieneSetting:
    rules: list[Any] = list(RULES)
    return {"app_id": app_id, "enabled": enabled, "rules": rules}
