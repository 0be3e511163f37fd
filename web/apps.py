"""Apps: the JSON API under /api/apps and the create form on the home page."""

from __future__ import annotations

from typing import Annotated, NotRequired, cast

from pydantic import Field
from quart import Blueprint, Response, jsonify, redirect, request, url_for
from typing_extensions import TypedDict
from werkzeug.wrappers.response import Response as WerkzeugResponse

from web.api_types import AppId, Timestamp, refuse_null_characters
from web.context import services
from web.core.apps import MAX_APP_NAME_LENGTH, add_app, app_as_json, require_app
from web.core.queries.apps import select_apps
from web.core.queries.base import App
from web.requests import json_body

blueprint = Blueprint("apps", __name__)


class NewApp(TypedDict):
    """An app to add: its id, and a display name (default: the id)."""

    id: AppId
    name: NotRequired[Annotated[str, Field(max_length=MAX_APP_NAME_LENGTH)] | None]


class AppEntry(TypedDict):
    """An app, with the write key its SDKs send when it requires one."""

    id: AppId
    name: str
    write_key: str
    require_write_key: bool
    created_at: Timestamp


class AppList(TypedDict):
    """Every app."""

    apps: list[AppEntry]


def app_entry(app: App) -> AppEntry:
    return cast(AppEntry, app_as_json(app))  # web/core/apps.py writes this shape


@blueprint.post("/api/apps")
async def add_app_api() -> tuple[Response, int]:
    body = await json_body()
    refuse_null_characters(body)
    async with services().pool.acquire() as conn:
        app = await add_app(conn, body.get("id"), body.get("name"))
    return jsonify(app_entry(app)), 201


@blueprint.get("/api/apps")
async def list_apps_api() -> Response:
    async with services().pool.acquire() as conn:
        apps = await select_apps(conn)
    answer: AppList = {"apps": [app_entry(app) for app in apps]}
    return jsonify(answer)


@blueprint.get("/api/apps/<app_id>")
async def get_app_api(app_id: str) -> Response:
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
    return jsonify(app_entry(app))


@blueprint.post("/apps")
async def add_app_form() -> WerkzeugResponse:
    form = await request.form
    refuse_null_characters(form.to_dict())
    async with services().pool.acquire() as conn:
        app = await add_app(conn, form.get("id", ""), form.get("name"))
    return redirect(url_for("dashboard.app_page", app_id=app.id), 303)
