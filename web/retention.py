"""Per-app retention: how many days an app's events are kept, under /api/apps/<id>/retention."""

from __future__ import annotations

from typing import Annotated, Any, cast

from pydantic import ConfigDict, Field, with_config
from quart import Blueprint, Response, jsonify
from typing_extensions import TypedDict

from web.api_types import Count, whole_number
from web.context import services
from web.core.apps import require_app, unknown_app
from web.core.errors import Rejected
from web.core.queries.apps import select_app_retention_days, update_app_retention_days
from web.requests import json_body

blueprint = Blueprint("retention", __name__)

MAX_RETENTION_DAYS = 3650
Days = Annotated[int, Field(ge=1, le=MAX_RETENTION_DAYS)]


@with_config(ConfigDict(extra="forbid"))
class RetentionChange(TypedDict):
    """Keep the app's events this many days; null: the server's default."""

    days: Days | None


class Retention(TypedDict):
    """How long the app's events are kept: its own setting, the default, the one in force."""

    app_id: str
    days: Days | None
    default_days: Count
    effective_days: Count


@blueprint.get("/api/apps/<app_id>/retention")
async def get_retention(app_id: str) -> Response:
    svc = services()
    async with svc.pool.acquire() as conn:
        await require_app(conn, app_id)
        days = await select_app_retention_days(conn, app_id)
    return jsonify(retention_as_json(app_id, days, svc.settings.retention_days))


@blueprint.put("/api/apps/<app_id>/retention")
async def put_retention(app_id: str) -> Response:
    """{"days": N} keeps the app's events N days (1 to 3650); {"days": null}: the default."""
    days = parse_retention(await json_body())
    svc = services()
    async with svc.pool.acquire() as conn:
        if not await update_app_retention_days(conn, app_id, days):
            raise unknown_app(app_id)
    return jsonify(retention_as_json(app_id, days, svc.settings.retention_days))


def parse_retention(body: dict[str, Any]) -> int | None:
    """The days a RetentionChange body asks for; Rejected (400 invalid_retention) when bad."""
    days = body.get("days")
    if set(body) != {"days"} or not (days is None or _is_day_count(days)):
        raise Rejected(
            400,
            "invalid_retention",
            f'the body is {{"days": N}} with N from 1 to {MAX_RETENTION_DAYS}, or null',
        )
    return cast(int | None, days)


def retention_as_json(app_id: str, days: int | None, default_days: int) -> Retention:
    return {
        "app_id": app_id,
        "days": days,
        "default_days": default_days,
        "effective_days": days or default_days,
    }


def _is_day_count(value: Any) -> bool:
    return whole_number(value) and 1 <= value <= MAX_RETENTION_DAYS
