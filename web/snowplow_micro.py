"""Snowplow Micro's test API (/micro/all, good, bad, reset), answered from stored events.

At the root it covers every app's Snowplow events, as a Micro collector sees everything
sent to it; under /snowplow/<app> (the app's id or write key), that app's only.
"""

from __future__ import annotations

from typing import Any

import orjson
from quart import Blueprint, Response, request

from web.context import services
from web.core.apps import unknown_app
from web.core.errors import Rejected
from web.core.queries import snowplow as snowplow_queries
from web.core.snowplow_micro import MicroFilter, bad_event, good_event
from web.security import refuse_other_sites

blueprint = Blueprint("snowplow_micro", __name__)
blueprint.before_request(refuse_other_sites)

PREFIXES = ("", "/snowplow/<app>")


async def micro_all(app: str | None = None) -> Response:
    app_id = await _app_id(app)
    async with services().pool.acquire() as conn:
        good, bad = await snowplow_queries.count_snowplow_events(conn, app_id)
    return _json({"total": good + bad, "good": good, "bad": bad})


async def micro_good(app: str | None = None) -> Response:
    app_id = await _app_id(app)
    wanted = MicroFilter.parse(await _filters())
    conditions = wanted.good_conditions()
    if conditions is None:
        return _json([])
    async with services().pool.acquire() as conn:
        entries = await snowplow_queries.select_snowplow_events(
            conn,
            app_id,
            "valid",
            wanted.limit,
            event_code=conditions.event_code,
            schema=conditions.schema,
            contexts=conditions.contexts,
        )
    return _json([good_event(entry) for entry in entries])


async def micro_bad(app: str | None = None) -> Response:
    app_id = await _app_id(app)
    wanted = MicroFilter.parse(await _filters())
    if not wanted.keeps_bad_api():
        return _json([])
    async with services().pool.acquire() as conn:
        entries = await snowplow_queries.select_snowplow_events(
            conn, app_id, "invalid", wanted.limit
        )
    return _json([bad_event(entry) for entry in entries])


async def micro_reset(app: str | None = None) -> Response:
    app_id = await _app_id(app)
    async with services().pool.acquire() as conn:
        await snowplow_queries.delete_snowplow_events(conn, app_id)
    return _json({"total": 0, "good": 0, "bad": 0})


async def _app_id(alias: str | None) -> str | None:
    """The app a /snowplow/<app> prefix names by id or write key; None at the root."""
    if alias is None:
        return None
    view = await services().apps.get_by_id_or_key(alias)
    if view is None:
        raise unknown_app(alias, known_by="id or write key")
    return view.app.id


async def _filters() -> dict[str, Any]:
    if request.method == "POST":
        raw = await request.get_data(cache=False, as_text=False)
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            raise Rejected(400, "invalid_json", "the filter must be a JSON object") from None
        if not isinstance(body, dict):
            raise Rejected(400, "invalid_filter", "the filter must be a JSON object")
        return body
    return {**request.args, "contexts": request.args.getlist("contexts")}


def _json(document: Any) -> Response:
    return Response(orjson.dumps(document), mimetype="application/json")


for _prefix in PREFIXES:
    _suffix = "_in_app" if _prefix else ""
    for _name, _view in (
        ("all", micro_all),
        ("good", micro_good),
        ("bad", micro_bad),
        ("reset", micro_reset),
    ):
        blueprint.add_url_rule(
            f"{_prefix}/micro/{_name}", f"{_name}{_suffix}", _view, methods=["GET", "POST"]
        )
