"""Segment's tracking API, as Analytics.js, the mobile and server SDKs and RudderStack speak it.

Calls come whole (/v1/track, /v1/batch) or short (/v1/t, /v1/b: Analytics.js and the mobile
SDKs), as JSON or text/plain; the write key is the HTTP Basic user or `writeKey` in the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from web.core.errors import Rejected
from web.core.ingest.wire import (
    Answer,
    Delivery,
    Route,
    WireFormat,
    WireRequest,
    basic_user,
    json_answer,
    json_object,
    text,
)
from web.core.parsing import events_of_batch
from web.core.settings import Limits
from web.core.validation.envelope import NAME_KEYS

# Segment's calls, and the one-letter paths Analytics.js posts them to.
SEGMENT_CALLS = ("track", "identify", "page", "screen", "group", "alias")
SHORT_PATHS = {call[0]: call for call in SEGMENT_CALLS}
BATCH_PATHS = ("batch", "b")


def settings_document(request: WireRequest) -> Answer:
    """What Analytics.js loads from its CDN: the Segment.io destination, pointed back here."""
    # Split by hand: urlsplit raises on a malformed Host header, and this is all it would do.
    scheme, _, host_and_root = request.base_url.partition("://")
    session = f"/v1/session/{quote(request.path_session, safe='')}" if request.path_session else ""
    segment_io = {
        "apiKey": request.path_params["write_key"],
        "apiHost": f"{host_and_root}{session}/v1",
        "protocol": scheme or "http",
        "unbundledIntegrations": [],
        "addBundledMetadata": True,
        "maybeBundledConfigIds": {},
    }
    document = {
        "integrations": {"Segment.io": segment_io},
        "plan": {"track": {"__default": {"enabled": True, "integrations": {}}}},
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        # Analytics.js reports its own metrics to Segment unless the rate is zero.
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
    return json_answer(200, document)


def rudder_source_config(request: WireRequest) -> Answer:
    """What RudderStack's JS SDK loads from its control plane (`configUrl`): no destinations,
    its own error and metrics reporting off, so it sends events and nothing else."""
    # From the query only: the Authorization header may carry a person's credentials.
    key = request.query.get("writeKey", "")
    source = {
        "id": f"lvd-{key}",
        "name": "Live Validation Dashboard",
        "writeKey": key,
        "workspaceId": "lvd",
        "enabled": True,
        "config": {
            "statsCollection": {"errors": {"enabled": False}, "metrics": {"enabled": False}}
        },
        "destinations": [],
    }
    return json_answer(200, {"isHosted": False, "source": source})


class SegmentFormat(WireFormat):
    name = "segment"
    title = "Segment and RudderStack (Analytics.js, mobile, server SDKs)"
    routes: ClassVar[tuple[Route, ...]] = (
        Route("batch", "/v1/batch", summary="Segment / RudderStack batch"),
        # The mobile SDKs' batch path. analytics-swift drops a batch only on a 400 and
        # resends any other refusal on every flush, for ever.
        Route("b", "/v1/b", summary="Segment batch (mobile SDKs)", final_statuses={401: 400}),
        *(
            Route(
                call,
                f"/v1/{call}",
                summary=f"Segment / RudderStack {call} call",
                body_schema="SegmentMessage",
            )
            for call in SEGMENT_CALLS
        ),
        *(
            Route(
                short,
                f"/v1/{short}",
                summary=f"Segment {call} call (Analytics.js short path)",
                body_schema="SegmentMessage",
            )
            for short, call in SHORT_PATHS.items()
        ),
        Route(
            "settings",
            "/v1/projects/<write_key>/settings",
            methods=("GET",),
            document=settings_document,
            summary="Analytics.js settings: send events back to this server",
        ),
        *(
            Route(
                f"rudder_config{suffix.replace('/', '_slash')}",
                f"/sourceConfig{suffix}",
                methods=("GET",),
                document=rudder_source_config,
                summary="RudderStack JS SDK source config (configUrl): no destinations",
            )
            for suffix in ("", "/")
        ),
    )
    # Analytics.js marks retries; RudderStack's JS SDK sends its ids in headers.
    cors_headers = ("X-Retry-Count", "AnonymousId", "SentAt")
    description = (
        "The write key (HTTP Basic user, or writeKey in the body) selects the app; messageId"
        " is the event id. A track call is named by its `event`, the others by their type."
    )
    body_schema = "SegmentBatch"
    error_schema = "SdkError"
    basic_auth = True

    def deliver(self, value: Any, request: WireRequest, limits: Limits) -> Delivery:
        body = json_object(value, "a JSON object")
        key = (
            basic_user(request.header("authorization"))
            or text(body.get("writeKey"))
            or request.header("x-write-key")
        )
        route = request.route
        if route in BATCH_PATHS:
            messages = body.get("batch")
            if not isinstance(messages, list):
                raise Rejected(400, "invalid_batch", 'the body must be {"batch": [messages]}')
            default_type = None
        else:
            messages = [{k: v for k, v in body.items() if k != "writeKey"}]
            default_type = SHORT_PATHS.get(route, route)
        events = events_of_batch(messages, limits)
        return Delivery(
            events, write_key=key, judged_as=lambda event: named_by_type(event, default_type)
        )

    def refused(self, error: Rejected, delivery: Delivery | None = None) -> Answer:
        # Segment's and Rudder's clients raise APIError(body["code"], body["message"]); on a
        # KeyError Rudder retries even a 401 ten times, so the mirror makes a refusal final.
        return json_answer(error.status, mirrored(error), error.headers)


def mirrored(error: Rejected) -> dict[str, Any]:
    """The error document with its code and message at the top level too, where SDKs read them."""
    return {
        "error": {"code": error.code, "message": error.message, **error.details},
        "code": error.code,
        "message": error.message,
    }


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
