"""Ingest for unchanged analytics SDKs: Segment's and Rudder's /v1/*, PostHog's /batch/."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from quart import Blueprint, Response, request

from web.context import services
from web.core import queries
from web.core.errors import Rejected
from web.core.parsing import ParsedEvent, check_media_type, decompress, events_of_batch, parse_json
from web.core.validation.envelope import NAME_KEYS
from web.ingest import checked_session, judge_and_enqueue, requested_session
from web.security import admit_events, basic_user

blueprint = Blueprint("sdk_ingest", __name__)

# Segment's HTTP Tracking API calls (Rudder's python SDK speaks the same protocol).
SEGMENT_CALLS = ("track", "identify", "page", "screen", "group", "alias")
# Where a session-scoped host points: an SDK whose host is <server>/v1/session/<id> sends
# to <server>/v1/session/<id>/v1/batch (or /batch/), and its events join session <id>.
SESSION_PREFIX = "/v1/session/<session>"
POSTHOG_BATCH = "/batch/"


@blueprint.after_request
async def mirror_error_for_sdks(response: Response) -> Response:
    """Put the error's code and message at the top level too, where the SDKs read them.

    Segment's and Rudder's clients raise APIError(payload["code"], payload["message"]); on a
    KeyError Rudder retries even a 401 ten times, so the mirror is what makes a refusal final.
    """
    if response.status_code < 400 or response.mimetype != "application/json":
        return response
    body = orjson.loads(await response.get_data())
    found = body.get("error") if isinstance(body, dict) else None
    if isinstance(found, dict):
        body.update(code=found.get("code"), message=found.get("message"))
        if request.path.endswith(POSTHOG_BATCH):
            body["detail"] = found.get("message")  # where PostHog's client reads it
        response.set_data(orjson.dumps(body))
    return response


async def segment_call(session: str | None = None, call: str = "batch") -> Response:
    body = await _json_object()
    key = basic_user(request.headers.get("Authorization")) or _text(body.get("writeKey"))
    limits = services().settings.limits
    if call == "batch":
        messages = body.get("batch")
        if not isinstance(messages, list):
            raise Rejected(400, "invalid_batch", 'the body must be {"batch": [messages]}')
    else:
        messages = [{k: v for k, v in body.items() if k != "writeKey"}]
    events = events_of_batch(messages, limits)
    default_type = None if call == "batch" else call
    return await _accept(key, events, session, lambda event: named_by_type(event, default_type))


async def posthog_batch(session: str | None = None) -> Response:
    body = await _json_object()
    key = (
        _text(body.get("api_key"))
        or basic_user(request.headers.get("Authorization"))
        or request.headers.get("X-Write-Key")
    )
    if "batch" in body:
        messages = body["batch"]
        if not isinstance(messages, list):
            raise Rejected(400, "invalid_batch", 'the body must be {"api_key", "batch": [events]}')
    else:  # one event, as the older capture clients send it
        messages = [{k: v for k, v in body.items() if k != "api_key"}]
    events = events_of_batch(messages, services().settings.limits)
    return await _accept(key, events, session, None)


def named_by_type(event: dict[str, Any], default_type: str | None = None) -> Mapping[str, Any]:
    """The event as it is judged: a call other than track is named by its type.

    An identify, page, screen, group or alias call has no event name of its own, so it is
    judged (and listed) as "identify", "page" and so on; a plan describes it under that name.
    A track call keeps its `event`. The stored payload stays as it was sent.
    """
    if any(key in event for key in NAME_KEYS):
        return event
    kind = event.get("type", default_type)
    if isinstance(kind, str) and kind.strip() and kind != "track":
        return {**event, "event": kind}
    return event


async def _accept(
    key: str | None,
    events: list[ParsedEvent],
    session: str | None,
    judged_as: Callable[[dict[str, Any]], Mapping[str, Any]] | None,
) -> Response:
    svc = services()
    app = await _app_for_key(key)
    view = await svc.apps.get(app.id)
    if view is None:  # deleted between the two reads
        raise Rejected(401, "invalid_write_key", "no app has that write key")
    admit_events(
        svc,
        view.app,
        len(events),
        authorization=request.headers.get("Authorization"),
        write_key=key or request.headers.get("X-Write-Key"),
    )
    session = checked_session(requested_session(session))
    results = await judge_and_enqueue(svc, view, events, session, judged_as)
    # The SDKs count only a 200 as delivered (Rudder's client retries anything else).
    payload = {"success": True, "results": results}
    return Response(orjson.dumps(payload), status=200, mimetype="application/json")


async def _app_for_key(key: str | None) -> queries.App:
    if not key:
        raise Rejected(
            401,
            "write_key_required",
            "send the app's write key as the HTTP Basic user (or writeKey / api_key in the body)",
        )
    async with services().pool.acquire() as conn:
        app = await queries.select_app_by_write_key(conn, key)
    if app is None:
        raise Rejected(401, "invalid_write_key", "no app has that write key")
    return app


async def _json_object() -> dict[str, Any]:
    limits = services().settings.limits
    check_media_type(request.headers.get("Content-Type"))
    raw = await request.get_data(cache=False, as_text=False)
    assert isinstance(raw, bytes)
    value = parse_json(decompress(raw, request.headers.get("Content-Encoding"), limits), limits)
    if not isinstance(value, dict):
        raise Rejected(400, "invalid_top_level", "the body must be a JSON object")
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# Each route twice: at the server's root, and under a session-scoped host.
for _prefix, _suffix in (("", ""), (SESSION_PREFIX, "_in_session")):
    blueprint.add_url_rule(
        f"{_prefix}/v1/batch", f"segment_batch{_suffix}", segment_call, methods=["POST"]
    )
    for _call in SEGMENT_CALLS:
        blueprint.add_url_rule(
            f"{_prefix}/v1/{_call}",
            f"segment_{_call}{_suffix}",
            segment_call,
            methods=["POST"],
            defaults={"call": _call},
        )
    blueprint.add_url_rule(
        f"{_prefix}{POSTHOG_BATCH}", f"posthog_batch{_suffix}", posthog_batch, methods=["POST"]
    )
