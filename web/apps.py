"""Apps: the JSON API under /api/apps and the create form on the home page."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify, redirect, request, url_for
from werkzeug.wrappers.response import Response as WerkzeugResponse

from web.context import services
from web.core.apps import add_app, app_as_json, require_app
from web.core.queries.apps import select_apps
from web.requests import json_body

blueprint = Blueprint("apps", __name__)


@blueprint.post("/api/apps")
async def add_app_api() -> tuple[Response, int]:
    body = await json_body()
    async with services().pool.acquire() as conn:
        app = await add_app(conn, body.get("id"), body.get("name"))
    return jsonify(app_as_json(app)), 201


@blueprint.get("/api/apps")
async def list_apps_api() -> Response:
    async with services().pool.acquire() as conn:
        apps = await select_apps(conn)
    return jsonify({"apps": [app_as_json(app) for app in apps]})


@blueprint.get("/api/apps/<app_id>")
async def get_app_api(app_id: str) -> Response:
    async with services().pool.acquire() as conn:
        app = await require_app(conn, app_id)
    return jsonify(app_as_json(app))


@blueprint.post("/apps")
async def add_app_form() -> WerkzeugResponse:
    form = await request.form
    async with services().pool.acquire() as conn:
        app = await add_app(conn, form.get("id", ""), form.get("name"))
    return redirect(url_for("dashboard.app_page", app_id=app.id), 303)
